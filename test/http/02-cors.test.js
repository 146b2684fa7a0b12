// Issue 13, problem 8: a browser app can call the function. Preflight requests are answered like
// Supabase's function template does, every answer (errors included) carries the CORS headers, and
// SYNC_CORS_ORIGINS narrows the allowed origins.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startDemoStack, call, user } from './lib.js'

let open // default: any origin
let narrow // SYNC_CORS_ORIGINS=https://app.example,http://127.0.0.1:3000
before(async () => {
  open = await startDemoStack()
  narrow = await startDemoStack({ functionEnv: { SYNC_CORS_ORIGINS: 'https://app.example, http://127.0.0.1:3000' } })
})
after(async () => {
  await open?.stop()
  await narrow?.stop()
})

const preflight = (stack, route, origin) =>
  call(stack, route, {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization, content-type',
    },
  })

test('preflight of pull and push: allowed, with the headers a sync client sends', async () => {
  for (const route of ['pull', 'push']) {
    const res = await preflight(open, route, 'https://anywhere.example')
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('access-control-allow-origin'), '*')
    const allowed = res.headers.get('access-control-allow-headers').split(/,\s*/)
    for (const h of ['authorization', 'content-type', 'x-client-info', 'apikey']) assert.ok(allowed.includes(h), h)
    assert.match(res.headers.get('access-control-allow-methods'), /POST/)
  }
})

test('CORS headers on success and on every error answer', async () => {
  const token = await open.sign({ sub: user(), role: 'authenticated' })
  const answers = [
    await call(open, 'pull', { token, body: { lastPulledAt: null }, headers: { origin: 'https://x.example' } }), // 200
    await call(open, 'pull', { body: { lastPulledAt: null }, headers: { origin: 'https://x.example' } }), // 401
    await call(open, 'pull', { token, raw: '{', headers: { origin: 'https://x.example' } }), // 400
    await call(open, 'nowhere', { token, headers: { origin: 'https://x.example' } }), // 404
    await call(open, 'pull', { method: 'GET', headers: { origin: 'https://x.example' } }), // 405
  ]
  assert.deepEqual(answers.map((a) => a.status), [200, 401, 400, 404, 405])
  for (const a of answers) assert.equal(a.headers.get('access-control-allow-origin'), '*', `status ${a.status}`)
  // the 401's challenge is readable by the page
  assert.match(answers[1].headers.get('access-control-expose-headers'), /www-authenticate/)
})

test('SYNC_CORS_ORIGINS: a listed origin is echoed, another gets no Allow-Origin', async () => {
  const listed = await preflight(narrow, 'push', 'http://127.0.0.1:3000')
  assert.equal(listed.headers.get('access-control-allow-origin'), 'http://127.0.0.1:3000')
  assert.match(listed.headers.get('vary'), /Origin/)
  const other = await preflight(narrow, 'push', 'https://evil.example')
  assert.equal(other.headers.get('access-control-allow-origin'), null)
  const token = await narrow.sign({ sub: user(), role: 'authenticated' })
  const res = await call(narrow, 'pull', { token, body: { lastPulledAt: null }, headers: { origin: 'https://app.example' } })
  assert.equal(res.status, 200)
  assert.equal(res.headers.get('access-control-allow-origin'), 'https://app.example')
})
