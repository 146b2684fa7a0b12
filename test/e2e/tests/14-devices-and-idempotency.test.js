// Devices (README: "Devices and idempotent pushes", the edge function's X-Sync-Client-Id and
// Idempotency-Key), with WatermelonDB's synchronize():
//   - a push whose answer is lost after the server committed it, sent again with the same
//     Idempotency-Key (at once by the app, or by the next synchronize() with the same document),
//     is applied once: a trigger counts every write of a row;
//   - a deactivated device's sync fails with 403 SY005 at its pull, or at its push when the
//     deactivation lands between the two; nothing of it is written, its changes stay pending, the
//     user's other devices go on; reactivated, it converges;
//   - GET .../status answers the documented shape.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { useStack, settle, assertConverged, assertCleanSync, SyncHttpError, SCHEMA_SQL } from '../lib/harness.js'

// the default schema, and every write of a task counted by a trigger
const S = useStack({
  schemaSql: `${SCHEMA_SQL}
CREATE TABLE writes (id text PRIMARY KEY, n int NOT NULL);
CREATE FUNCTION count_write() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    INSERT INTO writes VALUES (NEW.id, 1) ON CONFLICT (id) DO UPDATE SET n = writes.n + 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER count_write AFTER INSERT OR UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION count_write();`,
})

// How often each row was written (inserts and updates), by id.
async function writes(ids) {
  const rows = await S().query(`SELECT id, n FROM writes WHERE id IN (${ids.map((i) => `'${i}'`).join(', ')})`)
  return Object.fromEntries(ids.map((id) => [id, rows.find((r) => r.id === id)?.n ?? 0]))
}

// fetch for the push whose first answer is lost: the server answers (and has committed), the
// device sees a dropped connection. Later requests go through.
function losingFirstAnswer(seen) {
  let lost = false
  return async (url, init) => {
    const res = await fetch(url, init)
    if (lost) return res
    lost = true
    seen.push({ status: res.status, body: await res.json(), key: init.headers['idempotency-key'] })
    throw new TypeError('fetch failed: connection reset by peer')
  }
}

const asUser = (user, statement) =>
  S().sql(`SELECT set_config('request.jwt.claims', '${JSON.stringify({ sub: user.id })}', false) \\g /dev/null
${statement}`)

test('a lost push answer, sent again at once with the same Idempotency-Key: applied once, the sync succeeds', async () => {
  const stack = S()
  const alice = await stack.newUser('alice')
  const A = await stack.newDevice(alice, 'A', { clientId: 'A-phone', idempotent: true, pushRetries: 1 })
  const B = await stack.newDevice(alice, 'B', { clientId: 'B-laptop', idempotent: true })
  const x = await A.create('tasks', { title: 'x', position: 1 })
  await settle([A, B])
  assert.deepEqual(await writes([x]), { [x]: 1 })

  const z = await A.create('tasks', { title: 'created offline', position: 2 })
  await A.update('tasks', x, { title: 'edited offline' })
  A.pushAttempts = []
  const seen = []
  const report = await A.sync({ pushFetch: losingFirstAnswer(seen) })
  assertCleanSync(report)
  // two requests, one key, one document; the second answered from the ledger with the first's result
  assert.equal(A.pushAttempts.length, 2)
  assert.equal(A.pushAttempts[0].key, A.pushAttempts[1].key)
  assert.equal(A.pushAttempts[0].changes, A.pushAttempts[1].changes)
  assert.match(A.pushAttempts[0].error.message, /connection reset/)
  assert.equal(A.pushAttempts[1].status, 200)
  assert.deepEqual(seen, [{ status: 200, body: { created: 1, updated: 1, deleted: 0 }, key: A.pushAttempts[0].key }])
  assert.deepEqual(report.attempts[0].pushResult, seen[0].body)
  // applied once: one write of each row; pg_sync counted one push of two records
  assert.deepEqual(await writes([x, z]), { [x]: 2, [z]: 1 })
  assert.deepEqual(await stack.query(`SELECT pushes, records_pushed FROM _pg_sync.clients WHERE user_id = '${alice.id}' AND client_id = 'A-phone'`), [
    { pushes: 2, records_pushed: 3 }, // the first sync's push (x) and this one (x, z)
  ])
  assert.equal(await A.unsynced(), false)
  await settle([A, B])
  await assertConverged(stack, [A, B])
  assert.deepEqual(await writes([x, z]), { [x]: 2, [z]: 1 })
})

test('a lost push answer, then the next sync sends the same document: same key, applied once', async () => {
  const stack = S()
  const alice = await stack.newUser('alice')
  const A = await stack.newDevice(alice, 'A', { clientId: 'A-phone', idempotent: true })
  const B = await stack.newDevice(alice, 'B', { clientId: 'B-laptop', idempotent: true })
  const x = await A.create('tasks', { title: 'x', body: 'v1', position: 1 })
  await settle([A, B])

  await A.update('tasks', x, { body: 'v2' })
  const y = await A.create('tasks', { title: 'y', position: 2 })
  A.pushAttempts = []
  const seen = []
  await assert.rejects(A.sync({ pushFetch: losingFirstAnswer(seen) }), /connection reset/)
  assert.equal(seen[0].status, 200)
  assert.deepEqual(await writes([x, y]), { [x]: 2, [y]: 1 })
  assert.equal(await A.unsynced(), true) // WatermelonDB did not see the answer

  // B changes another row meanwhile: A's next pull brings it, A's own rows are not echoed, so A
  // pushes the very same document again, with the key it kept
  const w = await B.create('tasks', { title: 'from B', position: 3 })
  assertCleanSync(await B.sync())
  const next = await A.sync()
  assertCleanSync(next)
  assert.deepEqual(next.attempts[0].pullResult.changes.tasks.updated.map((r) => r.id), [w])
  assert.equal(A.pushAttempts.length, 2)
  assert.equal(A.pushAttempts[1].key, A.pushAttempts[0].key)
  assert.equal(A.pushAttempts[1].changes, A.pushAttempts[0].changes)
  assert.deepEqual(next.attempts[0].pushResult, seen[0].body) // the stored result
  assert.deepEqual(await writes([x, y, w]), { [x]: 2, [y]: 1, [w]: 1 })

  // a new document after a lost answer gets a new key (and applies: its token has seen the first)
  await A.update('tasks', y, { title: 'y, edited' })
  await assert.rejects(A.sync({ pushFetch: losingFirstAnswer([]) }), /connection reset/)
  await A.update('tasks', y, { body: 'and more' })
  const third = await A.sync()
  assertCleanSync(third)
  assert.notEqual(A.pushAttempts.at(-1).key, A.pushAttempts.at(-2).key)
  assert.deepEqual(await writes([y]), { [y]: 3 })
  await settle([A, B])
  await assertConverged(stack, [A, B])
  const row = (await stack.dbRows('tasks', alice)).find((r) => r.id === y)
  assert.equal(row.title, 'y, edited')
  assert.equal(row.body, 'and more')
})

test('a deactivated device: its sync fails with 403 SY005, nothing of it is written, its changes wait', async () => {
  const stack = S()
  const alice = await stack.newUser('alice')
  const A = await stack.newDevice(alice, 'A', { clientId: 'lost-phone' })
  const B = await stack.newDevice(alice, 'B', { clientId: 'laptop' })
  const x = await A.create('tasks', { title: 'x', position: 1 })
  await settle([A, B])

  const offline = await A.create('tasks', { title: 'made on the lost phone', position: 2 })
  await asUser(alice, `SELECT sync_deactivate_client('lost-phone');`)
  const refused = await A.sync().then(
    () => null,
    (e) => e,
  )
  assert.ok(refused instanceof SyncHttpError, String(refused))
  assert.deepEqual([refused.route.endsWith('/pull'), refused.status, refused.code], [true, 403, 'SY005'])
  assert.equal(A.pushAttempts.length, 1) // (the settle's push only)
  assert.equal(await A.unsynced(), true)
  assert.equal((await A.raw('tasks', offline))._status, 'created')
  // the other device goes on
  await B.update('tasks', x, { title: 'x from the laptop' })
  assertCleanSync(await B.sync())

  // deactivated between the pull and the push: the push is refused
  await asUser(alice, `SELECT sync_activate_client('lost-phone');`)
  const refusedPush = await A.sync({ afterPull: () => asUser(alice, `SELECT sync_deactivate_client('lost-phone');`) }).then(
    () => null,
    (e) => e,
  )
  assert.deepEqual([refusedPush?.route.endsWith('/push'), refusedPush?.status, refusedPush?.code], [true, 403, 'SY005'])
  assert.equal(await stack.sql(`SELECT count(*) FROM tasks WHERE id = '${offline}'`), '0')
  assert.equal((await A.raw('tasks', offline))._status, 'created')
  assert.deepEqual(await stack.query(`SELECT active FROM _pg_sync.clients WHERE user_id = '${alice.id}' AND client_id = 'lost-phone'`), [{ active: false }])

  await asUser(alice, `SELECT sync_activate_client('lost-phone');`)
  await settle([A, B])
  await assertConverged(stack, [A, B])
  assert.equal((await stack.dbRows('tasks', alice)).find((r) => r.id === offline).title, 'made on the lost phone')
})

const STATUS_KEYS = ['devices', 'last_pull_at', 'last_push_at', 'open_conflicts', 'pending_changes', 'user_id']

test('GET .../status: the user\'s devices, last pull and push, open conflicts', async () => {
  const stack = S()
  const alice = await stack.newUser('alice')
  const A = await stack.newDevice(alice, 'A', { clientId: 'phone' })
  const B = await stack.newDevice(alice, 'B', { clientId: 'laptop' })
  const fresh = await stack.newDevice(alice, 'fresh') // no client id: asks for the user as a whole
  assert.deepEqual(await fresh.status(), {
    user_id: alice.id, devices: 0, open_conflicts: 0, last_pull_at: null, last_push_at: null, pending_changes: null,
  })
  await A.create('tasks', { title: 'a' })
  await settle([A, B])
  const status = await fresh.status()
  assert.deepEqual(Object.keys(status).sort(), STATUS_KEYS)
  assert.equal(status.user_id, alice.id)
  assert.equal(status.devices, 2)
  assert.equal(status.open_conflicts, 0)
  assert.equal(status.pending_changes, null)
  const lastPull = Date.parse(status.last_pull_at)
  const lastPush = Date.parse(status.last_push_at)
  assert.ok(lastPush <= lastPull, `${status.last_push_at} after ${status.last_pull_at}`) // settle pulls last
  const [{ newest_pull: newestPull }] = await stack.query(
    `SELECT max(last_pull_at) AS newest_pull FROM _pg_sync.client_pulls WHERE user_id = '${alice.id}'`,
  )
  assert.equal(lastPull, Date.parse(newestPull))
})

// pg_sync bug (see test/http/05): sync_status(client_id) of a device that holds a token fails with
// 42501 for every role but the extension owner, so a device's own status answers 403.
test('GET .../status with the device\'s X-Sync-Client-Id: its pending changes', async () => {
  const stack = S()
  const alice = await stack.newUser('alice')
  const A = await stack.newDevice(alice, 'A', { clientId: 'phone' })
  const B = await stack.newDevice(alice, 'B', { clientId: 'laptop' })
  await settle([A, B])
  assert.equal((await A.status()).pending_changes, 0)
  await B.create('tasks', { title: 'one' })
  await B.create('tasks', { title: 'two' })
  assertCleanSync(await B.sync())
  assert.equal((await A.status()).pending_changes, 2)
  assertCleanSync(await A.sync())
  assert.equal((await A.status()).pending_changes, 0)
})
