// Scenario 2: a row is updated on one device while the same row is deleted on another, offline,
// in both sync orders. In both orders the delete wins:
//   - update synced first: the deleting device pulls the update, keeps its local deletion
//     (WatermelonDB ignores `updated` for a locally deleted record) and pushes the delete; its token
//     has seen the update, so there is no conflict;
//   - delete synced first: the updating device pulls the id in `deleted` and WatermelonDB destroys
//     the record even though it has local changes; the update is never pushed.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { useStack, settle, assertConverged, assertCleanSync } from '../lib/harness.js'

const S = useStack()

async function setup() {
  const stack = S()
  const alice = await stack.newUser('alice')
  const A = await stack.newDevice(alice, 'A')
  const B = await stack.newDevice(alice, 'B')
  const x = await A.create('tasks', { title: 'shared row', body: 'v1', isDone: false, position: 1 })
  const y = await A.create('tasks', { title: 'bystander', body: 'untouched', isDone: false, position: 2 })
  await settle([A, B])
  assert.ok(await B.has('tasks', x))
  return { stack, A, B, x, y }
}

test('update synced first, delete synced second: the row ends deleted everywhere', async () => {
  const { stack, A, B, x, y } = await setup()
  await A.update('tasks', x, { title: 'edited by A', isDone: true })
  await B.remove('tasks', x)

  assertCleanSync(await A.sync())
  assert.equal((await stack.query(`SELECT title FROM tasks WHERE id = '${x}'`))[0].title, 'edited by A')

  const onB = await B.sync()
  assertCleanSync(onB) // no 409: B's token has seen A's update
  const pulled = onB.attempts[0].pullResult.changes.tasks
  assert.deepEqual(pulled.updated.map((r) => r.id), [x], "B's pull carried A's update of the row")
  assert.deepEqual(onB.attempts[0].pushedChanges.tasks.deleted, [x], 'B pushed its delete anyway')

  await settle([A, B])
  await assertConverged(stack, [A, B])
  assert.deepEqual(await stack.query(`SELECT id FROM tasks WHERE id = '${x}'`), [])
  assert.ok(!(await A.has('tasks', x)) && !(await B.has('tasks', x)))
  assert.ok(await A.has('tasks', y) && (await B.has('tasks', y)))
})

test('delete synced first, update synced second: the row ends deleted everywhere, the update is dropped', async () => {
  const { stack, A, B, x, y } = await setup()
  await A.update('tasks', x, { title: 'edited by A', isDone: true })
  await B.remove('tasks', x)

  assertCleanSync(await B.sync())
  assert.deepEqual(await stack.query(`SELECT id FROM tasks WHERE id = '${x}'`), [])

  const onA = await A.sync()
  assertCleanSync(onA)
  assert.deepEqual(onA.attempts[0].pullResult.changes.tasks.deleted, [x])
  assert.equal(onA.attempts[0].pushed, null, 'A had nothing left to push: its edited record was destroyed')
  assert.ok(!(await A.has('tasks', x)))

  await settle([A, B])
  await assertConverged(stack, [A, B])
  assert.deepEqual(await stack.query(`SELECT id FROM tasks WHERE id = '${x}'`), [])
  assert.ok(await A.has('tasks', y) && (await B.has('tasks', y)))
})
