// Scenario 6: create → sync → delete → sync. The record stays deleted on every device and in the
// database through any number of later syncs, and a device set up later never receives it.
//
// The trap this guards against (WatermelonDB issue #649): when device A deletes a record it created
// and pushed in its previous sync, its next pull still carries that record, because A's own push
// committed after A's token. Sent in `created`, WatermelonDB would bring the record back and drop
// the local delete. pg_sync sends it in `updated`, which WatermelonDB ignores for a locally deleted
// record, so the delete is pushed.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { useStack, settle, assertConverged, assertCleanSync, lit } from '../lib/harness.js'

const S = useStack()

test('create, sync, delete, sync: deleted everywhere, and it stays deleted', async () => {
  const stack = S()
  const alice = await stack.newUser('alice')
  const bob = await stack.newUser('bob')
  const A = await stack.newDevice(alice, 'A')
  const B = await stack.newDevice(alice, 'B')
  const C = await stack.newDevice(bob, 'C')
  await settle([A, B, C])

  const x = await A.create('tasks', { title: 'short-lived', body: 'v1', isDone: false, position: 1 })
  const keep = await A.create('tasks', { title: 'stays', body: 'v1', isDone: false, position: 2 })
  const p = await A.create('projects', { name: 'short-lived project' })
  assertCleanSync(await A.sync())
  assertCleanSync(await B.sync())
  assertCleanSync(await C.sync())
  assert.ok(await B.has('tasks', x))
  assert.ok(await C.has('projects', p))

  await A.remove('tasks', x)
  await A.remove('projects', p)
  const onA = await A.sync()
  assertCleanSync(onA)
  // The echo of A's own create came back, in `updated`, and A's local delete survived it.
  const pulled = onA.attempts[0].pullResult.changes
  assert.ok(pulled.tasks.updated.some((r) => r.id === x), 'the pull carried the echo of the create')
  assert.equal(pulled.tasks.created.length, 0)
  assert.deepEqual(onA.attempts[0].pushedChanges.tasks.deleted, [x])
  assert.deepEqual(onA.attempts[0].pushedChanges.projects.deleted, [p])
  assert.deepEqual(onA.attempts[0].pushResult, { created: 0, updated: 0, deleted: 2 })
  assert.ok(!(await A.has('tasks', x)))

  // Many more syncs, in varying orders: nothing comes back.
  await settle([B, C, A])
  await settle([A, B, C])
  await settle([C, A, B])
  await assertConverged(stack, [A, B, C])
  for (const d of [A, B]) assert.ok(!(await d.has('tasks', x)) && (await d.has('tasks', keep)), d.name)
  for (const d of [A, B, C]) assert.ok(!(await d.has('projects', p)), d.name)
  assert.deepEqual(await stack.query(`SELECT id FROM tasks WHERE id = '${x}' UNION ALL SELECT id FROM projects WHERE id = '${p}'`), [])

  // A device set up now does a first pull: no trace of them.
  const D = await stack.newDevice(alice, 'D')
  const onD = await D.sync()
  assertCleanSync(onD)
  assert.ok(!JSON.stringify(onD.attempts[0].pullResult).includes(x))
  await assertConverged(stack, [A, B, C, D])
})

test('created and deleted on a device before it ever syncs: the record never appears anywhere', async () => {
  const stack = S()
  const alice = await stack.newUser('alice')
  const A = await stack.newDevice(alice, 'A')
  const B = await stack.newDevice(alice, 'B')
  await settle([A, B])
  const x = await A.create('tasks', { title: 'never synced' })
  await A.remove('tasks', x)
  const onA = await A.sync()
  assertCleanSync(onA)
  // WatermelonDB pushes the id as deleted; the server ignores a delete of a missing row.
  assert.deepEqual(onA.attempts[0].pushedChanges.tasks.deleted, [x])
  assert.deepEqual(onA.attempts[0].pushResult, { created: 0, updated: 0, deleted: 0 })
  await settle([A, B])
  await assertConverged(stack, [A, B])
  assert.deepEqual(await stack.query(`SELECT id FROM tasks WHERE id = '${x}'`), [])
})

test('deleted on device A while device B edits it offline, B syncing after several rounds: stays deleted', async () => {
  const stack = S()
  const alice = await stack.newUser('alice')
  const A = await stack.newDevice(alice, 'A')
  const B = await stack.newDevice(alice, 'B')
  const x = await A.create('tasks', { title: 'v1' })
  await settle([A, B])

  await B.update('tasks', x, { title: 'edited on B while offline' })
  await A.remove('tasks', x)
  assertCleanSync(await A.sync())
  assertCleanSync(await A.sync())
  assertCleanSync(await A.sync())
  const onB = await B.sync()
  assertCleanSync(onB)
  assert.deepEqual(onB.attempts[0].pullResult.changes.tasks.deleted, [x])
  await settle([A, B])
  await settle([B, A])
  await assertConverged(stack, [A, B])
  assert.deepEqual(await stack.query(`SELECT id FROM tasks WHERE id = '${x}'`), [])
})

test('a row re-created with the same id after its delete is live again on every device', async () => {
  const stack = S()
  const alice = await stack.newUser('alice')
  const A = await stack.newDevice(alice, 'A')
  const B = await stack.newDevice(alice, 'B')
  const x = await A.create('tasks', { title: 'first life' })
  await settle([A, B])
  await B.remove('tasks', x)
  await settle([B, A])
  assert.ok(!(await A.has('tasks', x)))
  // Re-created by SQL (e.g. restored from an archive) with the same id: the tombstone does not hide it.
  await stack.sql(`INSERT INTO tasks (id, owner_id, title) VALUES (${lit(x)}, ${lit(alice.id)}, 'second life');`)
  await settle([A, B])
  await assertConverged(stack, [A, B])
  assert.equal((await A.raw('tasks', x)).title, 'second life')
  assert.equal((await B.raw('tasks', x)).title, 'second life')
})
