// Scenario 4: a write lands between a device's pull and its push. The push must fail as a whole
// with 409 (SY001) and nothing of it may be applied; pushChanges rejects, so WatermelonDB keeps the
// records unsynced. The app's sync routine (harness: Device.sync) then calls synchronize() once
// more, as WatermelonDB's docs recommend: it pulls the intervening write, merges per column (local
// changed columns win) and pushes again, which succeeds. Everything converges.
//
// The write is injected from the pullChanges wrapper (afterPull hook), i.e. after the server
// answered the pull and before the client pushes.
//
// WatermelonDB logs nothing on this path: synchronize() just rejects with pushChanges' error.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { useStack, settle, assertConverged, assertCleanSync } from '../lib/harness.js'

const S = useStack()

async function setup() {
  const stack = S()
  const alice = await stack.newUser('alice')
  const bob = await stack.newUser('bob')
  const A = await stack.newDevice(alice, 'A')
  const B = await stack.newDevice(alice, 'B')
  const C = await stack.newDevice(bob, 'C')
  const x = await A.create('tasks', { title: 'original title', body: 'original body', isDone: false, position: 1 })
  await settle([A, B, C])
  const row = async () => (await stack.dbRows('tasks', alice)).find((r) => r.id === x)
  return { stack, alice, A, B, C, x, row }
}

function assertConflictThenRetry(report, id) {
  assert.equal(report.recovery, '409-retry')
  assert.equal(report.attempts.length, 2)
  const [first, retry] = report.attempts
  assert.equal(first.error?.status, 409)
  assert.equal(first.error.code, 'SY001')
  assert.match(first.error.message, new RegExp(`tasks.*${id}|${id}.*tasks`), 'the conflict names table and id')
  assert.equal(retry.error, null)
  assert.equal(retry.lastPulledAt, first.timestamp, 'the retry pulls from the token of the failed attempt')
  assert.ok(retry.pulled >= 1, 'the retry pulled the intervening write')
  assert.ok(retry.pushed >= 1, 'the retry pushed again')
  assert.deepEqual(report.log, [], 'WatermelonDB logged nothing')
}

test('SQL write between pull and push: 409, nothing applied, the retry converges (different columns)', async () => {
  const { stack, A, B, C, x, row } = await setup()
  await A.update('tasks', x, { title: 'title from A' })
  const extra = await A.create('tasks', { title: 'created with the conflicting push', isDone: false })

  let sawConflict = false
  const report = await A.sync({
    afterPull: () => stack.sql(`UPDATE tasks SET body = 'body from SQL', updated_at = now() WHERE id = '${x}'`),
    pushFetch: async (url, init) => {
      const res = await fetch(url, init)
      if (res.status === 409) {
        sawConflict = true
        // All or nothing: the push's other record was not applied either.
        assert.deepEqual(await stack.query(`SELECT id FROM tasks WHERE id = '${extra}'`), [])
        assert.equal((await row()).title, 'original title')
        assert.equal((await A.raw('tasks', x))._status, 'updated', 'still unsynced on A')
      }
      return res
    },
  })
  assert.ok(sawConflict)
  assertConflictThenRetry(report, x)

  const final = await row()
  assert.equal(final.title, 'title from A')
  assert.equal(final.body, 'body from SQL')
  assert.equal((await stack.query(`SELECT title FROM tasks WHERE id = '${extra}'`))[0].title, 'created with the conflicting push')
  await settle([A, B, C])
  await assertConverged(stack, [A, B, C])
})

test("another device's push between pull and push: 409, the retry merges both devices' edits", async () => {
  const { stack, A, B, C, x, row } = await setup()
  await A.update('tasks', x, { title: 'title from A' })
  await B.update('tasks', x, { body: 'body from B', position: 2.5 })

  const report = await A.sync({
    afterPull: async () => assertCleanSync(await B.sync()), // B syncs while A is between pull and push
  })
  assertConflictThenRetry(report, x)

  await settle([A, B, C])
  await assertConverged(stack, [A, B, C])
  const final = await row()
  assert.equal(final.title, 'title from A')
  assert.equal(final.body, 'body from B')
  assert.equal(final.position, 2.5)
})

test('SQL write of the same column between pull and push: after the 409 the retry pushes the local value, which wins', async () => {
  const { stack, A, B, C, x, row } = await setup()
  await A.update('tasks', x, { title: 'title from A' })

  const report = await A.sync({
    afterPull: () => stack.sql(`UPDATE tasks SET title = 'title from SQL' WHERE id = '${x}'`),
  })
  assertConflictThenRetry(report, x)
  // The retry's pull brought 'title from SQL', but title is in A's _changed: A's value is kept
  // and pushed. The concurrent SQL write of that column is overwritten (explicitly: client wins on
  // its own changed columns after a retry).
  assert.equal(report.attempts[1].pullResult.changes.tasks.updated.find((r) => r.id === x).title, 'title from SQL')
  assert.equal((await row()).title, 'title from A')

  await settle([A, B, C])
  await assertConverged(stack, [A, B, C])
})

test('a delete between pull and push of an edited row: 409, then the delete wins', async () => {
  const { stack, A, B, C, x } = await setup()
  await A.update('tasks', x, { title: 'title from A' })

  const report = await A.sync({
    afterPull: () => stack.sql(`DELETE FROM tasks WHERE id = '${x}'`),
  })
  assert.equal(report.recovery, '409-retry')
  assert.equal(report.attempts[0].error.code, 'SY001')
  // The retry pulls the id in `deleted`; WatermelonDB destroys the edited record and pushes nothing.
  assert.deepEqual(report.attempts[1].pullResult.changes.tasks.deleted, [x])
  assert.equal(report.attempts[1].pushed, null)
  assert.deepEqual(report.log, [])

  await settle([A, B, C])
  await assertConverged(stack, [A, B, C])
  assert.deepEqual(await stack.query(`SELECT id FROM tasks WHERE id = '${x}'`), [])
})
