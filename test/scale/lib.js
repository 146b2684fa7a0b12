// Helpers of the scale tests: the end-to-end harness's stack (a throwaway primary with pg_sync, the
// test schema, the edge function) plus a streaming hot standby of that primary
// (test/scale/topology.sh add-standby), whose URL the function gets as DATABASE_REPLICA_URL.
//
// Nothing here waits for time to pass: replay is awaited with a bounded poll of
// pg_last_wal_replay_lsn() against the end of a WAL record written on the primary, and a paused
// replay with a bounded poll of pg_get_wal_replay_pause_state().
import { execFileSync } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { startStack } from '../e2e/lib/harness.js'
import { run, portIsFree } from '../e2e/lib/proc.js'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const TOPOLOGY = path.join(HERE, 'topology.sh')
const PG_BINDIR = process.env.PG_BINDIR ?? execFileSync('pg_config', ['--bindir']).toString().trim()
const STANDBY_PORT_FIRST = Number(process.env.PGSYNC_SCALE_STANDBY_PORT ?? 56180)

export async function freePort(first) {
  for (let port = first; port < first + 20; port++) if (await portIsFree(port)) return port
  throw new Error(`no free port in ${first}..${first + 19}`)
}

// A database error as psql reports it with VERBOSITY sqlstate: {code} (null: it worked).
export class SqlError extends Error {
  constructor(code, text) {
    super(`SQLSTATE ${code}: ${text}`)
    this.code = code
  }
}

// psql against host (a socket directory) and port; rejects with SqlError carrying the SQLSTATE.
export async function psql(host, port, text) {
  try {
    const out = await run(
      path.join(PG_BINDIR, 'psql'),
      ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=sqlstate', '-h', host, '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-f', '-'],
      { input: `\\set VERBOSITY sqlstate\n${text}` },
    )
    return out.trim()
  } catch (e) {
    const m = /ERROR:\s+([0-9A-Z]{5})/.exec(e.stderr ?? '')
    if (m) throw new SqlError(m[1], e.stderr.trim())
    throw e
  }
}

// The harness's stack with a hot standby. options.delay: recovery_min_apply_delay of the standby
// from its start ('1h' keeps it at the state of its base backup for the whole test).
// options.beforeStandby(stack): runs on the primary before the base backup is taken.
export async function startTopology({ delay = '0', beforeStandby, functionEnv = {} } = {}) {
  const standbyPort = await freePort(STANDBY_PORT_FIRST)
  const stack = await startStack({
    functionEnv: { DATABASE_REPLICA_URL: `postgres://postgres@127.0.0.1:${standbyPort}/postgres`, ...functionEnv },
  })
  try {
    if (beforeStandby) await beforeStandby(stack)
    await run(TOPOLOGY, ['add-standby', stack.dir, String(stack.pgPort), String(standbyPort), delay])
  } catch (e) {
    await stopTopology(stack).catch(() => {})
    throw e
  }
  const sock = path.join(stack.dir, 'standby.sock')
  stack.standby = {
    port: standbyPort,
    sql: (text) => psql(sock, standbyPort, text),
    query: async (select) => JSON.parse(await psql(sock, standbyPort, `SELECT coalesce(json_agg(q), '[]') FROM (${select}) q;`)),
  }
  stack.primary = { sql: (text) => psql(stack.sock, stack.pgPort, text) }
  return stack
}

export async function stopTopology(stack) {
  await run(TOPOLOGY, ['stop', stack.dir]).catch(() => {})
  await stack.stop()
}

// Until the standby has replayed everything the primary has written so far.
export async function waitReplay(stack, { timeoutMs = 60_000 } = {}) {
  const target = await stack.primary.sql("SELECT pg_logical_emit_message(false, 'pg_sync', 'wait')")
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if ((await stack.standby.sql(`SELECT pg_last_wal_replay_lsn() >= '${target}'`)) === 't') return target
    if (Date.now() > deadline) throw new Error(`the standby did not replay ${target} within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

// Pauses replay on the standby and waits until it is paused; resume() lets it go on.
export async function pauseReplay(stack) {
  await stack.standby.sql('SELECT pg_wal_replay_pause()')
  const deadline = Date.now() + 60_000
  while ((await stack.standby.sql('SELECT pg_get_wal_replay_pause_state()')) !== 'paused') {
    if (Date.now() > deadline) throw new Error('replay did not pause')
    await new Promise((r) => setTimeout(r, 20))
  }
}
export const resumeReplay = (stack) => stack.standby.sql('SELECT pg_wal_replay_resume()')

// A pull through the edge function, raw: {status, body, code, servedBy}. primary: .../pull?primary
export async function httpPull(stack, user, lastPulledAt, { primary = false } = {}) {
  const res = await fetch(`${stack.functionUrl}/pull${primary ? '?primary' : ''}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${user.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ lastPulledAt, schemaVersion: 1, migration: null }),
  })
  const text = await res.text()
  const body = JSON.parse(text)
  return { status: res.status, body, code: body.code, servedBy: res.headers.get('x-sync-served-by') }
}

// A seeded PRNG (mulberry32): the same seed, the same interleaving.
export function prng(seed) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  next.int = (n) => Math.floor(next() * n)
  next.pick = (list) => list[next.int(list.length)]
  return next
}
