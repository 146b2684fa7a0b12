// Issue 13, problem 4: a push larger than the database accepts is refused by the function while
// it reads the request (413, code 54000), before buffering it: from Content-Length at once, and
// from the bytes read when the body is streamed. The function's memory does not grow by the
// body's size; a push within the limit still works.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startDemoStack, upload, rssMb, call, user } from './lib.js'

let big // default limit: pg_sync.max_push_bytes = 64MB
let small // the database sets pg_sync.max_push_bytes = 1MB; the function follows it
before(async () => {
  big = await startDemoStack()
  small = await startDemoStack({ extraSql: "ALTER DATABASE postgres SET pg_sync.max_push_bytes = '1MB';" })
})
after(async () => {
  await big?.stop()
  await small?.stop()
})

test('a 300 MB push is answered 413 at once from its Content-Length, without reading it', { timeout: 60_000 }, async () => {
  const token = await big.sign({ sub: user(), role: 'authenticated' })
  const rssBefore = rssMb(big.functionPid)
  // Only the first megabyte is ever sent: an answer can only come from the declared length.
  const res = await upload(`${big.functionUrl}/push`, token, { contentLength: 300 << 20, maxBytes: 1 << 20 })
  assert.equal(res.status, 413)
  assert.equal(res.body.code, '54000')
  assert.match(res.body.error, /larger than \d+ bytes/)
  assert.equal(res.headers['access-control-allow-origin'], '*')
  assert.ok(rssMb(big.functionPid) - rssBefore < 32, 'the function grew by more than 32 MB')
  // and it still serves
  assert.equal((await call(big, 'pull', { token, body: { lastPulledAt: null } })).status, 200)
})

test("the default limit is the database's pg_sync.max_push_bytes", { timeout: 60_000 }, async () => {
  const token = await small.sign({ sub: user(), role: 'authenticated' })
  const res = await upload(`${small.functionUrl}/push`, token, { contentLength: 2 << 20, maxBytes: 1 << 20 })
  assert.equal(res.status, 413)
  assert.equal(res.body.code, '54000')
  assert.match(res.body.error, new RegExp(`larger than ${(1 << 20) + 65536} bytes`))
})

test('a streamed (chunked) push is refused as soon as it passes the limit', { timeout: 60_000 }, async () => {
  const token = await small.sign({ sub: user(), role: 'authenticated' })
  const rssBefore = rssMb(small.functionPid)
  // 64 MB offered in 256 KB chunks; the answer must come long before the end.
  const res = await upload(`${small.functionUrl}/push`, token, { maxBytes: 64 << 20, chunkBytes: 256 << 10 })
  assert.equal(res.status, 413)
  assert.equal(res.body.code, '54000')
  assert.ok(res.sent < 64 << 20, `the whole body was sent (${res.sent} bytes) before the answer`)
  assert.ok(rssMb(small.functionPid) - rssBefore < 32, 'the function grew by more than 32 MB')
})

test('a push within the limit is applied', async () => {
  const alice = user()
  const token = await small.sign({ sub: alice, role: 'authenticated' })
  const { body: pulled } = await call(small, 'pull', { token, body: { lastPulledAt: null } })
  const created = []
  for (let i = 0; i < 2000; i++) created.push({ id: `${alice}-${i}`, title: `task ${i} `.padEnd(200, '.'), is_done: false })
  const res = await call(small, 'push', {
    token,
    body: { changes: { tasks: { created, updated: [], deleted: [] } }, lastPulledAt: pulled.timestamp },
  })
  assert.equal(res.status, 200, res.text)
  assert.deepEqual(res.body, { created: 2000, updated: 0, deleted: 0 })
})
