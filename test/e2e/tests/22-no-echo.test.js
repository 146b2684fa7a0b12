// Scenario 22: no echo. Two devices of one user take turns for 10 rounds: each edits 50 of its own
// tasks and creates 20, then syncs (pull, then push). Run twice: the devices naming themselves with
// X-Sync-Client-Id, and not.
//   - with client ids, a device's pull never carries the records it pushed in its previous sync,
//     and always carries every record the other device pushed since;
//   - without, both come back (the echo);
//   - the bytes pulled in the session, both ways, are printed; with client ids they are fewer;
//   - both sessions end converged.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { useStack, settle, assertConverged, assertCleanSync } from '../lib/harness.js'

const S = useStack()
const ROUNDS = 10
const EDITS = 50
const CREATES = 20

const idsOf = (changes) => Object.values(changes ?? {}).flatMap((t) => [...t.created.map((r) => r.id), ...t.updated.map((r) => r.id), ...t.deleted])

async function session(stack, withClientIds) {
  const user = await stack.newUser(withClientIds ? 'with-ids' : 'without-ids')
  const devices = ['A', 'B'].map((name) => ({ name, own: [], lastPushed: [] }))
  for (const d of devices) {
    d.device = await stack.newDevice(user, d.name, withClientIds ? { clientId: `${d.name}-${user.id}` } : {})
    for (let i = 0; i < EDITS; i++) d.own.push(await d.device.create('tasks', { title: `${d.name} ${i}`, position: i }))
  }
  await settle(devices.map((d) => d.device))

  let bytes = 0
  let records = 0
  const checks = { ownBack: 0, otherMissing: 0, pulls: 0 }
  for (let round = 1; round <= ROUNDS; round++) {
    for (const [d, other] of [[devices[0], devices[1]], [devices[1], devices[0]]]) {
      await d.device.database.write(async () => {
        const tasks = d.device.database.get('tasks')
        const batch = []
        for (const id of d.own.slice(-EDITS)) {
          const record = await tasks.find(id)
          batch.push(record.prepareUpdate((r) => (r.title = `${d.name} round ${round}`)))
        }
        for (let i = 0; i < CREATES; i++) {
          batch.push(tasks.prepareCreate((r) => Object.assign(r, { ownerId: user.id, title: `${d.name} new ${round}.${i}` })))
        }
        await d.device.database.batch(batch)
        d.own.push(...batch.slice(EDITS).map((r) => r.id))
      })
      const report = await d.device.sync()
      assertCleanSync(report)
      const [attempt] = report.attempts
      const pulled = new Set(idsOf(attempt.pullResult.changes))
      bytes += attempt.pullBytes
      records += pulled.size
      checks.pulls++
      checks.ownBack += d.lastPushed.filter((id) => pulled.has(id)).length
      checks.otherMissing += other.lastPushed.filter((id) => !pulled.has(id)).length
      d.lastPushed = idsOf(attempt.pushedChanges)
      assert.equal(d.lastPushed.length, EDITS + CREATES)
    }
  }
  await settle(devices.map((d) => d.device))
  await assertConverged(stack, devices.map((d) => d.device))
  return { bytes, records, ...checks }
}

test('a busy session of two devices: with client ids a device gets none of its own records back', async (t) => {
  const stack = S()
  const withIds = await session(stack, true)
  const without = await session(stack, false)
  t.diagnostic(`${ROUNDS} rounds, ${2 * ROUNDS} pulls, ${EDITS + CREATES} records pushed per sync`)
  t.diagnostic(`with client ids:    ${withIds.bytes} bytes pulled, ${withIds.records} records`)
  t.diagnostic(`without client ids: ${without.bytes} bytes pulled, ${without.records} records (${(without.bytes / withIds.bytes).toFixed(2)}x)`)

  // with client ids: never its own records, always the other device's
  assert.equal(withIds.ownBack, 0, "a device got records of its own push back")
  assert.equal(withIds.otherMissing, 0, "a device missed records the other one pushed")
  // without: the echo (each pull from round 2 on brings back the device's previous push)
  assert.equal(without.ownBack, 2 * (ROUNDS - 1) * (EDITS + CREATES))
  assert.equal(without.otherMissing, 0)
  assert.ok(withIds.bytes < without.bytes)
})
