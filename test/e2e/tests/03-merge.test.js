// Scenario 3: two devices of one user edit the same row offline.
// WatermelonDB merges on the client when it pulls: the server's record is applied except for the
// columns in the local record's _changed list, which keep the local value; the merged record is then
// pushed. The server only ever sees merged records, and since each push directly follows its own
// pull, no push conflicts. Hence:
//   - different columns: both edits survive (per-column merge);
//   - the same column: the device that syncs last wins;
//   - updated_at is touched by every local edit, so it is a "same column" edit: the last device's
//     value wins.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { useStack, settle, assertConverged, assertCleanSync } from '../lib/harness.js'

const S = useStack()

async function setup() {
  const stack = S()
  const alice = await stack.newUser('alice')
  const A = await stack.newDevice(alice, 'A')
  const B = await stack.newDevice(alice, 'B')
  const x = await A.create('tasks', { title: 'original title', body: 'original body', isDone: false, position: 1 })
  await settle([A, B])
  const row = async () => (await stack.dbRows('tasks', alice)).find((r) => r.id === x)
  return { stack, A, B, x, row }
}

test('edits of different columns on two devices are merged per column', async () => {
  const { stack, A, B, x, row } = await setup()
  await A.update('tasks', x, { title: 'title from A' })
  await B.update('tasks', x, { body: 'body from B', isDone: true })
  assert.equal((await A.raw('tasks', x))._changed, 'updated_at,title')
  assert.equal((await B.raw('tasks', x))._changed, 'updated_at,body,is_done')
  const bUpdatedAt = (await B.raw('tasks', x)).updated_at

  assertCleanSync(await A.sync())
  const onB = await B.sync()
  assertCleanSync(onB)
  // What B pushed is the merge: A's title (from the server), B's own body and is_done.
  const pushed = onB.attempts[0].pushedChanges.tasks.updated.find((r) => r.id === x)
  assert.equal(pushed.title, 'title from A')
  assert.equal(pushed.body, 'body from B')
  assert.equal(pushed.is_done, true)

  await settle([A, B])
  await assertConverged(stack, [A, B])
  const final = await row()
  assert.equal(final.title, 'title from A')
  assert.equal(final.body, 'body from B')
  assert.equal(final.is_done, true)
  assert.equal(final.position, 1)
  assert.equal(final.updated_at, bUpdatedAt, 'updated_at: B synced last, its value wins')
})

test('edits of the same column: the device that syncs last wins (A then B)', async () => {
  const { stack, A, B, x, row } = await setup()
  await A.update('tasks', x, { title: 'title from A' })
  await B.update('tasks', x, { title: 'title from B' })

  assertCleanSync(await A.sync())
  assert.equal((await row()).title, 'title from A')
  assertCleanSync(await B.sync())
  assert.equal((await row()).title, 'title from B')

  await settle([A, B])
  await assertConverged(stack, [A, B])
  assert.equal((await A.raw('tasks', x)).title, 'title from B')
})

test('edits of the same column: the device that syncs last wins (B then A)', async () => {
  const { stack, A, B, x, row } = await setup()
  await A.update('tasks', x, { title: 'title from A' })
  await B.update('tasks', x, { title: 'title from B' })

  assertCleanSync(await B.sync())
  assertCleanSync(await A.sync())

  await settle([A, B])
  await assertConverged(stack, [A, B])
  assert.equal((await row()).title, 'title from A')
  assert.equal((await B.raw('tasks', x)).title, 'title from A')
})
