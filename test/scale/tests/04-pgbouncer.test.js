// The edge function through PgBouncer in transaction pooling mode (Debian's pgbouncer, two server
// connections for the function's pool of ten): concurrent devices of several users converge, and
// PgBouncer really multiplexed (more client connections than server connections), so every call
// worked with whichever server session its transaction got: no session state.
// (run.sh also runs the whole end-to-end suite this way.)
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import path from 'node:path'
import { startStack, settle, assertConverged } from '../../e2e/lib/harness.js'

const PSQL = path.join(process.env.PG_BINDIR ?? execFileSync('pg_config', ['--bindir']).toString().trim(), 'psql')

let stack
before(async () => {
  process.env.PGSYNC_E2E_POOLER = 'pgbouncer'
  try {
    stack = await startStack()
  } finally {
    delete process.env.PGSYNC_E2E_POOLER
  }
})
after(async () => {
  await stack?.stop()
})

const admin = (command) =>
  execFileSync(PSQL, ['-X', '-A', '-F', '\t', '-h', '127.0.0.1', '-p', String(stack.pooler.port), '-U', 'postgres', '-d', 'pgbouncer', '-c', command])
    .toString().trim().split('\n')
const rows = (lines) => {
  const [head, ...rest] = lines
  const cols = head.split('\t')
  return rest.filter((l) => !/^\(\d+ rows?\)$/.test(l)).map((l) => Object.fromEntries(l.split('\t').map((v, i) => [cols[i], v])))
}

test('concurrent devices through PgBouncer in transaction mode converge; server connections are shared', async () => {
  const config = rows(admin('SHOW CONFIG'))
  assert.equal(config.find((r) => r.key === 'pool_mode').value, 'transaction')
  assert.equal(config.find((r) => r.key === 'default_pool_size').value, '2')

  const users = await Promise.all(['p', 'q', 'r', 's'].map((l) => stack.newUser(l)))
  const devices = []
  for (const u of users) for (let i = 0; i < 3; i++) devices.push(await stack.newDevice(u, `${u.label}${i}`))
  for (const d of devices) for (let i = 0; i < 2; i++) await d.create('tasks', { title: `${d.name} ${i}` })
  await stack.sql(`INSERT INTO projects (id, name) VALUES ('shared', 'for all')`)
  // all at once: the function opens several connections, PgBouncer gives them two server sessions
  await Promise.all(devices.map((d) => d.sync()))
  await settle(devices)
  await assertConverged(stack, devices)

  const clients = rows(admin('SHOW CLIENTS')).filter((r) => r.database === 'postgres')
  const servers = rows(admin('SHOW SERVERS')).filter((r) => r.database === 'postgres')
  assert.ok(servers.length <= 2, `${servers.length} server connections`)
  assert.ok(clients.length > servers.length, `${clients.length} client connections on ${servers.length} server connections`)
  const stats = rows(admin('SHOW STATS')).find((r) => r.database === 'postgres')
  console.log(`# ${clients.length} client connections of the function on ${servers.length} server connections, ${stats.total_xact_count} transactions`)
})
