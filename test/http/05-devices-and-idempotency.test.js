// Devices and idempotent pushes over HTTP (README: "Devices and idempotent pushes", the edge
// function's headers): X-Sync-Client-Id is the client_id of pulls, pushes and GET .../status;
// Idempotency-Key is the push_id of a push. A key sent again with the same push answers the stored
// result and applies nothing; with another push it is 400 SY006. A deactivated device gets 403
// SY005. Header values that pg_sync or HTTP cannot carry are 400 22023.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startDemoStack, call, user } from './lib.js'

// every write of a task counted by a trigger: "applied once" is one write, not the same values
const WRITES_SQL = `
CREATE TABLE task_writes (id text PRIMARY KEY, n int NOT NULL);
CREATE FUNCTION count_task_write() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    INSERT INTO task_writes VALUES (NEW.id, 1) ON CONFLICT (id) DO UPDATE SET n = task_writes.n + 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER count_task_write AFTER INSERT OR UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION count_task_write();
`

let stack
before(async () => {
  stack = await startDemoStack({ extraSql: WRITES_SQL })
})
after(async () => stack?.stop())

const empty = { created: [], updated: [], deleted: [] }

function assertError(res, status, code) {
  assert.equal(res.status, status, res.text)
  assert.equal(res.body?.code, code, res.text)
  assert.equal(typeof res.body.error, 'string')
}

async function signedIn() {
  const id = user()
  return { id, token: await stack.sign({ sub: id, role: 'authenticated' }) }
}

const writes = async (id) => Number((await stack.sql(`SELECT coalesce((SELECT n FROM task_writes WHERE id = '${id}'), 0)`)) || 0)

// The device's row as pg_sync keeps it (superuser view of _pg_sync.clients, its last pull in _pg_sync.client_pulls).
async function deviceRow(userId, clientId) {
  const rows = await stack.query(
    `SELECT c.client_id, c.pushes, c.records_pushed, c.active, p.last_pull_at IS NOT NULL AS pulled, c.last_push_at IS NOT NULL AS pushed
       FROM _pg_sync.clients c
       LEFT JOIN _pg_sync.client_pulls p ON p.user_id = c.user_id AND p.client_id = c.client_id
      WHERE c.user_id = '${userId}' AND c.client_id = '${clientId}'`,
  )
  return rows[0] ?? null
}

// SQL as the user (what PostgREST does), for the device functions the function does not route.
function asUser(userId, statement) {
  return stack.sql(`BEGIN; SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '${JSON.stringify({ sub: userId, role: 'authenticated' })}', true) \\g /dev/null
${statement}
COMMIT;`)
}

test('X-Sync-Client-Id names the device of pulls and pushes: pg_sync records it per user', async () => {
  const alice = await signedIn()
  const h = { 'x-sync-client-id': 'phone-1' }
  const first = await call(stack, 'pull', { token: alice.token, body: { lastPulledAt: null }, headers: h })
  assert.equal(first.status, 200, first.text)
  assert.deepEqual(await deviceRow(alice.id, 'phone-1'), {
    client_id: 'phone-1', pushes: 0, records_pushed: 0, active: true, pulled: true, pushed: false,
  })
  const pushed = await call(stack, 'push', {
    token: alice.token,
    headers: h,
    body: { changes: { tasks: { ...empty, created: [{ id: `${alice.id}-1`, title: 'one', is_done: false }] } }, lastPulledAt: first.body.timestamp },
  })
  assert.equal(pushed.status, 200, pushed.text)
  assert.deepEqual(await deviceRow(alice.id, 'phone-1'), {
    client_id: 'phone-1', pushes: 1, records_pushed: 1, active: true, pulled: true, pushed: true,
  })
  // no echo: the device does not get its own push back; another device (and no device) does
  const mine = await call(stack, 'pull', { token: alice.token, body: { lastPulledAt: first.body.timestamp }, headers: h })
  assert.deepEqual(mine.body.changes.tasks.updated, [])
  const other = await call(stack, 'pull', { token: alice.token, body: { lastPulledAt: first.body.timestamp }, headers: { 'x-sync-client-id': 'laptop' } })
  assert.deepEqual(other.body.changes.tasks.updated.map((r) => r.id), [`${alice.id}-1`])
  // calls without the header are not recorded
  const before = await stack.sql(`SELECT count(*) FROM _pg_sync.clients WHERE user_id = '${alice.id}'`)
  await call(stack, 'pull', { token: alice.token, body: { lastPulledAt: null } })
  assert.equal(await stack.sql(`SELECT count(*) FROM _pg_sync.clients WHERE user_id = '${alice.id}'`), before)
})

test('Idempotency-Key: the same push again answers the stored result and applies nothing', async () => {
  const alice = await signedIn()
  const h = { 'x-sync-client-id': 'phone', 'idempotency-key': 'push-0001' }
  const first = await call(stack, 'pull', { token: alice.token, body: { lastPulledAt: null }, headers: h })
  const x = `${alice.id}-x`
  const body = {
    changes: { tasks: { ...empty, created: [{ id: x, title: 'once', is_done: false }] } },
    lastPulledAt: first.body.timestamp,
  }
  const one = await call(stack, 'push', { token: alice.token, headers: h, body })
  assert.equal(one.status, 200, one.text)
  assert.deepEqual(one.body, { created: 1, updated: 0, deleted: 0 })
  // the retry (same key, same document; even with a later token) is answered from the ledger
  const two = await call(stack, 'push', { token: alice.token, headers: h, body })
  assert.equal(two.status, 200, two.text)
  assert.equal(two.text, one.text)
  const later = await call(stack, 'pull', { token: alice.token, body: { lastPulledAt: null }, headers: h })
  const three = await call(stack, 'push', { token: alice.token, headers: h, body: { ...body, lastPulledAt: later.body.timestamp } })
  assert.equal(three.text, one.text)
  assert.equal(await writes(x), 1)
  assert.equal((await deviceRow(alice.id, 'phone')).pushes, 1)
  // the key as the IETF draft writes it, a quoted string, is the same key
  const quoted = await call(stack, 'push', { token: alice.token, headers: { ...h, 'idempotency-key': '"push-0001"' }, body })
  assert.equal(quoted.text, one.text)
  assert.equal(await writes(x), 1)

  // without the key, sending the push again is a new push: its record was written after its token
  const plain = await call(stack, 'push', { token: alice.token, headers: { 'x-sync-client-id': 'phone' }, body })
  assertError(plain, 409, 'SY001')
  assert.equal(await writes(x), 1)

  // the same key with another document: 400 SY006, nothing applied
  const other = await call(stack, 'push', {
    token: alice.token,
    headers: h,
    body: { changes: { tasks: { ...empty, updated: [{ id: x, title: 'changed' }] } }, lastPulledAt: later.body.timestamp },
  })
  assertError(other, 400, 'SY006')
  assert.equal(await stack.sql(`SELECT title FROM tasks WHERE id = '${x}'`), 'once')
  // keys are per device: another device may use the same key for its own push
  const laptop = await call(stack, 'push', {
    token: alice.token,
    headers: { 'x-sync-client-id': 'laptop', 'idempotency-key': 'push-0001' },
    body: { changes: { tasks: { ...empty, updated: [{ id: x, title: 'from the laptop' }] } }, lastPulledAt: later.body.timestamp },
  })
  assert.equal(laptop.status, 200, laptop.text)
  assert.equal(await stack.sql(`SELECT title FROM tasks WHERE id = '${x}'`), 'from the laptop')
})

test('a push that failed keeps nothing: its key applies the corrected push', async () => {
  const alice = await signedIn()
  const h = { 'x-sync-client-id': 'phone', 'idempotency-key': 'fix-me' }
  const first = await call(stack, 'pull', { token: alice.token, body: { lastPulledAt: null }, headers: h })
  const y = `${alice.id}-y`
  const bad = await call(stack, 'push', {
    token: alice.token,
    headers: h,
    body: { changes: { tasks: { ...empty, created: [{ id: y, title: 'bad', is_done: 'yes' }] } }, lastPulledAt: first.body.timestamp },
  })
  assertError(bad, 400, '42804')
  const good = await call(stack, 'push', {
    token: alice.token,
    headers: h,
    body: { changes: { tasks: { ...empty, created: [{ id: y, title: 'good', is_done: true }] } }, lastPulledAt: first.body.timestamp },
  })
  assert.equal(good.status, 200, good.text)
  assert.equal(await stack.sql(`SELECT title FROM tasks WHERE id = '${y}'`), 'good')
})

test('header values pg_sync or HTTP cannot carry: 400 22023, before anything runs', async () => {
  const alice = await signedIn()
  const body = { changes: { tasks: empty }, lastPulledAt: null }
  const bad = ['', ' ', 'two words', 'x'.repeat(256), 'caf\u00e9', 'tab\there']
  for (const value of bad) {
    for (const name of ['x-sync-client-id', 'idempotency-key']) {
      const res = await call(stack, 'push', { token: alice.token, headers: { [name]: value }, body })
      assertError(res, 400, '22023')
      assert.match(res.body.error, /255 visible ASCII characters/)
    }
    assertError(await call(stack, 'pull', { token: alice.token, headers: { 'x-sync-client-id': value }, body: { lastPulledAt: null } }), 400, '22023')
    assertError(await call(stack, 'status', { method: 'GET', token: alice.token, headers: { 'x-sync-client-id': value } }), 400, '22023')
  }
  assert.equal(await stack.sql(`SELECT count(*) FROM _pg_sync.clients WHERE user_id = '${alice.id}'`), '0')
  // 255 visible characters, any of them, are fine
  const longest = '!~'.repeat(127) + 'z'
  const ok = await call(stack, 'push', { token: alice.token, headers: { 'x-sync-client-id': longest, 'idempotency-key': longest }, body })
  assert.equal(ok.status, 200, ok.text)
  assert.ok(await deviceRow(alice.id, longest))
})

test('a deactivated device: 403 SY005 on pull and push, the user\'s other devices go on; reactivated, it syncs', async () => {
  const alice = await signedIn()
  const lost = { 'x-sync-client-id': 'lost-phone' }
  const laptop = { 'x-sync-client-id': 'laptop' }
  const first = await call(stack, 'pull', { token: alice.token, body: { lastPulledAt: null }, headers: lost })
  await call(stack, 'pull', { token: alice.token, body: { lastPulledAt: null }, headers: laptop })
  await asUser(alice.id, `SELECT sync_deactivate_client('lost-phone');`)

  assertError(await call(stack, 'pull', { token: alice.token, body: { lastPulledAt: first.body.timestamp }, headers: lost }), 403, 'SY005')
  const z = `${alice.id}-z`
  const refused = await call(stack, 'push', {
    token: alice.token,
    headers: { ...lost, 'idempotency-key': 'k' },
    body: { changes: { tasks: { ...empty, created: [{ id: z, title: 'from the lost phone', is_done: false }] } }, lastPulledAt: first.body.timestamp },
  })
  assertError(refused, 403, 'SY005')
  assert.match(refused.body.error, /lost-phone.*deactivated/)
  assert.equal(await stack.sql(`SELECT count(*) FROM tasks WHERE id = '${z}'`), '0')
  assert.equal((await call(stack, 'pull', { token: alice.token, body: { lastPulledAt: null }, headers: laptop })).status, 200)
  // another user's device of the same name is not affected
  const bob = await signedIn()
  assert.equal((await call(stack, 'pull', { token: bob.token, body: { lastPulledAt: null }, headers: lost })).status, 200)

  await asUser(alice.id, `SELECT sync_activate_client('lost-phone');`)
  const back = await call(stack, 'push', {
    token: alice.token,
    headers: { ...lost, 'idempotency-key': 'k' },
    body: { changes: { tasks: { ...empty, created: [{ id: z, title: 'from the lost phone', is_done: false }] } }, lastPulledAt: first.body.timestamp },
  })
  assert.equal(back.status, 200, back.text) // the refused push kept nothing, not even its key
  assert.equal(await stack.sql(`SELECT title FROM tasks WHERE id = '${z}'`), 'from the lost phone')
})

const STATUS_KEYS = ['devices', 'last_pull_at', 'last_push_at', 'open_conflicts', 'pending_changes', 'user_id']

test('GET .../status: sync_status() of the caller; only GET; needs a token with a user id', async () => {
  const alice = await signedIn()
  const fresh = await call(stack, 'status', { method: 'GET', token: alice.token })
  assert.equal(fresh.status, 200, fresh.text)
  assert.match(fresh.headers.get('content-type'), /application\/json/)
  assert.deepEqual(fresh.body, {
    user_id: alice.id, devices: 0, open_conflicts: 0, last_pull_at: null, last_push_at: null, pending_changes: null,
  })
  const first = await call(stack, 'pull', { token: alice.token, body: { lastPulledAt: null }, headers: { 'x-sync-client-id': 'phone' } })
  await call(stack, 'push', {
    token: alice.token,
    headers: { 'x-sync-client-id': 'phone' },
    body: { changes: { tasks: { ...empty, created: [{ id: `${alice.id}-s`, title: 's', is_done: false }] } }, lastPulledAt: first.body.timestamp },
  })
  await call(stack, 'pull', { token: alice.token, body: { lastPulledAt: null }, headers: { 'x-sync-client-id': 'laptop' } })
  const all = await call(stack, 'status', { method: 'GET', token: alice.token })
  assert.deepEqual(Object.keys(all.body).sort(), STATUS_KEYS)
  assert.equal(all.body.devices, 2)
  assert.equal(all.body.pending_changes, null) // no device named: nothing to count against
  for (const at of ['last_pull_at', 'last_push_at']) assert.ok(!Number.isNaN(Date.parse(all.body[at])), `${at}: ${all.body[at]}`)
  // a device the user never used: the user's counts, no pull or push of its own
  const unknown = await call(stack, 'status', { method: 'GET', token: alice.token, headers: { 'x-sync-client-id': 'tablet' } })
  assert.deepEqual(unknown.body, { ...all.body, last_pull_at: null, last_push_at: null, pending_changes: null })

  assertError(await call(stack, 'status', { method: 'POST', token: alice.token, body: {} }), 405, '0A000')
  assertError(await call(stack, 'status', { method: 'GET' }), 401, '28000')
  assertError(await call(stack, 'status', { method: 'GET', token: await stack.sign({ role: 'authenticated' }) }), 401, '28000')
  const wrongMethod = await call(stack, 'push', { method: 'GET', token: alice.token })
  assertError(wrongMethod, 405, '0A000')
  assert.equal(wrongMethod.headers.get('allow'), 'POST, OPTIONS')
})

// pg_sync bug: sync_status(client_id) of a device that holds a token fails with 42501 "permission
// denied for schema _pg_sync" for any role but the extension owner (extension/devices.c,
// pending_changes() prepares its count of _pg_sync.row_meta after sync_owner_leave(), with the
// caller's rights). README: pending_changes counts the changes that device has not pulled yet.
test('GET .../status with X-Sync-Client-Id of a device that pulled: its own pull, push and pending changes', async () => {
  const alice = await signedIn()
  const h = { 'x-sync-client-id': 'phone' }
  await call(stack, 'pull', { token: alice.token, body: { lastPulledAt: null }, headers: h })
  const upToDate = await call(stack, 'status', { method: 'GET', token: alice.token, headers: h })
  assert.equal(upToDate.status, 200, upToDate.text)
  assert.equal(upToDate.body.pending_changes, 0)
  await stack.sql(`INSERT INTO tasks (id, owner_id, title) VALUES ('${alice.id}-a', '${alice.id}', 'a'), ('${alice.id}-b', '${alice.id}', 'b')`)
  const behind = await call(stack, 'status', { method: 'GET', token: alice.token, headers: h })
  assert.equal(behind.body.pending_changes, 2)
})

test('CORS: a browser may send the device headers and GET', async () => {
  const res = await call(stack, 'status', {
    method: 'OPTIONS',
    headers: { origin: 'https://app.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'x-sync-client-id' },
  })
  assert.equal(res.status, 200)
  const allowed = res.headers.get('access-control-allow-headers').split(/,\s*/)
  for (const h of ['x-sync-client-id', 'idempotency-key', 'authorization', 'content-type']) assert.ok(allowed.includes(h), h)
  assert.deepEqual(res.headers.get('access-control-allow-methods').split(/,\s*/).sort(), ['GET', 'OPTIONS', 'POST'])
})
