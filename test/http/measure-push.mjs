// Measures a push of N records through the edge function over HTTP: the request's time (client
// side, request sent to response read), the Deno process's CPU time per push (the share of the
// time that is the function's own, less noisy than wall time) and its memory (VmRSS before,
// VmHWM after).
//
//   node test/http/measure-push.mjs [--records 10000] [--runs 5] [--function-dir DIR]
//
// Each run pushes N new tasks (WatermelonDB raw records, with _status and _changed as a client
// sends them) for a fresh user, with a token from that user's first pull. A warm-up push of 10
// records runs first (connection pool, JIT). Prints one JSON line.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { randomUUID } from 'node:crypto'
import { startStack } from '../e2e/lib/harness.js'

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '10000' },
    runs: { type: 'string', default: '5' },
    'function-dir': { type: 'string' },
  },
})
const N = Number(values.records)
const RUNS = Number(values.runs)

function memory(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)[1])
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 }
}

// CPU time the process has used, in ms (utime + stime; clock ticks of 10 ms).
function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}

function records(n) {
  const now = Date.now()
  const created = []
  for (let i = 0; i < n; i++) {
    created.push({
      id: randomUUID().replaceAll('-', '').slice(0, 16),
      _status: 'created',
      _changed: '',
      owner_id: '',
      project_id: null,
      title: `task number ${i} with a title of ordinary length`,
      body: i % 3 === 0 ? null : 'a body of some words, as a user would type in a todo app',
      is_done: i % 2 === 0,
      position: i / 7,
      created_at: now,
      updated_at: now,
    })
  }
  return { tasks: { created, updated: [], deleted: [] }, projects: { created: [], updated: [], deleted: [] } }
}

const stack = await startStack(values['function-dir'] ? { functionDir: path.resolve(values['function-dir']) } : {})
try {
  const push = async (n) => {
    const user = await stack.newUser('bench')
    const { timestamp } = await stack.pull(user, null)
    const body = JSON.stringify({ changes: records(n), lastPulledAt: timestamp })
    const started = performance.now()
    const res = await fetch(`${stack.functionUrl}/push`, {
      method: 'POST',
      headers: { authorization: `Bearer ${user.token}`, 'content-type': 'application/json' },
      body,
    })
    const text = await res.text()
    const ms = performance.now() - started
    if (!res.ok) throw new Error(`push: HTTP ${res.status} ${text}`)
    const result = JSON.parse(text)
    if (result.created !== n) throw new Error(`push created ${result.created} of ${n}`)
    return { ms, bytes: Buffer.byteLength(body) }
  }
  await push(10)
  const idle = memory(stack.functionPid)
  const cpuBefore = cpuMs(stack.functionPid)
  const times = []
  let bytes = 0
  for (let i = 0; i < RUNS; i++) {
    const r = await push(N)
    times.push(r.ms)
    bytes = r.bytes
  }
  const after = memory(stack.functionPid)
  const cpuPerPush = (cpuMs(stack.functionPid) - cpuBefore) / RUNS
  times.sort((a, b) => a - b)
  console.log(
    JSON.stringify({
      records: N,
      body_mb: +(bytes / 1048576).toFixed(2),
      runs: RUNS,
      median_ms: +times[Math.floor(RUNS / 2)].toFixed(1),
      min_ms: +times[0].toFixed(1),
      max_ms: +times[RUNS - 1].toFixed(1),
      deno_cpu_ms_per_push: +cpuPerPush.toFixed(0),
      deno_rss_idle_mb: +idle.rss.toFixed(1),
      deno_peak_rss_mb: +after.hwm.toFixed(1),
      deno_peak_growth_mb: +(after.hwm - idle.rss).toFixed(1),
      deno_rss_after_mb: +after.rss.toFixed(1),
    }),
  )
} finally {
  await stack.stop()
}
