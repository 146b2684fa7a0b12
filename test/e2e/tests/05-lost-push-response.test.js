// Scenario 5: the server commits a push but its response never reaches the device (the fetch used
// for the push receives 200, then fails as a dropped connection would). synchronize() rejects, so
// WatermelonDB keeps the pushed records unsynced. The next synchronize() must be harmless: it pulls
// the device's own committed changes back (the echo), pushes the still-dirty records again against
// a token that has seen them (no conflict, no duplicate), and everything converges; the sync after
// that has nothing to push (no error loop).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { useStack, settle, assertConverged, assertCleanSync } from '../lib/harness.js'

const S = useStack()

// fetch for the push: the request reaches the server and is answered, the answer is lost.
function losingResponse(seen) {
  return async (url, init) => {
    const res = await fetch(url, init)
    seen.push({ status: res.status, body: await res.json() })
    throw new TypeError('fetch failed: connection reset by peer')
  }
}

async function setup() {
  const stack = S()
  const alice = await stack.newUser('alice')
  const A = await stack.newDevice(alice, 'A')
  const B = await stack.newDevice(alice, 'B')
  const x = await A.create('tasks', { title: 'to edit', body: 'v1', isDone: false, position: 1 })
  const y = await A.create('tasks', { title: 'to delete', body: 'v1', isDone: false, position: 2 })
  const p = await A.create('projects', { name: 'Project v1' })
  await settle([A, B])
  return { stack, alice, A, B, x, y, p }
}

test('a push whose response is lost: the next sync is harmless and converges', async () => {
  const { stack, alice, A, B, x, y, p } = await setup()
  const z = await A.create('tasks', { title: 'created offline', body: null, isDone: true, position: 3 })
  await A.update('tasks', x, { title: 'edited offline', isDone: true })
  await A.remove('tasks', y)
  await A.update('projects', p, { name: 'Project v2' })
  const expectedOnA = { z: await A.raw('tasks', z), x: await A.raw('tasks', x) }

  const seen = []
  await assert.rejects(A.sync({ pushFetch: losingResponse(seen) }), /connection reset/)
  // The server did commit it all.
  assert.deepEqual(seen, [{ status: 200, body: { created: 1, updated: 2, deleted: 1 } }])
  const committed = await stack.dbRows('tasks', alice)
  assert.deepEqual(committed.map((r) => r.id).sort(), [x, z].sort())
  assert.equal(committed.find((r) => r.id === x).title, 'edited offline')
  // A does not know: its changes are still pending.
  assert.equal(await A.unsynced(), true)
  assert.equal((await A.raw('tasks', z))._status, 'created')

  // Next sync: one attempt, no conflict, no log entry.
  const next = await A.sync()
  assertCleanSync(next)
  const [attempt] = next.attempts
  assert.ok(attempt.pullResult.changes.tasks.updated.some((r) => r.id === z), "A's own create came back in `updated`")
  assert.ok(attempt.pullResult.changes.tasks.deleted.includes(y), "A's own delete came back in `deleted`")
  assert.equal(attempt.pushedChanges.tasks.deleted.length, 0, 'the delete, confirmed by the pull, is not pushed again')
  assert.equal(await A.unsynced(), false)

  // And the one after pushes nothing at all.
  const third = await A.sync()
  assertCleanSync(third)
  assert.equal(third.attempts[0].pushed, null)

  await settle([A, B])
  await assertConverged(stack, [A, B])
  // Exactly one z, with A's values; x carries A's edit; y is gone; nothing was lost or duplicated.
  const rows = await stack.dbRows('tasks', alice)
  assert.deepEqual(rows.map((r) => r.id).sort(), [x, z].sort())
  const { _status, _changed, ...zValues } = expectedOnA.z
  assert.deepEqual(rows.find((r) => r.id === z), zValues)
  assert.equal(rows.find((r) => r.id === x).updated_at, expectedOnA.x.updated_at)
  assert.equal((await stack.dbRows('projects')).find((r) => r.id === p).name, 'Project v2')
})

test('a lost push response, then another device edits the same row before the retry: still no conflict, merged per column', async () => {
  const { stack, alice, A, B, x } = await setup()
  await A.update('tasks', x, { title: 'title from A' })
  await assert.rejects(A.sync({ pushFetch: losingResponse([]) }), /connection reset/)

  await B.update('tasks', x, { body: 'body from B' })
  assertCleanSync(await B.sync())

  const next = await A.sync()
  assertCleanSync(next) // the retry's token has seen both A's lost push and B's edit
  await settle([A, B])
  await assertConverged(stack, [A, B])
  const row = (await stack.dbRows('tasks', alice)).find((r) => r.id === x)
  assert.equal(row.title, 'title from A')
  assert.equal(row.body, 'body from B')
})

test("the response of a device's very first push is lost: the retry neither duplicates nor conflicts", async () => {
  const stack = S()
  const alice = await stack.newUser('alice')
  const A = await stack.newDevice(alice, 'A')
  const B = await stack.newDevice(alice, 'B')
  const ids = []
  for (let i = 0; i < 5; i++) ids.push(await A.create('tasks', { title: `task ${i}`, position: i }))

  await assert.rejects(A.sync({ pushFetch: losingResponse([]) }), /connection reset/)
  assertCleanSync(await A.sync())
  await settle([A, B])
  await assertConverged(stack, [A, B])
  assert.deepEqual((await stack.dbRows('tasks', alice)).map((r) => r.id).sort(), ids.sort())
})
