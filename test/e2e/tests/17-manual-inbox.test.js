// The manual policy and the conflict inbox with WatermelonDB clients (README: "Conflict policies",
// sync_conflicts, sync_resolve_conflict, the edge function's conflict routes). Two devices edit the
// same records offline; the second push races the first (it pulled before the first pushed): its
// records go to the user's inbox, the push succeeds, the server's rows stay. GET .../conflicts
// lists them; POST .../conflicts/<id>/resolve with "client" writes the device's record, with
// "merged" the user's own; after a sync every device holds the resolved rows.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { useStack, settle, assertConverged, assertCleanSync, SyncHttpError } from '../lib/harness.js'
import { POLICY_STACK, conflictsOf } from '../lib/policy-schema.js'

const S = useStack(POLICY_STACK)

const byId = (rows) => Object.fromEntries(rows.map((r) => [r.id, r]))
const values = ({ title, body }) => ({ title, body })

test('manual: the racing push\'s records wait in the inbox; resolved with client and merged, every device converges', async () => {
  const stack = S()
  const alice = await stack.newUser('alice')
  const A = await stack.newDevice(alice, 'A', { clientId: 'phone' })
  const B = await stack.newDevice(alice, 'B', { clientId: 'tablet' })
  const C = await stack.newDevice(alice, 'C') // looks on; no client id: its status is the user's
  const x = await A.create('drafts', { title: 'x', body: 'x body' })
  const y = await A.create('drafts', { title: 'y', body: 'y body' })
  const z = await A.create('drafts', { title: 'z', body: 'z body' })
  await settle([A, B, C])

  await A.update('drafts', x, { title: 'x by A' })
  await A.update('drafts', y, { body: 'y body by A' })
  await A.update('drafts', z, { title: 'z by A' })
  await B.update('drafts', x, { title: 'x by B', body: 'x body by B' })
  await B.update('drafts', y, { title: 'y by B' })
  await B.update('drafts', z, { title: 'z by B' })
  const bRecords = { x: await B.raw('drafts', x), y: await B.raw('drafts', y), z: await B.raw('drafts', z) }
  const report = await B.sync({ afterPull: async () => assertCleanSync(await A.sync()) })
  assertCleanSync(report)

  // B's push succeeded and queued its three records; the server kept A's rows
  const pushResult = report.attempts[0].pushResult
  assert.deepEqual([pushResult.created, pushResult.updated, pushResult.deleted], [0, 0, 0])
  assert.deepEqual(conflictsOf(pushResult), [x, y, z].sort().map((id) => ({ table: 'drafts', id, policy: 'manual', resolution: 'manual' })))
  assert.equal(await B.unsynced(), false)
  let rows = byId(await stack.dbRows('drafts', alice))
  assert.deepEqual([values(rows[x]), values(rows[y]), values(rows[z])], [
    { title: 'x by A', body: 'x body' },
    { title: 'y', body: 'y body by A' },
    { title: 'z by A', body: 'z body' },
  ])

  // the inbox: B's records as pushed, the server's rows when queued; the same ids as the push said
  const inbox = await C.conflicts()
  assert.deepEqual(inbox.map((c) => c.record_id).sort(), [x, y, z].sort())
  assert.deepEqual(inbox.map((c) => c.conflict_id), pushResult.conflicts.map((c) => c.conflict_id).sort((a, b) => a - b)) // oldest first
  const conflict = Object.fromEntries(inbox.map((c) => [c.record_id, c]))
  for (const id of [x, y, z]) {
    assert.equal(conflict[id].conflict_id, pushResult.conflicts.find((c) => c.id === id).conflict_id)
    assert.equal(conflict[id].table_name, 'drafts')
    assert.deepEqual(values(conflict[id].client_record), values(bRecords[id === x ? 'x' : id === y ? 'y' : 'z']))
    assert.deepEqual(values(conflict[id].server_record), values(rows[id]))
  }
  assert.equal(conflict[x].client_record.updated_at, bRecords.x.updated_at)
  // the record's columns, without WatermelonDB's _status and _changed
  assert.deepEqual(Object.keys(conflict[x].client_record).sort(), ['body', 'created_at', 'id', 'owner_id', 'title', 'updated_at'])
  assert.equal((await C.status()).open_conflicts, 3)
  // another user sees none of it and cannot resolve it
  const bob = await stack.newUser('bob')
  const stranger = await stack.newDevice(bob, 'stranger')
  assert.deepEqual(await stranger.conflicts(), [])
  await assert.rejects(stranger.resolve(conflict[x].conflict_id, 'client'), (e) => e instanceof SyncHttpError && e.status === 404 && e.code === '42704')

  // until resolved, every device (B included) converges to the server's rows
  await settle([A, B, C])
  await assertConverged(stack, [A, B, C])

  // resolve: x as B pushed it, y merged by the user, z: the server's row
  const rx = await C.resolve(conflict[x].conflict_id, 'client')
  assert.deepEqual(rx, { conflict_id: conflict[x].conflict_id, table: 'drafts', id: x, resolution: 'client', created: 0, updated: 1, deleted: 0 })
  const ry = await C.resolve(conflict[y].conflict_id, 'merged', { id: y, title: 'y by B', body: 'y body by A' })
  assert.equal(ry.resolution, 'merged')
  const rz = await C.resolve(conflict[z].conflict_id, 'server')
  assert.equal(rz.resolution, 'server')
  await assert.rejects(C.resolve(conflict[x].conflict_id, 'server'), (e) => e instanceof SyncHttpError && e.status === 409 && e.code === 'SY007')
  assert.deepEqual(await A.conflicts(), [])
  assert.equal((await C.status()).open_conflicts, 0)

  rows = byId(await stack.dbRows('drafts', alice))
  assert.deepEqual([values(rows[x]), values(rows[y]), values(rows[z])], [
    { title: 'x by B', body: 'x body by B' },
    { title: 'y by B', body: 'y body by A' },
    { title: 'z by A', body: 'z body' },
  ])
  assert.equal(rows[x].updated_at, bRecords.x.updated_at)
  // the resolutions are new changes: one sync each brings them; but A's pull leaves out z, whose
  // row ("server") is still exactly what A pushed (no echo to the device that pushed it)
  const expected = { A: [x, y], B: [x, y, z], C: [x, y, z] }
  for (const device of [A, B, C]) {
    const r = await device.sync()
    assertCleanSync(r)
    assert.deepEqual(r.attempts[0].pullResult.changes.drafts.updated.map((row) => row.id).sort(), expected[device.name].sort(), device.name)
  }
  await settle([A, B, C])
  await assertConverged(stack, [A, B, C])
})
