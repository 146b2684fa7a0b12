// Random and malformed push documents against sync_push: every call must end
// in a result or a clean SQL error, never in a crashed backend, and no push
// that failed may leave anything behind. Deterministic (seeded).
//   node test/fuzz/push-fuzz.mjs [count]   (PGHOST/PGPORT/PGUSER of a server with pg_sync)
import { spawnSync } from 'node:child_process'

const count = Number(process.argv[2] ?? 3000)
let seed = 20261121
const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648)
const pick = (xs) => xs[Math.floor(rnd() * xs.length)]

const scalars = [null, true, false, 0, -1, 1.5, 1e308, -1e-308, 9007199254740993, '', 'x', '"', "'; DROP TABLE fz; --",
  '\\u0000', 'é😀', '2024-01-01', '{"a":1}', '[1,2]', 'NaN', 'Infinity', '-0', 'a'.repeat(300), 12345678901234567890]
const keys = ['id', 'txt', 'n', 'f', 'b', 'ts', 'd', 'j', 'u', '_status', '_changed', 'nope', "x'y", 'a;b', '']
const lists = ['created', 'updated', 'deleted', 'other']
function value(depth) {
  const r = rnd()
  if (depth > 2 || r < 0.6) return pick(scalars)
  if (r < 0.8) return Array.from({ length: Math.floor(rnd() * 3) }, () => value(depth + 1))
  return Object.fromEntries(Array.from({ length: Math.floor(rnd() * 3) }, () => [pick(keys), value(depth + 1)]))
}
function record() {
  if (rnd() < 0.05) return value(1)
  const rec = {}
  for (let i = Math.floor(rnd() * 6); i > 0; i--) rec[pick(keys)] = value(1)
  if (rnd() < 0.9) rec.id = rnd() < 0.8 ? 'r' + Math.floor(rnd() * 40) : pick(scalars)
  return rec
}
function doc() {
  if (rnd() < 0.05) return value(0)
  const d = {}
  for (let i = Math.floor(rnd() * 3) + 1; i > 0; i--) {
    const table = rnd() < 0.8 ? 'fz' : pick(['fz2', 'public.fz', 'fz"', ''])
    if (rnd() < 0.05) { d[table] = value(1); continue }
    const entry = {}
    for (const l of lists) {
      if (rnd() < 0.3) continue
      if (l === 'other' && rnd() < 0.8) continue
      entry[l] = rnd() < 0.05 ? value(1)
        : Array.from({ length: Math.floor(rnd() * 4) }, () => (l === 'deleted' ? (rnd() < 0.8 ? 'r' + Math.floor(rnd() * 40) : value(1)) : record()))
    }
    d[table] = entry
  }
  return d
}

const q = (s) => "'" + s.replaceAll("'", "''") + "'"
let sql = `\\set ON_ERROR_STOP 0
\\set VERBOSITY terse
SET client_min_messages = error;
CREATE EXTENSION IF NOT EXISTS pg_sync;
DROP TABLE IF EXISTS fz CASCADE;
CREATE TABLE fz (id text PRIMARY KEY, txt text, n int CHECK (n <> 13), f float8, b boolean, ts timestamptz, d date, j jsonb, u uuid);
SELECT sync_register_table('fz');
CREATE TEMP TABLE t AS SELECT (sync_pull()::jsonb->>'timestamp')::bigint AS tok;
`
for (let i = 0; i < count; i++) {
  const text = rnd() < 0.03 ? JSON.stringify(doc()).slice(0, Math.floor(rnd() * 40)) : JSON.stringify(doc())
  const tok = rnd() < 0.8 ? '(SELECT tok FROM t)' : pick(['NULL', '0', '-5', '1', '9007199254740991'])
  sql += `SELECT sync_push(${q(text)}, ${tok}) IS NOT NULL;\n`
  if (i % 50 === 49) sql += `UPDATE t SET tok = (sync_pull(tok)::jsonb->>'timestamp')::bigint;\n`
}
sql += `SELECT 'fuzz done', count(*) FROM fz;
SELECT 'meta consistent', count(*) = 0 FROM fz WHERE NOT EXISTS (SELECT 1 FROM _pg_sync.row_meta m WHERE m.id = fz.id AND NOT m.deleted);
SELECT sync_unregister_table('fz'); DROP TABLE fz;
`
const r = spawnSync('psql', ['-X', '-q', '-At', '-d', process.env.PGDATABASE ?? 'postgres'], { input: sql, encoding: 'utf8', maxBuffer: 1 << 28 })
const out = r.stdout + r.stderr
if (process.env.FUZZ_VERBOSE) console.log(out.split('\n').filter((l) => l.startsWith('ERROR')).map((l) => l.replace(/"[^"]*"/g, '"…"').replace(/[0-9]+/g, 'N')).sort().reduce((m, l) => (m[l] = (m[l] ?? 0) + 1, m), {}))
const crashed = /server closed the connection|terminated abnormally|connection to server was lost/.test(out)
const ok = (out.match(/^t$/gm) ?? []).length
const errors = (out.match(/^ERROR:/gm) ?? []).length
const done = /fuzz done\|\d+/.test(out)
const consistent = /meta consistent\|t/.test(out)
console.log(`${count} pushes: ${ok} applied, ${errors} clean errors, crashed: ${crashed}, finished: ${done}, change records consistent: ${consistent}`)
process.exit(!crashed && done && consistent && ok > 0 && errors > 0 ? 0 : 1)
