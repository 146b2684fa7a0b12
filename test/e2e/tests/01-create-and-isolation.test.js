// Scenario 1: rows created offline on one device reach the user's other devices and never another
// user's devices. Also: another user's id cannot be taken over, and the function refuses callers
// without a valid token.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { useStack, settle, assertConverged, assertCleanSync } from '../lib/harness.js'

const S = useStack()

test('rows created offline on device A reach device B of the same user, never a device of another user', async () => {
  const stack = S()
  const alice = await stack.newUser('alice')
  const bob = await stack.newUser('bob')
  const A = await stack.newDevice(alice, 'A')
  const B = await stack.newDevice(alice, 'B')
  const C = await stack.newDevice(bob, 'C')

  // Offline on A: a shared project and three tasks with values that must survive the round trip.
  const project = await A.create('projects', { name: 'Groceries', color: '#00ff00' })
  const values = [
    { projectId: project, title: 'Milk', body: 'semi-skimmed, "2 litres"\nit\'s urgent', isDone: false, position: 0.1 + 0.2 },
    { projectId: project, title: 'Bread ✓ 🍞', body: null, isDone: true, position: -1e-300 },
    { projectId: null, title: '', body: 'no title', isDone: null, position: 123456789.12345679 },
  ]
  const ids = []
  for (const v of values) ids.push(await A.create('tasks', v))
  const bobTask = await C.create('tasks', { title: "Bob's own task", isDone: false, position: 1 })
  const bobToken = (await stack.pull(bob, null)).timestamp // a token bob holds from before A's push

  const first = await A.sync()
  assertCleanSync(first)
  assert.equal(first.attempts[0].lastPulledAt, null, 'first sync of A is a first pull')
  assert.deepEqual(first.attempts[0].pushResult, { created: 4, updated: 0, deleted: 0 })
  assert.equal(await A.unsynced(), false)

  // B pulls them: exactly A's four records, with A's values.
  const onB = await B.sync()
  assertCleanSync(onB)
  assert.equal(onB.attempts[0].pulled, 4)
  for (const [i, id] of ids.entries()) {
    const raw = await B.raw('tasks', id)
    assert.ok(raw, `B has task ${id}`)
    assert.equal(raw.owner_id, alice.id)
    assert.equal(raw.project_id, values[i].projectId)
    assert.equal(raw.title, values[i].title)
    assert.equal(raw.body, values[i].body)
    assert.equal(raw.is_done, values[i].isDone)
    assert.equal(raw.position, values[i].position)
  }
  assert.equal((await B.raw('projects', project)).name, 'Groceries')

  await settle([A, B, C])
  await assertConverged(stack, [A, B, C])

  // Bob sees the shared project, none of Alice's tasks; Alice none of Bob's.
  assert.ok(await C.has('projects', project))
  assert.deepEqual((await C.raws('tasks')).map((r) => r.id), [bobTask])
  assert.ok(!(await A.has('tasks', bobTask)) && !(await B.has('tasks', bobTask)))
  // Not even an id of Alice's tasks is in what the server sends Bob, first pull or incremental.
  const bobFirstPull = JSON.stringify(await stack.pull(bob, null))
  const bobIncremental = JSON.stringify(await stack.pull(bob, bobToken))
  for (const id of ids) {
    assert.ok(!bobFirstPull.includes(id) && !bobIncremental.includes(id), `task ${id} leaked to bob`)
  }
  const owners = await stack.query(`SELECT DISTINCT owner_id FROM tasks WHERE id IN (${ids.map((i) => `'${i}'`).join(',')})`)
  assert.deepEqual(owners, [{ owner_id: alice.id }])
})

test("a push naming another user's record is rejected for that record only; the owner's data is untouched", async () => {
  const stack = S()
  const alice = await stack.newUser('alice')
  const mallory = await stack.newUser('mallory')
  const A = await stack.newDevice(alice, 'A')
  const M = await stack.newDevice(mallory, 'M')
  const secret = await A.create('tasks', { title: 'private', body: 'alice only', isDone: false })
  await settle([A, M])
  const before = await stack.dbRows('tasks', alice)

  // Mallory's client pushes an update for Alice's id (plus one legitimate record of her own).
  const { timestamp } = await stack.pull(mallory, null)
  const result = await stack.push(
    mallory,
    {
      tasks: {
        created: [{ id: 'mallory-own', owner_id: mallory.id, title: 'mine', created_at: 0, updated_at: 0 }],
        updated: [{ id: secret, owner_id: mallory.id, title: 'taken over', body: null, created_at: 0, updated_at: 0 }],
        deleted: [],
      },
      projects: { created: [], updated: [], deleted: [] },
    },
    timestamp,
  )
  assert.deepEqual(result.experimentalRejectedIds, { tasks: [secret] })
  assert.deepEqual(await stack.dbRows('tasks', alice), before)
  assert.deepEqual((await stack.dbRows('tasks', mallory)).map((r) => r.id), ['mallory-own'])

  // Deleting it is ignored as well.
  const { timestamp: t2 } = await stack.pull(mallory, timestamp)
  await stack.push(mallory, { tasks: { created: [], updated: [], deleted: [secret] } }, t2)
  assert.deepEqual(await stack.dbRows('tasks', alice), before)

  await settle([A, M])
  await assertConverged(stack, [A, M])
  assert.ok(!(await M.has('tasks', secret)))
})

test('the function refuses requests without a valid token', async () => {
  const stack = S()
  const url = `${stack.functionUrl}/pull`
  const body = JSON.stringify({ lastPulledAt: null, schemaVersion: 1, migration: null })
  const call = async (headers) => {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body })
    return { status: res.status, body: await res.json() }
  }
  assert.equal((await call({})).status, 401)
  assert.equal((await call({ authorization: 'Bearer not-a-jwt' })).status, 401)
  const foreign = await new (await import('jose')).SignJWT({ sub: 'x', role: 'authenticated' })
    .setProtectedHeader({ alg: 'HS256' })
    .sign(new TextEncoder().encode('another secret'))
  assert.equal((await call({ authorization: `Bearer ${foreign}` })).status, 401)
  const expired = await stack.sign({ sub: 'x', role: 'authenticated' }, { expiresAt: Math.floor(Date.now() / 1000) - 60 })
  assert.equal((await call({ authorization: `Bearer ${expired}` })).status, 401)
  // a role the function does not let tokens act as (SYNC_ROLES)
  const foreignRole = await stack.sign({ sub: 'x', role: 'postgres' })
  assert.deepEqual(await call({ authorization: `Bearer ${foreignRole}` }), {
    status: 403,
    body: { error: 'role postgres may not sync', code: '42501' },
  })
  // An anonymous token has no user id: per-user tables cannot be pulled.
  const anon = await stack.sign({ role: 'anon' })
  const res = await call({ authorization: `Bearer ${anon}` })
  assert.equal(res.status, 401)
  assert.equal(res.body.code, '28000')
})

test('the server writes the owner: a record pushed without owner_id gets the caller id, and the echo brings it to the device', async () => {
  const stack = S()
  const alice = await stack.newUser('alice')
  const A = await stack.newDevice(alice, 'A')
  const B = await stack.newDevice(alice, 'B')
  // An app that leaves owner_id alone (WatermelonDB stores '' for a non-optional string)...
  const id = await A.database.write(async () => (await A.database.get('tasks').create((r) => (r.title = 'no owner set'))).id)
  assert.equal((await A.raw('tasks', id)).owner_id, '')
  // ...or that claims to be somebody else.
  const forged = await A.create('tasks', { title: 'forged owner' })
  await A.update('tasks', forged, { ownerId: 'somebody-else' })

  assertCleanSync(await A.sync())
  assert.deepEqual(
    (await stack.query(`SELECT id, owner_id FROM tasks WHERE id IN ('${id}', '${forged}') ORDER BY id`)).map((r) => r.owner_id),
    [alice.id, alice.id],
  )
  // A's next sync pulls its own records back (they were written after its token) with the owner.
  const next = await A.sync()
  assertCleanSync(next)
  assert.equal(next.attempts[0].pulled, 2)
  assert.equal((await A.raw('tasks', id)).owner_id, alice.id)
  assert.equal((await A.raw('tasks', forged)).owner_id, alice.id)
  await settle([A, B])
  await assertConverged(stack, [A, B])
})
