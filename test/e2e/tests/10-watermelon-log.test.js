// Scenario 10: WatermelonDB logs no error or warning during normal syncs.
// Every test file checks this after each test (harness: useStack's afterEach, which fails the test
// if WatermelonDB's logger received anything but LokiJSAdapter's lifecycle messages); the scenarios
// that provoke 409 and 410 assert what was logged there (nothing, and the reset's lifecycle
// messages). This file shows that the capture is not blind, and runs a busy session that must stay
// silent.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  useStack,
  settle,
  assertConverged,
  assertWatermelonQuiet,
  watermelonLog,
  synchronize,
} from '../lib/harness.js'

const S = useStack()

test("the capture sees WatermelonDB's warnings and errors", async () => {
  const stack = S()
  const alice = await stack.newUser('alice')
  const D = await stack.newDevice(alice, 'D')
  // A misbehaving server (not pg_sync): a record in `created` despite sendCreatedAsUpdated, and a
  // table the app does not know.
  await synchronize({
    database: D.database,
    sendCreatedAsUpdated: true,
    pullChanges: async () => ({
      changes: {
        tasks: { created: [{ id: 'x1', owner_id: alice.id, title: 't', created_at: 1, updated_at: 1 }], updated: [], deleted: [] },
        no_such_table: { created: [], updated: [], deleted: [] },
      },
      timestamp: 1,
    }),
    pushChanges: async () => {},
  })
  const levels = watermelonLog.unexpected().map((e) => e.level).sort()
  assert.deepEqual(levels, ['error', 'warn'])
  const matched = assertWatermelonQuiet([/sendCreatedAsUpdated' option is enabled/, /collection named no_such_table/])
  assert.equal(matched.length, 2)
})

test('a busy session on three devices of two users logs nothing', async () => {
  const stack = S()
  const alice = await stack.newUser('alice')
  const bob = await stack.newUser('bob')
  const A = await stack.newDevice(alice, 'A')
  const B = await stack.newDevice(alice, 'B')
  const C = await stack.newDevice(bob, 'C')
  const logStart = watermelonLog.entries.length

  const ids = []
  for (let i = 0; i < 20; i++) ids.push(await A.create('tasks', { title: `task ${i}`, position: i, isDone: i % 3 === 0 }))
  const p = await C.create('projects', { name: 'from bob' })
  await settle([A, B, C])
  await B.update('tasks', ids[0], { title: 'edited on B' })
  await A.update('tasks', ids[0], { body: 'edited on A' })
  await A.remove('tasks', ids[1])
  await B.update('projects', p, { color: 'green' })
  await stack.sql(`UPDATE tasks SET is_done = true WHERE id = '${ids[2]}'; DELETE FROM tasks WHERE id = '${ids[3]}';`)
  await settle([B, A, C])
  await settle([C, B, A])
  await assertConverged(stack, [A, B, C])

  assert.deepEqual(watermelonLog.entries.slice(logStart), [], 'not even a lifecycle message during syncs')
  for (const d of [A, B, C]) for (const r of d.syncs) assert.deepEqual(r.log, [])
})
