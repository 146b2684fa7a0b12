// The pull body's pageSize, turbo and replacement, the function's default page size
// (SYNC_PAGE_SIZE), and GET .../events (Server-Sent Events): authentication (header or
// ?access_token=), the answers it refuses with, the per-instance cap, keep-alive comments, and the
// GRANT its database role needs (README: "GRANT EXECUTE ON FUNCTION sync_changed_users").
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startDemoStack, call, user } from './lib.js'
import { NodeEventSource, nextEvent } from '../e2e/lib/harness.js'

// the function's default page size is 2 here; the demo schema has 2 shared tags
let stack
before(async () => {
  stack = await startDemoStack({
    functionEnv: { SYNC_PAGE_SIZE: '2', SYNC_EVENTS_MAX_CONNECTIONS: '2', SYNC_EVENTS_KEEPALIVE_MS: '200' },
  })
})
after(async () => stack?.stop())

function assertError(res, status, code) {
  assert.equal(res.status, status, res.text)
  assert.equal(res.body?.code, code, res.text)
  assert.equal(typeof res.body.error, 'string')
}

async function signedIn(claims = {}) {
  const id = user()
  const token = await stack.sign({ sub: id, role: 'authenticated', ...claims })
  return { id, token }
}

async function withTasks(n) {
  const u = await signedIn()
  await stack.sql(`INSERT INTO tasks (id, owner_id, title) SELECT '${u.id}-' || i, '${u.id}', 'task ' || i FROM generate_series(1, ${n}) i;`)
  return u
}

const records = (body) => Object.values(body.changes).reduce((n, t) => n + t.created.length + t.updated.length + t.deleted.length, 0)

// Pulls page after page; returns the pages' bodies.
async function allPages(u, extra = {}) {
  const pages = []
  let lastPulledAt = null
  for (;;) {
    const res = await call(stack, 'pull', { token: u.token, body: { lastPulledAt, ...extra } })
    assert.equal(res.status, 200, res.text)
    pages.push(res.body)
    if (!res.body.hasMore) return pages
    lastPulledAt = res.body.timestamp
  }
}

test('a pull without pageSize is paged by SYNC_PAGE_SIZE; pageSize overrides it; hasMore passes through', async () => {
  const u = await withTasks(5) // 5 tasks + 2 tags
  const byDefault = await allPages(u)
  assert.deepEqual(byDefault.map(records), [2, 2, 2, 1])
  assert.deepEqual(byDefault.map((p) => p.hasMore), [true, true, true, undefined])
  const byThree = await allPages(u, { pageSize: 3 })
  assert.deepEqual(byThree.map(records), [3, 3, 1])
  const whole = await allPages(u, { pageSize: 1000 })
  assert.deepEqual(whole.map(records), [7])
})

test('turbo: true is never paged (a Turbo Login first pull comes whole); with pageSize it is refused', async () => {
  const u = await withTasks(5)
  const res = await call(stack, 'pull', { token: u.token, body: { lastPulledAt: null, turbo: true } })
  assert.equal(res.status, 200, res.text)
  assert.equal(records(res.body), 7)
  assert.equal(res.body.hasMore, undefined)
  assertError(await call(stack, 'pull', { token: u.token, body: { lastPulledAt: null, turbo: true, pageSize: 3 } }), 400, '22023')
})

test('pageSize, turbo and replacement of the wrong kind: 400 22023', async () => {
  const u = await signedIn()
  for (const body of [
    { pageSize: 1.5 },
    { pageSize: '3' },
    { pageSize: 0 },
    { pageSize: 1_000_001 },
    { pageSize: -1 },
    { turbo: 'yes' },
    { replacement: 1 },
  ]) {
    assertError(await call(stack, 'pull', { token: u.token, body: { lastPulledAt: null, ...body } }), 400, '22023')
  }
  // null is "not given"
  const res = await call(stack, 'pull', { token: u.token, body: { lastPulledAt: null, pageSize: null, turbo: null, replacement: null } })
  assert.equal(res.status, 200, res.text)
})

test('replacement: true: an expired token gets the whole scope by replacement instead of 410', async () => {
  const u = await withTasks(1)
  const first = await call(stack, 'pull', { token: u.token, body: { lastPulledAt: null, pageSize: 100 } })
  const token = first.body.timestamp
  // a change since, and a newer checkpoint (sync_prune always keeps the newest); then 40 days pass
  await stack.sql(`INSERT INTO tasks (id, owner_id, title) VALUES ('${u.id}-later', '${u.id}', 'later');
                   SELECT sync_checkpoint();
                   UPDATE _pg_sync.checkpoints SET created_at = created_at - interval '40 days' WHERE id = ${token};
                   SELECT * FROM sync_prune('30 days');`)
  assertError(await call(stack, 'pull', { token: u.token, body: { lastPulledAt: token } }), 410, 'SY002')
  const res = await call(stack, 'pull', { token: u.token, body: { lastPulledAt: token, replacement: true } })
  assert.equal(res.status, 200, res.text)
  assert.equal(res.body.experimentalStrategy, 'replacement')
  assert.equal(res.body.hasMore, undefined, 'never paged, though over SYNC_PAGE_SIZE')
  assert.equal(records(res.body), 4) // 2 tasks, 2 tags
  // a token never issued stays 410 SY003
  assertError(await call(stack, 'pull', { token: u.token, body: { lastPulledAt: 1, replacement: true } }), 410, 'SY003')
})

// --- GET .../events -------------------------------------------------------------------------------

test('events: refused without a valid token, for a role that may not sync, a token without a user, and POST', async () => {
  const noToken = await call(stack, 'events', { method: 'GET' })
  assertError(noToken, 401, '28000')
  assert.match(noToken.headers.get('www-authenticate'), /^Bearer/)
  assertError(await call(stack, 'events?access_token=garbage', { method: 'GET' }), 401, '28000')
  const expired = await stack.sign({ sub: user(), role: 'authenticated' }, { expiresAt: Math.floor(Date.now() / 1000) - 60 })
  assertError(await call(stack, `events?access_token=${expired}`, { method: 'GET' }), 401, '28000')
  const foreign = await stack.sign({ sub: user(), role: 'postgres' })
  assertError(await call(stack, 'events', { method: 'GET', token: foreign }), 403, '42501')
  const noSub = await stack.sign({ role: 'service_role' })
  assertError(await call(stack, 'events', { method: 'GET', token: noSub }), 401, '28000')
  const u = await signedIn()
  const post = await call(stack, 'events', { token: u.token, body: {} })
  assertError(post, 405, '0A000')
  assert.equal(post.headers.get('allow'), 'GET, OPTIONS')
  // the query parameter is only for events: other routes want the header
  assertError(await call(stack, `pull?access_token=${u.token}`, { body: { lastPulledAt: null } }), 401, '28000')
})

test('events: a stream with the token in the header or the query, CORS, "ready" first, keep-alive comments', async () => {
  const u = await signedIn()
  const res = await fetch(`${stack.functionUrl}/events`, { headers: { authorization: `Bearer ${u.token}`, origin: 'https://app.example' } })
  assert.equal(res.status, 200)
  assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8')
  assert.equal(res.headers.get('cache-control'), 'no-store')
  assert.equal(res.headers.get('access-control-allow-origin'), '*')
  await res.body.cancel()

  const source = new NodeEventSource(`${stack.functionUrl}/events?access_token=${encodeURIComponent(u.token)}`)
  assert.equal((await nextEvent(source, 'ready')).data, '{}')
  assert.equal(source.retryMs, 3000, 'the stream tells EventSource to reconnect after 3 s')
  assert.equal((await nextEvent(source, 'comment')).text, 'keep-alive') // every 200 ms here
  const hint = nextEvent(source, 'pull')
  await stack.sql(`INSERT INTO tasks (id, owner_id, title) VALUES ('${u.id}-x', '${u.id}', 'x')`)
  assert.deepEqual(JSON.parse((await hint).data), { all: false })
  source.close()
})

test('events: at most SYNC_EVENTS_MAX_CONNECTIONS streams per instance (503 53300); a closed one frees its place', async () => {
  const u = await signedIn()
  const open = () => new NodeEventSource(`${stack.functionUrl}/events`, { headers: { authorization: `Bearer ${u.token}` } })
  const [a, b] = [open(), open()]
  await Promise.all([nextEvent(a, 'ready'), nextEvent(b, 'ready')])
  const third = await call(stack, 'events', { method: 'GET', token: u.token })
  assertError(third, 503, '53300')
  assert.equal(third.headers.get('retry-after'), '10')
  // a refused EventSource is closed for good (browsers do the same), README's listen() retries later
  const refused = open()
  await nextEvent(refused, 'error')
  assert.equal(refused.readyState, NodeEventSource.CLOSED)
  assert.equal(refused.status, 503)

  a.close() // the client goes away: the function notices and frees the place
  let accepted = null
  for (let tries = 0; tries < 100 && accepted === null; tries++) {
    const next = open()
    await Promise.race([nextEvent(next, 'ready', { timeoutMs: 5000 }), nextEvent(next, 'error', { timeoutMs: 5000 })])
    if (next.readyState === NodeEventSource.OPEN) accepted = next
  }
  assert.ok(accepted, 'a place was freed')
  accepted.close()
  b.close()
})

test("events: the function's database role needs EXECUTE on sync_changed_users (500 42501 without it)", async () => {
  // a function that logs in as a role of its own instead of the superuser
  const role = `fn_${Math.random().toString(36).slice(2, 10)}`
  await stack.sql(`CREATE ROLE ${role} LOGIN; GRANT authenticated TO ${role};`)
  const fn = await stack.startFunction({ DATABASE_URL: `postgres://${role}@127.0.0.1:${stack.pgPort}/postgres` })
  const own = fn.url
  try {
    const u = await signedIn()
    const refused = await fetch(`${own}/events`, { headers: { authorization: `Bearer ${u.token}` } })
    assert.equal(refused.status, 500)
    assert.deepEqual(await refused.json(), { error: 'internal error', code: '42501' })
    assert.match(fn.output(), /permission denied for function sync_changed_users/, 'the function logs why')
    // pulls work: the role acts as authenticated
    const pulled = await fetch(`${own}/pull`, {
      method: 'POST',
      headers: { authorization: `Bearer ${u.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ lastPulledAt: null }),
    })
    assert.equal(pulled.status, 200)
    await pulled.text()
    // README's GRANT line
    await stack.sql(`GRANT EXECUTE ON FUNCTION sync_changed_users(text, text[]) TO ${role};`)
    const source = new NodeEventSource(`${own}/events`, { headers: { authorization: `Bearer ${u.token}` } })
    await nextEvent(source, 'ready')
    const hint = nextEvent(source, 'pull')
    await stack.sql(`INSERT INTO tasks (id, owner_id, title) VALUES ('${u.id}-g', '${u.id}', 'g')`)
    await hint
    source.close()
  } finally {
    await fn.stop()
  }
})
