// Conflict policies server_wins and last_write_wins with WatermelonDB clients (README: "Conflict
// policies"). WatermelonDB merges what its pull brings before it pushes, so a server policy only
// decides a race the device could not see: here another device syncs between a device's pull and
// its push (the afterPull hook), which makes the push's records conflicts.
//   - server_wins: the device's record is dropped, also across an update and a delete; the device
//     is marked synced and its next pull brings the server's rows.
//   - last_write_wins: the later updated_at (the device's clock) wins, a tie or a deleted side goes
//     to the server. A device whose clock is an hour fast has its timestamp clamped to the push's
//     time (reported "clamped"), so a later edit by another device still wins against it.
// Every test ends with the database's rows and every device's local rows (assertConverged).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { useStack, settle, assertConverged, assertCleanSync } from '../lib/harness.js'
import { POLICY_STACK, conflictsOf } from '../lib/policy-schema.js'

const S = useStack(POLICY_STACK)

// B syncs; between its pull and its push, A syncs (so A's push is news to B's token).
async function raceAfterPull(B, A) {
  let inner
  const report = await B.sync({
    afterPull: async () => {
      inner = await A.sync()
      assertCleanSync(inner)
    },
  })
  assertCleanSync(report)
  return { report, pushResult: report.attempts[0].pushResult, inner }
}

const byId = (rows) => Object.fromEntries(rows.map((r) => [r.id, r]))

test('server_wins: a racing push is dropped, a crossed delete or update keeps the server\'s side; all converge', async () => {
  const stack = S()
  const alice = await stack.newUser('alice')
  const A = await stack.newDevice(alice, 'A')
  const B = await stack.newDevice(alice, 'B')
  const x = await A.create('notes_sw', { title: 'x', body: 'x body' })
  const y = await A.create('notes_sw', { title: 'y', body: 'y body' })
  const z = await A.create('notes_sw', { title: 'z', body: 'z body' })
  const quiet = await A.create('notes_sw', { title: 'quiet', body: 'nobody else touches it' })
  await settle([A, B])

  await A.update('notes_sw', x, { title: 'x by A' })
  await A.remove('notes_sw', y)
  await A.update('notes_sw', z, { body: 'z body by A' })
  await B.update('notes_sw', x, { title: 'x by B', body: 'x body by B' })
  await B.update('notes_sw', y, { title: 'y by B' })
  await B.remove('notes_sw', z)
  await B.update('notes_sw', quiet, { body: 'quiet, by B' })
  const { pushResult } = await raceAfterPull(B, A)

  assert.deepEqual(pushResult.updated, 1) // quiet: no conflict, applied
  assert.deepEqual(conflictsOf(pushResult), [
    { table: 'notes_sw', id: x, policy: 'server_wins', resolution: 'server' },
    { table: 'notes_sw', id: y, policy: 'server_wins', resolution: 'server' },
    { table: 'notes_sw', id: z, policy: 'server_wins', resolution: 'server' },
  ].sort((a, b) => (a.id < b.id ? -1 : 1)))
  assert.equal(await B.unsynced(), false) // dropped records are marked synced: nothing to push again

  await settle([A, B])
  await assertConverged(stack, [A, B])
  const rows = byId(await stack.dbRows('notes_sw', alice))
  assert.deepEqual(Object.keys(rows).sort(), [x, z, quiet].sort()) // y stays deleted
  assert.deepEqual([rows[x].title, rows[x].body], ['x by A', 'x body']) // B's whole record was dropped
  assert.deepEqual([rows[z].title, rows[z].body], ['z', 'z body by A']) // B's delete was dropped
  assert.equal(rows[quiet].body, 'quiet, by B')
})

test('last_write_wins: the later updated_at wins either way; an update of a row deleted meanwhile stays deleted', async () => {
  const stack = S()
  const alice = await stack.newUser('alice')
  const A = await stack.newDevice(alice, 'A')
  const B = await stack.newDevice(alice, 'B')
  const x = await A.create('notes_lww', { title: 'x' })
  const w = await A.create('notes_lww', { title: 'w' })
  const v = await A.create('notes_lww', { title: 'v' })
  await settle([A, B])

  // the edits' times, on each device's clock (all in the past: nothing to clamp)
  const t = Date.now() - 60_000
  await A.update('notes_lww', x, { title: 'x by A, older' }, { at: t + 1000 })
  await B.update('notes_lww', x, { title: 'x by B, newer' }, { at: t + 2000 })
  await A.update('notes_lww', w, { title: 'w by A, newer' }, { at: t + 4000 })
  await B.update('notes_lww', w, { title: 'w by B, older' }, { at: t + 3000 })
  await A.remove('notes_lww', v)
  await B.update('notes_lww', v, { title: 'v by B, after the delete' }, { at: t + 5000 })
  const { pushResult } = await raceAfterPull(B, A) // B pushes second

  assert.deepEqual(conflictsOf(pushResult), [
    { table: 'notes_lww', id: x, policy: 'last_write_wins', resolution: 'client' },
    { table: 'notes_lww', id: w, policy: 'last_write_wins', resolution: 'server' },
    { table: 'notes_lww', id: v, policy: 'last_write_wins', resolution: 'server' },
  ].sort((a, b) => (a.id < b.id ? -1 : 1)))
  assert.equal(pushResult.updated, 1)

  await settle([A, B])
  await assertConverged(stack, [A, B])
  const rows = byId(await stack.dbRows('notes_lww', alice))
  assert.deepEqual(Object.keys(rows).sort(), [x, w].sort())
  assert.deepEqual([rows[x].title, rows[x].updated_at], ['x by B, newer', t + 2000])
  assert.deepEqual([rows[w].title, rows[w].updated_at], ['w by A, newer', t + 4000])
})

test('last_write_wins: a device whose clock is an hour fast is clamped to the push\'s time; a later edit still wins', async () => {
  const stack = S()
  const alice = await stack.newUser('alice')
  const F = await stack.newDevice(alice, 'F')
  F.clockOffsetMs = 3600_000 // an hour fast
  const B = await stack.newDevice(alice, 'B')
  B.clockOffsetMs = 30_000 // 30 s fast: within pg_sync.max_clock_skew (1 min), never clamped
  const x = await B.create('notes_lww', { title: 'x', body: 'x body' })
  await settle([F, B])

  await F.update('notes_lww', x, { title: 'x by the fast clock' })
  const fastStamp = (await F.raw('notes_lww', x)).updated_at
  assert.ok(fastStamp > Date.now() + 59 * 60_000)

  // B pulls; then F pushes its edit; then B edits x (later than F's push) and pushes with the token
  // of its pull, which has not seen F's push: a conflict, decided by the timestamps
  let fast
  let storedAfterF
  let before
  const report = await B.sync({
    afterPull: async () => {
      before = Date.now()
      fast = await F.sync()
      assertCleanSync(fast)
      storedAfterF = byId(await stack.dbRows('notes_lww', alice))[x]
      await B.update('notes_lww', x, { title: 'x by B, later' })
    },
  })
  assertCleanSync(report)
  // F's push was applied with its timestamp brought back to the push's time, and says so
  assert.deepEqual(conflictsOf(fast.attempts[0].pushResult), [
    { table: 'notes_lww', id: x, policy: 'last_write_wins', resolution: 'client', clamped: true },
  ])
  assert.equal(storedAfterF.title, 'x by the fast clock')
  assert.ok(storedAfterF.updated_at >= before && storedAfterF.updated_at <= Date.now(), `${storedAfterF.updated_at}`)
  // B's later edit wins over it (unclamped, F's stamp would have won for an hour)
  const bStamp = (await B.raw('notes_lww', x)).updated_at
  assert.ok(bStamp < fastStamp)
  assert.deepEqual(conflictsOf(report.attempts[0].pushResult), [
    { table: 'notes_lww', id: x, policy: 'last_write_wins', resolution: 'client' },
  ])

  await settle([F, B])
  await assertConverged(stack, [F, B])
  const row = byId(await stack.dbRows('notes_lww', alice))[x]
  assert.deepEqual([row.title, row.body, row.updated_at], ['x by B, later', 'x body', bStamp])
  // F holds the server's row now, not its own hour-fast stamp
  assert.equal((await F.raw('notes_lww', x)).updated_at, bStamp)
})
