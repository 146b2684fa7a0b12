// Issue 13, problem 10: every error answer is {error, code}; JSON that does not parse is 400
// 22P02 (as README says); a 401 says how to authenticate (WWW-Authenticate: Bearer); a token
// without "exp" is refused unless SYNC_JWT_REQUIRE_EXP=false; a service_role token may act for the
// user named in the body (user_id), and no other token may.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startDemoStack, call, user } from './lib.js'

let stack
let lenient // SYNC_JWT_REQUIRE_EXP=false
before(async () => {
  stack = await startDemoStack()
  lenient = await startDemoStack({ functionEnv: { SYNC_JWT_REQUIRE_EXP: 'false' } })
})
after(async () => {
  await stack?.stop()
  await lenient?.stop()
})

// A token without exp, signed with the stack's secret.
const noExp = (s, claims) => s.sign(claims, { expiresAt: null })

function assertError(res, status, code) {
  assert.equal(res.status, status, res.text)
  assert.equal(typeof res.body?.error, 'string', `no error message in ${res.text}`)
  assert.equal(res.body.code, code, res.text)
  assert.deepEqual(Object.keys(res.body).sort(), ['code', 'error'])
}

test('404 and 405 answer {error, code}', async () => {
  assertError(await call(stack, 'elsewhere', { body: {} }), 404, '42883')
  const get = await call(stack, 'pull', { method: 'GET' })
  assertError(get, 405, '0A000')
  assert.match(get.headers.get('allow'), /POST/)
})

test('JSON that does not parse: 400 22P02, on pull and on push', async () => {
  const token = await stack.sign({ sub: user(), role: 'authenticated' })
  assertError(await call(stack, 'pull', { token, raw: '{"lastPulledAt": ' }), 400, '22P02')
  assertError(await call(stack, 'push', { token, raw: '{"changes": {"tasks": ' }), 400, '22P02')
  assertError(await call(stack, 'push', { token, raw: '' }), 400, '22P02')
})

test('a body of the wrong shape: 400 22023, naming what is wrong', async () => {
  const token = await stack.sign({ sub: user(), role: 'authenticated' })
  const push = (raw) => call(stack, 'push', { token, raw })
  assertError(await push('[]'), 400, '22023')
  assertError(await push('{"lastPulledAt": null}'), 400, '22023')
  assert.match((await push('{"lastPulledAt": null}')).body.error, /changes must be an object/)
  assertError(await push('{"changes": {}, "lastPulledAt": "12"}'), 400, '22023')
  assertError(await push('{"changes": {}, "lastPulledAt": 1.5}'), 400, '22023')
  assertError(await push('{"changes": {}, "lastPulledAt": null, "user_id": 7}'), 400, '22023')
  assertError(await call(stack, 'pull', { token, raw: '"x"' }), 400, '22023')
  assertError(await call(stack, 'pull', { token, body: { lastPulledAt: 'yesterday' } }), 400, '22023')
})

test('every 401 carries WWW-Authenticate: Bearer', async () => {
  const missing = await call(stack, 'pull', { body: { lastPulledAt: null } })
  assertError(missing, 401, '28000')
  assert.match(missing.headers.get('www-authenticate'), /^Bearer realm="pg_sync"/)
  const garbage = await call(stack, 'pull', { token: 'not-a-jwt', body: { lastPulledAt: null } })
  assertError(garbage, 401, '28000')
  assert.match(garbage.headers.get('www-authenticate'), /^Bearer .*error="invalid_token"/)
  // a valid token without a user id, for per-user tables: the database's 28000, still a challenge
  const anon = await call(stack, 'pull', { token: await stack.sign({ role: 'anon' }), body: { lastPulledAt: null } })
  assertError(anon, 401, '28000')
  assert.match(anon.headers.get('www-authenticate'), /^Bearer/)
})

test('a token without exp is refused, unless SYNC_JWT_REQUIRE_EXP=false', async () => {
  const claims = { sub: user(), role: 'authenticated' }
  const refused = await call(stack, 'pull', { token: await noExp(stack, claims), body: { lastPulledAt: null } })
  assertError(refused, 401, '28000')
  assert.match(refused.body.error, /exp/)
  const accepted = await call(lenient, 'pull', { token: await noExp(lenient, claims), body: { lastPulledAt: null } })
  assert.equal(accepted.status, 200, accepted.text)
  // an expired token stays refused either way
  const expired = await lenient.sign(claims, { expiresAt: Math.floor(Date.now() / 1000) - 60 })
  assertError(await call(lenient, 'pull', { token: expired, body: { lastPulledAt: null } }), 401, '28000')
})

test('a service_role token acts for the user given in the body; no other token may pass user_id', async () => {
  const alice = user()
  const service = await stack.sign({ role: 'service_role' })
  const first = await call(stack, 'pull', { token: service, body: { lastPulledAt: null, user_id: alice } })
  assert.equal(first.status, 200, first.text)
  // a push for alice, by the service
  const pushed = await call(stack, 'push', {
    token: service,
    body: {
      changes: { tasks: { created: [{ id: `${alice}-1`, title: 'from the server', is_done: false }], updated: [], deleted: [] } },
      lastPulledAt: first.body.timestamp,
      user_id: alice,
    },
  })
  assert.equal(pushed.status, 200, pushed.text)
  assert.equal(await stack.sql(`SELECT owner_id FROM tasks WHERE id = '${alice}-1'`), alice)
  // alice's own pull sees it; the service's pull for alice too
  const aliceToken = await stack.sign({ sub: alice, role: 'authenticated' })
  const mine = await call(stack, 'pull', { token: aliceToken, body: { lastPulledAt: null } })
  assert.deepEqual(mine.body.changes.tasks.updated.map((r) => r.id), [`${alice}-1`])
  const forAlice = await call(stack, 'pull', { token: service, body: { lastPulledAt: null, user_id: alice } })
  assert.deepEqual(forAlice.body.changes.tasks.updated.map((r) => r.id), [`${alice}-1`])

  // alice may not act for bob, on pull or push; nothing is written
  const bob = user()
  assertError(await call(stack, 'pull', { token: aliceToken, body: { lastPulledAt: null, user_id: bob } }), 403, '42501')
  const taken = await call(stack, 'push', {
    token: aliceToken,
    body: {
      changes: { tasks: { created: [{ id: `${bob}-1`, title: 'as bob', is_done: false }], updated: [], deleted: [] } },
      lastPulledAt: mine.body.timestamp,
      user_id: bob,
    },
  })
  assertError(taken, 403, '42501')
  assert.equal(await stack.sql(`SELECT count(*) FROM tasks WHERE id = '${bob}-1'`), '0')
})

// The function finds the push body's top-level members without parsing the records (README:
// "Push bodies are not parsed by the function"): strings with braces, quotes and backslashes,
// any whitespace, repeated keys are read as JSON.parse would; anything that is not JSON is 22P02,
// wherever it is.
test('push bodies: the records reach the database exactly as sent; malformed JSON anywhere is 22P02', async () => {
  const alice = user()
  const token = await stack.sign({ sub: alice, role: 'authenticated' })
  const { body: pulled } = await call(stack, 'pull', { token, body: { lastPulledAt: null } })
  const tricky = ['a } b { c', 'quote " inside', 'backslash \\ end\\', '\\"}, "lastPulledAt": 0, "x": {', '✓ 🍞 \u00e9 \n\t']
  const created = tricky.map((title, i) => ({ id: `${alice}-${i}`, title, is_done: false }))
  // odd spacing, a repeated key (the last one counts, as with JSON.parse), another member first
  const raw = `\n { "note" : [ "}" , { "{" : "\\"" } ] ,\t"lastPulledAt" : 1 , "changes" :${JSON.stringify({
    tasks: { created, updated: [], deleted: [] },
  })}\r\n, "lastPulledAt":${pulled.timestamp} }\n`
  const res = await call(stack, 'push', { token, raw })
  assert.equal(res.status, 200, res.text)
  assert.equal(res.body.created, tricky.length)
  const stored = JSON.parse(await stack.sql(`SELECT json_agg(title ORDER BY id) FROM tasks WHERE owner_id = '${alice}'`))
  assert.deepEqual(stored, tricky)

  const changes = '{"tasks": {"created": [], "updated": [], "deleted": []}}'
  for (const bad of [
    `{"changes": ${changes}, "lastPulledAt": null} x`, // trailing garbage
    `{"changes": ${changes}, "lastPulledAt": null,}`, // trailing comma
    `{"changes": ${changes} "lastPulledAt": null}`, // missing comma
    `{"changes": ${changes}, "note": [1,,2]}`, // another member that does not parse
    `{"changes": {"tasks": {"created": [1,,2]}}, "lastPulledAt": null}`, // inside changes: the database's parser
    `{"changes": {"tasks": "unterminated}, "lastPulledAt": null}`,
    `{changes: ${changes}}`,
  ]) {
    assertError(await call(stack, 'push', { token, raw: bad }), 400, '22P02')
  }
})
