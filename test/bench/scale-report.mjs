// The results table of test/bench/scale.sh from scale-load.mjs's JSON files (one per configuration;
// the first is the baseline of the ratios).
import { readFileSync } from 'node:fs'

const runs = process.argv.slice(2).map((f) => JSON.parse(readFileSync(f, 'utf8')))
const base = runs[0]
const f = (x, d = 0) => (x === null || x === undefined ? '—' : Number(x).toFixed(d))
// CPU milliseconds per request of a process tree
const perReq = (p, k) => (p.cpu_cores[k] === undefined ? null : (p.cpu_cores[k] / p.rps) * 1000)
const pgPerReq = (p) => (perReq(p, 'primary') ?? 0) + (perReq(p, 'standby') ?? 0)
const r0 = runs[0]
console.log(`# Scale benchmark: ${r0.devices.toLocaleString('en')} devices of ${r0.users.toLocaleString('en')} users polling every ${r0.interval_s} s, ${r0.push_share * 100}% pushes\n`)
console.log('Paced: the devices\' rate (devices / interval). CPU in cores (CPU seconds per second) of each process tree; "ms/req": CPU milliseconds per request. Connections: the client backends used during the phase (PgBouncer: its server connections). Staleness: from a push\'s answer to the first pull that returns the record.\n')
console.log('| configuration | req/s (offered) | p50 / p99 ms | non-2xx | primary CPU (ms/req) | standby CPU (ms/req) | PgBouncer CPU | function CPU | PostgreSQL ms/req, ÷ primary only | primary ms/req ÷ primary only | connections primary / standby | checkpoints/s | staleness p50 / max ms |')
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|')
for (const r of runs) {
  const p = r.paced
  console.log(`| ${r.name} | ${f(p.rps)} (${f(p.offered_rps)}) | ${f(p.p50_ms)} / ${f(p.p99_ms)} | ${p.non2xx + p.errors} | ${f(p.cpu_cores.primary, 2)} (${f(perReq(p, 'primary'), 3)}) | ${p.cpu_cores.standby === undefined ? '—' : `${f(p.cpu_cores.standby, 2)} (${f(perReq(p, 'standby'), 3)})`} | ${f(p.cpu_cores.pgbouncer, 2)} | ${f(p.cpu_cores.function, 2)} | ${f(pgPerReq(p), 3)}, ${f(pgPerReq(p) / pgPerReq(base.paced), 2)}× | ${f(perReq(p, 'primary') / perReq(base.paced, 'primary'), 2)}× | ${p.connections.primary} / ${r.name === 'standby' ? p.connections.standby : '—'} | ${f(p.checkpoints_per_s, 1)} | ${f(r.staleness_ms.p50)} / ${f(r.staleness_ms.max)} (${r.staleness_ms.samples}) |`)
}
console.log('\nSaturation: the same mix as fast as the connections go.\n')
console.log('| configuration | req/s, ÷ primary only | p50 / p99 ms | non-2xx | primary CPU | standby CPU | PgBouncer CPU | function CPU | connections primary / standby | checkpoints/s |')
console.log('|---|---|---|---|---|---|---|---|---|---|')
for (const r of runs) {
  const p = r.saturation
  console.log(`| ${r.name} | ${f(p.rps)}, ${f(p.rps / base.saturation.rps, 2)}× | ${f(p.p50_ms)} / ${f(p.p99_ms)} | ${p.non2xx + p.errors} | ${f(p.cpu_cores.primary, 2)} | ${f(p.cpu_cores.standby, 2)} | ${f(p.cpu_cores.pgbouncer, 2)} | ${f(p.cpu_cores.function, 2)} | ${p.connections.primary} / ${r.name === 'standby' ? p.connections.standby : '—'} | ${f(p.checkpoints_per_s, 1)} |`)
}
