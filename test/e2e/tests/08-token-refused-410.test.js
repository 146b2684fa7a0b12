// Scenario 8: the server refuses a device's token with 410: SY003 for a token it never issued
// (garbage), SY002 for one pruned by sync_prune. The app follows README's reset path (harness:
// Device.sync): wipe the local database with database.unsafeResetDatabase() inside a writer (this
// also forgets lastPulledAt) and synchronize() again, which makes a first pull (lastPulledAt null).
//
// What WatermelonDB logs on this path: nothing for the refused pull itself (synchronize() just
// rejects); the reset makes LokiJSAdapter log its lifecycle messages at level "log"
// ("[Loki] Database is now reset", "[Loki] Initializing IndexedDB", ...). No warning, no error.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { useStack, settle, assertConverged, assertCleanSync } from '../lib/harness.js'

const S = useStack()
const LAST_PULLED_AT_KEY = '__watermelon_last_pulled_at' // WatermelonDB's local storage key

async function setup() {
  const stack = S()
  const alice = await stack.newUser('alice')
  const bob = await stack.newUser('bob')
  const A = await stack.newDevice(alice, 'A')
  const B = await stack.newDevice(alice, 'B')
  const C = await stack.newDevice(bob, 'C')
  for (let i = 0; i < 3; i++) await A.create('tasks', { title: `task ${i}`, body: 'v1', position: i })
  await A.create('projects', { name: 'shared' })
  await C.create('tasks', { title: "bob's" })
  await settle([A, B, C])
  return { stack, alice, A, B, C }
}

// Meanwhile, elsewhere: A and SQL change things B has to catch up with.
async function changesElsewhere(stack, alice, A) {
  const tasks = await A.raws('tasks')
  await A.update('tasks', tasks[0].id, { title: 'edited on A' })
  await A.remove('tasks', tasks[1].id)
  await A.create('tasks', { title: 'new on A' })
  assertCleanSync(await A.sync())
  await stack.sql(`INSERT INTO tasks (id, owner_id, title) VALUES ('sql-${Date.now()}', '${alice.id}', 'new by SQL');
                   DELETE FROM tasks WHERE id = '${tasks[2].id}';`)
}

function assertResetReport(report, code) {
  assert.equal(report.recovery, '410-reset')
  assert.equal(report.attempts.length, 2)
  assert.equal(report.attempts[0].error?.status, 410)
  assert.equal(report.attempts[0].error.code, code)
  assert.equal(report.attempts[1].lastPulledAt, null, 'after the reset the device makes a first pull')
  assert.equal(report.attempts[1].error, null)
  // Only the adapter's reset messages, at level "log".
  assert.ok(report.log.length > 0)
  assert.ok(report.log.every((e) => e.level === 'log' && e.text.startsWith('[Loki] ')), JSON.stringify(report.log))
  assert.ok(report.log.some((e) => e.text === '[Loki] Database is now reset'))
}

test('garbage lastPulledAt (never issued, negative, far future): 410 SY003, the reset brings the device back in sync', async () => {
  const { stack, alice, A, B, C } = await setup()
  for (const garbage of [1, -5, 2 ** 53 - 1]) {
    await changesElsewhere(stack, alice, A)
    // The device's stored token is corrupted (as a buggy app or a restored backup could do).
    await B.database.adapter.setLocal(LAST_PULLED_AT_KEY, String(garbage))
    const report = await B.sync()
    assertResetReport(report, 'SY003')
    assert.equal(report.attempts[0].lastPulledAt, garbage)
    assert.equal(report.discardedUnsyncedChanges, false)
    await assertConverged(stack, [B]) // right after the reset
    await settle([A, B, C])
    await assertConverged(stack, [A, B, C])
  }
})

test('a token pruned by sync_prune after sync_checkpoint: 410 SY002, the reset brings the device back in sync', async () => {
  const { stack, alice, A, B, C } = await setup()
  const bToken = B.syncs.at(-1).attempts[0].timestamp
  await changesElsewhere(stack, alice, A)
  await stack.sql(`SELECT sync_checkpoint(); SELECT * FROM sync_prune(interval '0');`)
  const remaining = await stack.query('SELECT min(id)::text AS oldest FROM _pg_sync.checkpoints')
  assert.ok(BigInt(remaining[0].oldest) > BigInt(bToken), "B's token was pruned")

  const report = await B.sync()
  assertResetReport(report, 'SY002')
  assert.equal(report.attempts[0].lastPulledAt, bToken)
  await assertConverged(stack, [B])

  // The other devices' tokens were pruned as well: each resets once, then everything is quiet.
  for (const d of [A, C]) {
    const r = await d.sync()
    assertResetReport(r, 'SY002')
  }
  await settle([A, B, C])
  await assertConverged(stack, [A, B, C])
})

test('the reset path discards the changes a device had not pushed yet (hasUnsyncedChanges tells beforehand)', async () => {
  const { stack, alice, A, B, C } = await setup()
  const [first] = await B.raws('tasks')
  await B.update('tasks', first.id, { title: 'edited on B, never pushed' })
  const unpushed = await B.create('tasks', { title: 'created on B, never pushed' })
  await B.database.adapter.setLocal(LAST_PULLED_AT_KEY, '1')

  const report = await B.sync()
  assertResetReport(report, 'SY003')
  assert.equal(report.discardedUnsyncedChanges, true)
  // Explicitly: the local edits are gone, from B and from the server.
  assert.ok(!(await B.has('tasks', unpushed)))
  assert.equal((await B.raw('tasks', first.id)).title, first.title)
  assert.deepEqual(await stack.query(`SELECT id FROM tasks WHERE id = '${unpushed}'`), [])
  await settle([A, B, C])
  await assertConverged(stack, [A, B, C])
})
