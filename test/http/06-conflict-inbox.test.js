// The conflict inbox over HTTP (README: the edge function's routes, sync_conflicts,
// sync_resolve_conflict): GET .../conflicts lists the caller's open conflicts as a JSON array;
// POST .../conflicts/<id>/resolve closes one. An unknown id, one that is no id, and another user's
// conflict are 404 42704; a conflict resolved already is 409 SY007; a bad resolution or merged
// record is 400 (22023, or the value's own SQLSTATE with the record named).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startDemoStack, call, user } from './lib.js'

const NOTES_SQL = `
CREATE TABLE notes (id text PRIMARY KEY, owner_id text NOT NULL, body text, n int CHECK (n >= 0));
SELECT sync_register_table('notes', owner_column => 'owner_id', conflict_policy => 'manual');
GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO authenticated;
`

let stack
before(async () => {
  stack = await startDemoStack({ extraSql: NOTES_SQL })
})
after(async () => stack?.stop())

const empty = { created: [], updated: [], deleted: [] }

function assertError(res, status, code) {
  assert.equal(res.status, status, res.text)
  assert.equal(res.body?.code, code, res.text)
  assert.equal(typeof res.body.error, 'string')
}

async function signedIn() {
  const id = user()
  return { id, token: await stack.sign({ sub: id, role: 'authenticated' }) }
}

const pull = async (u, lastPulledAt = null) => (await call(stack, 'pull', { token: u.token, body: { lastPulledAt } })).body
const push = (u, changes, lastPulledAt) => call(stack, 'push', { token: u.token, body: { changes, lastPulledAt } })
const conflicts = (u) => call(stack, 'conflicts', { method: 'GET', token: u.token })
const resolve = (u, id, body) => call(stack, `conflicts/${id}/resolve`, { token: u.token, body })

// A note the server and the device both changed since the device's token: the push succeeds and
// the device's record waits in the inbox. Returns the push result.
async function conflictOn(u, id, clientBody) {
  const before = await pull(u)
  await stack.sql(`UPDATE notes SET body = 'server edit', n = n + 1 WHERE id = '${id}'`)
  const res = await push(u, { notes: { ...empty, updated: [{ id, body: clientBody, n: 7 }] } }, before.timestamp)
  assert.equal(res.status, 200, res.text)
  return res.body
}

test('a manual conflict: the push result names it, GET .../conflicts lists it, the server row stays', async () => {
  const alice = await signedIn()
  const a1 = `${alice.id}-1`
  await stack.sql(`INSERT INTO notes VALUES ('${a1}', '${alice.id}', 'server', 1)`)
  const result = await conflictOn(alice, a1, 'alice offline')
  assert.deepEqual(result.created + result.updated + result.deleted, 0)
  assert.equal(result.conflicts.length, 1)
  const [entry] = result.conflicts
  assert.deepEqual({ ...entry, conflict_id: typeof entry.conflict_id }, {
    table: 'notes', id: a1, policy: 'manual', resolution: 'manual', conflict_id: 'number',
  })
  assert.equal(await stack.sql(`SELECT body FROM notes WHERE id = '${a1}'`), 'server edit')

  const list = await conflicts(alice)
  assert.equal(list.status, 200, list.text)
  assert.match(list.headers.get('content-type'), /application\/json/)
  assert.equal(list.body.length, 1)
  const [open] = list.body
  assert.deepEqual(Object.keys(open).sort(), ['client_record', 'conflict_id', 'created_at', 'record_id', 'server_record', 'table_name'])
  assert.equal(open.conflict_id, entry.conflict_id)
  assert.equal(open.table_name, 'notes')
  assert.equal(open.record_id, a1)
  assert.deepEqual(open.client_record, { id: a1, body: 'alice offline', n: 7 })
  assert.deepEqual(open.server_record, { id: a1, owner_id: alice.id, body: 'server edit', n: 2 })
  assert.ok(!Number.isNaN(Date.parse(open.created_at)))

  // nobody else sees it, or may resolve it
  const bob = await signedIn()
  assert.deepEqual((await conflicts(bob)).body, [])
  assertError(await resolve(bob, open.conflict_id, { resolution: 'client' }), 404, '42704')
  assert.equal((await conflicts(alice)).body.length, 1)
})

test('resolve: client writes the device\'s record, merged writes the given one; every device pulls it; only once', async () => {
  const alice = await signedIn()
  const [c1, c2] = [`${alice.id}-c`, `${alice.id}-m`]
  await stack.sql(`INSERT INTO notes VALUES ('${c1}', '${alice.id}', 'server', 1), ('${c2}', '${alice.id}', 'server', 1)`)
  await conflictOn(alice, c1, 'client wins')
  await conflictOn(alice, c2, 'to be merged')
  const [k1, k2] = (await conflicts(alice)).body.map((c) => c.conflict_id)
  const other = await pull(alice) // another device, up to date before the resolutions

  const r1 = await resolve(alice, k1, { resolution: 'client' })
  assert.equal(r1.status, 200, r1.text)
  assert.deepEqual(r1.body, { conflict_id: k1, table: 'notes', id: c1, resolution: 'client', created: 0, updated: 1, deleted: 0 })
  const r2 = await resolve(alice, k2, { resolution: 'merged', merged: { id: c2, body: 'merged by alice', n: 3 } })
  assert.equal(r2.status, 200, r2.text)
  assert.equal(r2.body.resolution, 'merged')
  assert.deepEqual(await stack.query(`SELECT id, body, n FROM notes WHERE owner_id = '${alice.id}' ORDER BY id`), [
    { id: c1, body: 'client wins', n: 7 },
    { id: c2, body: 'merged by alice', n: 3 },
  ])
  assert.deepEqual((await conflicts(alice)).body, [])
  // the resolutions are new changes: the other device gets both rows
  const next = await pull(alice, other.timestamp)
  assert.deepEqual(
    next.changes.notes.updated.map((r) => [r.id, r.body, r.n]).sort(),
    [[c1, 'client wins', 7], [c2, 'merged by alice', 3]].sort(),
  )
  // resolved already
  assertError(await resolve(alice, k1, { resolution: 'server' }), 409, 'SY007')
})

test('resolve errors: unknown or malformed id 404, bad resolution or body 400, a bad merged value names the record', async () => {
  const alice = await signedIn()
  const e1 = `${alice.id}-e`
  await stack.sql(`INSERT INTO notes VALUES ('${e1}', '${alice.id}', 'server', 1)`)
  await conflictOn(alice, e1, 'pending')
  const [{ conflict_id: k }] = (await conflicts(alice)).body

  for (const id of ['999999999', 'abc', '0', '-1', '1.5', '99999999999999999999']) {
    assertError(await resolve(alice, id, { resolution: 'server' }), 404, '42704')
  }
  assertError(await resolve(alice, k, { resolution: 'mine' }), 400, '22023')
  assertError(await resolve(alice, k, {}), 400, '22023')
  assertError(await resolve(alice, k, { resolution: 'merged' }), 400, '22023') // merged record missing
  assertError(await resolve(alice, k, { resolution: 'server', merged: { id: e1 } }), 400, '22023')
  assertError(await resolve(alice, k, { resolution: 'merged', merged: [1] }), 400, '22023')
  assertError(await resolve(alice, k, { resolution: 'merged', merged: { id: 'another', body: 'x' } }), 400, '22023')
  assertError(await call(stack, `conflicts/${k}/resolve`, { token: alice.token, raw: '{"resolution": ' }), 400, '22P02')
  const badValue = await resolve(alice, k, { resolution: 'merged', merged: { id: e1, n: 'many' } })
  assertError(badValue, 400, '42804')
  assert.equal(badValue.body.record, `record "${e1}" of table "notes", column "n"`)
  const badRow = await resolve(alice, k, { resolution: 'merged', merged: { id: e1, n: -1 } })
  assertError(badRow, 400, '23514')
  assert.match(badRow.body.error, new RegExp(`record "${e1}" of table "notes"`))
  assertError(await call(stack, `conflicts/${k}/resolve`, { method: 'GET', token: alice.token }), 405, '0A000')
  assertError(await call(stack, 'conflicts', { method: 'POST', token: alice.token, body: {} }), 405, '0A000')
  assertError(await resolve({ token: undefined }, k, { resolution: 'server' }), 401, '28000')
  // none of that touched it
  assert.equal((await conflicts(alice)).body.length, 1)
  assert.equal(await stack.sql(`SELECT body FROM notes WHERE id = '${e1}'`), 'server edit')
  const ok = await resolve(alice, k, { resolution: 'server' })
  assert.equal(ok.status, 200, ok.text)
  assert.equal(ok.body.resolution, 'server')
})
