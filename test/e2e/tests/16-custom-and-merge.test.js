// Conflict policies custom and merge with WatermelonDB clients (README: "Conflict policies"). As in
// test 15, device A syncs between device B's pull and push, so B's records are conflicts.
//   - custom, the progress tracker's rule as a SQL function (text, jsonb, jsonb) → jsonb: the
//     higher progress_percent wins, unless either is 0: then the newer updated_at wins. The
//     function's row is stored ("merged"), or the server's stays ("server").
//   - merge, column by column: completion the highest, last_access the latest, the rest the
//     device's.
// Every test ends with the database's rows and every device's local rows (assertConverged).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { useStack, settle, assertConverged, assertCleanSync } from '../lib/harness.js'
import { POLICY_STACK, conflictsOf } from '../lib/policy-schema.js'

const S = useStack(POLICY_STACK)

async function raceAfterPull(B, A) {
  const report = await B.sync({ afterPull: async () => assertCleanSync(await A.sync()) })
  assertCleanSync(report)
  return report.attempts[0].pushResult
}

const byId = (rows) => Object.fromEntries(rows.map((r) => [r.id, r]))
const sorted = (list) => list.sort((a, b) => (a.id < b.id ? -1 : 1))

test('custom (progress tracker): the higher progress wins, unless either is 0, then the newer edit', async () => {
  const stack = S()
  const alice = await stack.newUser('alice')
  const A = await stack.newDevice(alice, 'A')
  const B = await stack.newDevice(alice, 'B')
  const ids = {}
  for (const name of ['higher_on_A', 'higher_on_B', 'reset_older', 'reset_newer', 'deleted_on_A']) {
    ids[name] = await A.create('lessons', { title: name, progress_percent: 10 })
  }
  await settle([A, B])

  const t = Date.now() - 60_000 // the edits' times on the devices' clocks
  // progress, both non-zero: the higher stays, whoever pushes second
  await A.update('lessons', ids.higher_on_A, { progress_percent: 70 }, { at: t + 1000 })
  await B.update('lessons', ids.higher_on_B, { progress_percent: 80 }, { at: t + 1000 })
  await A.update('lessons', ids.higher_on_B, { progress_percent: 30 }, { at: t + 2000 })
  await B.update('lessons', ids.higher_on_A, { progress_percent: 40 }, { at: t + 2000 })
  // a reset to 0 against progress: the newer edit
  await A.update('lessons', ids.reset_older, { progress_percent: 0 }, { at: t + 1000 })
  await B.update('lessons', ids.reset_older, { progress_percent: 55 }, { at: t + 2000 })
  await A.update('lessons', ids.reset_newer, { progress_percent: 0 }, { at: t + 4000 })
  await B.update('lessons', ids.reset_newer, { progress_percent: 90 }, { at: t + 3000 })
  // a deleted side: the function keeps the server's (here: the row stays deleted)
  await A.remove('lessons', ids.deleted_on_A)
  await B.update('lessons', ids.deleted_on_A, { progress_percent: 99 }, { at: t + 5000 })
  const pushResult = await raceAfterPull(B, A)

  const expect = (name, resolution) => ({ table: 'lessons', id: ids[name], policy: 'custom', resolution })
  assert.deepEqual(conflictsOf(pushResult), sorted([
    expect('higher_on_A', 'server'),
    expect('higher_on_B', 'merged'),
    expect('reset_older', 'merged'),
    expect('reset_newer', 'server'),
    expect('deleted_on_A', 'server'),
  ]))
  assert.equal(pushResult.updated, 2)

  await settle([A, B])
  await assertConverged(stack, [A, B])
  const rows = byId(await stack.dbRows('lessons', alice))
  const progress = Object.fromEntries(Object.entries(ids).map(([name, id]) => [name, rows[id] ? [rows[id].progress_percent, rows[id].updated_at] : null]))
  assert.deepEqual(progress, {
    higher_on_A: [70, t + 1000],
    higher_on_B: [80, t + 1000],
    reset_older: [55, t + 2000],
    reset_newer: [0, t + 4000],
    deleted_on_A: null,
  })
})

test('merge: completion the highest, last_access the latest, column by column in one record', async () => {
  const stack = S()
  const alice = await stack.newUser('alice')
  const A = await stack.newDevice(alice, 'A')
  const B = await stack.newDevice(alice, 'B')
  const t = Date.now() - 60_000
  const c1 = await A.create('courses', { title: 'c1', completion: 10, last_access: t })
  const c2 = await A.create('courses', { title: 'c2', completion: 10, last_access: t })
  const c3 = await A.create('courses', { title: 'c3', completion: 10, last_access: t })
  await settle([A, B])

  // c1: A got further, B opened it later; c2: the other way round; c3: B ahead in both
  await A.update('courses', c1, { completion: 60, last_access: t + 1000 })
  await B.update('courses', c1, { completion: 40, last_access: t + 2000, title: 'c1 renamed on B' })
  await A.update('courses', c2, { completion: 30, last_access: t + 4000 })
  await B.update('courses', c2, { completion: 80, last_access: t + 3000 })
  await A.update('courses', c3, { completion: 20, last_access: t + 1000 })
  await B.update('courses', c3, { completion: 90, last_access: t + 5000 })
  const pushResult = await raceAfterPull(B, A)

  assert.deepEqual(conflictsOf(pushResult), sorted([
    { table: 'courses', id: c1, policy: 'merge', resolution: 'merged' },
    { table: 'courses', id: c2, policy: 'merge', resolution: 'merged' },
    { table: 'courses', id: c3, policy: 'merge', resolution: 'merged' },
  ]))

  await settle([A, B])
  await assertConverged(stack, [A, B])
  const rows = byId(await stack.dbRows('courses', alice))
  const pick = (id) => ({ title: rows[id].title, completion: rows[id].completion, last_access: rows[id].last_access })
  assert.deepEqual(pick(c1), { title: 'c1 renamed on B', completion: 60, last_access: t + 2000 })
  assert.deepEqual(pick(c2), { title: 'c2', completion: 80, last_access: t + 4000 })
  assert.deepEqual(pick(c3), { title: 'c3', completion: 90, last_access: t + 5000 })
})
