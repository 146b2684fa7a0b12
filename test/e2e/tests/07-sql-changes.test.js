// Scenario 7: rows changed by plain SQL on the server (no push involved) reach every device that
// may see them: inserts, updates, deletes, an owner change, TRUNCATE, and a transaction that
// commits after later ones.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { useStack, settle, assertConverged, assertCleanSync, lit } from '../lib/harness.js'

const S = useStack()

async function setup() {
  const stack = S()
  const alice = await stack.newUser('alice')
  const bob = await stack.newUser('bob')
  const A = await stack.newDevice(alice, 'A')
  const B = await stack.newDevice(alice, 'B')
  const C = await stack.newDevice(bob, 'C')
  const x = await A.create('tasks', { title: 'from A', body: 'v1', isDone: false, position: 1 })
  const y = await A.create('tasks', { title: 'to be deleted by SQL', isDone: false, position: 2 })
  const p = await A.create('projects', { name: 'Project from A' })
  await settle([A, B, C])
  return { stack, alice, bob, A, B, C, x, y, p }
}

test('inserts, updates and deletes made by SQL reach every device of the owner, shared rows every device', async () => {
  const { stack, alice, bob, A, B, C, x, y, p } = await setup()
  const ts = Date.UTC(2024, 1, 29, 12, 34, 56, 789)
  await stack.sql(`
    BEGIN;
    UPDATE tasks SET title = 'changed by SQL', is_done = true, position = 42.5, body = NULL,
                     updated_at = to_timestamp(${ts} / 1000.0) WHERE id = ${lit(x)};
    DELETE FROM tasks WHERE id = ${lit(y)};
    INSERT INTO tasks (id, owner_id, title, body, is_done, position, created_at, updated_at)
         VALUES ('sql-alice-1', ${lit(alice.id)}, 'inserted by SQL', 'for alice', false, -0.5,
                 '2024-01-01 00:00:00.123456+00', clock_timestamp()),
                ('sql-bob-1', ${lit(bob.id)}, 'inserted by SQL', 'for bob', NULL, NULL, now(), now());
    UPDATE projects SET name = 'renamed by SQL', color = 'red' WHERE id = ${lit(p)};
    INSERT INTO projects (id, name) VALUES ('sql-project-1', 'project inserted by SQL');
    COMMIT;
  `)

  for (const d of [A, B, C]) {
    const report = await d.sync()
    assertCleanSync(report)
    assert.equal(report.attempts[0].pushed, null, `${d.name} had nothing to push`)
  }
  await assertConverged(stack, [A, B, C]) // one sync each was enough
  await settle([A, B, C])
  await assertConverged(stack, [A, B, C])

  const xOnB = await B.raw('tasks', x)
  assert.equal(xOnB.title, 'changed by SQL')
  assert.equal(xOnB.body, null)
  assert.equal(xOnB.is_done, true)
  assert.equal(xOnB.position, 42.5)
  assert.equal(xOnB.updated_at, ts)
  assert.ok(!(await A.has('tasks', y)) && !(await B.has('tasks', y)))
  assert.equal((await A.raw('tasks', 'sql-alice-1')).created_at, Date.UTC(2024, 0, 1, 0, 0, 0, 123))
  assert.ok(await C.has('tasks', 'sql-bob-1'))
  assert.ok(!(await C.has('tasks', 'sql-alice-1')) && !(await A.has('tasks', 'sql-bob-1')))
  for (const d of [A, B, C]) {
    assert.equal((await d.raw('projects', p)).name, 'renamed by SQL')
    assert.ok(await d.has('projects', 'sql-project-1'))
  }
})

test("an owner change by SQL moves the row from one user's devices to the other's", async () => {
  const { stack, alice, bob, A, B, C, x } = await setup()
  await stack.sql(`UPDATE tasks SET owner_id = ${lit(bob.id)} WHERE id = ${lit(x)};`)
  const onA = await A.sync()
  assertCleanSync(onA)
  assert.deepEqual(onA.attempts[0].pullResult.changes.tasks.deleted, [x])
  await settle([A, B, C])
  await assertConverged(stack, [A, B, C])
  assert.ok(!(await A.has('tasks', x)) && !(await B.has('tasks', x)))
  assert.equal((await C.raw('tasks', x)).owner_id, bob.id)

  // And back, edited on the way.
  await stack.sql(`UPDATE tasks SET owner_id = ${lit(alice.id)}, title = 'returned' WHERE id = ${lit(x)};`)
  await settle([A, B, C])
  await assertConverged(stack, [A, B, C])
  assert.equal((await B.raw('tasks', x)).title, 'returned')
  assert.ok(!(await C.has('tasks', x)))
})

test('a transaction that commits after later ones is still delivered', async () => {
  const { stack, A, B, C, x, p } = await setup()
  // T1 writes x and stays open while T2 (later) commits and every device syncs.
  const t1 = await stack.session()
  await t1.run(`BEGIN; UPDATE tasks SET title = 'written by the slow transaction' WHERE id = ${lit(x)};`)
  await stack.sql(`UPDATE projects SET name = 'written by the fast transaction' WHERE id = ${lit(p)};`)
  await settle([A, B, C])
  await assertConverged(stack, [A, B, C])
  assert.equal((await A.raw('tasks', x)).title, 'from A', 'the open transaction is not visible yet')
  assert.equal((await A.raw('projects', p)).name, 'written by the fast transaction')

  await t1.run('COMMIT;')
  await t1.close()
  const onB = await B.sync()
  assertCleanSync(onB)
  assert.deepEqual(onB.attempts[0].pullResult.changes.tasks.updated.map((r) => r.id), [x])
  await settle([A, B, C])
  await assertConverged(stack, [A, B, C])
  assert.equal((await A.raw('tasks', x)).title, 'written by the slow transaction')
})

test('TRUNCATE reaches every device as deletes', async () => {
  const { stack, A, B, C } = await setup()
  await C.create('tasks', { title: "bob's" })
  await settle([A, B, C])
  assert.ok((await A.raws('tasks')).length > 0 && (await C.raws('tasks')).length > 0)
  await stack.sql('TRUNCATE tasks;')
  await settle([A, B, C])
  await assertConverged(stack, [A, B, C])
  for (const d of [A, B, C]) assert.deepEqual(await d.raws('tasks'), [], d.name)
})
