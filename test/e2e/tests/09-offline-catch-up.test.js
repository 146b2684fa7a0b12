// Scenario 9: device B is offline while 1,000 changes happen to what it holds: updates, deletes and
// inserts, made by SQL and by device A (plus changes to another user's rows, which B must not get).
// B catches up in one synchronize(): one pull carrying exactly the 1,000 changed records, nothing
// to push, and B then holds exactly the database's rows.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { useStack, settle, assertConverged, assertCleanSync, lit } from '../lib/harness.js'

const S = useStack()

test('a device offline during 1,000 changes catches up in one sync', async (t) => {
  const stack = S()
  const alice = await stack.newUser('alice')
  const bob = await stack.newUser('bob')
  const A = await stack.newDevice(alice, 'A')
  const B = await stack.newDevice(alice, 'B')
  const C = await stack.newDevice(bob, 'C')

  // Starting point: 700 tasks of alice (a-0001..a-0700), 10 of bob, 60 projects; every device in sync.
  await stack.sql(`
    INSERT INTO tasks (id, owner_id, title, body, is_done, position)
      SELECT format('a-%s', lpad(i::text, 4, '0')), ${lit(alice.id)}, 'task ' || i, 'body ' || i, i % 2 = 0, i / 7.0
      FROM generate_series(1, 700) i;
    INSERT INTO tasks (id, owner_id, title) SELECT 'b-' || i, ${lit(bob.id)}, 'bob task ' || i FROM generate_series(1, 10) i;
    INSERT INTO projects (id, name) SELECT format('p-%s', lpad(i::text, 3, '0')), 'project ' || i FROM generate_series(1, 60) i;
  `)
  await settle([A, B, C])
  assert.equal((await B.raws('tasks')).length, 700)

  // B goes offline. 1,000 records of alice's tasks and the shared projects change:
  //   SQL: 300 task updates (a-0001..a-0300), 150 deletes (a-0301..a-0450), 200 inserts (n-001..n-200);
  //        20 project updates, 10 project deletes, 20 project inserts
  //   A:   150 updates (a-0451..a-0600, three of them twice), 100 deletes (a-0601..a-0700),
  //        50 creates; and it deletes 20 of SQL's inserts (n-181..n-200), which B never had
  // = 650 + 50 + 300 = 1,000 distinct records, in 1,023 writes.
  // And 10 updates of bob's tasks, which B must not receive.
  await stack.sql(`
    UPDATE tasks SET title = title || ' (edited by SQL)', is_done = NOT is_done, position = position * -3, updated_at = now()
      WHERE id BETWEEN 'a-0001' AND 'a-0300';
    DELETE FROM tasks WHERE id BETWEEN 'a-0301' AND 'a-0450';
    INSERT INTO tasks (id, owner_id, title, body, is_done, position)
      SELECT format('n-%s', lpad(i::text, 3, '0')), ${lit(alice.id)}, 'new ' || i, NULL, NULL, i
      FROM generate_series(1, 200) i;
    UPDATE projects SET name = name || ' (renamed)', color = 'blue' WHERE id BETWEEN 'p-001' AND 'p-020';
    DELETE FROM projects WHERE id BETWEEN 'p-021' AND 'p-030';
    INSERT INTO projects (id, name) SELECT format('q-%s', lpad(i::text, 3, '0')), 'new project ' || i FROM generate_series(1, 20) i;
    UPDATE tasks SET title = 'bob edited' WHERE owner_id = ${lit(bob.id)};
  `)
  assertCleanSync(await A.sync()) // A receives the SQL changes first
  const onA = await A.raws('tasks')
  await A.database.write(async () => {
    const tasks = A.database.get('tasks')
    const byId = new Map((await tasks.query().fetch()).map((r) => [r.id, r]))
    const batch = []
    for (const raw of onA) {
      if (raw.id >= 'a-0451' && raw.id <= 'a-0600') batch.push(byId.get(raw.id).prepareUpdate((r) => (r.body = `edited on A`)))
      const deleted = (raw.id >= 'a-0601' && raw.id <= 'a-0700') || (raw.id >= 'n-181' && raw.id <= 'n-200')
      if (deleted) batch.push(byId.get(raw.id).prepareMarkAsDeleted())
    }
    for (let i = 0; i < 50; i++) {
      batch.push(tasks.prepareCreate((r) => Object.assign(r, { ownerId: alice.id, title: `created on A ${i}`, position: i + 0.25 })))
    }
    await A.database.batch(batch)
  })
  for (const id of ['a-0451', 'a-0452', 'a-0453']) await A.update('tasks', id, { isDone: true }) // changed twice
  const onAPush = await A.sync()
  assertCleanSync(onAPush)
  assert.equal(onAPush.attempts[0].pushed, 320)

  // B comes back online: one sync.
  const started = Date.now()
  const report = await B.sync()
  const elapsed = Date.now() - started
  assertCleanSync(report)
  const [attempt] = report.attempts
  assert.equal(attempt.pulled, 1000, 'exactly the 1,000 changed records, each once')
  assert.equal(attempt.pushed, null)
  const { tasks, projects } = attempt.pullResult.changes
  assert.equal(tasks.created.length + projects.created.length, 0, 'created is always empty')
  assert.equal(tasks.updated.length, 300 + 150 + 180 + 50) // edited by SQL and A, SQL's surviving inserts, A's creates
  assert.equal(tasks.deleted.length, 150 + 100 + 20)
  assert.equal(projects.updated.length, 40)
  assert.equal(projects.deleted.length, 10)
  const ids = [...tasks.updated.map((r) => r.id), ...tasks.deleted]
  assert.equal(new Set(ids).size, ids.length, 'no id twice in one pull')
  assert.ok(!JSON.stringify(attempt.pullResult).includes(bob.id), "nothing of bob's")

  await assertConverged(stack, [A, B]) // right after B's one sync
  assert.equal((await B.raws('tasks')).length, 700 - 150 + 200 - 100 - 20 + 50)
  await settle([A, B, C])
  await assertConverged(stack, [A, B, C])
  t.diagnostic(`catch-up sync of 1,000 changes: ${elapsed} ms`)
})
