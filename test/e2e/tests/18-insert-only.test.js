// The insert_only policy with WatermelonDB clients (README: "Conflict policies", the push result):
// a device creates records once; its update or delete of an existing record is rejected. The ids
// come back in experimentalRejectedIds with their reasons in "errors" (and in "conflicts" when the
// server had changed the row since the device's token); the rest of the push applies; the server's
// rows stay as they are; WatermelonDB keeps the rejected records as local changes (not marked
// synced) and pushes them again at each sync, which keeps succeeding.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { useStack, settle, assertConverged, assertCleanSync } from '../lib/harness.js'
import { POLICY_STACK, conflictsOf } from '../lib/policy-schema.js'

const S = useStack(POLICY_STACK)

const byId = (rows) => Object.fromEntries(rows.map((r) => [r.id, r]))
const CHANGED = 'records of this table cannot be changed once created'
const DELETED = 'records of this table cannot be deleted by clients'

test('insert_only: creates apply once; updates and deletes are rejected, stay local changes, the server keeps its rows', async () => {
  const stack = S()
  const alice = await stack.newUser('alice')
  const A = await stack.newDevice(alice, 'A')
  const B = await stack.newDevice(alice, 'B')
  const s1 = await A.create('answers', { question: 'q1', score: 3 })
  const s2 = await A.create('answers', { question: 'q2', score: 2 })
  const s3 = await A.create('answers', { question: 'q3', score: 1 })
  await settle([A, B])
  const original = byId(await stack.dbRows('answers', alice))
  assert.deepEqual(Object.keys(original).sort(), [s1, s2, s3].sort())

  await A.update('answers', s1, { score: 5 })
  await A.remove('answers', s2)
  await A.update('answers', s3, { score: 7 })
  const s4 = await A.create('answers', { question: 'q4', score: 4 })
  // the server changes s3 after A's pull: A's rejected update of it is a conflict too
  const report = await A.sync({ afterPull: () => stack.sql(`UPDATE answers SET score = 9 WHERE id = '${s3}'`) })
  assertCleanSync(report)
  const result = report.attempts[0].pushResult
  assert.deepEqual([result.created, result.updated, result.deleted], [1, 0, 0])
  assert.deepEqual(result.experimentalRejectedIds.answers.sort(), [s1, s2, s3].sort())
  assert.deepEqual(result.errors, { answers: { [s1]: CHANGED, [s2]: DELETED, [s3]: CHANGED } })
  assert.deepEqual(conflictsOf(result), [{ table: 'answers', id: s3, policy: 'insert_only', resolution: 'rejected' }])

  // the server: s1..s3 as they were (s3 with the server's own edit), s4 created
  const rows = byId(await stack.dbRows('answers', alice))
  assert.deepEqual(Object.keys(rows).sort(), [s1, s2, s3, s4].sort())
  assert.deepEqual(rows[s1], original[s1])
  assert.deepEqual(rows[s2], original[s2])
  assert.equal(rows[s3].score, 9)
  assert.equal(rows[s4].score, 4)

  // A: the rejected records are still local changes; s4 is synced
  const local = await A.localState('answers')
  assert.deepEqual([local[s1]._status, local[s1].score], ['updated', 5])
  assert.match(local[s1]._changed, /score/)
  assert.deepEqual(local[s2], { id: s2, _status: 'deleted' })
  assert.deepEqual([local[s3]._status, local[s3].score], ['updated', 7])
  assert.deepEqual([local[s4]._status, local[s4]._changed], ['synced', ''])
  assert.equal(await A.unsynced(), true)

  // every later sync succeeds, pushes them again, and they are rejected again (the server's s3
  // edit, pulled now, does not replace A's own change of that column)
  for (let i = 0; i < 2; i++) {
    const again = await A.sync()
    assertCleanSync(again)
    const r = again.attempts[0].pushResult
    assert.deepEqual(again.attempts[0].pushedChanges.answers.deleted, [s2])
    assert.deepEqual(r.experimentalRejectedIds.answers.sort(), [s1, s2, s3].sort())
    assert.deepEqual(r.errors, { answers: { [s1]: CHANGED, [s2]: DELETED, [s3]: CHANGED } })
    assert.equal(r.conflicts, undefined) // A's token has seen the server's edit now
    assert.deepEqual([r.created, r.updated, r.deleted], [0, 0, 0])
  }
  const after = await A.localState('answers')
  assert.deepEqual([after[s1].score, after[s3].score, after[s2]._status], [5, 7, 'deleted'])
  assert.deepEqual(byId(await stack.dbRows('answers', alice)), rows)

  // B, which changed nothing, holds exactly the server's rows
  await settle([B])
  await assertConverged(stack, [B])
  // and A's records other than the rejected ones are the server's
  const { _status, _changed, ...s4OnA } = after[s4]
  assert.deepEqual(s4OnA, rows[s4])
})
