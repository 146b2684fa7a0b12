// Scenario 21: a device offline for longer than the retention comes back with edits it has not
// pushed. Its pulls say replacement: true (README's client does), so instead of 410 SY002 and a
// reset that would lose the edits, the function answers the whole scope with
// "experimentalStrategy": "replacement": WatermelonDB drops the local rows missing from it (rows
// deleted meanwhile, also one the device had edited: the delete wins, as in scenario 2), keeps the
// device's unpushed changes (an edit, a create, a delete) and pushes them.
// The token is aged the way time would: its checkpoint's created_at moved 40 days back, then
// sync_prune('30 days'). A token this database never issued is still 410 SY003 (the reset path).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { useStack, settle, assertConverged, assertCleanSync, lit } from '../lib/harness.js'

const S = useStack()
const LAST_PULLED_AT_KEY = '__watermelon_last_pulled_at' // WatermelonDB's local storage key

test('offline past the retention with unpushed edits: a replacement, the edits kept and pushed, deleted rows dropped', async () => {
  const stack = S()
  const alice = await stack.newUser('alice')
  const A = await stack.newDevice(alice, 'A', { replacement: true })
  const B = await stack.newDevice(alice, 'B', { replacement: true })
  const t = []
  for (let i = 0; i < 6; i++) t.push(await A.create('tasks', { title: `task ${i}`, body: 'v1', position: i }))
  const project = await A.create('projects', { name: 'shared' })
  await settle([A, B])
  const bToken = B.syncs.at(-1).attempts[0].timestamp

  // B, offline: edits t0, deletes t1, edits t4 (which A deletes meanwhile), creates one.
  await B.update('tasks', t[0], { title: 'edited on B offline' })
  await B.remove('tasks', t[1])
  await B.update('tasks', t[4], { title: 'edited on B, deleted on A' })
  const madeOnB = await B.create('tasks', { title: 'created on B offline' })
  // Meanwhile: A edits t2 and deletes t4; SQL deletes t5 and the project, inserts a task.
  await A.update('tasks', t[2], { body: 'edited on A' })
  await A.remove('tasks', t[4])
  assertCleanSync(await A.sync())
  await stack.sql(`DELETE FROM tasks WHERE id = ${lit(t[5])};
                   DELETE FROM projects WHERE id = ${lit(project)};
                   INSERT INTO tasks (id, owner_id, title) VALUES ('by-sql', ${lit(alice.id)}, 'inserted by SQL');`)
  assertCleanSync(await A.sync())

  // 40 days pass for B's token; the retention is 30 days.
  await stack.sql(`UPDATE _pg_sync.checkpoints SET created_at = created_at - interval '40 days' WHERE id = ${bToken};
                   SELECT * FROM sync_prune('30 days');`)
  assert.deepEqual(await stack.query(`SELECT id FROM _pg_sync.checkpoints WHERE id = ${bToken}`), [], "B's token is gone")
  const refused = await stack.pull(alice, bToken).catch((e) => e) // a client that cannot take a replacement
  assert.equal(refused.status, 410)
  assert.equal(refused.code, 'SY002')

  const report = await B.sync()
  assert.equal(report.recovery, null, 'no reset')
  assert.equal(report.attempts.length, 1)
  const [attempt] = report.attempts
  assert.equal(attempt.error, null)
  assert.equal(attempt.lastPulledAt, bToken)
  assert.equal(attempt.pullResult.experimentalStrategy, 'replacement')
  assert.equal(attempt.pullResult.hasMore, undefined, 'a replacement is never paged')
  assert.deepEqual(report.log, [], 'WatermelonDB logged nothing')
  // What B pushed: its edit, its delete, its create; not the edit of the row deleted meanwhile.
  const pushed = attempt.pushedChanges.tasks
  assert.deepEqual(pushed.updated.map((r) => r.id), [t[0]])
  assert.deepEqual(pushed.created.map((r) => r.id), [madeOnB])
  assert.deepEqual(pushed.deleted, [t[1]])
  // On the server and on B.
  const server = Object.fromEntries((await stack.dbRows('tasks', alice)).map((r) => [r.id, r]))
  assert.equal(server[t[0]].title, 'edited on B offline')
  assert.equal(server[madeOnB].title, 'created on B offline')
  assert.equal(server[t[1]], undefined, "B's delete applied")
  assert.equal(server[t[4]], undefined, 'the row A deleted stays deleted')
  assert.equal(server[t[2]].body, 'edited on A')
  assert.equal(server['by-sql'].title, 'inserted by SQL')
  for (const gone of [t[1], t[4], t[5]]) assert.ok(!(await B.has('tasks', gone)), `${gone} is not on B`)
  assert.ok(!(await B.has('projects', project)), 'the project deleted meanwhile is not on B')
  assert.equal((await B.raw('tasks', t[2])).body, 'edited on A')
  assert.ok(await B.has('tasks', 'by-sql'))
  await assertConverged(stack, [B])
  await settle([A, B])
  await assertConverged(stack, [A, B])
})

test('a token this database never issued is still 410 SY003, with replacement: the reset path', async () => {
  const stack = S()
  const alice = await stack.newUser('alice')
  const A = await stack.newDevice(alice, 'A', { replacement: true })
  await A.create('tasks', { title: 'one' })
  assertCleanSync(await A.sync())
  const B = await stack.newDevice(alice, 'B', { replacement: true })
  assertCleanSync(await B.sync())
  await B.database.adapter.setLocal(LAST_PULLED_AT_KEY, '1') // a corrupted token
  const report = await B.sync()
  assert.equal(report.recovery, '410-reset')
  assert.equal(report.attempts[0].error?.status, 410)
  assert.equal(report.attempts[0].error.code, 'SY003')
  assert.equal(report.attempts[1].lastPulledAt, null)
  assert.equal(report.attempts[1].pullResult.experimentalStrategy, undefined, 'a first pull, not a replacement')
  await assertConverged(stack, [A, B])
})
