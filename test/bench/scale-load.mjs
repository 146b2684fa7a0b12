// Load of many polling devices through the edge function, for test/bench/scale.sh. DEVICES
// devices of USERS users poll every INTERVAL seconds: an overall rate of DEVICES / INTERVAL
// requests per second, each request the next device's pull with the token of its previous pull;
// PUSH_SHARE of them are a push of one new record instead (created, so no conflict), which its
// user's other devices then pull. Several configurations (one edge function each) are measured in
// the same run, in turns, ROUNDS times, so that other work on the machine weighs on all alike:
//   warm-up: a first pull per user (every device of a user starts from that token), then
//   WARM_SECS of load on each configuration, unmeasured;
//   per round and configuration: PACED_SECS at the devices' rate, then SAT_SECS as fast as CONNS
//   connections go; requests/s, latency, CPU of each process tree, connections, checkpoints/s.
// Staleness: during the paced phases a probe user pushes a record and pulls until a pull returns
// it, every 2 s; the time from the push's answer to that pull's answer.
// A configuration whose ticker is set runs `SELECT sync_checkpoint()` on the primary once a
// second during its turns (what pg_cron does when only standbys serve pulls).
//
//   node scale-load.mjs --secret S --psql-primary "ARGS" --configs JSON
//   JSON: [{name, url, pids: {primary, standby?, pgbouncer?, function}, psqlStandby?, ticker?}]
// Prints one JSON object per configuration, one a line.
import autocannon from 'autocannon'
import { execFile, execFileSync } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { randomUUID } from 'node:crypto'
import { mintToken } from '../../examples/dev/token.mjs'

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : dflt
}
const SECRET = arg('secret')
const CONFIGS = JSON.parse(arg('configs'))
const ROUNDS = Number(process.env.ROUNDS ?? 3)
let URL_ = CONFIGS[0].url
const USERS = Number(process.env.USERS ?? 1000)
const DEVICES = Number(process.env.DEVICES ?? 10000)
const INTERVAL = Number(process.env.INTERVAL ?? 10)
const PUSH_SHARE = Number(process.env.PUSH_SHARE ?? 0.02)
const PACED_SECS = Number(process.env.PACED_SECS ?? 30)
const SAT_SECS = Number(process.env.SAT_SECS ?? 15)
const CONNS = Number(process.env.CONNS ?? 64)
const WARM_SECS = Number(process.env.WARM_SECS ?? 5)
const PSQL = process.env.PSQL ?? 'psql'

// --- processes: CPU time of a process tree (clock ticks -> seconds) ---------------------------
const TICK = 100
function procStat(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
    return { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / TICK }
  } catch {
    return null
  }
}
function treeCpu(root) {
  if (!root) return null
  const all = new Map()
  for (const e of readdirSync('/proc')) if (/^\d+$/.test(e)) {
    const st = procStat(e)
    if (st) all.set(Number(e), st)
  }
  const members = new Set([Number(root)])
  let grew = true
  while (grew) {
    grew = false
    for (const [pid, st] of all) if (!members.has(pid) && members.has(st.ppid)) members.add(pid), (grew = true)
  }
  let cpu = 0
  for (const pid of members) cpu += all.get(pid)?.cpu ?? 0
  return cpu
}
const cpuNow = (pids) => Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, treeCpu(p)]))

// --- SQL through psql (monitoring only) ----------------------------------------------------------
const psql = (args, sql) => execFileSync(PSQL, [...args.split(' '), '-X', '-At', '-c', sql]).toString().trim()
const primaryArgs = arg('psql-primary')
// client backends that ran something since `since` (a timestamp of the server's clock)
const backendsUsed = (args, since) =>
  Number(psql(args, `SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'
                       AND pid <> pg_backend_pid() AND (state <> 'idle' OR state_change >= '${since}')`))
const serverNow = () => psql(primaryArgs, 'SELECT now()')
const checkpoints = () => Number(psql(primaryArgs, 'SELECT count(*) FROM _pg_sync.checkpoints'))

// --- devices -----------------------------------------------------------------------------------
const users = Array.from({ length: USERS }, (_, i) => {
  const id = `user${String(i).padStart(5, '0')}`
  return { id, jwt: mintToken(SECRET, id), token: null }
})
const devices = Array.from({ length: DEVICES }, (_, i) => ({ user: users[i % USERS], token: null }))

async function post(route, jwt, body) {
  const res = await fetch(`${URL_}/${route}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  const text = await res.text()
  if (!res.ok) throw new Error(`${route}: ${res.status} ${text}`)
  return JSON.parse(text)
}

// warm-up: a first pull per user, 16 at a time
{
  let next = 0
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < USERS) {
      const u = users[next++]
      u.token = (await post('pull', u.jwt, { lastPulledAt: null })).timestamp
    }
  }))
  for (const d of devices) d.token = d.user.token
}

let cursor = 0
let pushes = 0
let pulledRows = 0
const statusCount = {}
function requestFor(context) {
  const d = devices[cursor++ % DEVICES]
  context.device = d
  if (Math.random() < PUSH_SHARE) {
    pushes++
    context.push = true
    const now = Date.now()
    const record = { id: randomUUID(), owner_id: d.user.id, title: 'from a device', is_done: false, created_at: now, updated_at: now }
    return { path: '/push', body: JSON.stringify({ changes: { tasks: { created: [record], updated: [], deleted: [] } }, lastPulledAt: d.token }), jwt: d.user.jwt }
  }
  context.push = false
  return { path: '/pull', body: JSON.stringify({ lastPulledAt: d.token }), jwt: d.user.jwt }
}

function load({ rate, seconds }) {
  const base = new URL(URL_)
  return new Promise((resolve, reject) => {
    const inst = autocannon({
      url: base.origin,
      connections: CONNS,
      duration: seconds,
      ...(rate ? { overallRate: rate } : {}),
      requests: [{
        method: 'POST',
        setupRequest: (req, context) => {
          const r = requestFor(context)
          return { ...req, path: base.pathname + r.path, body: r.body, headers: { ...req.headers, 'content-type': 'application/json', authorization: `Bearer ${r.jwt}` } }
        },
        onResponse: (status, body, context) => {
          statusCount[status] = (statusCount[status] ?? 0) + 1
          if (status !== 200 || context.push) return
          const m = /"timestamp":(\d+)\}$/.exec(body)
          if (m) context.device.token = Number(m[1])
          pulledRows += (body.match(/"id":/g) ?? []).length
        },
      }],
    }, (err, result) => (err ? reject(err) : resolve(result)))
    autocannon.track(inst, { renderProgressBar: false, renderResultsTable: false, renderLatencyTable: false })
  })
}

// staleness probe: push, then pull until the pushed record comes back
const probe = { user: { id: 'probe', jwt: mintToken(SECRET, 'probe') }, token: null, samples: [] }
let probing = false
async function probeLoop() {
  probe.token = (await post('pull', probe.user.jwt, { lastPulledAt: null })).timestamp
  while (probing) {
    const id = randomUUID()
    const now = Date.now()
    await post('push', probe.user.jwt, { changes: { tasks: { created: [{ id, owner_id: 'probe', title: 'probe', created_at: now, updated_at: now }], updated: [], deleted: [] } }, lastPulledAt: probe.token })
    const pushed = performance.now()
    for (;;) {
      const r = await post('pull', probe.user.jwt, { lastPulledAt: probe.token })
      probe.token = r.timestamp
      if (r.changes.tasks.updated.some((t) => t.id === id)) {
        probe.samples.push(performance.now() - pushed)
        break
      }
      if (!probing) break // the phase is over (and with it the ticker): no sample
      await new Promise((res) => setTimeout(res, 25))
    }
    await new Promise((res) => setTimeout(res, 2000))
  }
}

async function measured(config, phase, opts) {
  // (nothing here may block the event loop while the load runs: autocannon shares it)
  const ticker = config.ticker
    ? setInterval(() => execFile(PSQL, [...primaryArgs.split(' '), '-X', '-Atqc', 'SELECT sync_checkpoint()'], () => {}), 1000)
    : null
  const since = serverNow()
  for (const k of Object.keys(statusCount)) delete statusCount[k]
  pushes = 0
  pulledRows = 0
  const load0 = Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0])
  const ck0 = checkpoints()
  const cpu0 = cpuNow(config.pids)
  const t0 = performance.now()
  const r = await load(opts)
  const secs = (performance.now() - t0) / 1000
  const cpu1 = cpuNow(config.pids)
  const ck1 = checkpoints()
  if (ticker) clearInterval(ticker)
  const conn = {
    primary: backendsUsed(primaryArgs, since),
    standby: config.psqlStandby ? backendsUsed(config.psqlStandby, since) : 0,
  }
  return {
    phase,
    secs,
    offered_rps: opts.rate ?? null,
    requests: r.requests.total,
    p50_ms: r.latency.p50,
    p99_ms: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
    statuses: { ...statusCount },
    pushes,
    pulled_rows: pulledRows,
    checkpoints: ck1 - ck0,
    cpu_s: Object.fromEntries(Object.keys(cpu0).filter((k) => cpu0[k] !== null).map((k) => [k, cpu1[k] - cpu0[k]])),
    connections: conn,
    load1: load0,
  }
}

// per configuration: the slices of every round, then their sums and medians
const slices = Object.fromEntries(CONFIGS.map((c) => [c.name, { paced: [], saturation: [], staleness: [] }]))
// each function and its database connections warmed up first (unmeasured)
for (const config of CONFIGS) {
  URL_ = config.url
  await load({ seconds: WARM_SECS })
}
for (let round = 1; round <= ROUNDS; round++) {
  for (const config of CONFIGS) {
    URL_ = config.url
    probe.samples = []
    probing = true
    const probeDone = probeLoop()
    slices[config.name].paced.push(await measured(config, 'paced', { rate: DEVICES / INTERVAL, seconds: PACED_SECS }))
    probing = false
    await probeDone
    slices[config.name].staleness.push(...probe.samples)
    slices[config.name].saturation.push(await measured(config, 'saturation', { seconds: SAT_SECS }))
    const last = slices[config.name]
    console.error(`round ${round} ${config.name}: paced ${(last.paced.at(-1).requests / last.paced.at(-1).secs).toFixed(0)} req/s, saturation ${(last.saturation.at(-1).requests / last.saturation.at(-1).secs).toFixed(0)} req/s (load ${last.paced.at(-1).load1})`)
  }
}
const median = (xs) => {
  const v = xs.filter((x) => x !== null && x !== undefined).sort((a, b) => a - b)
  return v.length ? v[Math.floor((v.length - 1) / 2)] : null
}
function combine(list) {
  const secs = list.reduce((n, x) => n + x.secs, 0)
  const requests = list.reduce((n, x) => n + x.requests, 0)
  const cpu = {}
  for (const x of list) for (const [k, v] of Object.entries(x.cpu_s)) cpu[k] = (cpu[k] ?? 0) + v
  return {
    phase: list[0].phase,
    offered_rps: list[0].offered_rps,
    rps: requests / secs,
    requests,
    p50_ms: median(list.map((x) => x.p50_ms)),
    p99_ms: median(list.map((x) => x.p99_ms)),
    non2xx: list.reduce((n, x) => n + x.non2xx, 0),
    errors: list.reduce((n, x) => n + x.errors, 0),
    pushes: list.reduce((n, x) => n + x.pushes, 0),
    pulled_rows: list.reduce((n, x) => n + x.pulled_rows, 0),
    checkpoints_per_s: list.reduce((n, x) => n + x.checkpoints, 0) / secs,
    cpu_cores: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, v / secs])),
    connections: { primary: Math.max(...list.map((x) => x.connections.primary)), standby: Math.max(...list.map((x) => x.connections.standby)) },
    load1: list.map((x) => x.load1),
    slices: list,
  }
}
for (const config of CONFIGS) {
  const s = slices[config.name]
  const sorted = [...s.staleness].sort((a, b) => a - b)
  console.log(JSON.stringify({
    name: config.name,
    devices: DEVICES,
    users: USERS,
    interval_s: INTERVAL,
    push_share: PUSH_SHARE,
    conns: CONNS,
    rounds: ROUNDS,
    paced: combine(s.paced),
    saturation: combine(s.saturation),
    staleness_ms: { samples: sorted.length, p50: median(sorted), max: sorted.at(-1) ?? null },
  }))
}
process.exit(0)
