// Shared helpers of the end-to-end suite:
//   - a throwaway PostgreSQL 15 cluster with pg_sync and the test schema (test/cluster.sh),
//   - the edge function of examples/supabase/functions/sync run by Deno,
//   - JWTs signed with jose,
//   - devices: in-memory WatermelonDB databases (LokiJSAdapter) synced with WatermelonDB's own
//     synchronize(), talking HTTP to the edge function,
//   - WatermelonDB's logger, captured,
//   - the convergence assertion: every device of a user holds exactly the database's rows.
//
// Every test file starts its own stack (cluster + function) and stops it when done.
import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import { randomBytes, randomUUID } from 'node:crypto'
import assert from 'node:assert/strict'
import { before, after, beforeEach, afterEach } from 'node:test'
import { SignJWT } from 'jose'
import { startPgBouncer } from './pgbouncer.js'
import { run, portIsFree, anyFreePort } from './proc.js'

const require = createRequire(import.meta.url)
const { Database, Model, appSchema, tableSchema } = require('@nozbe/watermelondb')
const LokiJSAdapter = require('@nozbe/watermelondb/adapters/lokijs').default
const { synchronize, hasUnsyncedChanges } = require('@nozbe/watermelondb/sync')
const { field, date, readonly } = require('@nozbe/watermelondb/decorators')
const logger = require('@nozbe/watermelondb/utils/common/logger').default

const E2E_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const REPO = path.resolve(E2E_DIR, '../..')
const CLUSTER_SH = path.join(REPO, 'test/cluster.sh')
const FUNCTION_DIR = path.join(REPO, 'examples/supabase/functions/sync')
const DENO = path.join(E2E_DIR, 'node_modules/.bin/deno')
const PG_BINDIR = process.env.PG_BINDIR ?? execFileSync('pg_config', ['--bindir']).toString().trim()
// The cluster takes the first free port from here (never one of the ports other suites use).
const PG_PORT_FIRST = Number(process.env.PGSYNC_E2E_PORT ?? 54360)

// ---------------------------------------------------------------------------------------------
// WatermelonDB's logger. Installed when this module loads, before any database exists, so that
// nothing WatermelonDB logs escapes. Entries: {level: 'debug'|'log'|'warn'|'error', text}.

// What LokiJSAdapter logs (level "log") while it opens a database and when a database is reset
// (a new database goes through the reset path too). Nothing else is expected, ever, in a normal run.
const LOKI_LIFECYCLE = new Set([
  '[Loki] Initializing IndexedDB',
  '[Loki] Database loaded',
  '[Loki] Empty database, setting up',
  '[Loki] Database is now reset',
  '[Loki] Setting up schema',
  '[Loki] Database collections set up',
])

function messageText(m) {
  if (m instanceof Error) return m.message
  if (typeof m === 'string') return m
  try {
    return JSON.stringify(m)
  } catch {
    return String(m)
  }
}

export const watermelonLog = {
  entries: [],
  // Everything except the adapter's lifecycle messages; each test asserts this is empty.
  unexpected() {
    return this.entries.filter((e) => !(e.level === 'log' && LOKI_LIFECYCLE.has(e.text)))
  },
  clear() {
    this.entries = []
  },
}
for (const level of ['debug', 'log', 'warn', 'error']) {
  logger[level] = (...messages) => {
    watermelonLog.entries.push({ level, text: messages.map(messageText).join(' ') })
  }
}

// ---------------------------------------------------------------------------------------------
// Small process helpers

// SQL literal for values the tests control (ids, user ids, text).
export function lit(value) {
  if (value === null || value === undefined) return 'NULL'
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  return `'${String(value).replaceAll("'", "''")}'`
}

// ---------------------------------------------------------------------------------------------
// The database schema. tasks is per user (owner_id), projects is shared by everyone.
// ROLES_SQL: the extension and the roles, which SCHEMA_SQL and the policy tests' schema start with.
export const ROLES_SQL = `
CREATE EXTENSION pg_sync;
CREATE ROLE authenticated NOLOGIN;
CREATE ROLE anon NOLOGIN;
`
export const SCHEMA_SQL = `${ROLES_SQL}

CREATE TABLE projects (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    color      text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE tasks (
    id         text PRIMARY KEY,
    owner_id   text NOT NULL,
    project_id text,
    title      text,
    body       text,
    is_done    boolean,
    position   double precision,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
SELECT sync_register_table('projects');
SELECT sync_register_table('tasks', owner_column => 'owner_id');

GRANT SELECT, INSERT, UPDATE, DELETE ON tasks, projects TO authenticated;
GRANT SELECT ON projects TO anon;
`

// The database's rows in the shape a device stores them: timestamps as epoch milliseconds
// (pg_sync floors microseconds to milliseconds), everything else as JSON gives it.
const ms = (column) => `floor(extract(epoch FROM ${column}) * 1000)::bigint AS ${column}`
const DB_ROWS = {
  tasks: (user) => `SELECT id, owner_id, project_id, title, body, is_done, position,
                           ${ms('created_at')}, ${ms('updated_at')}
                    FROM tasks WHERE owner_id = ${lit(user.id)}`,
  projects: () => `SELECT id, name, color, ${ms('created_at')}, ${ms('updated_at')} FROM projects`,
}
export const TABLES = Object.keys(DB_ROWS)

// Tables a test declares for its own schema (startStack({schemaSql, clientTables})), one spec each:
//   {name, owner: 'owner_id' (per user; omit for a shared table), columns: {column: kind}}
// kind: 'string', 'number', 'boolean', or 'timestamp' (a timestamptz in the database, epoch
// milliseconds on the device); a trailing '?' makes it optional. The model's properties are the
// column names; created_at and updated_at of kind 'timestamp' are WatermelonDB's own (set on create,
// touched on every update, by the device's clock: see Device.clockOffsetMs).
function tableFromSpec(spec) {
  const kinds = Object.entries(spec.columns).map(([name, kind]) => ({
    name,
    kind: kind.replace(/\?$/, ''),
    isOptional: kind.endsWith('?'),
  }))
  const schema = tableSchema({
    name: spec.name,
    columns: kinds.map(({ name, kind, isOptional }) => ({ name, type: kind === 'timestamp' ? 'number' : kind, isOptional })),
  })
  const ModelClass = class extends Model {
    static table = spec.name
  }
  const props = {}
  for (const { name, kind } of kinds) {
    if (kind === 'timestamp' && name === 'created_at') props.createdAt = [readonly, date('created_at')]
    else if (kind === 'timestamp' && name === 'updated_at') props.updatedAt = [readonly, date('updated_at')]
    else props[name] = [field(name)]
  }
  decorate(ModelClass, props)
  const select = kinds.map(({ name, kind }) => (kind === 'timestamp' ? ms(name) : name)).join(', ')
  return {
    name: spec.name,
    schema,
    ModelClass,
    ownerProp: spec.owner,
    dbRows: (user) => `SELECT id, ${select} FROM ${spec.name}${spec.owner ? ` WHERE ${spec.owner} = ${lit(user.id)}` : ''}`,
  }
}

// ---------------------------------------------------------------------------------------------
// The client side: WatermelonDB schema and models, as an app would declare them (decorators
// applied by hand, no Babel).
const clientSchema = appSchema({
  version: 1,
  tables: [
    tableSchema({
      name: 'projects',
      columns: [
        { name: 'name', type: 'string' },
        { name: 'color', type: 'string', isOptional: true },
        { name: 'created_at', type: 'number' },
        { name: 'updated_at', type: 'number' },
      ],
    }),
    tableSchema({
      name: 'tasks',
      columns: [
        { name: 'owner_id', type: 'string' },
        { name: 'project_id', type: 'string', isOptional: true },
        { name: 'title', type: 'string', isOptional: true },
        { name: 'body', type: 'string', isOptional: true },
        { name: 'is_done', type: 'boolean', isOptional: true },
        { name: 'position', type: 'number', isOptional: true },
        { name: 'created_at', type: 'number' },
        { name: 'updated_at', type: 'number' },
      ],
    }),
  ],
})

function decorate(ModelClass, props) {
  for (const [key, decorators] of Object.entries(props)) {
    // Legacy decorators: (target, key, descriptor) => descriptor, innermost first.
    let descriptor
    for (const d of decorators.slice().reverse()) descriptor = d(ModelClass.prototype, key, descriptor)
    Object.defineProperty(ModelClass.prototype, key, descriptor)
  }
}

// The default tables, as startStack() without clientTables gives every device.
const DEFAULT_TABLES = () => [
  { name: 'projects', schema: clientSchema.tables.projects, ModelClass: Project, ownerProp: null, dbRows: DB_ROWS.projects },
  { name: 'tasks', schema: clientSchema.tables.tasks, ModelClass: Task, ownerProp: 'ownerId', dbRows: DB_ROWS.tasks },
]

class Project extends Model {
  static table = 'projects'
}
decorate(Project, {
  name: [field('name')],
  color: [field('color')],
  createdAt: [readonly, date('created_at')],
  updatedAt: [readonly, date('updated_at')], // WatermelonDB touches updated_at on every update
})

class Task extends Model {
  static table = 'tasks'
}
decorate(Task, {
  ownerId: [field('owner_id')],
  projectId: [field('project_id')],
  title: [field('title')],
  body: [field('body')],
  isDone: [field('is_done')],
  position: [field('position')],
  createdAt: [readonly, date('created_at')],
  updatedAt: [readonly, date('updated_at')],
})

// ---------------------------------------------------------------------------------------------
// HTTP client of the edge function

export class SyncHttpError extends Error {
  constructor(route, status, code, message) {
    super(`${route}: HTTP ${status} ${code ?? ''} ${message}`)
    this.route = route
    this.status = status
    this.code = code
  }
}

// headers: extra request headers (X-Sync-Client-Id, Idempotency-Key). meta.bytes: set to the size of
// the answer's body.
async function post(url, token, body, fetchImpl = fetch, headers = {}, meta = {}) {
  return answer(
    url,
    await fetchImpl(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    }),
    meta,
  )
}

async function get(url, token, headers = {}) {
  return answer(url, await fetch(url, { headers: { authorization: `Bearer ${token}`, ...headers } }))
}

async function answer(url, res, meta = {}) {
  const text = await res.text()
  meta.bytes = Buffer.byteLength(text)
  if (!res.ok) {
    // Non-2xx must reject: WatermelonDB marks pushed records as synced whenever pushChanges resolves.
    let parsed = {}
    try {
      parsed = JSON.parse(text)
    } catch {}
    throw new SyncHttpError(new URL(url).pathname, res.status, parsed.code, parsed.error ?? text)
  }
  return JSON.parse(text)
}

// Thrown by pushChanges while a paged pull has more pages: the push waits for the last page.
class PushAfterLastPage extends Error {}

const countChanges = (changes) =>
  Object.values(changes ?? {}).reduce((n, t) => n + t.created.length + t.updated.length + t.deleted.length, 0)

// ---------------------------------------------------------------------------------------------
// Server-Sent Events

// An EventSource for Node (version 20 has none), with the parts of the WHATWG interface README's
// listen() uses: addEventListener, onopen, onerror, readyState, close(). Over fetch; a connection
// that drops is opened again after the stream's `retry` time, a refused one (not 200) is closed for
// good, as browsers do. Every event is also kept in `received` ({type, data, at: performance.now()}),
// and comments (keep-alives) are counted and dispatched as "comment" events.
export class NodeEventSource {
  static CONNECTING = 0
  static OPEN = 1
  static CLOSED = 2

  constructor(url, { headers = {} } = {}) {
    this.url = url
    this.headers = headers
    this.readyState = NodeEventSource.CONNECTING
    this.onopen = null
    this.onerror = null
    this.received = []
    this.comments = 0
    this.status = null
    this.retryMs = 3000
    this.#listeners = new Map()
    this.#connect()
  }

  #listeners
  #abort = null
  #timer = null

  addEventListener(type, fn) {
    if (!this.#listeners.has(type)) this.#listeners.set(type, new Set())
    this.#listeners.get(type).add(fn)
  }

  removeEventListener(type, fn) {
    this.#listeners.get(type)?.delete(fn)
  }

  #dispatch(type, event) {
    for (const fn of [...(this.#listeners.get(type) ?? [])]) fn(event)
    if (type === 'open') this.onopen?.(event)
    if (type === 'error') this.onerror?.(event)
  }

  async #connect() {
    this.#abort = new AbortController()
    let res
    try {
      res = await fetch(this.url, { headers: { accept: 'text/event-stream', ...this.headers }, signal: this.#abort.signal })
    } catch {
      this.#dropped()
      return
    }
    this.status = res.status
    if (res.status !== 200) {
      this.body = await res.text().catch(() => '')
      this.readyState = NodeEventSource.CLOSED
      this.#dispatch('error', { status: res.status })
      return
    }
    this.readyState = NodeEventSource.OPEN
    this.#dispatch('open', {})
    const decoder = new TextDecoder()
    let buffer = ''
    let type = ''
    let data = []
    try {
      for await (const chunk of res.body) {
        buffer += decoder.decode(chunk, { stream: true })
        for (let end = buffer.indexOf('\n'); end >= 0; end = buffer.indexOf('\n')) {
          const line = buffer.slice(0, end).replace(/\r$/, '')
          buffer = buffer.slice(end + 1)
          if (line === '') {
            if (data.length > 0) {
              const event = { type: type || 'message', data: data.join('\n'), at: performance.now() }
              this.received.push(event)
              this.#dispatch(event.type, event)
            }
            type = ''
            data = []
          } else if (line.startsWith(':')) {
            this.comments++
            this.#dispatch('comment', { text: line.slice(1).trim() })
          } else {
            const colon = line.indexOf(':')
            const field = colon < 0 ? line : line.slice(0, colon)
            const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
            if (field === 'event') type = value
            else if (field === 'data') data.push(value)
            else if (field === 'retry' && /^[0-9]+$/.test(value)) this.retryMs = Number(value)
          }
        }
      }
    } catch {}
    this.#dropped()
  }

  #dropped() {
    if (this.readyState === NodeEventSource.CLOSED) return
    this.readyState = NodeEventSource.CONNECTING
    this.#dispatch('error', {})
    this.#timer = setTimeout(() => this.#connect(), this.retryMs)
  }

  close() {
    this.readyState = NodeEventSource.CLOSED
    clearTimeout(this.#timer)
    this.#abort?.abort()
  }
}

// The next event of a type on a NodeEventSource. The time limit only turns a missing event into a
// failure instead of a hung test.
export function nextEvent(source, type, { timeoutMs = 20_000 } = {}) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      source.removeEventListener(type, onEvent)
      reject(new Error(`no "${type}" event within ${timeoutMs} ms`))
    }, timeoutMs)
    const onEvent = (event) => {
      clearTimeout(timer)
      source.removeEventListener(type, onEvent)
      resolve(event)
    }
    source.addEventListener(type, onEvent)
  })
}

// ---------------------------------------------------------------------------------------------
// Devices

// options of a device (newDevice(user, name, options)):
//   clientId:    sent as X-Sync-Client-Id on every pull and push (the device is known to pg_sync);
//   idempotent:  every push carries an Idempotency-Key: a new one per push document, the same one
//                when the document a push sends is the one whose answer was lost (a transport error,
//                not an HTTP answer), whether sent again by pushRetries or by the next sync;
//   pushRetries: how often a push whose answer was lost is sent again at once (default 0);
//   pageSize:    sent as pageSize with every pull (default: none, the function's SYNC_PAGE_SIZE);
//   replacement: sends replacement: true with every pull (the client applies replacements);
//   schema, migrations: the device's own appSchema (default: the stack's) and schemaMigrations (an
//                adapter with migrations can sync with migrationsEnabledAtVersion; see upgrade()).
export class Device {
  constructor(
    stack,
    user,
    name,
    { clientId = null, idempotent = false, pushRetries = 0, pageSize = null, replacement = false, schema, migrations } = {},
  ) {
    this.stack = stack
    this.user = user
    this.name = name
    this.clientId = clientId
    this.pageSize = pageSize
    this.replacement = replacement
    this.migrationsEnabledAtVersion = undefined
    this.idempotent = idempotent
    this.pushRetries = pushRetries
    this.unanswered = null // {key, changes}: the push whose answer was lost, while idempotent
    this.pushAttempts = [] // every push request: {key, changes (text), status | error}
    // The device's clock, as WatermelonDB reads it for created_at / updated_at: real time plus
    // this offset (a device whose clock runs fast), or a fixed time given to create/update.
    this.clockOffsetMs = 0
    this.database = new Database({
      adapter: new LokiJSAdapter({
        schema: schema ?? stack.clientSchema,
        ...(migrations ? { migrations } : {}),
        dbName: `${name}-${randomUUID()}`,
        useWebWorker: false,
        // No IndexedDB in Node: the adapter falls back to LokiJS's in-memory store either way.
        // `true` picks the non-deprecated option, so the adapter logs no deprecation warning.
        useIncrementalIndexedDB: true,
        // No autosave timer (it would keep Node alive); nothing is persisted anyway.
        extraLokiOptions: { autosave: false },
      }),
      modelClasses: stack.clientTables.map((t) => t.ModelClass),
    })
    this.syncs = [] // one report per sync(), see below
  }

  // The app's new version: the same local database opened with a newer schema and its migrations
  // (WatermelonDB migrates it on opening, as after an app update).
  async upgrade(schema, migrations) {
    const adapter = this.database.adapter.underlyingAdapter
    await new Promise((resolve, reject) => adapter._driver.loki.saveDatabase((e) => (e ? reject(e) : resolve())))
    this.database = new Database({
      adapter: await adapter.testClone({ schema, migrations }),
      modelClasses: this.stack.clientTables.map((t) => t.ModelClass),
    })
    await this.database.get(this.stack.tables[0]).query().fetchCount() // waits for the migration
  }

  // Runs fn (which must create or update a record synchronously, as WatermelonDB's create/update
  // do before their first await) with Date.now reading the device's clock.
  #onDeviceClock(fn, at) {
    if (at === undefined && this.clockOffsetMs === 0) return fn()
    const realNow = Date.now
    const offset = this.clockOffsetMs
    Date.now = at === undefined ? () => realNow() + offset : () => at
    try {
      return fn()
    } finally {
      Date.now = realNow
    }
  }

  // --- what the app does -------------------------------------------------------------------

  // at: the device clock's time (epoch ms) for created_at / updated_at, instead of its clock.
  async create(table, props, { at } = {}) {
    const ownerProp = this.stack.clientTables.find((t) => t.name === table)?.ownerProp
    return this.database.write(async () => {
      const record = await this.#onDeviceClock(
        () =>
          this.database.get(table).create((r) => {
            if (ownerProp) r[ownerProp] = this.user.id // the app knows who is signed in
            Object.assign(r, props)
          }),
        at,
      )
      return record.id
    })
  }

  async update(table, id, props, { at } = {}) {
    await this.database.write(async () => {
      const record = await this.database.get(table).find(id)
      await this.#onDeviceClock(() => record.update((r) => Object.assign(r, props)), at)
    })
  }

  async remove(table, id) {
    await this.database.write(async () => {
      const record = await this.database.get(table).find(id)
      await record.markAsDeleted() // deleted locally, the deletion is pushed by the next sync
    })
  }

  async has(table, id) {
    const found = await this.database.get(table).query().fetch()
    return found.some((r) => r.id === id)
  }

  // Raw records (live ones), sorted by id.
  async raws(table) {
    const records = await this.database.get(table).query().fetch()
    return records.map((r) => ({ ...r._raw })).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  async raw(table, id) {
    return (await this.raws(table)).find((r) => r.id === id)
  }

  async unsynced() {
    return hasUnsyncedChanges({ database: this.database })
  }

  // Raw records of a table with their sync state (live and locally deleted): {id: raw}.
  async localState(table) {
    const state = {}
    for (const raw of await this.raws(table)) state[raw.id] = raw
    for (const id of await this.database.adapter.getDeletedRecords(table)) state[id] = { id, _status: 'deleted' }
    return state
  }

  #deviceHeaders() {
    return this.clientId === null ? {} : { 'x-sync-client-id': this.clientId }
  }

  // GET .../status, .../conflicts as this device's app (X-Sync-Client-Id when it has one).
  status() {
    return get(`${this.stack.functionUrl}/status`, this.user.token, this.#deviceHeaders())
  }

  conflicts() {
    return get(`${this.stack.functionUrl}/conflicts`, this.user.token, this.#deviceHeaders())
  }

  resolve(conflictId, resolution, merged) {
    return post(`${this.stack.functionUrl}/conflicts/${conflictId}/resolve`, this.user.token, { resolution, merged })
  }

  // One push over HTTP, as the app sends it: the device headers, an Idempotency-Key when the device
  // is idempotent, pushRetries more sends of the same request when its answer is lost.
  async #push(changes, lastPulledAt, fetchImpl = fetch) {
    const text = JSON.stringify(changes)
    const headers = this.#deviceHeaders()
    if (this.idempotent) {
      if (this.unanswered?.changes !== text) this.unanswered = { key: randomUUID(), changes: text }
      headers['idempotency-key'] = this.unanswered.key
    }
    for (let attempt = 0; ; attempt++) {
      const sent = { key: headers['idempotency-key'] ?? null, changes: text }
      this.pushAttempts.push(sent)
      try {
        const result = await post(`${this.stack.functionUrl}/push`, this.user.token, { changes, lastPulledAt }, fetchImpl, headers)
        sent.status = 200
        this.unanswered = null
        return result
      } catch (error) {
        if (error instanceof SyncHttpError) {
          sent.status = error.status
          this.unanswered = null // answered: a failed push keeps nothing on the server
          throw error
        }
        sent.error = error
        if (attempt >= this.pushRetries) throw error // lost: `unanswered` keeps the key for later
      }
    }
  }

  // --- sync ----------------------------------------------------------------------------------

  // One WatermelonDB synchronize() call: one page of a paged pull. hooks (the first run's pages):
  //   afterPull(pullResult, page): runs after the server answered the pull (page: 0, 1, ... of a
  //                          paged pull), before the client applies it and pushes (a write injected
  //                          here lands between pull and push, or between two pages);
  //   pushFetch:            fetch implementation used for the push.
  // Returns the attempt: {lastPulledAt, timestamp, pulled, pullBytes, hasMore, pushed, ...}.
  async #synchronizeOnce(hooks, report, page = 0) {
    const attempt = { lastPulledAt: undefined, timestamp: undefined, pulled: 0, pushed: null, error: null, page }
    report.attempts.push(attempt)
    const base = this.stack.functionUrl
    const token = this.user.token
    try {
      await synchronize({
        database: this.database,
        sendCreatedAsUpdated: true, // pg_sync sends every live record in `updated`
        migrationsEnabledAtVersion: this.migrationsEnabledAtVersion, // set by a test whose adapter has migrations
        pullChanges: async ({ lastPulledAt, schemaVersion, migration }) => {
          attempt.lastPulledAt = lastPulledAt
          attempt.migration = migration
          const body = { lastPulledAt, schemaVersion, migration }
          if (this.pageSize !== null) body.pageSize = this.pageSize
          if (this.replacement) body.replacement = true
          const meta = {}
          const result = await post(`${base}/pull`, token, body, fetch, this.#deviceHeaders(), meta)
          attempt.pullBytes = meta.bytes
          attempt.timestamp = result.timestamp
          attempt.pulled = countChanges(result.changes)
          attempt.hasMore = result.hasMore === true
          attempt.pullResult = result
          if (hooks.onPullResult) hooks.onPullResult(result, page)
          if (hooks.afterPull) await hooks.afterPull(result, page)
          return result
        },
        pushChanges: async ({ changes, lastPulledAt }) => {
          if (attempt.hasMore) throw new PushAfterLastPage() // WatermelonDB keeps them pending
          attempt.pushed = countChanges(changes)
          attempt.pushedChanges = changes
          attempt.pushLastPulledAt = lastPulledAt
          // The server answers {"created": n, "updated": n, "deleted": n} and, when records were
          // rejected, experimentalRejectedIds, which WatermelonDB reads from the returned object.
          attempt.pushResult = await this.#push(changes, lastPulledAt, hooks.pushFetch)
          return attempt.pushResult
        },
      })
    } catch (error) {
      if (error instanceof PushAfterLastPage) {
        attempt.pushDeferred = true // the page is applied and lastPulledAt saved; push later
        return attempt
      }
      attempt.error = error
      throw error
    }
    return attempt
  }

  // synchronize() once per page: while an answer says hasMore, the next page is pulled at once;
  // local changes are pushed with the last page (a push with a page token conflicts on every row
  // the pull has not sent yet).
  async #allPages(hooks, report) {
    for (let page = 0; ; page++) {
      const attempt = await this.#synchronizeOnce(hooks, report, page)
      if (!attempt.hasMore) return
    }
  }

  // The app's sync routine: synchronize(), and on the two documented failures:
  //   409 (SY001, push conflict): synchronize() again, once. WatermelonDB's docs: the push must
  //       fail when a pushed record changed on the server since the pull; the client then pulls
  //       (merging per column) and pushes again. The records were not marked as synced, since
  //       pushChanges rejected.
  //   410 (SY002/SY003, token refused): README's reset path. The local database is wiped
  //       (database.unsafeResetDatabase(), which also forgets lastPulledAt) and synchronize() runs
  //       again from lastPulledAt = null, a first pull. Local changes not yet pushed are lost by this
  //       path; the report records whether there were any (hasUnsyncedChanges before the wipe).
  // Returns a report: {attempts: [...], recovery: null | '409-retry' | '410-reset', log: [...]}
  // where log holds what WatermelonDB logged during the whole routine.
  async sync(hooks = {}) {
    const report = { device: this.name, attempts: [], recovery: null, log: [] }
    this.syncs.push(report)
    const logStart = watermelonLog.entries.length
    try {
      try {
        await this.#allPages(hooks, report)
      } catch (error) {
        if (!(error instanceof SyncHttpError)) throw error
        if (error.status === 409 && error.route.endsWith('/push')) {
          report.recovery = '409-retry'
          await this.#allPages({}, report)
        } else if (error.status === 410) {
          report.recovery = '410-reset'
          report.discardedUnsyncedChanges = await this.unsynced()
          await this.database.write(() => this.database.unsafeResetDatabase())
          await this.#allPages({}, report)
        } else {
          throw error
        }
      }
    } finally {
      report.log = watermelonLog.entries.slice(logStart)
    }
    return report
  }
}

// ---------------------------------------------------------------------------------------------
// The stack: cluster + schema + edge function

// options.functionEnv: extra environment for the edge function.
// options.functionDir: another copy of the edge function (default: examples/supabase/functions/sync).
// options.schemaSql: the database schema to load instead of this file's SCHEMA_SQL.
// options.clientTables: the devices' tables for that schema (see tableFromSpec).
export async function startStack(options = {}) {
  const stack = new Stack(options)
  try {
    await stack.start()
  } catch (e) {
    await stack.stop()
    throw e
  }
  return stack
}

class Stack {
  constructor({ functionEnv = {}, functionDir = FUNCTION_DIR, schemaSql = SCHEMA_SQL, clientTables } = {}) {
    this.functionEnv = functionEnv
    this.functionDir = functionDir
    this.schemaSql = schemaSql
    // the tables of every device (and of assertConverged): the default two, or the test's own
    this.clientTables = clientTables ? clientTables.map(tableFromSpec) : DEFAULT_TABLES()
    this.clientSchema = appSchema({ version: 1, tables: this.clientTables.map((t) => t.schema) })
    this.tables = this.clientTables.map((t) => t.name)
    this.secret = randomBytes(32).toString('hex')
    this.key = new TextEncoder().encode(this.secret)
    this.fnOutput = ''
    this.#onExit = () => this.#stopNow()
    this.#onSignal = (signal) => {
      this.#stopNow()
      process.exit(signal === 'SIGINT' ? 130 : 143)
    }
  }

  #onExit
  #onSignal
  #sessions = new Set()
  #extraFns = new Set()
  #fn = null
  #clusterUp = false

  async start() {
    // Cluster
    this.dir = mkdtempSync(path.join(tmpdir(), 'pg_sync_e2e.'))
    process.once('exit', this.#onExit)
    process.once('SIGINT', this.#onSignal)
    process.once('SIGTERM', this.#onSignal)
    this.#clusterUp = true // from here on, stopping is needed (and harmless if it never started)
    // A port free when tried can be taken before the server binds it (by another server, or as the
    // local port of some connection: the first ports tried lie in Linux's ephemeral range): then
    // the cluster is made again on the next free port.
    for (let from = PG_PORT_FIRST, tries = 1; ; tries++) {
      this.pgPort = await this.#freePgPort(from)
      try {
        await run(CLUSTER_SH, ['start', this.dir, String(this.pgPort)], {
          env: { ...process.env, PGSYNC_LISTEN: '127.0.0.1' },
        })
        break
      } catch (e) {
        if (tries === 5 || !/Address already in use/.test(e.message)) throw e
        rmSync(path.join(this.dir, 'data'), { recursive: true, force: true })
        from = this.pgPort + 1
      }
    }
    this.sock = path.join(this.dir, 'sock')
    await this.sql(this.schemaSql)
    // PGSYNC_E2E_POOLER=pgbouncer: the function reaches the database through PgBouncer in
    // transaction pooling mode (lib/pgbouncer.js); SQL of the tests goes straight to the cluster
    if (process.env.PGSYNC_E2E_POOLER === 'pgbouncer') {
      this.pooler = await startPgBouncer({ dir: this.dir, pgPort: this.pgPort })
      this.functionEnv = { DATABASE_URL: this.pooler.url, ...this.functionEnv }
    }
    // Edge function
    await this.#startFunction()
  }

  async #freePgPort(from) {
    for (let port = from; port < PG_PORT_FIRST + 20; port++) {
      if (await portIsFree(port)) return port
    }
    throw new Error(`no free port in ${from}..${PG_PORT_FIRST + 19}`)
  }

  async #startFunction() {
    let lastError
    for (let tries = 0; tries < 3; tries++) {
      const port = await anyFreePort()
      try {
        await this.#spawnFunction(port)
        this.functionUrl = `http://127.0.0.1:${port}/functions/v1/sync`
        return
      } catch (e) {
        lastError = e // e.g. the port was taken in between: try another one
      }
    }
    throw lastError
  }

  // Another instance of the edge function on the same cluster (env: its own environment on top of
  // the stack's, e.g. another DATABASE_URL). Returns {url, output(), stop()}; stack.stop() stops it
  // too.
  async startFunction(env = {}) {
    let lastError
    for (let tries = 0; tries < 3; tries++) {
      const port = await anyFreePort()
      const instance = { text: '' }
      try {
        const child = await this.#spawnFunction(port, env, instance)
        this.#extraFns.add(child)
        const exited = new Promise((resolve) => child.once('exit', resolve))
        return {
          url: `http://127.0.0.1:${port}/functions/v1/sync`,
          output: () => instance.text,
          stop: async () => {
            child.kill('SIGTERM')
            await exited
            this.#extraFns.delete(child)
          },
        }
      } catch (e) {
        lastError = e
      }
    }
    throw lastError
  }

  // Spawns the function; resolves with its process once it listens. env: extra environment;
  // instance: where its output goes (none: the stack's own function, fnOutput).
  #spawnFunction(port, env = {}, instance = null) {
    return new Promise((resolve, reject) => {
      const child = spawn(
        DENO,
        ['run', '--allow-net', '--allow-env', '--allow-read', '--allow-write=.', '--allow-sys', 'index.ts'],
        {
          cwd: this.functionDir,
          env: {
            ...process.env,
            DATABASE_URL: `postgres://postgres@127.0.0.1:${this.pgPort}/postgres`,
            JWT_SECRET: this.secret,
            PORT: String(port),
            HOST: '127.0.0.1',
            NO_COLOR: '1',
            ...this.functionEnv,
            ...env,
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      )
      let ready = false
      const output = () => (instance ? instance.text : this.fnOutput)
      const timer = setTimeout(() => {
        child.kill('SIGKILL')
        reject(new Error(`edge function did not start within 120s:\n${output()}`))
      }, 120_000)
      const onData = (chunk) => {
        if (instance) instance.text += chunk
        else this.fnOutput += chunk
        if (!ready && /Listening on http/.test(output())) {
          ready = true
          clearTimeout(timer)
          if (!instance) {
            this.#fn = child
            this.functionPid = child.pid
            this.functionPort = port
          }
          resolve(child)
        }
      }
      child.stdout.setEncoding('utf8').on('data', onData)
      child.stderr.setEncoding('utf8').on('data', onData)
      child.once('exit', (code, signal) => {
        if (this.#fn === child) this.#fn = null
        if (!ready) {
          clearTimeout(timer)
          reject(new Error(`edge function exited (${code ?? signal}):\n${output()}`))
        }
      })
    })
  }

  async stop() {
    for (const s of this.#sessions) s.child.kill('SIGKILL') // sessions a failed test left open
    for (const child of this.#extraFns) child.kill('SIGKILL') // functions a failed test left running
    if (this.#fn) {
      const child = this.#fn
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      await exited
    }
    await this.pooler?.stop()
    let crashed = null
    if (this.#clusterUp) {
      await run(CLUSTER_SH, ['stop', this.dir])
      this.#clusterUp = false
      // a backend that died of a signal takes the whole server through recovery: never acceptable
      const log = path.join(this.dir, 'server.log')
      if (existsSync(log)) crashed = readFileSync(log, 'utf8').split('\n').find((l) => /terminated by signal/.test(l)) ?? null
    }
    if (this.dir && existsSync(this.dir)) rmSync(this.dir, { recursive: true, force: true })
    process.removeListener('exit', this.#onExit)
    process.removeListener('SIGINT', this.#onSignal)
    process.removeListener('SIGTERM', this.#onSignal)
    if (crashed) throw new Error(`the server log shows a crash: ${crashed}`)
  }

  // Last resort when the test process exits without after() having run.
  #stopNow() {
    for (const s of this.#sessions) s.child.kill('SIGKILL')
    for (const child of this.#extraFns) child.kill('SIGKILL')
    try {
      this.#fn?.kill('SIGKILL')
      this.pooler?.kill()
    } catch {}
    if (this.#clusterUp) {
      try {
        execFileSync(CLUSTER_SH, ['stop', this.dir], { stdio: 'ignore' })
        rmSync(this.dir, { recursive: true, force: true })
      } catch {}
    }
  }

  // --- SQL as the superuser ---------------------------------------------------------------------

  sql(text) {
    return run(
      path.join(PG_BINDIR, 'psql'),
      ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', this.sock, '-p', String(this.pgPort), '-U', 'postgres', '-d', 'postgres', '-f', '-'],
      { input: text },
    ).then((out) => out.trim())
  }

  async query(select) {
    return JSON.parse(await this.sql(`SELECT coalesce(json_agg(q), '[]') FROM (${select}) q;`))
  }

  async dbRows(table, user) {
    const rows = await this.query(this.clientTables.find((t) => t.name === table).dbRows(user))
    return rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  // --- users, devices, raw HTTP -----------------------------------------------------------------

  async newUser(label, claims = {}) {
    const id = `${label}-${randomUUID()}`
    const token = await this.sign({ sub: id, role: 'authenticated', ...claims })
    return { id, label, token }
  }

  // HS256 JWT signed with the function's secret. expiresAt: '2h' (relative), seconds since epoch,
  // or null for a token without exp.
  sign(claims, { expiresAt = '2h' } = {}) {
    const jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt()
    return (expiresAt === null ? jwt : jwt.setExpirationTime(expiresAt)).sign(this.key)
  }

  // A new device (an app install) of a user, with an empty local database, ready to use.
  // options: see Device.
  async newDevice(user, name, options) {
    const device = new Device(this, user, name, options)
    await device.database.get(this.tables[0]).query().fetchCount() // waits for the adapter's setup
    return device
  }

  // A psql session kept open, to hold a transaction across other steps.
  async session() {
    const s = new SqlSession(this)
    this.#sessions.add(s)
    s.exited.then(() => this.#sessions.delete(s))
    await s.run('SELECT 1;')
    return s
  }

  // GET .../events for a user, the token in the Authorization header (or in ?access_token=).
  events(user, { query = false } = {}) {
    return query
      ? new NodeEventSource(`${this.functionUrl}/events?access_token=${encodeURIComponent(user.token)}`)
      : new NodeEventSource(`${this.functionUrl}/events`, { headers: { authorization: `Bearer ${user.token}` } })
  }

  pull(user, lastPulledAt = null) {
    return post(`${this.functionUrl}/pull`, user.token, { lastPulledAt, schemaVersion: 1, migration: null })
  }

  push(user, changes, lastPulledAt) {
    return post(`${this.functionUrl}/push`, user.token, { changes, lastPulledAt })
  }
}

class SqlSession {
  constructor(stack) {
    this.out = ''
    this.err = ''
    this.n = 0
    this.child = spawn(
      path.join(PG_BINDIR, 'psql'),
      ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', stack.sock, '-p', String(stack.pgPort), '-U', 'postgres', '-d', 'postgres', '-f', '-'],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    )
    this.child.stdout.setEncoding('utf8').on('data', (d) => {
      this.out += d
      this.wake?.()
    })
    this.child.stderr.setEncoding('utf8').on('data', (d) => (this.err += d))
    this.exited = new Promise((resolve) => this.child.once('exit', resolve))
  }

  // Runs statements in the session and waits until psql has executed them.
  async run(text) {
    const marker = `__pg_sync_e2e_${++this.n}__`
    this.child.stdin.write(`${text}\n\\echo ${marker}\n`)
    const done = new Promise((resolve, reject) => {
      this.wake = () => this.out.includes(marker) && resolve()
      this.exited.then(() => reject(new Error(`psql session ended: ${this.err}`)))
      this.wake()
    })
    await done
    const [result, rest] = this.out.split(`${marker}\n`)
    this.out = rest ?? ''
    return result.trim()
  }

  async close() {
    this.child.stdin.end()
    await this.exited
  }
}

// ---------------------------------------------------------------------------------------------
// Assertions

// Live rows of a device in the database's shape: raw record without _status/_changed. Also checks
// that the device has nothing pending: every record synced, no locally deleted record left.
export async function deviceRows(device, table) {
  const raws = await device.raws(table)
  for (const raw of raws) {
    assert.equal(raw._status, 'synced', `${device.name}: ${table}#${raw.id} is ${raw._status}`)
    assert.equal(raw._changed, '', `${device.name}: ${table}#${raw.id} has changed columns ${raw._changed}`)
  }
  const deleted = await device.database.adapter.getDeletedRecords(table)
  assert.deepEqual(deleted, [], `${device.name}: ${table} has locally deleted records not yet synced`)
  return raws.map(({ _status, _changed, ...row }) => row)
}

// Every device holds exactly the database's rows: its user's rows of per-user tables, all rows of
// shared ones (tasks and projects by default). Full contents.
export async function assertConverged(stack, devices) {
  for (const table of stack.tables) {
    for (const device of devices) {
      const expected = await stack.dbRows(table, device.user)
      const actual = await deviceRows(device, table)
      assert.deepEqual(actual, expected, `${device.name} (${device.user.label}): ${table} differs from the database`)
    }
  }
}

// Syncs each device, in order, twice. Round 1 pushes everyone's pending changes (each push directly
// follows its own pull, nobody writes in between, so no conflict); round 2 brings every device the
// others' pushes and must push nothing. Each sync must succeed at once, with no log entry.
export async function settle(devices) {
  for (let round = 1; round <= 2; round++) {
    for (const device of devices) {
      const report = await device.sync()
      assertCleanSync(report)
      if (round === 2) assert.equal(report.attempts[0].pushed, null, `${device.name} pushed in the second round`)
    }
  }
}

export function assertCleanSync(report) {
  assert.equal(report.recovery, null, `${report.device}: sync needed recovery ${report.recovery}`)
  assert.equal(report.attempts.length, 1)
  assert.deepEqual(report.log, [], `${report.device}: WatermelonDB logged during sync`)
}

// Scenario 10: WatermelonDB logged nothing but the adapter's lifecycle messages. `allowed` lists
// regexps of messages a test provokes on purpose; returns the entries that matched them.
export function assertWatermelonQuiet(allowed = []) {
  const unexpected = watermelonLog.unexpected()
  const matched = unexpected.filter((e) => allowed.some((re) => re.test(e.text)))
  const rest = unexpected.filter((e) => !matched.includes(e))
  watermelonLog.clear()
  assert.deepEqual(rest, [], 'WatermelonDB logged warnings, errors or unexpected messages')
  return matched
}

// Hooks shared by every test file: one stack per file; WatermelonDB's log starts empty for each
// test and must hold nothing unexpected after it (tests that provoke messages on purpose check and
// clear them with assertWatermelonQuiet(allowed) themselves).
export function useStack(options) {
  const holder = {}
  before(async () => {
    holder.stack = await startStack(options)
  })
  after(async () => {
    await holder.stack?.stop()
  })
  beforeEach(() => watermelonLog.clear())
  afterEach(() => assertWatermelonQuiet())
  return () => holder.stack
}

export { Task, Project, synchronize }
