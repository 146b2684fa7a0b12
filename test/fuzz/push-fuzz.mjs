// Structure-aware fuzzing of sync_push and sync_pull through the server.
//
//   node test/fuzz/push-fuzz.mjs [CASES]     (default 5000; PGHOST/PGPORT/PGUSER[/PGPASSWORD]
//                                             of a server with pg_sync installed, as a superuser)
//   FUZZ_SEED=N        seed (default 20261121; FUZZ_SEED=random picks one); printed at the start
//   FUZZ_STRICT=1      also fail on documented-but-unenforced rules (see "divergences" below)
//   FUZZ_KEEP=1        keep the database pg_sync_fuzz afterwards (kept anyway on failure)
//   FUZZ_SERVER_LOG=F  the server's log file (default: found through pg_current_logfile() or
//                      data_directory/../server.log, as test/cluster.sh lays it out)
//   FUZZ_VERBOSE=1     print every failure in full and a line per 1000 cases
//
// A fresh database holds a schema with many column types (text, varchar, char,
// int2/4/8, numeric with and without typmod, float4/8, bool, timestamptz,
// timestamp, date, json, jsonb, uuid, int4[] and text[], a composite, an enum,
// domains with CHECKs, interval, generated and identity columns, NOT NULL,
// UNIQUE, CHECK and a foreign key) on per-user tables (text and uuid owners)
// and shared ones (client_wins, server_wins, pull-only, row-level security).
// Each case is generated from its own random stream (seed, case number): a
// valid WatermelonDB push document mutated structurally (keys dropped or
// doubled, values of another kind, extreme numbers, long and odd strings,
// lone surrogates and \u0000, ids repeated across lists and tables or of the
// wrong kind, unknown tables and columns, _status/_changed, deep nesting, big
// arrays and batches, byte-level corruption of the text), or a pull with
// mutated arguments (tokens: none, fresh, stale, pruned, never issued,
// negative, 2^53...; schema_version; migration documents; user_id or JWT
// claims; roles trusted or not; client_id; read-only and repeatable-read
// transactions), plus savepoints around pushes, statement timeouts, lowered
// limits, pushes sent again with their push_id (or another document under
// it), devices deactivated and activated, sync_prune, sync_checkpoint and
// plain SQL writes in between.
//
// Oracle, per case:
// - the backend survives (the connection is never lost, no FATAL/PANIC);
// - a failure is a clean SQLSTATE from the allowed list (never XX000, never
//   "cache lookup failed" or the like);
// - a failed call (and every pull) leaves the synced tables, pg_sync's
//   change records and the push ledger exactly as they were; a push that
//   wrote and rejected nothing leaves the tables and change records too;
//   ROLLBACK TO a savepoint taken before a push leaves them as before; a push
//   sent again with its push_id returns the first result and changes
//   nothing, another document under a used push_id is refused;
// - shape: a document that breaks the documented shape fails as a malformed
//   document (22023/22P02/54000), a well-formed one never does;
// - a successful push wrote only to synced, pushable tables, deleted nothing
//   without a token, and the pull that follows it returns its records with
//   the values it sent, as the documented value mapping says (numbers exactly,
//   timestamps to the microsecond, jsonb by value, other types through their
//   text form as the server itself casts them), owners set to the caller;
//   values the mapping refuses (a fraction for an integer, a number for a
//   text column...) must have failed the push;
// - pulls: the documented shape, every registered table once, ids once,
//   owners equal to the caller, a token in [1, 2^53); a token the server
//   issued is never SY003 and, unless sync_prune ran since, never SY002; a
//   never-issued one (negative, below the lineage, beyond 2^53) always fails;
//   pulling again at once with the new token returns nothing; records pushed
//   to a pull-only table are all rejected and come back in the next pull;
//   a deactivated device is refused (SY005), an active one never is;
// - at the end: sync_verify() reports no problem and the server log of the
//   run has no "terminated by signal" (nor PANIC, TRAP, crash recovery).
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { PgConn, ConnectionLost } from './pgwire.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const N = Number(process.argv[2] ?? 5000)
const SEED = process.env.FUZZ_SEED === 'random'
  ? (Math.random() * 2 ** 31) >>> 0
  : Number(process.env.FUZZ_SEED ?? 20261121) >>> 0
const STRICT = !!process.env.FUZZ_STRICT
const VERBOSE = !!process.env.FUZZ_VERBOSE
const DB = process.env.FUZZ_DB ?? 'pg_sync_fuzz'
const PG = {
  host: process.env.PGHOST ?? '/var/run/postgresql',
  port: process.env.PGPORT ?? '5432',
  user: process.env.PGUSER ?? 'postgres',
  password: process.env.PGPASSWORD,
}
const MAX53 = 2n ** 53n - 1n

// ---------------------------------------------------------------- randomness

function mulberry32(a) {
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
class Rng {
  constructor(seed, stream) {
    let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(stream + 0x632be5ab, 0xc2b2ae35)
    h ^= h >>> 16
    this.f = mulberry32(h)
    for (let i = 0; i < 4; i++) this.f()
  }
  next() { return this.f() }
  int(n) { return Math.floor(this.f() * n) }
  range(a, b) { return a + this.int(b - a + 1) }
  chance(p) { return this.f() < p }
  pick(xs) { return xs[this.int(xs.length)] }
  digits(n) { let s = ''; for (let i = 0; i < n; i++) s += this.int(10); return s }
}

// ---------------------------------------------------------------- JSON as sent: an AST

// o: object with ordered entries (duplicates allowed); a: array; s: string;
// n: number lexeme exactly as sent; b: boolean; z: null; raw: text sent verbatim
const O = (entries) => ({ k: 'o', e: entries })
const A = (items) => ({ k: 'a', v: items })
const S = (v) => ({ k: 's', v })
const Nm = (v) => ({ k: 'n', v: String(v) })
const B = (v) => ({ k: 'b', v })
const Z = () => ({ k: 'z' })
const Raw = (v, depth = 0) => ({ k: 'raw', v, depth })

function ser(n) {
  switch (n.k) {
    case 'o': return '{' + n.e.map(([k, v]) => JSON.stringify(k) + ':' + ser(v)).join(',') + '}'
    case 'a': return '[' + n.v.map(ser).join(',') + ']'
    case 's': return JSON.stringify(n.v)
    case 'n': return n.v
    case 'b': return n.v ? 'true' : 'false'
    case 'z': return 'null'
    case 'raw': return n.v
  }
  throw new Error('bad node ' + n.k)
}
const get = (o, key) => { let r; for (const [k, v] of o.e) if (k === key) r = v; return r }

// A JSON reader that keeps numbers as their text ({$n: "..."}) for exact comparison.
function parseJson(text) {
  let p = 0
  const ws = () => { while (p < text.length && ' \t\n\r'.includes(text[p])) p++ }
  const val = () => {
    ws()
    const c = text[p]
    if (c === '{') {
      p++; const o = Object.create(null); ws()
      if (text[p] === '}') { p++; return o }
      for (;;) {
        ws(); const k = str(); ws()
        if (text[p++] !== ':') throw new Error('expected : at ' + p)
        o[k] = val(); ws()
        if (text[p] === ',') { p++; continue }
        if (text[p++] !== '}') throw new Error('expected } at ' + p)
        return o
      }
    }
    if (c === '[') {
      p++; const a = []; ws()
      if (text[p] === ']') { p++; return a }
      for (;;) {
        a.push(val()); ws()
        if (text[p] === ',') { p++; continue }
        if (text[p++] !== ']') throw new Error('expected ] at ' + p)
        return a
      }
    }
    if (c === '"') return str()
    if (text.startsWith('true', p)) { p += 4; return true }
    if (text.startsWith('false', p)) { p += 5; return false }
    if (text.startsWith('null', p)) { p += 4; return null }
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(p, p + 100000))
    if (!m) throw new Error('bad JSON at ' + p)
    p += m[0].length
    return { $n: m[0] }
  }
  const str = () => {
    if (text[p] !== '"') throw new Error('expected string at ' + p)
    let end = p + 1
    while (text[end] !== '"') { if (text[end] === '\\') end++; end++; if (end > text.length) throw new Error('open string') }
    const s = JSON.parse(text.slice(p, end + 1))
    p = end + 1
    return s
  }
  const v = val(); ws()
  if (p !== text.length) throw new Error('trailing text at ' + p)
  return v
}
const isNum = (v) => v !== null && typeof v === 'object' && '$n' in v

// ---------------------------------------------------------------- exact decimals

function dec(raw) {
  const m = /^(-)?(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(raw)
  if (!m) return null
  let d = (m[2] + (m[3] ?? '')).replace(/^0+/, '')
  let exp = Number(m[4] ?? 0) - (m[3] ?? '').length
  if (!d) return { neg: false, d: '0', exp: 0 }
  const tz = d.length - d.replace(/0+$/, '').length
  d = d.slice(0, d.length - tz); exp += tz
  return { neg: !!m[1], d, exp }
}
const decKey = (x) => (x.d === '0' ? '0' : (x.neg ? '-' : '') + x.d + 'e' + x.exp)
const pow10 = (k) => 10n ** BigInt(k)
// the integer value, or null when not integral or absurdly large
function decInt(x) {
  if (x.d === '0') return 0n
  if (x.exp < 0 || x.exp + x.d.length > 400) return null
  return (x.neg ? -1n : 1n) * BigInt(x.d) * pow10(x.exp)
}
// round(value * 10^scale), half away from zero (numeric's rounding); null when absurd
function decScaled(x, scale) {
  if (x.d === '0') return 0n
  const e = x.exp + scale
  if (e + x.d.length > 400) return null
  let v
  if (e >= 0) v = BigInt(x.d) * pow10(e)
  else if (-e > x.d.length + 1) v = 0n
  else {
    const den = pow10(-e), num = BigInt(x.d)
    v = num / den
    if (2n * (num % den) >= den) v += 1n
  }
  return x.neg ? -v : v
}
const floorDiv = (a, b) => { const q = a / b; return (a % b !== 0n && (a < 0n) !== (b < 0n)) ? q - 1n : q }
// floor(value / d) for a positive BigInt d; null when absurd
function decFloorDiv(x, d) {
  if (x.d === '0') return 0n
  if (x.exp + x.d.length > 400) return null
  if (x.exp + x.d.length < -400) return x.neg ? -1n : 0n // |value| < 1: floors to 0 or -1
  const sign = x.neg ? -1n : 1n
  if (x.exp >= 0) return floorDiv(sign * BigInt(x.d) * pow10(x.exp), d)
  return floorDiv(sign * BigInt(x.d), d * pow10(-x.exp))
}
const sigDigits = (raw) => (dec(raw)?.d.length ?? 0)

// canonical text of a JSON value (parsed or AST) for comparison by value (jsonb)
function canon(v) {
  if (v === null) return 'z'
  if (typeof v === 'boolean') return 'b' + v
  if (typeof v === 'string') return 's' + JSON.stringify(v)
  if (isNum(v)) return 'n' + decKey(dec(v.$n))
  if (Array.isArray(v)) return '[' + v.map(canon).join(',') + ']'
  return '{' + Object.keys(v).sort().map((k) => JSON.stringify(k) + ':' + canon(v[k])).join(',') + '}'
}
function astValue(n) {
  switch (n.k) {
    case 'o': { const o = Object.create(null); for (const [k, v] of n.e) o[k] = astValue(v); return o }
    case 'a': return n.v.map(astValue)
    case 's': return n.v
    case 'n': return { $n: n.v }
    case 'b': return n.v
    case 'z': return null
    case 'raw': return parseJson(n.v)
  }
}
const utf8len = (s) => Buffer.byteLength(s, 'utf8')
const badString = (s) => /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s)

// ---------------------------------------------------------------- the schema

const SETUP = `
CREATE EXTENSION pg_sync;
CREATE TYPE fz_pair AS (a int, b text);
CREATE TYPE fz_mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN fz_pos AS int CHECK (VALUE > 0);
CREATE DOMAIN fz_code AS text CHECK (VALUE ~ '^[A-Z]{2,4}$');
CREATE DOMAIN fz_small AS int4 CHECK (VALUE BETWEEN -1000 AND 1000);
CREATE TABLE fz_shared (id uuid PRIMARY KEY, title text, qty int4, price numeric(10,2),
  hidden boolean NOT NULL DEFAULT false, meta jsonb, day date);
CREATE TABLE fz_items (
  id text PRIMARY KEY, owner_id text,
  t text, vc varchar(12), ch char(3),
  i2 int2, i4 int4, i8 int8, num numeric, num2 numeric(8,2),
  f4 float4, f8 float8, b boolean,
  ts timestamptz, tsn timestamp, d date,
  j json, jb jsonb, u uuid,
  ia int4[], ta text[], pr fz_pair, mood fz_mood, pos fz_pos, code fz_code, iv interval,
  n_req int NOT NULL DEFAULT 0 CHECK (n_req <> 13),
  _status text, _changed text);
CREATE TABLE fz_notes (id int8 PRIMARY KEY, owner uuid, body text, pinned boolean DEFAULT false,
  at timestamptz, tags text[], score float8, gen int GENERATED ALWAYS AS (length(body)) STORED);
CREATE TABLE fz_srv (k fz_small PRIMARY KEY, id text DEFAULT 'not synced', label text UNIQUE,
  parent uuid REFERENCES fz_shared (id) ON DELETE SET NULL, w real CHECK (w IS NULL OR w >= 0),
  seq int GENERATED ALWAYS AS IDENTITY);
CREATE TABLE fz_auto (id int8 GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text);
CREATE TABLE fz_ro (id text PRIMARY KEY, v text);
CREATE TABLE fz_plain (id text PRIMARY KEY, v text);
SELECT sync_register_table('fz_shared', conflict_policy => 'client_wins');
SELECT sync_register_table('fz_items', owner_column => 'owner_id');
SELECT sync_register_table('fz_notes', owner_column => 'owner', conflict_policy => 'client_wins');
SELECT sync_register_table('fz_srv', conflict_policy => 'server_wins', options => '{"name": "srv"}');
SELECT sync_register_table('fz_auto');
SELECT sync_register_table('fz_ro', options => '{"pull_only": true}');
INSERT INTO fz_ro SELECT 'ro' || g, 'v' || g FROM generate_series(1, 5) g;
ALTER TABLE fz_shared ENABLE ROW LEVEL SECURITY;
CREATE POLICY fz_visible ON fz_shared FOR ALL TO fz_app, fz_anon USING (NOT hidden) WITH CHECK (true);
GRANT USAGE ON SCHEMA public TO fz_app, fz_anon;
GRANT SELECT, INSERT, UPDATE, DELETE ON fz_items, fz_notes, fz_shared, fz_srv, fz_auto TO fz_app, fz_anon;
REVOKE INSERT, UPDATE, DELETE ON fz_srv FROM fz_anon;
GRANT SELECT ON fz_ro, fz_plain TO fz_app, fz_anon;
-- the state a failed call must leave untouched: rows, live change records, tombstones
CREATE FUNCTION fz_state() RETURNS text LANGUAGE sql SECURITY DEFINER AS $$
  SELECT concat_ws('|',
    (SELECT md5(coalesce(string_agg(x, ',' ORDER BY x), '')) FROM (
        SELECT 'i' || t::text AS x FROM fz_items t UNION ALL SELECT 'n' || t::text FROM fz_notes t
        UNION ALL SELECT 's' || t::text FROM fz_shared t UNION ALL SELECT 'v' || t::text FROM fz_srv t
        UNION ALL SELECT 'a' || t::text FROM fz_auto t UNION ALL SELECT 'r' || t::text FROM fz_ro t
        UNION ALL SELECT 'm' || m::text FROM _pg_sync.row_meta m WHERE NOT m.deleted) s),
    (SELECT md5(coalesce(string_agg(m::text, ',' ORDER BY m::text), '')) FROM _pg_sync.row_meta m WHERE m.deleted),
    (SELECT count(*) FROM _pg_sync.row_meta)::text,
    (SELECT md5(coalesce(string_agg(concat_ws(' ', l.user_id, l.client_id, l.push_id, encode(l.payload_hash, 'hex'), l.result::text), ',' ORDER BY l.user_id, l.client_id, l.push_id), ''))
       FROM _pg_sync.push_ledger l))
$$;
-- what a pull must send for a string pushed to a column of this type (the
-- server's own cast), or NULL when the type refuses it
CREATE FUNCTION fz_expect(v text, kind text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
  IF kind = 'timestamptz' THEN
    SELECT CASE WHEN isfinite(v::timestamptz) THEN floor(extract(epoch FROM v::timestamptz) * 1000)::text ELSE 'null' END INTO r;
  ELSIF kind = 'timestamp' THEN
    SELECT CASE WHEN isfinite(v::timestamp) THEN floor(extract(epoch FROM v::timestamp) * 1000)::text ELSE 'null' END INTO r;
  ELSIF kind = 'date' THEN
    SELECT CASE WHEN isfinite(v::date) THEN ((v::date - date '1970-01-01')::bigint * 86400000)::text ELSE 'null' END INTO r;
  ELSE
    EXECUTE format('SELECT to_json(format(''%%s'', $1::%s))::text', kind) INTO r USING v;
  END IF;
  RETURN r;
EXCEPTION WHEN OTHERS THEN
  RETURN NULL;
END
$$;
`

// column kinds: how values are generated and what a pull must return
//   text varchar12 int2 int4 int8 pos numeric num8_2 num10_2 float4 float8 bool
//   tstz ts date json jsonb pool:<type>
const TABLES = {
  fz_shared: { key: 'id', keyKind: 'uuid', owner: null, policy: 'client_wins', pushable: true,
    cols: { title: 'text', qty: 'int4', price: 'num10_2', hidden: 'bool', meta: 'jsonb', day: 'date' } },
  fz_items: { key: 'id', keyKind: 'text', owner: 'owner_id', ownerKind: 'text', policy: 'abort', pushable: true,
    cols: { t: 'text', vc: 'varchar12', ch: 'pool:char(3)', i2: 'int2', i4: 'int4', i8: 'int8', num: 'numeric',
      num2: 'num8_2', f4: 'float4', f8: 'float8', b: 'bool', ts: 'tstz', tsn: 'ts', d: 'date', j: 'json', jb: 'jsonb',
      u: 'pool:uuid', ia: 'pool:int4[]', ta: 'pool:text[]', pr: 'pool:fz_pair', mood: 'pool:fz_mood', pos: 'pos',
      code: 'pool:fz_code', iv: 'pool:interval', n_req: 'nreq' } },
  fz_notes: { key: 'id', keyKind: 'int', owner: 'owner', ownerKind: 'uuid', policy: 'client_wins', pushable: true,
    cols: { body: 'text', pinned: 'bool', at: 'tstz', tags: 'pool:text[]', score: 'float8' }, readonly: { gen: 'int' } },
  srv: { key: 'k', keyKind: 'small', owner: null, policy: 'server_wins', pushable: true,
    cols: { label: 'text', parent: 'pool:uuid', w: 'float4' }, readonly: { seq: 'int' } },
  fz_auto: { key: 'id', keyKind: 'int', owner: null, policy: 'abort', pushable: true, cols: { v: 'text' } },
  fz_ro: { key: 'id', keyKind: 'text', owner: null, policy: 'abort', pushable: false, cols: { v: 'text' } },
}
const REGISTERED = Object.keys(TABLES)
const UNKNOWN_TABLES = ['fz_plain', 'fz_srv', 'nope', '', 'public.fz_items', 'FZ_ITEMS', 'fz_items ', 'tâble', '_pg_sync.row_meta']

const uuidN = (i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`
const IDS = {
  text: [...Array.from({ length: 40 }, (_, i) => 'i' + i), 'x'.repeat(255), 'é'.repeat(127) + 'a', '😀', 'a b', "it's", '\\', 'I1', 'ⅰ'],
  int: Array.from({ length: 40 }, (_, i) => String(i + 1)),
  uuid: Array.from({ length: 30 }, (_, i) => uuidN(i + 1)),
  small: Array.from({ length: 40 }, (_, i) => String(i + 1)),
}
const ODD_IDS = {
  text: ['', ' ', 'é'.repeat(128), 'x'.repeat(256), '\u0000x', '\ud800'],
  int: ['007', ' 7 ', '+7', '-1', '0', '9223372036854775807', '9223372036854775808', '1e3', 'abc', '1.0', '', '٣'],
  uuid: [uuidN(1).toUpperCase(), `{${uuidN(2)}}`, uuidN(3).replaceAll('-', ''), 'not-a-uuid', '', uuidN(4) + ' '],
  small: ['1001', '-1000', '0', 'x', '01', '2147483648'],
}

const USERS = ['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11',
  '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002', 'f47ac10b-58cc-4372-a567-0e02b2c3d479']
const BAD_USERS = ['user-1', '', 'x'.repeat(256), 'é'.repeat(128), "o'brien", `{${USERS[2]}}`, 'é'.repeat(127) + 'a']

function canonUuid(s) {
  const h = s.replace(/^\{|\}$/g, '').replaceAll('-', '')
  if (!/^[0-9a-fA-F]{32}$/.test(h) || s.trim() !== s) return null
  const l = h.toLowerCase()
  return `${l.slice(0, 8)}-${l.slice(8, 12)}-${l.slice(12, 16)}-${l.slice(16, 20)}-${l.slice(20)}`
}
// the id a pull sends for a pushed id (the key type's output), or null if unknown
function canonId(kind, id) {
  if (kind === 'text') return id
  if (kind === 'uuid') return canonUuid(id)
  if (/^\s*[+-]?\d+\s*$/.test(id)) return String(BigInt(id.trim()))
  return null
}

// ---------------------------------------------------------------- values

const TEXTS = ['', 'a', 'hello world', 'é', 'naïve café', '😀🎉', '日本語', 'עברית', 'e\u0301', '\t\n\r', '"quoted"', "it's",
  '\\back\\slash', '<script>', "'; DROP TABLE fz_items; --", 'NULL', 'null', '{"a":1}', '[1,2]', '\u2028\u2029', '\ufeff',
  '\u007f', '%s%n', '$1', 'x'.repeat(300), ' trailing ', 'ǅ', '\u00a0']
const NUMS = ['0', '-0', '1', '-1', '12.0', '1e3', '1E+3', '1.5', '-1.5e-7', '0.1', '100e-2', '32767', '32768', '-32768',
  '-32769', '2147483647', '2147483648', '-2147483648', '9223372036854775807', '9223372036854775808', '-9223372036854775808',
  '-9223372036854775809', '9007199254740993', '18446744073709551616', '1e400', '-1e400', '1e-400', '4.9e-324', '2.4e-324',
  '1.7976931348623157e308', '1.8e308', '3.4028235e38', '3.5e38', '1.4e-45', '1e-46', '123456789012345678901234567890',
  '0.000000000000000000000000000001', '1e1000', '1e1001', '1e-1000', '1e131072', '9.999999999999999999e15',
  '1700000000000', '1700000000000.5', '1700000000000.0005', '1700000000000.0015', '-62135596800000', '9224318016000000',
  '-210866803200000', '86399999.9995', '-0.0005', '13', '999999.99', '999999.995', '1000000', '0e0', '-0.0e-5']
const POOLS = {
  'uuid': [...IDS.uuid.slice(0, 8), uuidN(1).toUpperCase(), `{${uuidN(2)}}`, uuidN(3).replaceAll('-', ''), 'not-a-uuid', ''],
  'int4[]': ['{1,2,3}', '{}', '{NULL}', '{{1,2},{3,4}}', '{ 1 , 2 }', '[0:1]={7,8}', '{1,', 'abc', '{2147483648}', '{"1"}', '{{1},{2,3}}'],
  'text[]': ['{a,b}', '{"a b","c,d"}', '{}', '{NULL,"NULL"}', '{"\\""}', 'x', '{é,😀}', '{{a},{b}}', '{a,{b}}', '{""}'],
  'fz_pair': ['(1,x)', '(,)', '(1,"a,b")', '( 2 , y )', '(1)', '(x,1)', '(1,x,3)', '()', '(2147483648,a)', '(3,"")'],
  'fz_mood': ['sad', 'ok', 'happy', 'angry', 'SAD', ''],
  'fz_code': ['AB', 'ABCD', 'XYZ', 'abc', 'A', 'ABCDE', ''],
  'interval': ['1 day', '1 mon 2 days 03:04:05', 'P1Y2M3DT4H5M6S', '-1 year', '00:00:00.000001', '178000000 years', 'garbage', ''],
  'char(3)': ['ab', 'abc', 'abcd', 'ab  ', 'a', '', 'é', 'éèê', 'abc   ', 'x y'],
  'timestamptz': ['2024-01-01T00:00:00Z', '2024-02-29 12:34:56.789+02', '2024-02-29 12:34:56.7891234+02', 'epoch', 'infinity',
    '-infinity', '1970-01-01', '294276-12-31 23:59:59Z', '294277-01-01', '4713-11-24 BC', 'J2451187', 'Jan 8 1999 04:05:06 PST',
    '2024-13-01', 'garbage', ''],
  'date': ['2024-02-29', '2023-02-29', 'infinity', '-infinity', 'epoch', '5874897-12-31', '5874898-01-01', '4714-11-24 BC',
    '4714-11-23 BC', '1999-01-08', 'January 8, 1999', '99-01-08', ''],
}
POOLS.timestamp = POOLS.timestamptz
const POOL_OF = { tstz: 'timestamptz', ts: 'timestamp', date: 'date' }

function genText(r) {
  const x = r.next()
  if (x < 0.5) return r.pick(TEXTS)
  if (x < 0.8) return Array.from({ length: r.int(20) }, () => String.fromCharCode(32 + r.int(95))).join('')
  if (x < 0.9) return Array.from({ length: r.int(12) }, () => String.fromCodePoint(r.pick([0xe9, 0x4e2d, 0x1f600, 0x5d0, 0x301, 0x200b, 0x3000 + r.int(100)]))).join('')
  if (x < 0.96) return 'y'.repeat(r.pick([255, 256, 1000, 10000, 100000]))
  return r.pick(['bad\u0000nul', 'lone \ud800 high', 'lone \udc00 low', '\udbff\udfff ok pair'])
}
function genNumber(r) {
  const x = r.next()
  if (x < 0.55) return r.pick(NUMS)
  if (x < 0.7) return (r.chance(0.3) ? '-' : '') + (r.int(9) + 1) + r.digits(r.int(25))
  if (x < 0.85) return (r.chance(0.3) ? '-' : '') + r.digits(1 + r.int(8)).replace(/^0+(?=\d)/, '') + '.' + r.digits(1 + r.int(10))
  return (r.chance(0.3) ? '-' : '') + (r.int(9) + 1) + (r.chance(0.5) ? '.' + r.digits(1 + r.int(5)) : '') + r.pick(['e', 'E']) + r.pick(['', '+', '-']) + r.int(r.chance(0.8) ? 30 : 2000)
}
function genPoolString(r, type) {
  return r.chance(0.9) ? r.pick(POOLS[type]) : genText(r)
}
function genJsonDoc(r, depth = 0) {
  const x = r.next()
  if (depth > 3 || x < 0.4) return r.pick([S(genText(r)), Nm(genNumber(r)), B(r.chance(0.5)), Z()])
  if (x < 0.7) return A(Array.from({ length: r.int(4) }, () => genJsonDoc(r, depth + 1)))
  return O(Array.from({ length: r.int(4) }, () => [r.pick(['a', 'b', 'k', '', 'é', 'a']), genJsonDoc(r, depth + 1)]))
}
// a value for a column of this kind: usually one the mapping accepts
function genValue(r, kind) {
  if (r.chance(0.06)) return Z()
  if (r.chance(0.04)) return genAny(r)
  switch (kind) {
    case 'text': case 'varchar12': return S(genText(r))
    case 'int2': case 'int4': case 'int8': case 'pos': case 'numeric': case 'num8_2': case 'num10_2':
    case 'float4': case 'float8': case 'int':
      return Nm(r.chance(0.5) ? String(r.range(-1000, 100000)) : genNumber(r))
    case 'nreq': return Nm(r.pick(['0', '1', '13', '12.0', '1e1']))
    case 'bool': return r.chance(0.85) ? B(r.chance(0.5)) : Nm(r.pick(['0', '1', '2', '-0', '1.0']))
    case 'tstz': case 'ts': case 'date':
      if (r.chance(0.3)) return S(genPoolString(r, POOL_OF[kind]))
      return Nm(r.chance(0.5) ? String(1700000000000 + r.range(-1e9, 1e9)) : r.chance(0.5) ? `${1700000000000 + r.int(1e6)}.${r.digits(r.range(1, 6))}` : genNumber(r))
    case 'json': case 'jsonb':
      if (r.chance(0.5)) return genJsonDoc(r)
      return S(r.chance(0.8) ? ser(genJsonDoc(r)) : r.pick(['{', '{"a":1,"a":2}', '"\\u0000"', '[1,2', 'nul', '1e400', '{"a":"\\ud800"}', '']))
  }
  if (kind.startsWith('pool:')) return S(genPoolString(r, kind.slice(5)))
  throw new Error('kind ' + kind)
}
function genAny(r) {
  const x = r.int(7)
  return [() => S(genText(r)), () => Nm(genNumber(r)), () => B(r.chance(0.5)), () => Z(),
    () => O([['a', Nm('1')]]), () => A([Nm('1'), S('x')]), () => genJsonDoc(r)][x]()
}
function genId(r, t) {
  const kind = TABLES[t]?.keyKind ?? 'text'
  if (r.chance(0.04)) return r.pick(ODD_IDS[kind])
  return r.pick(IDS[kind])
}

// ---------------------------------------------------------------- documents

const UNKNOWN_META = { cols: { v: 'text', t: 'text', n: 'int4' } }
function genRecord(r, t, id) {
  const meta = TABLES[t] ?? UNKNOWN_META
  const cols = Object.keys(meta.cols)
  const e = []
  if (r.chance(0.5)) e.push(['_status', S(r.pick(['created', 'updated', 'synced', 'deleted']))])
  if (r.chance(0.4)) e.push(['_changed', S(r.pick(['', 't,b', 'title']))])
  e.push(['id', S(id)])
  const n = r.int(cols.length + 1)
  const chosen = new Set()
  for (let i = 0; i < n; i++) chosen.add(r.pick(cols))
  for (const c of chosen) e.push([c, genValue(r, meta.cols[c])])
  if (meta.readonly && r.chance(0.1)) e.push([r.pick(Object.keys(meta.readonly)), Nm('7')])
  if (meta.owner && r.chance(0.1)) e.push([meta.owner, S(r.pick(USERS))]) // an attempt to take over
  // shuffle, keeping duplicates impossible
  for (let i = e.length - 1; i > 0; i--) { const j = r.int(i + 1); [e[i], e[j]] = [e[j], e[i]] }
  return O(e)
}
function genDoc(r) {
  const e = []
  const tables = new Set()
  const nt = r.chance(0.15) ? r.range(3, 6) : r.range(1, 2)
  for (let i = 0; i < nt; i++) tables.add(r.chance(0.93) ? r.pick(REGISTERED.filter((t) => TABLES[t].pushable)) : r.pick(['fz_ro', ...UNKNOWN_TABLES]))
  for (const t of tables) {
    const used = new Set()
    const freshId = () => { for (let k = 0; k < 5; k++) { const id = genId(r, t); if (!used.has(id)) { used.add(id); return id } } return genId(r, t) + '·' + r.int(1e6) }
    const big = r.chance(0.01)
    const count = () => (big ? r.range(50, 400) : r.chance(0.2) ? 0 : r.range(0, 3))
    const entry = []
    const lists = r.chance(0.9) ? ['created', 'updated', 'deleted'] : ['updated', 'created', 'deleted']
    for (const l of lists) {
      if (r.chance(0.05)) continue // a list left out
      const n = count()
      const items = []
      for (let j = 0; j < n; j++) items.push(l === 'deleted' ? S(freshId()) : genRecord(r, t, freshId()))
      entry.push([l, A(items)])
    }
    e.push([t, O(entry)])
  }
  return O(e)
}

// every node with its parent, for picking a place to mutate
function nodes(root) {
  const out = []
  const walk = (n, parent, idx, depth) => {
    out.push({ n, parent, idx, depth })
    if (n.k === 'o') n.e.forEach(([, v], i) => walk(v, n, i, depth + 1))
    else if (n.k === 'a') n.v.forEach((v, i) => walk(v, n, i, depth + 1))
  }
  walk(root, null, -1, 0)
  return out
}
const records = (doc) => nodes(doc).filter((x) => x.depth === 3 && x.n.k === 'o')
const objects = (doc) => nodes(doc).filter((x) => x.n.k === 'o')
function replace(x, v) {
  if (!x.parent) return v
  if (x.parent.k === 'o') x.parent.e[x.idx][1] = v
  else x.parent.v[x.idx] = v
  return null
}

const MUTATIONS = {
  dropKey(r, doc) { const o = r.pick(objects(doc)); if (o?.n.e.length) o.n.e.splice(r.int(o.n.e.length), 1) },
  dupKey(r, doc) {
    const o = r.pick(objects(doc)); if (!o?.n.e.length) return
    const [k, v] = r.pick(o.n.e)
    o.n.e.splice(r.int(o.n.e.length + 1), 0, [k, r.chance(0.5) ? v : genAny(r)])
  },
  swapKind(r, doc) {
    const all = nodes(doc); const x = r.pick(all)
    const v = r.pick([S(genText(r)), Nm(genNumber(r)), B(r.chance(0.5)), Z(), O([]), A([]), O([['id', S('i1')]]), A([S('i1')])])
    return replace(x, v)
  },
  extremeNumber(r, doc) { const rec = r.pick(records(doc)); if (rec) rec.n.e.push([r.pick(Object.keys(TABLES.fz_items.cols)), Nm(r.pick(NUMS))]) },
  longString(r, doc) { const rec = r.pick(records(doc)); if (rec) rec.n.e.push([r.pick(['t', 'title', 'body', 'v', 'label', 'vc']), S('z'.repeat(r.pick([256, 5000, 200000])))]) },
  oddString(r, doc) {
    const all = nodes(doc).filter((x) => x.n.k === 's'); if (!all.length) return
    const x = r.pick(all)
    x.n.v = r.pick(['\u0000', '\ud800', '\udc00', 'a\udbff', '\udbff\udfff', '\u0001', '\\u0000', 'é', '\u{10ffff}', '\ufffe']) + x.n.v
  },
  oddKey(r, doc) {
    const o = r.pick(objects(doc)); if (!o) return
    o.n.e.push([r.pick(['\u0000', '\ud800', 'ID', 'Id', ' id', 'id ', '', '_status', '_changed', 'nope', 'owner_id', 'owner', 'gen', 'seq', 'k', 'hidden', 'é']), genAny(r)])
  },
  dupId(r, doc) {
    // an id again: in another list, the same list or another table
    const ents = nodes(doc).filter((x) => x.depth === 1 && x.n.k === 'o')
    if (!ents.length) return
    const ent = r.pick(ents).n
    const ids = []
    for (const [, l] of ent.e) if (l.k === 'a') for (const it of l.v) ids.push(it.k === 's' ? it.v : it.k === 'o' && get(it, 'id')?.k === 's' ? get(it, 'id').v : null)
    const id = ids.filter(Boolean).length ? r.pick(ids.filter(Boolean)) : 'i1'
    const target = r.pick(ents).n
    const lname = r.pick(['created', 'updated', 'deleted'])
    let l = get(target, lname); if (!l || l.k !== 'a') { l = A([]); target.e.push([lname, l]) }
    l.v.push(lname === 'deleted' ? S(r.chance(0.8) ? id : id.toUpperCase()) : O([['id', S(id)]]))
  },
  wrongId(r, doc) {
    const rec = r.pick(records(doc)); if (!rec) return
    const i = rec.n.e.findIndex(([k]) => k === 'id'); if (i < 0) return
    rec.n.e[i][1] = r.pick([Nm('1'), Z(), B(true), O([]), A([S('a')]), S(''), S('é'.repeat(128)), S('q'.repeat(256)), S('01'), Nm('1e3')])
  },
  removeId(r, doc) { const rec = r.pick(records(doc)); if (rec) rec.n.e = rec.n.e.filter(([k]) => k !== 'id') },
  idTwice(r, doc) { const rec = r.pick(records(doc)); if (rec) { const old = get(rec.n, 'id'); rec.n.e.push(['id', S(r.chance(0.5) || old?.k !== 's' ? 'i2' : old.v)]) } },
  unknownTable(r, doc) {
    if (doc.k !== 'o') return
    const t = r.pick(['fz_ro', ...UNKNOWN_TABLES])
    doc.e.push([t, r.chance(0.5) ? O([['created', A([])], ['updated', A([])], ['deleted', A([])]])
      : O([['updated', A([O([['id', S('u1')], ['v', S('x')]])])]])])
  },
  deepNest(r, doc) {
    const rec = r.pick(records(doc)); if (!rec) return
    const d = r.pick([10, 100, 1000, 5000, 12000, 30000])
    rec.n.e.push([r.pick(['j', 'jb', 'meta', 't', 'zz']), Raw(r.chance(0.5) ? '['.repeat(d) + ']'.repeat(d) : '{"a":'.repeat(d) + '1' + '}'.repeat(d), d)])
  },
  hugeArray(r, doc) {
    const rec = r.pick(records(doc)); if (!rec) return
    const n = r.pick([1000, 20000])
    rec.n.e.push([r.pick(['j', 'jb', 'meta', 'ia', 'x']), Raw('[' + Array.from({ length: n }, (_, i) => i).join(',') + ']')])
  },
  manyRecords(r, doc) {
    const ents = nodes(doc).filter((x) => x.depth === 1 && x.n.k === 'o'); if (!ents.length) return
    const ent = r.pick(ents).n
    const n = r.pick([100, 1000])
    ent.e.push(['deleted', A(Array.from({ length: n }, (_, i) => S('m' + i)))])
  },
  moveRecord(r, doc) {
    const recs = records(doc); if (!recs.length) return
    const x = r.pick(recs); if (x.parent?.k !== 'a') return
    x.parent.v.splice(x.idx, 1)
    const ents = nodes(doc).filter((y) => y.depth === 1 && y.n.k === 'o'); if (!ents.length) return
    const l = get(r.pick(ents).n, r.pick(['created', 'updated', 'deleted']))
    if (l?.k === 'a') l.v.push(x.n)
  },
  entryShape(r, doc) {
    const ents = nodes(doc).filter((x) => x.depth === 1); if (!ents.length) return
    const ent = r.pick(ents)
    if (ent.n.k !== 'o' || r.chance(0.3)) return replace(ent, r.pick([A([]), S('x'), Z(), Nm('1'), O([])]))
    const f = r.int(4)
    if (f === 0) ent.n.e.push([r.pick(['other', 'Created', 'created ', '']), A([])])
    else if (f === 1 && ent.n.e.length) ent.n.e[r.int(ent.n.e.length)][1] = r.pick([O([]), S('x'), Z(), Nm('0'), A([A([])])])
    else if (f === 2 && ent.n.e.length) ent.n.e.push([ent.n.e[0][0], A([])])
    else ent.n.e = []
  },
  rootShape(r, doc) { return r.pick([A([doc]), S('changes'), Z(), Nm('1'), O([]), O([['changes', doc]])]) },
  dupTable(r, doc) { if (doc.k === 'o' && doc.e.length) doc.e.push([doc.e[0][0], O([])]) },
  statusChanged(r, doc) {
    const rec = r.pick(records(doc))
    if (rec) rec.n.e.push([r.pick(['_status', '_changed']), r.pick([S('deleted'), Nm('1'), O([['x', Nm('1')]]), A([]), Z(), S('x'.repeat(1000))])])
  },
}
const MUTATION_NAMES = Object.keys(MUTATIONS)

function corrupt(r, text) {
  const ops = r.range(1, 3)
  for (let i = 0; i < ops; i++) {
    const p = r.int(text.length + 1)
    switch (r.int(7)) {
      case 0: text = text.slice(0, p) + text.slice(p + 1); break
      case 1: text = text.slice(0, p) + r.pick(['{', '}', '[', ']', '"', ',', ':', '\\', 'e', '0', '-', ' ', '\\u', 'é', '\u0001']) + text.slice(p); break
      case 2: text = text.slice(0, p); break
      case 3: { const q = r.int(text.length + 1); text = text.slice(0, p) + text.slice(Math.min(p, q), Math.max(p, q)) + text.slice(p); break }
      case 4: if (text.length > 1) { const q = r.int(text.length); const a = [...text]; [a[p % a.length], a[q]] = [a[q], a[p % a.length]]; text = a.join('') } break
      case 5: text = text.slice(0, p) + String.fromCharCode(r.int(128)) + text.slice(p + 1); break
      default: text = text.replace(r.pick(['"id"', '"created"', '"deleted"', ':', ',']), r.pick(['"Id"', '"created" ', '', '::', ',,']))
    }
  }
  return text.replaceAll('\0', '')
}

// The decoder's documented rules applied to a document as sent: 'valid',
// 'invalid', 'dupid' (valid but for a record naming "id" twice, which the
// decoder's "no key twice" would refuse) or 'unknown' (not modelled).
function shape(doc, limit) {
  let records = 0, dupid = false, bad = null
  const strOk = (s) => !badString(s)
  const walkStrings = (n) => {
    if (n.k === 's') return strOk(n.v)
    if (n.k === 'o') return n.e.every(([k, v]) => strOk(k) && walkStrings(v))
    if (n.k === 'a') return n.v.every(walkStrings)
    return true
  }
  if (nodes(doc).some((x) => x.n.k === 'raw' && x.n.depth > 8000)) return { verdict: 'unknown', why: 'nesting' }
  if (!walkStrings(doc)) return { verdict: 'invalid', why: 'escape' }
  const idOk = (n) => n.k === 's' && utf8len(n.v) >= 1 && utf8len(n.v) <= 255
  if (doc.k !== 'o') return { verdict: 'invalid', why: 'root' }
  const names = new Set()
  for (const [t, ent] of doc.e) {
    if (names.has(t)) { bad ??= 'table twice'; continue }
    names.add(t)
    if (ent.k !== 'o') { bad ??= 'entry'; continue }
    const seen = new Set()
    for (const [l, list] of ent.e) {
      if (!['created', 'updated', 'deleted'].includes(l)) { bad ??= 'list name'; continue }
      if (seen.has(l)) { bad ??= 'list twice'; continue }
      seen.add(l)
      if (list.k !== 'a') { bad ??= 'list kind'; continue }
      for (const it of list.v) {
        records++
        if (l === 'deleted') { if (!idOk(it)) bad ??= 'deleted id'; continue }
        if (it.k !== 'o') { bad ??= 'record kind'; continue }
        const keys = new Set(); let ids = 0
        for (const [k, v] of it.e) {
          if (k === 'id') { ids++; if (!idOk(v)) bad ??= 'record id'; continue }
          if (k === '_status' || k === '_changed') continue
          if (keys.has(k)) bad ??= 'key twice'
          keys.add(k)
        }
        if (ids === 0) bad ??= 'no id'
        if (ids > 1) dupid = true
      }
    }
  }
  if (bad) return { verdict: 'invalid', why: bad, records }
  if (records > limit) return { verdict: 'invalid', why: 'too many records', records }
  return { verdict: dupid ? 'dupid' : 'valid', records }
}

// ---------------------------------------------------------------- what a pull must return

// For a pushed value of a column: {must: 'fail', why} when the documented
// mapping refuses it, {skip: true} when not predictable here, or
// {check(pulled) -> bool, want}.
function expectValue(kind, node, pool) {
  const mismatch = (why) => ({ must: 'fail', why })
  if (node.k === 'z') {
    if (kind === 'nreq') return mismatch('NULL for a NOT NULL column')
    return { check: (v) => v === null, want: 'null' }
  }
  if (node.k === 'raw') {
    if (kind === 'json' || kind === 'jsonb') return { skip: true }
    return mismatch('an object or array for a scalar column')
  }
  const numeric = ['int2', 'int4', 'int8', 'int', 'pos', 'nreq', 'numeric', 'num8_2', 'num10_2', 'float4', 'float8']
  if (numeric.includes(kind)) {
    if (node.k !== 'n') return mismatch('not a number for a number column')
    const x = dec(node.v)
    if (['int2', 'int4', 'int8', 'int', 'pos', 'nreq'].includes(kind)) {
      const v = decInt(x)
      if (x.exp < 0) return mismatch('a fraction for an integer column')
      if (v === null) return mismatch('an integer beyond any column')
      const lim = { int2: 15n, int4: 31n, int8: 63n, int: 63n, pos: 31n, nreq: 31n }[kind]
      if (v >= 2n ** lim || v < -(2n ** lim)) return mismatch('out of range')
      if (kind === 'pos' && v <= 0n) return mismatch('domain CHECK')
      if (kind === 'nreq' && v === 13n) return mismatch('table CHECK')
      return { check: (p) => isNum(p) && BigInt(p.$n) === v, want: String(v) }
    }
    if (kind === 'numeric') return { check: (p) => isNum(p) && decKey(dec(p.$n)) === decKey(x), want: node.v }
    if (kind === 'num8_2' || kind === 'num10_2') {
      const v = decScaled(x, 2)
      if (v === null) return mismatch('out of range')
      if ((v < 0n ? -v : v) >= 10n ** BigInt(kind === 'num8_2' ? 8 : 10)) return mismatch('numeric field overflow')
      return { check: (p) => isNum(p) && decScaled(dec(p.$n), 2) === v, want: String(v) + 'e-2' }
    }
    const f = Number(node.v)
    if (kind === 'float8') {
      if (!Number.isFinite(f)) return mismatch('beyond float8')
      if (f === 0 && x.d !== '0') return mismatch('float8 underflow')
      return { check: (p) => isNum(p) && Object.is(Number(p.$n), f), want: String(f) }
    }
    if (Math.abs(f) > 3.5e38 || (x.d !== '0' && Math.abs(f) < 1e-46)) return mismatch('beyond float4')
    if (sigDigits(node.v) > 9) return { skip: true }
    const g = Math.fround(f)
    // the pull sends float4's shortest form: read it back as a float4
    return { check: (p) => isNum(p) && Object.is(Math.fround(Number(p.$n)), g), want: String(g) }
  }
  if (kind === 'bool') {
    if (node.k === 'b') return { check: (p) => p === node.v, want: String(node.v) }
    if (node.k === 'n' && (node.v === '0' || node.v === '1')) return { check: (p) => p === (node.v === '1'), want: node.v }
    return mismatch('not a boolean for a boolean column')
  }
  if (kind === 'tstz' || kind === 'ts' || kind === 'date') {
    if (node.k === 's') {
      const want = pool.get(POOL_OF[kind] + '\0' + node.v)
      if (want === undefined) return { skip: true }
      if (want === null) return mismatch('the type refuses the string')
      const w = parseJson(want)
      return { check: (p) => canon(p) === canon(w), want }
    }
    if (node.k !== 'n') return mismatch('not a number or string for a timestamp column')
    const x = dec(node.v)
    let ms
    if (kind === 'date') {
      const days = decFloorDiv(x, 86400000n)
      if (days === null) return mismatch('far out of range')
      ms = days * 86400000n
    } else {
      const us = decScaled(x, 3)
      if (us === null) return mismatch('far out of range')
      ms = floorDiv(us, 1000n)
    }
    // beyond the type's range (timestamps: 294276 AD, dates: 5874897 AD; both from 4713 BC)
    if (ms > (kind === 'date' ? 2n * 10n ** 17n : 10n ** 16n) || ms < -3n * 10n ** 14n) return mismatch('out of range')
    return { check: (p) => isNum(p) && BigInt(p.$n) === ms, want: String(ms) }
  }
  if (kind === 'json' || kind === 'jsonb') {
    if (node.k !== 's' && node.k !== 'o' && node.k !== 'a') return mismatch('not a string or compound for a json column')
    if (node.k === 's') {
      try { parseJson(node.v) } catch (e) { return e instanceof RangeError ? { skip: true } : mismatch('a string that is not JSON for a json column') }
    }
    if (kind === 'json') {
      const want = node.k === 's' ? node.v : ser(node)
      return { check: (p) => p === want, want }
    }
    let w
    try { w = node.k === 's' ? parseJson(node.v) : astValue(node) } catch { return { skip: true } }
    const c = canon(w)
    return { check: (p) => { try { return typeof p === 'string' && canon(parseJson(p)) === c } catch { return false } }, want: c }
  }
  // text-like columns take strings only
  if (node.k !== 's') return mismatch('not a string for a text column')
  if (kind === 'text') return { check: (p) => p === node.v, want: node.v }
  if (kind === 'varchar12') {
    const chars = [...node.v]
    if (chars.length > 12 && chars.slice(12).some((c) => c !== ' ')) return mismatch('too long for varchar(12)')
    const want = chars.slice(0, 12).join('')
    return { check: (p) => p === want, want }
  }
  const want = pool.get(kind.slice(5) + '\0' + node.v)
  if (want === undefined) return { skip: true }
  if (want === null) return mismatch('the type refuses the string')
  const w = parseJson(want)
  return { check: (p) => p === w, want: w }
}

// ---------------------------------------------------------------- the run

const stats = { cases: 0, byKind: {}, outcomes: {}, checkedRecords: 0, checkedValues: 0, skippedValues: 0,
  shape: { valid: 0, invalid: 0, dupid: 0, unknown: 0 }, repulls: 0 }
const divergences = {}
const failures = []
let outDir

function count(kind, outcome) {
  stats.byKind[kind] ??= {}
  stats.byKind[kind][outcome] = (stats.byKind[kind][outcome] ?? 0) + 1
  stats.outcomes[outcome] = (stats.outcomes[outcome] ?? 0) + 1
}
function fail(c, msg) {
  failures.push({ i: c.i, kind: c.kind, msg, sql: c.sqlLog })
  if (failures.length <= 20 || VERBOSE) {
    console.log(`FAILURE case ${c.i} (${c.kind}): ${msg}`)
    if (VERBOSE) console.log('  ' + c.sqlLog.join('\n  ').slice(0, 4000))
  }
}
function diverge(name, c, detail) {
  divergences[name] ??= { count: 0, first: null }
  divergences[name].count++
  divergences[name].first ??= { i: c.i, detail }
  if (STRICT) fail(c, `${name}: ${detail}`)
}

const ALLOWED = (code) => /^(22...|23...)$/.test(code) ||
  ['42804', '42P01', '42501', '54000', '54001', '28000', 'SY001', 'SY002', 'SY003', 'SY005', 'SY006'].includes(code)
const BAD_MESSAGE = /cache lookup failed|unrecognized|unexpected|invalid memory alloc|could not find|unknown|internal error|should not happen|corrupt/i

const lit = (s) => (s === null || s === undefined ? 'NULL' : "'" + String(s).replaceAll("'", "''") + "'")
// the rows of the pull-only table fz_ro (made in the setup, never changed)
const RO_ROWS = new Set(['ro1', 'ro2', 'ro3', 'ro4', 'ro5'])

const pushSql = (text, tok, id, pushId) => `SELECT sync_push(changes => ${text === null ? 'NULL' : lit(text) + '::json'}, last_pulled_at => ${tok.v === null ? 'NULL' : tok.v}, user_id => ${lit(id.userArg)}${id.client ? ', client_id => ' + lit(id.client) : ''}${pushId ? ', push_id => ' + lit(pushId) : ''})`
const CLIENTS = ['dev-a', 'dev-b', 'dev-c', 'ipad 📱']
const ODD_CLIENTS = ['', 'x'.repeat(256), 'é'.repeat(128), 'x'.repeat(255)]

class Fuzzer {
  constructor(conn) {
    this.conn = conn
    this.tokens = new Map() // user -> last token
    this.issued = new Set()
    this.issuedAt = new Map() // token -> prune epoch when issued
    this.pruneEpoch = 0
    this.maxIssued = 0n
    this.state = null
    this.ledger = [] // successful pushes with a push_id: {id, text, tok, pushId, result, epoch}
    this.inactive = new Set() // user \0 client_id of deactivated devices
  }

  deviceKey(id) { return id.client ? `${id.user ?? ''}\0${id.client}` : null }

  // a deactivated device is refused (SY005), an active one never is
  checkDevice(c, id, code) {
    const key = this.deviceKey(id)
    if (!key || id.odd) return
    if (this.inactive.has(key) && code === 'ok') fail(c, `device ${id.client} of ${id.user} is deactivated, yet the call succeeded`)
    if (!this.inactive.has(key) && code === 'SY005') fail(c, `device ${id.client} of ${id.user} is active, yet SY005`)
  }

  async setup() {
    const c = this.conn
    this.lineage = BigInt(await c.value('SELECT lineage_start FROM _pg_sync.state'))
    await c.value("SET pg_sync.trusted_role = 'fz_trusted'")
    await c.value('SET log_min_error_statement = panic') // failing statements can be megabytes; the fuzzer keeps its own record
    // expected pull values of the pooled strings, from the server's own casts
    const pairs = []
    for (const [type, list] of Object.entries(POOLS)) for (const s of list) pairs.push([type, s])
    const rows = await c.rows(`SELECT k, v, fz_expect(v, k) FROM (VALUES ${pairs.map(([k, v]) => `(${lit(k)}, ${lit(v)})`).join(',')}) AS p(k, v)`)
    this.pool = new Map(rows.map(([k, v, e]) => [k + '\0' + v, e]))
    this.state = await c.value('SELECT fz_state()')
    this.pid = await c.value('SELECT pg_backend_pid()')
  }

  issue(tok, c) {
    const t = BigInt(tok)
    if (t < 1n || t > MAX53) fail(c, `token ${tok} outside [1, 2^53)`)
    if (!this.issued.has(tok)) { this.issued.add(tok); this.issuedAt.set(tok, this.pruneEpoch) }
    if (t > this.maxIssued) this.maxIssued = t
  }

  // the token argument of a call: kind and SQL literal
  pickToken(r, user) {
    const own = this.tokens.get(user) ?? '0'
    const issued = [...this.issued]
    const x = r.next()
    if (x < 0.72) return { kind: own === '0' ? 'none' : 'own', v: own }
    if (x < 0.78) return { kind: 'none', v: r.chance(0.5) ? null : '0' }
    if (x < 0.86 && issued.length) return { kind: 'issued', v: r.pick(issued) }
    const g = r.pick([-1n, -(2n ** 63n), 1n, 2n, MAX53, MAX53 + 1n, 2n ** 63n - 1n, this.lineage - 1n, this.lineage - 1000n,
      this.maxIssued + 1n, this.maxIssued + 1000000n, this.maxIssued + 1000001n, BigInt(r.int(2 ** 31))])
    return { kind: g < this.lineage || g > MAX53 ? 'never' : 'garbage', v: String(g) }
  }

  pickIdentity(r) {
    const id = this.pickIdentity0(r)
    if (r.chance(0.35)) id.client = r.chance(0.95) ? r.pick(CLIENTS) : r.pick(ODD_CLIENTS)
    return id
  }

  pickIdentity0(r) {
    const x = r.next()
    const user = r.pick(USERS)
    if (x < 0.55) return { role: null, userArg: user, user }
    if (x < 0.68) return { role: 'fz_app', userArg: user, user }
    if (x < 0.84) return { role: r.pick(['fz_app', 'fz_anon']), claims: JSON.stringify({ sub: user, role: 'authenticated' }), user }
    if (x < 0.88) return { role: 'fz_anon', userArg: user, user, expect: '42501' }
    if (x < 0.92) return { role: null, user: null }
    if (x < 0.96) { const u = r.pick(BAD_USERS); return { role: r.pick([null, 'fz_app']), userArg: u, user: u, odd: true } }
    const claims = r.pick(['{"sub": 123}', '{"sub": null}', '{"sub": ["x"]}', `{"sub": "${USERS[0]}", "sub": "${USERS[2]}"}`,
      'not json', '[1]', '', '{"sub": ""}', `{"sub": "${'x'.repeat(300)}"}`, '{"sub": "\\u0000"}', `{"sub": "${USERS[3]}"}`,
      `{"nested": {"sub": "x"}, "sub": "${USERS[4]}"}`, '{"sub": {"id": 1}}'])
    return { role: r.pick(['fz_app', 'fz_anon']), claims, user: null, odd: true }
  }

  // BEGIN, settings, role, claims; `last` goes at the end (a statement_timeout
  // set before the role and claims would cancel them instead of the call)
  prelude(id, { iso = '', readOnly = false, extra = [], last = [] } = {}) {
    const s = [`BEGIN${iso ? ' ISOLATION LEVEL ' + iso : ''}${readOnly ? ' READ ONLY' : ''}`, ...extra]
    if (id.role) s.push(`SET LOCAL ROLE ${id.role}`)
    if (id.claims !== undefined) s.push(`SELECT set_config('request.jwt.claims', ${lit(id.claims)}, true)`)
    s.push(...last)
    return s.join('; ')
  }

  // Runs queries (pipelined); returns their answers; connection loss is fatal.
  async run(c, sqls) {
    c.sqlLog.push(...sqls.map((s) => (s.length > 2000 ? s.slice(0, 2000) + `…(${s.length} chars)` : s)))
    try {
      return await this.conn.pipeline(sqls)
    } catch (e) {
      if (e instanceof ConnectionLost) { c.lost = true; fail(c, 'CRASH: ' + e.message); throw e }
      throw e
    }
  }

  // Checks an error for cleanliness; returns its code.
  checkError(c, err, allowExtra = []) {
    if (['FATAL', 'PANIC'].includes(err.severity)) fail(c, `${err.severity} ${err.code}: ${err.message}`)
    if (!ALLOWED(err.code) && !allowExtra.includes(err.code)) fail(c, `SQLSTATE ${err.code} not allowed: ${err.message}`)
    else if (BAD_MESSAGE.test(err.message.replace(/"[^"]*"/g, '""')) && !/^invalid changes document: unexpected key/.test(err.message) &&
      !/unrecognized (configuration|time zone)/.test(err.message)) fail(c, `suspicious message (${err.code}): ${err.message}`)
    return err.code
  }

  async checkState(c, ans, label, mustEqual) {
    const st = ans.results.at(-1)?.rows?.[0]?.[0]
    if (ans.error) { fail(c, `state query failed: ${ans.error.message}`); return }
    if (mustEqual && st !== this.state) fail(c, `${label}: the synced tables or change records changed (${this.state} -> ${st})`)
    this.state = st
  }

  // ---- pulls

  async pull(c, r, { id, tok, schemaVersion = null, migration = null, iso = '', readOnly = false, check = null, mustSucceed = false }) {
    const sql = `SELECT sync_pull(last_pulled_at => ${tok.v === null ? 'NULL' : tok.v}, schema_version => ${schemaVersion ?? 'NULL'}, migration => ${migration === null ? 'NULL' : lit(migration)}, user_id => ${lit(id.userArg)}${id.client ? ', client_id => ' + lit(id.client) : ''})`
    const [pre, ans, , st] = await this.run(c, [this.prelude(id, { iso, readOnly }), sql, 'COMMIT', 'SELECT fz_state()'])
    if (pre.error) fail(c, `prelude failed: ${pre.error.message}`)
    await this.checkState(c, st, 'a pull', true)
    if (ans.error) {
      if (mustSucceed) fail(c, `the pull after a successful push failed: ${ans.error.code} ${ans.error.message}`)
      const code = this.checkError(c, ans.error, iso ? ['SY004', '40001'] : readOnly ? ['SY004'] : [])
      if (tok.kind === 'issued' || tok.kind === 'own') {
        if (code === 'SY003') fail(c, `issued token ${tok.v} answered SY003`)
        if (code === 'SY002' && this.issuedAt.get(tok.v) === this.pruneEpoch) fail(c, `token ${tok.v} answered SY002 though sync_prune has not run since it was issued`)
      }
      if (code === 'SY002' || code === 'SY003') if (id.user) this.tokens.set(id.user, '0')
      this.checkDevice(c, id, code)
      return { code }
    }
    if (tok.kind === 'never') fail(c, `a pull with never-issued token ${tok.v} succeeded`)
    this.checkDevice(c, id, 'ok')
    if (id.expect) fail(c, `expected ${id.expect}, the pull succeeded`)
    const text = ans.results.at(-1).rows[0][0]
    let doc
    try { doc = parseJson(text) } catch (e) { fail(c, `pull result is not JSON: ${e.message}`); return { code: 'ok' } }
    this.checkPullShape(c, doc, id)
    const ts = doc.timestamp?.$n
    if (ts) this.issue(ts, c)
    if (id.user && ts && !readOnly && !iso) this.tokens.set(id.user, ts)
    if (check) check(doc)
    return { code: 'ok', doc, ts }
  }

  checkPullShape(c, doc, id) {
    if (!doc || typeof doc !== 'object' || !doc.changes || !isNum(doc.timestamp)) return fail(c, 'pull result lacks changes or timestamp')
    const names = Object.keys(doc.changes).sort()
    if (names.join() !== [...REGISTERED].sort().join()) fail(c, `pull tables ${names} != ${REGISTERED}`)
    for (const t of names) {
      const e = doc.changes[t], meta = TABLES[t]
      if (!e || !Array.isArray(e.created) || !Array.isArray(e.updated) || !Array.isArray(e.deleted)) { fail(c, `pull: ${t} entry malformed`); continue }
      if (e.created.length) fail(c, `pull: ${t}.created not empty`)
      const seen = new Set()
      for (const rec of e.updated) {
        if (typeof rec?.id !== 'string') { fail(c, `pull: ${t} record without string id`); continue }
        if (seen.has(rec.id)) fail(c, `pull: ${t} id ${rec.id} twice`)
        seen.add(rec.id)
        if ('_status' in rec || '_changed' in rec) fail(c, `pull: ${t} record ${rec.id} carries _status/_changed`)
        if (meta.key !== 'id' && meta.key in rec) fail(c, `pull: ${t} record ${rec.id} carries its key column "${meta.key}"`)
        if (meta.owner && id.user) {
          const want = meta.ownerKind === 'uuid' ? canonUuid(id.user) : id.user
          if (rec[meta.owner] !== want) fail(c, `pull: ${t} record ${rec.id} owned by ${rec[meta.owner]}, caller ${want}`)
        }
        for (const [col, kind] of Object.entries({ ...meta.cols, ...(meta.readonly ?? {}) })) {
          const v = rec[col]
          if (!(col in rec)) { fail(c, `pull: ${t} record ${rec.id} lacks column ${col}`); continue }
          if (v === null) continue
          const okType = ['text', 'varchar12', 'json', 'jsonb'].includes(kind) || kind.startsWith('pool:') ? typeof v === 'string'
            : kind === 'bool' ? typeof v === 'boolean' : isNum(v)
          if (!okType) fail(c, `pull: ${t}.${col} of ${rec.id} has the wrong JSON kind: ${JSON.stringify(v)}`)
        }
      }
      for (const d of e.deleted) {
        if (typeof d !== 'string') fail(c, `pull: ${t} deleted id not a string`)
        else if (seen.has(d)) fail(c, `pull: ${t} id ${d} both updated and deleted`)
      }
    }
  }

  async pullCase(c, r) {
    const id = this.pickIdentity(r)
    const tok = this.pickToken(r, id.user)
    const schemaVersion = r.chance(0.7) ? null : r.pick(['0', '1', '2', '-1', '2147483647', '-2147483648'])
    const migration = r.chance(0.8) ? null : r.pick([
      '{}', '{"from": 1, "tables": ["fz_items"], "columns": []}', '{"from": 1, "tables": [], "columns": [{"table": "fz_notes", "columns": ["body"]}]}',
      '{"tables": ["srv", "fz_shared", "nope", "fz_items"]}', '{"tables": "fz_items"}', '{"columns": {"table": "x"}}', '{"columns": [1, null, "x"]}',
      '{"tables": [1, null, {"a": 1}]}', '[]', '"fz_items"', '1', 'null', '{"tables": ["fz_items"], "tables": ["srv"]}', '{"tables": [',
      '{"tables": ["\\u0000"]}', `{"tables": ["${'t'.repeat(10000)}"]}`, '{"from": -1, "tables": ["fz_ro"]}'])
    const x = r.next()
    const iso = x < 0.05 ? 'REPEATABLE READ' : ''
    const readOnly = !iso && x < 0.12
    const res = await this.pull(c, r, { id, tok, schemaVersion, migration, iso, readOnly })
    if (res.code === 'ok' && migration === null && tok.kind === 'own' && !readOnly && !iso && r.chance(0.25)) {
      // at once again with the new token: nothing in scope changed, so nothing comes
      stats.repulls++
      await this.pull(c, r, { id, tok: { kind: 'own', v: res.ts }, check: (doc) => {
        for (const [t, e] of Object.entries(doc.changes)) if (e.updated.length || e.deleted.length) fail(c, `an immediate second pull returned changes in ${t}: ${JSON.stringify(e).slice(0, 300)}`)
      } })
    }
    return res.code
  }

  // ---- pushes

  async pushCase(c, r, opts = {}) {
    const id = opts.id ?? this.pickIdentity(r)
    const tok = opts.tok ?? this.pickToken(r, id.user)
    let doc = genDoc(r)
    const mutations = []
    if (!opts.valid && r.chance(0.6)) {
      for (let k = r.range(1, 3); k > 0; k--) {
        const m = r.pick(MUTATION_NAMES)
        mutations.push(m)
        const replaced = MUTATIONS[m](r, doc)
        if (replaced) doc = replaced
      }
    }
    let text = ser(doc)
    const corrupted = !opts.valid && r.chance(0.05)
    if (corrupted) text = corrupt(r, text)
    const limit = opts.limit ?? 50000
    const sh = corrupted ? { verdict: 'unknown' } : shape(doc, limit)
    stats.shape[sh.verdict]++
    c.info = { mutations, shape: sh.verdict, why: sh.why, token: tok, identity: id }
    const nullDoc = !opts.valid && r.chance(0.005)
    if (nullDoc) { stats.shape[sh.verdict]--; sh.verdict = 'unknown'; stats.shape.unknown++ }
    const pushId = opts.pushId ?? (id.client && r.chance(0.3) ? 'p' + SEED + '-' + c.i : id.client && r.chance(0.05) ? r.pick(['', 'x'.repeat(256), 'reused']) : null)
    const sql = pushSql(nullDoc ? null : text, tok, id, pushId)
    const extra = opts.extra ?? []
    const last = opts.last ?? []
    let ans, stAns
    if (opts.savepoint) {
      // a push inside a savepoint, rolled back to: the state in the same
      // transaction is as before; then a valid push in that transaction
      const [pre, a, , st1] = await this.run(c, [this.prelude(id, { extra, last }) + '; SAVEPOINT fz', sql, 'ROLLBACK TO SAVEPOINT fz', 'SELECT fz_state()'])
      if (pre.error) fail(c, `prelude failed: ${pre.error.message}`)
      if (st1.error || st1.results.at(-1)?.rows?.[0]?.[0] !== this.state) fail(c, `after ROLLBACK TO SAVEPOINT of a push the state differs (${st1.error?.message ?? ''})`)
      const sql2 = pushSql(ser(genDoc(r)), tok, id, null)
      const [b, , st2] = await this.run(c, [sql2, 'COMMIT', 'SELECT fz_state()'])
      if (b.error) this.checkError(c, b.error)
      await this.checkState(c, st2, 'savepoint then push', !!b.error)
      return a.error ? this.checkError(c, a.error) : 'ok'
    }
    let pre
    ;[pre, ans, , stAns] = await this.run(c, [this.prelude(id, { extra, last }), sql, 'COMMIT', 'SELECT fz_state()'])
    if (pre.error) fail(c, `prelude failed: ${pre.error.message}`)
    const allowExtra = opts.allowExtra ?? []
    if (ans.error) {
      await this.checkState(c, stAns, `a failed push (${ans.error.code})`, true)
      const code = this.checkError(c, ans.error, allowExtra)
      this.checkDevice(c, id, code)
      const decodeErr = /^invalid changes document/.test(ans.error.message) || /^push carries more than/.test(ans.error.message)
      if (sh.verdict === 'valid' && decodeErr) fail(c, `a well-formed document was refused as malformed: ${ans.error.code} ${ans.error.message}`)
      if ((tok.kind === 'issued' || tok.kind === 'own') && code === 'SY003') fail(c, `issued token ${tok.v} answered SY003 on push`)
      if (tok.kind === 'own' && code === 'SY002' && this.issuedAt.get(tok.v) === this.pruneEpoch) fail(c, `token ${tok.v} answered SY002 on push though sync_prune has not run since`)
      // like a client: pull after a conflict, start over after an expired or unknown token
      if (['SY001', 'SY002', 'SY003'].includes(code) && id.user && !id.odd && !id.expect) {
        const reset = code !== 'SY001'
        if (reset) this.tokens.set(id.user, '0')
        await this.pull(c, r, { id, tok: { kind: reset ? 'none' : 'own', v: reset ? null : this.tokens.get(id.user) ?? null } })
      }
      return code
    }
    // success
    const before = this.state
    await this.checkState(c, stAns, 'a push', false)
    if (nullDoc || corrupted) return 'ok'
    if (sh.verdict === 'invalid') { fail(c, `a malformed document (${sh.why}) was applied`); return 'ok' }
    if (sh.verdict === 'dupid') diverge('a record naming "id" twice is accepted (the last id wins)', c, text.slice(0, 300))
    if (tok.kind === 'never') fail(c, `a push with never-issued token ${tok.v} succeeded`)
    if (id.expect) {
      // an untrusted user_id: refused once the push needs the user (records, a device, a push_id)
      const records = doc.k === 'o' && doc.e.some(([t, ent]) => TABLES[t] && ent.k === 'o' && ent.e.some(([, l]) => l.k === 'a' && l.v.length))
      if (records || id.client || pushId) fail(c, `expected ${id.expect}, the push succeeded`)
      else diverge('a push with no records accepts a user_id from an untrusted role', c, text.slice(0, 200))
      return 'ok'
    }
    this.checkDevice(c, id, 'ok')
    let result
    const resultText = ans.results.at(-1).rows[0][0]
    try { result = JSON.parse(resultText) } catch { fail(c, 'push result is not JSON'); return 'ok' }
    if (pushId && !id.odd) this.ledger.push({ id, text, tok, pushId, result: resultText, epoch: this.pruneEpoch })
    if (!Number.isInteger(result.created) || !Number.isInteger(result.updated) || !Number.isInteger(result.deleted)) fail(c, `push result malformed: ${JSON.stringify(result)}`)
    const wrote = result.created + result.updated + result.deleted
    const data = (st) => st?.split('|').slice(0, 3).join('|') // rows and change records, not the push ledger
    if (wrote === 0 && !Object.keys(result.experimentalRejectedIds ?? {}).length && data(this.state) !== data(before)) fail(c, 'a push that wrote nothing and rejected nothing changed the synced tables or change records')
    if (sh.verdict === 'unknown' || doc.k !== 'o') return 'ok'
    await this.verifyPush(c, r, doc, tok, id, result, wrote)
    return 'ok'
  }

  // A successful push: only allowed tables, no deletes without a token, and
  // the records come back from a pull with the values sent.
  async verifyPush(c, r, doc, tok, id, result, wrote) {
    const rejected = result.experimentalRejectedIds ?? {}
    const expected = [] // [table, canonical id, fields]
    const deleted = []
    const resent = [] // rejected records of pull-only tables: the next pull sends them
    let nrec = 0
    const seen = new Map()
    for (const [t, ent] of doc.e) {
      const lists = Object.fromEntries(ent.e)
      const n = ['created', 'updated', 'deleted'].reduce((s, l) => s + (lists[l]?.v.length ?? 0), 0)
      nrec += n
      if (!n) continue
      const meta = TABLES[t]
      if (!meta) { fail(c, `a push with records for table "${t}", which is not synced, succeeded`); continue }
      if (!meta.pushable) {
        const ids = seen.get(t) ?? new Set(); seen.set(t, ids)
        for (const it of [...(lists.created?.v ?? []), ...(lists.updated?.v ?? []), ...(lists.deleted?.v ?? [])]) {
          const cid = canonId(meta.keyKind, it.k === 'o' ? get(it, 'id').v : it.v)
          ids.add(cid)
          if (!(rejected[t] ?? []).includes(cid)) fail(c, `${t} is pull-only, yet record ${cid} was not rejected`)
          resent.push([t, cid])
        }
        continue
      }
      if ((tok.v === null || tok.v === '0') && lists.deleted?.v.length) fail(c, `a push without a token deleted records of ${t}`)
      const ids = seen.get(t) ?? new Set(); seen.set(t, ids)
      const note = (raw) => {
        const cid = canonId(meta.keyKind, raw)
        if (cid === null) { fail(c, `${t}: id ${JSON.stringify(raw)} is no valid key, the push succeeded`); return null }
        if (ids.has(cid)) fail(c, `${t}: id ${cid} appears twice in a push that succeeded`)
        ids.add(cid)
        return cid
      }
      for (const l of ['created', 'updated']) for (const rec of lists[l]?.v ?? []) {
        const cid = note(get(rec, 'id').v)
        if (cid === null) continue
        const rej = (rejected[t] ?? []).includes(cid) || (rejected[t] ?? []).includes(get(rec, 'id').v)
        for (const [k, v] of rec.e) {
          const kind = meta.cols[k]
          if (!kind || k === 'id') continue
          const ex = expectValue(kind, v, this.pool)
          // (server_wins may drop a record before reading its values)
          if (ex.must === 'fail' && !rej && meta.policy !== 'server_wins') fail(c, `${t}.${k} of ${cid}: ${ex.why} (${ser(v).slice(0, 80)}), yet the push succeeded`)
        }
        // a record with nothing but its id updates nothing when its row exists: no change, nothing to pull
        const writesSomething = rec.e.some(([k]) => k in meta.cols)
        if (!rej && writesSomething && meta.policy !== 'server_wins' && !(t === 'fz_shared' && id.role && get(rec, 'hidden')?.v === true)) expected.push([t, cid, rec])
      }
      // (server_wins drops a delete of a row changed after the client's token)
      for (const d of lists.deleted?.v ?? []) { const cid = note(d.v); if (cid !== null && meta.policy !== 'server_wins') deleted.push([t, cid]) }
    }
    for (const [t, ids] of Object.entries(rejected)) {
      if (!TABLES[t]) fail(c, `experimentalRejectedIds names table ${t}`)
      for (const x of ids) if (!seen.get(t)?.has(canonId(TABLES[t]?.keyKind ?? 'text', x) ?? x)) fail(c, `rejected id ${x} of ${t} was not pushed`)
    }
    if (wrote > nrec) fail(c, `push wrote ${wrote} rows for ${nrec} records`)
    if (!id.user || id.odd) return
    // the pull that follows (from the token the push used) returns the records as sent
    // (naming no device: the device that pushed them is not sent rows it has as they are)
    const from = tok.kind === 'own' || tok.kind === 'issued' || tok.kind === 'none' ? tok : { kind: 'none', v: null }
    await this.pull(c, r, { id: { ...id, client: undefined }, tok: from, mustSucceed: true, check: (pulled) => {
      for (const [t, cid, rec] of expected) {
        const meta = TABLES[t]
        const got = pulled.changes[t]?.updated.find((x) => x.id === cid)
        if (!got) {
          fail(c, `${t} record ${cid} pushed (${tok.kind} token) but not in the pull that follows`)
          continue
        }
        stats.checkedRecords++
        for (const [k, v] of rec.e) {
          const kind = meta.cols[k]
          if (!kind) continue
          const ex = expectValue(kind, v, this.pool)
          if (ex.skip || ex.must) { stats.skippedValues++; continue }
          stats.checkedValues++
          if (!ex.check(got[k])) fail(c, `${t}.${k} of ${cid}: pushed ${ser(v).slice(0, 120)}, expected ${String(ex.want).slice(0, 120)}, pulled ${JSON.stringify(got[k])?.slice(0, 120)}`)
        }
      }
      for (const [t, cid] of deleted) if (pulled.changes[t]?.updated.some((x) => x.id === cid)) fail(c, `${t} record ${cid} deleted by the push but pulled as live`)
      // rejected records of the (shared) pull-only table: the next pull sends the server's row
      // again; an id the server has no row for is not marked (a mark would reach every user)
      if (from.v !== null && from.v !== '0') for (const [t, cid] of resent) {
        const sent = pulled.changes[t]?.updated.some((x) => x.id === cid)
        if (RO_ROWS.has(cid) && !sent) fail(c, `${t}: rejected record ${cid} of a pull-only table is not in the next pull`)
        if (!RO_ROWS.has(cid) && pulled.changes[t]?.deleted.includes(cid)) fail(c, `${t}: rejected id ${cid}, which the server has no row for, was sent to everyone in deleted`)
      }
    } })
  }

  // ---- other cases

  async sqlWriteCase(c, r) {
    const q = r.pick([
      () => `UPDATE fz_shared SET qty = coalesce(qty, 0) + 1 WHERE id = '${r.pick(IDS.uuid)}'`,
      () => `DELETE FROM fz_items WHERE id = '${r.pick(IDS.text.slice(0, 40))}'`,
      () => `INSERT INTO fz_items (id, owner_id, t) VALUES ('sql${r.int(20)}', '${r.pick(USERS)}', 'by sql') ON CONFLICT (id) DO UPDATE SET t = 'again'`,
      () => `UPDATE fz_items SET owner_id = '${r.pick(USERS)}' WHERE id = '${r.pick(IDS.text.slice(0, 40))}'`,
      () => `DELETE FROM fz_shared WHERE id = '${r.pick(IDS.uuid)}'`,
      () => `UPDATE fz_notes SET body = body || '!' WHERE id = ${r.range(1, 40)}`,
      () => `UPDATE fz_shared SET hidden = NOT hidden WHERE id = '${r.pick(IDS.uuid)}'`,
      () => `UPDATE fz_items SET id = 'moved${r.int(10)}' WHERE id = '${r.pick(IDS.text.slice(0, 40))}'`,
      () => (r.chance(0.1) ? 'TRUNCATE fz_auto' : `DELETE FROM fz_auto WHERE id = ${r.range(1, 30)}`),
    ])()
    const [ans, st] = await this.run(c, [q, 'SELECT fz_state()'])
    if (ans.error) this.checkError(c, ans.error)
    await this.checkState(c, st, 'sql write', !!ans.error)
    return ans.error ? ans.error.code : 'ok'
  }

  async pruneCase(c) {
    const [ans, st] = await this.run(c, ["SELECT * FROM sync_prune('0 seconds')", 'SELECT fz_state()'])
    if (ans.error) { this.checkError(c, ans.error); return ans.error.code }
    const live = (s) => s?.split('|')[0]
    const after = st.results.at(-1)?.rows?.[0]?.[0]
    if (live(after) !== live(this.state)) fail(c, 'sync_prune changed rows or live change records')
    this.state = after
    this.pruneEpoch++
    // (sync_prune forgets active devices not seen within retain; a deactivated one stays, refused)
    return 'ok'
  }

  async checkpointCase(c) {
    const [ans] = await this.run(c, ['SELECT sync_checkpoint()'])
    if (ans.error) { this.checkError(c, ans.error); return ans.error.code }
    this.issue(ans.results[0].rows[0][0], c)
    return 'ok'
  }

  // a push sent again with its push_id: the stored result, nothing applied;
  // another document with that id: refused
  async resendCase(c, r) {
    const live = this.ledger.filter((e) => e.epoch === this.pruneEpoch && !this.inactive.has(this.deviceKey(e.id)))
    if (!live.length) return 'none'
    const e = r.pick(live)
    const same = r.chance(0.7)
    const text = same ? e.text : ser(genDoc(r))
    const [pre, ans, , st] = await this.run(c, [this.prelude(e.id), pushSql(text, e.tok, e.id, e.pushId), 'COMMIT', 'SELECT fz_state()'])
    if (pre.error) fail(c, `prelude failed: ${pre.error.message}`)
    await this.checkState(c, st, 'a push sent again', true)
    if (ans.error) {
      const code = this.checkError(c, ans.error)
      if (same) fail(c, `a push sent again with its push_id failed: ${code} ${ans.error.message}`)
      return code
    }
    if (!same && text !== e.text) fail(c, `another document with a used push_id was accepted: ${ans.results.at(-1).rows[0][0]}`)
    if (ans.results.at(-1).rows[0][0] !== e.result) fail(c, `a push sent again returned ${ans.results.at(-1).rows[0][0]}, first ${e.result}`)
    return 'ok'
  }

  async deviceCase(c, r) {
    const user = r.pick(USERS)
    const id = { role: 'fz_app', claims: JSON.stringify({ sub: user }), user, client: r.pick(CLIENTS) }
    const off = r.chance(0.6)
    const [pre, ans] = await this.run(c, [this.prelude(id), `SELECT ${off ? 'sync_deactivate_client' : 'sync_activate_client'}(${lit(id.client)})`, 'COMMIT'])
    if (pre.error) fail(c, `prelude failed: ${pre.error.message}`)
    if (ans.error) return this.checkError(c, ans.error, ['42704'])
    if (off) this.inactive.add(this.deviceKey(id))
    else this.inactive.delete(this.deviceKey(id))
    return 'ok'
  }

  async verifyCase(c) {
    const [ans] = await this.run(c, ['SELECT check_name, table_name, problems FROM sync_verify() WHERE problems > 0'])
    if (ans.error) fail(c, `sync_verify failed: ${ans.error.message}`)
    else if (ans.results[0].rows.length) fail(c, `sync_verify: ${JSON.stringify(ans.results[0].rows)}`)
    return 'ok'
  }

  async oneCase(i) {
    const r = new Rng(SEED, i)
    const c = { i, kind: '', sqlLog: [] }
    const x = r.next()
    let outcome
    if (i % 500 === 499) { c.kind = 'verify'; outcome = await this.verifyCase(c) }
    else if (x < 0.62) { c.kind = 'push'; outcome = await this.pushCase(c, r) }
    else if (x < 0.82) { c.kind = 'pull'; outcome = await this.pullCase(c, r) }
    else if (x < 0.86) { c.kind = 'push-valid'; outcome = await this.pushCase(c, r, { valid: true }) }
    else if (x < 0.89) { c.kind = 'savepoint'; outcome = await this.pushCase(c, r, { savepoint: true }) }
    else if (x < 0.905) {
      c.kind = 'timeout'
      outcome = await this.pushCase(c, r, { last: [`SET LOCAL statement_timeout = '${r.pick([1, 2, 5])}ms'`], allowExtra: ['57014'] })
    } else if (x < 0.925) {
      c.kind = 'limits'
      const limit = r.range(1, 6)
      outcome = await this.pushCase(c, r, { limit, extra: [`SET LOCAL pg_sync.max_push_records = ${limit}`, r.chance(0.3) ? 'SET LOCAL pg_sync.max_push_bytes = 1024' : 'SELECT 1'] })
    } else if (x < 0.965) { c.kind = 'sql-write'; outcome = await this.sqlWriteCase(c, r) }
    else if (x < 0.975) { c.kind = 'prune'; outcome = await this.pruneCase(c) }
    else if (x < 0.98) { c.kind = 'checkpoint'; outcome = await this.checkpointCase(c) }
    else if (x < 0.984) { c.kind = 'device'; outcome = await this.deviceCase(c, r) }
    else if (x < 0.99) { c.kind = 'resend'; outcome = await this.resendCase(c, r) }
    else {
      // a client that pulls, then pushes valid changes with its fresh token
      c.kind = 'round-trip'
      const id = { role: null, userArg: r.pick(USERS) }
      id.user = id.userArg
      await this.pull(c, r, { id, tok: { kind: this.tokens.has(id.user) ? 'own' : 'none', v: this.tokens.get(id.user) ?? null } })
      outcome = await this.pushCase(c, r, { id, valid: true, tok: { kind: 'own', v: this.tokens.get(id.user) ?? null } })
    }
    count(c.kind, outcome)
    stats.cases++
  }
}

async function connect(database) {
  return PgConn.connect({ ...PG, database })
}

async function main() {
  const t0 = Date.now()
  console.log(`push fuzz: ${N} cases, seed ${SEED} (FUZZ_SEED=${SEED} reproduces), database ${DB}`)
  outDir = path.join(here, 'out')
  const admin = await connect(process.env.PGDATABASE ?? 'postgres')
  await admin.value(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`)
  await admin.value(`CREATE DATABASE ${DB} TEMPLATE template0 ENCODING 'UTF8'`)
  await admin.value(`DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fz_trusted') THEN CREATE ROLE fz_trusted NOLOGIN; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fz_app') THEN CREATE ROLE fz_app NOLOGIN IN ROLE fz_trusted; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fz_anon') THEN CREATE ROLE fz_anon NOLOGIN; END IF;
  END $$`)
  const logFile = process.env.FUZZ_SERVER_LOG ?? await findLog(admin)
  const logStart = logFile && fs.existsSync(logFile) ? fs.statSync(logFile).size : null
  const conn = await connect(DB)
  await conn.value(SETUP)
  const fz = new Fuzzer(conn)
  await fz.setup()
  const tSetup = Date.now()
  let crashed = false
  for (let i = 0; i < N; i++) {
    try {
      await fz.oneCase(i)
    } catch (e) {
      if (e instanceof ConnectionLost) { crashed = true; break }
      failures.push({ i, kind: 'harness', msg: e.stack })
      console.log(`FAILURE case ${i}: harness error ${e.stack}`)
      break
    }
    if (VERBOSE && i % 1000 === 999) console.log(`  ${i + 1} cases, ${((Date.now() - tSetup) / 1000).toFixed(1)} s, ${failures.length} failures`)
  }
  const tCases = Date.now()
  // the end: sync_verify, the backend, the log
  let verifyOk = false
  if (!crashed) {
    const c = { i: N, kind: 'final', sqlLog: [] }
    await fz.verifyCase(c)
    verifyOk = !failures.some((f) => f.i === N)
    const pid = await conn.value('SELECT pg_backend_pid()')
    if (pid !== fz.pid) fail(c, `backend pid changed ${fz.pid} -> ${pid}`)
    const others = await conn.value(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
    if (others !== '0') fail(c, `${others} other backends in ${DB}`)
  }
  let logNote = 'server log not found (set FUZZ_SERVER_LOG)'
  if (logFile && logStart !== null) {
    const fd = fs.openSync(logFile, 'r')
    const size = fs.fstatSync(fd).size
    const buf = Buffer.alloc(Math.max(0, size - logStart))
    fs.readSync(fd, buf, 0, buf.length, logStart)
    fs.closeSync(fd)
    const text = buf.toString('utf8')
    const bad = text.split('\n').filter((l) => /terminated by signal|was terminated by|PANIC:|TRAP:|all server processes terminated|database system was not properly shut down/.test(l))
    logNote = `server log ${logFile}: ${bad.length} crash lines in ${buf.length} bytes`
    if (bad.length) failures.push({ i: N, kind: 'log', msg: 'server log: ' + bad.slice(0, 5).join(' / ') })
  }
  conn.close()
  if (!failures.length && !process.env.FUZZ_KEEP) {
    await admin.value(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`)
    // the roles go too unless another database still uses them
    await admin.query('DROP ROLE IF EXISTS fz_app, fz_anon, fz_trusted')
  }
  admin.close()

  const secs = (ms) => (ms / 1000).toFixed(1)
  const codes = Object.entries(stats.outcomes).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ')
  console.log(`cases: ${stats.cases} in ${secs(tCases - tSetup)} s (setup ${secs(tSetup - t0)} s)`)
  console.log(`outcomes by SQLSTATE: ${codes}`)
  for (const [k, v] of Object.entries(stats.byKind)) console.log(`  ${k}: ${Object.entries(v).sort((a, b) => b[1] - a[1]).map(([x, y]) => `${x} ${y}`).join(', ')}`)
  console.log(`push documents by shape: ${Object.entries(stats.shape).map(([k, v]) => `${k} ${v}`).join(', ')}`)
  console.log(`pushed records checked against the pull that followed: ${stats.checkedRecords} (${stats.checkedValues} values compared, ${stats.skippedValues} not predictable); immediate re-pulls: ${stats.repulls}`)
  console.log(`sync_verify at the end: ${crashed ? 'not run (crash)' : verifyOk ? 'no problems' : 'PROBLEMS'}; ${logNote}`)
  for (const [name, d] of Object.entries(divergences)) console.log(`divergence (FUZZ_STRICT=1 fails on it): ${name}: ${d.count} cases, first case ${d.first.i}: ${d.first.detail}`)
  if (failures.length) {
    fs.mkdirSync(outDir, { recursive: true })
    const file = path.join(outDir, `push-fuzz-failures-${SEED}.txt`)
    fs.writeFileSync(file, failures.map((f) => `case ${f.i} (${f.kind}): ${f.msg}\n  ${(f.sql ?? []).join('\n  ')}\n`).join('\n'))
    console.log(`${failures.length} failures (details in ${file}; FUZZ_SEED=${SEED} reproduces)`)
  }
  console.log(`fuzz: ${failures.length ? 0 : 1} passed, ${failures.length ? 1 : 0} failed`)
  process.exit(failures.length ? 1 : 0)
}

async function findLog(admin) {
  try {
    const cur = await admin.value('SELECT pg_current_logfile()')
    const dataDir = await admin.value('SHOW data_directory')
    if (cur) return path.isAbsolute(cur) ? cur : path.join(dataDir, cur)
    const guess = path.join(path.dirname(dataDir), 'server.log')
    return fs.existsSync(guess) ? guess : null
  } catch { return null }
}

main().catch((e) => { console.error(e); process.exit(2) })
