// Scenario 13: the client code README shows is examples/web/src/sync.js, and this file runs it as
// written (through a resolve hook that only points its WatermelonDB import at this suite's copy)
// against make run's schema (examples/demo.sql): per-user projects and tasks, pull-only tags.
//   - README's block is that file, byte for byte;
//   - devices sync with it: create, edit, delete reach the user's other device;
//   - migrationsEnabledAtVersion needs an adapter with migrations (the snippet README used to show
//     set it without them, and every sync threw);
//   - a local edit of a pull-only table (created, updated, deleted) is dropped: the device gets the
//     server's rows back and has nothing left to push, where WatermelonDB alone keeps the records
//     dirty and pushes them again at every sync;
//   - a big first sync comes in pages (the function's default page size) and the device's own
//     record is pushed after the last page; a device back after the retention gets a replacement
//     and keeps its unpushed edit.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { register, createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { randomUUID } from 'node:crypto'
import { useStack } from '../lib/harness.js'

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
const SNIPPET = path.join(REPO, 'examples/web/src/sync.js')
register('../lib/resolve-watermelondb.mjs', import.meta.url)
const { sync } = await import(SNIPPET)

const require = createRequire(import.meta.url)
const { Database, Model, appSchema, tableSchema } = require('@nozbe/watermelondb')
const { schemaMigrations } = require('@nozbe/watermelondb/Schema/migrations')
const LokiJSAdapter = require('@nozbe/watermelondb/adapters/lokijs').default
const { hasUnsyncedChanges } = require('@nozbe/watermelondb/sync')

const S = useStack({ schemaSql: readFileSync(path.join(REPO, 'examples/demo.sql'), 'utf8') })

// The app's tables (examples/web/src/db.js).
const tables = {
  projects: tableSchema({
    name: 'projects',
    columns: [
      { name: 'owner_id', type: 'string' },
      { name: 'name', type: 'string' },
      { name: 'created_at', type: 'number' },
      { name: 'updated_at', type: 'number' },
    ],
  }),
  tasks: tableSchema({
    name: 'tasks',
    columns: [
      { name: 'owner_id', type: 'string' },
      { name: 'project_id', type: 'string', isOptional: true },
      { name: 'title', type: 'string' },
      { name: 'is_done', type: 'boolean' },
      { name: 'position', type: 'number', isOptional: true },
      { name: 'created_at', type: 'number' },
      { name: 'updated_at', type: 'number' },
    ],
  }),
  tags: tableSchema({ name: 'tags', columns: [{ name: 'label', type: 'string' }] }),
}
class Project extends Model {
  static table = 'projects'
}
class Task extends Model {
  static table = 'tasks'
}
class Tag extends Model {
  static table = 'tags'
}

function device({ migrations } = {}) {
  const schema = appSchema({ version: 1, tables: [tables.projects, tables.tasks, tables.tags] })
  const adapter = new LokiJSAdapter({
    schema,
    ...(migrations ? { migrations } : {}),
    dbName: randomUUID(),
    useWebWorker: false,
    useIncrementalIndexedDB: true,
    extraLokiOptions: { autosave: false },
  })
  return new Database({ adapter, modelClasses: [Project, Task, Tag] })
}

const raws = async (db, table) =>
  (await db.get(table).query().fetch()).map((r) => r._raw).sort((a, b) => (a.id < b.id ? -1 : 1))
const write = (db, fn) => db.write(fn)
const createTask = (db, title) =>
  write(db, async () => (await db.get('tasks').create((t) => t._setRaw('title', title))).id)

async function client(stack, label) {
  const id = `${label}-${randomUUID()}`
  return { id, opts: { url: stack.functionUrl, jwt: await stack.sign({ sub: id, role: 'authenticated' }), pullOnlyTables: ['tags'] } }
}

test("README's client code is examples/web/src/sync.js, as the file has it", () => {
  const readme = readFileSync(path.join(REPO, 'README.md'), 'utf8')
  const block = /<!-- examples\/web\/src\/sync\.js -->\n```js\n([\s\S]*?)```\n/.exec(readme)
  assert.ok(block, 'README has no block marked <!-- examples/web/src/sync.js -->')
  assert.equal(block[1], readFileSync(SNIPPET, 'utf8'))
})

test('two devices of a user sync with it: create, edit, delete', async () => {
  const stack = S()
  const alice = await client(stack, 'alice')
  const A = device()
  const B = device()
  const x = await createTask(A, 'x')
  const y = await createTask(A, 'y')
  await sync(A, alice.opts)
  await sync(B, alice.opts)
  assert.deepEqual((await raws(B, 'tasks')).map((r) => [r.id, r.title, r.owner_id]), [
    [x, 'x', alice.id],
    [y, 'y', alice.id],
  ].sort((a, b) => (a[0] < b[0] ? -1 : 1)))
  assert.deepEqual((await raws(B, 'tags')).map((r) => r.label).sort(), ['home', 'urgent'])

  await write(B, async () => (await B.get('tasks').find(x)).update((t) => t._setRaw('title', 'x edited on B')))
  await write(A, async () => (await A.get('tasks').find(y)).markAsDeleted())
  await sync(B, alice.opts)
  await sync(A, alice.opts)
  await sync(B, alice.opts)
  for (const db of [A, B]) {
    assert.deepEqual((await raws(db, 'tasks')).map((r) => [r.id, r.title]), [[x, 'x edited on B']])
    assert.equal(await hasUnsyncedChanges({ database: db }), false)
  }
  assert.equal(await stack.sql(`SELECT string_agg(id || '=' || title, ',') FROM tasks WHERE owner_id = '${alice.id}'`), `${x}=x edited on B`)
})

test('migrationsEnabledAtVersion needs an adapter with migrations (README says so); with them it syncs', async () => {
  const stack = S()
  const alice = await client(stack, 'alice')
  // The mistake README's snippet used to make: migrationsEnabledAtVersion without migrations.
  const plain = device()
  await assert.rejects(sync(plain, { ...alice.opts, migrationsEnabledAtVersion: 1 }), /Migration syncs cannot be enabled/)
  // As README shows it: the adapter has schemaMigrations (empty at first).
  const withMigrations = device({ migrations: schemaMigrations({ migrations: [] }) })
  await sync(withMigrations, { ...alice.opts, migrationsEnabledAtVersion: 1 })
  const id = await createTask(withMigrations, 'with migrations')
  await sync(withMigrations, { ...alice.opts, migrationsEnabledAtVersion: 1 })
  assert.equal(await stack.sql(`SELECT owner_id FROM tasks WHERE id = '${id}'`), alice.id)
  assert.deepEqual((await raws(withMigrations, 'tags')).map((r) => r.label).sort(), ['home', 'urgent'])
})

test('a local edit of the pull-only table is dropped: the server rows come back, nothing stays to push', async () => {
  const stack = S()
  const alice = await client(stack, 'alice')
  const A = device()
  await sync(A, alice.opts)
  // WatermelonDB has no read-only tables: the app (or a bug) edits tags like any table.
  await write(A, async () => {
    await (await A.get('tags').find('t-urgent')).update((t) => t._setRaw('label', 'renamed on A'))
    await (await A.get('tags').find('t-home')).markAsDeleted()
    await A.get('tags').create((t) => {
      t._raw.id = 't-local'
      t._setRaw('label', 'made on A')
    })
  })
  const task = await createTask(A, 'pushed with the tags')

  // Without the recipe: WatermelonDB keeps the rejected records dirty and pushes them at every sync.
  const stubborn = { ...alice.opts, pullOnlyTables: [] }
  const B = device()
  await sync(B, stubborn)
  await write(B, async () => (await B.get('tags').find('t-urgent')).update((t) => t._setRaw('label', 'renamed on B')))
  for (let i = 0; i < 2; i++) {
    await sync(B, stubborn)
    assert.equal(await hasUnsyncedChanges({ database: B }), true, 'WatermelonDB gave up the rejected edit by itself')
    assert.equal((await raws(B, 'tags')).find((t) => t.id === 't-urgent').label, 'renamed on B')
  }

  // With it: one sync.
  await sync(A, alice.opts)
  assert.equal(await hasUnsyncedChanges({ database: A }), false)
  assert.deepEqual(
    (await raws(A, 'tags')).map((t) => [t.id, t.label, t._status]),
    [
      ['t-home', 'home', 'synced'],
      ['t-urgent', 'urgent', 'synced'],
    ],
  )
  assert.equal(await stack.sql(`SELECT title FROM tasks WHERE id = '${task}'`), 'pushed with the tags')
  assert.equal(await stack.sql(`SELECT string_agg(id || '=' || label, ',' ORDER BY id) FROM tags`), 't-home=home,t-urgent=urgent')
  // and the device keeps syncing normally
  const later = await createTask(A, 'later')
  await sync(A, alice.opts)
  assert.equal(await stack.sql(`SELECT count(*) FROM tasks WHERE id = '${later}'`), '1')
  assert.equal(await hasUnsyncedChanges({ database: A }), false)
})

// The answers to the pulls sync() makes while fn runs (global fetch wrapped).
async function pullAnswers(fn) {
  const answers = []
  const realFetch = globalThis.fetch
  globalThis.fetch = async (url, init) => {
    const res = await realFetch(url, init)
    if (String(url).endsWith('/pull')) answers.push(await res.clone().json())
    return res
  }
  try {
    await fn()
  } finally {
    globalThis.fetch = realFetch
  }
  return answers
}

test('a big first sync comes in pages (the function pages by 5,000); a local record goes after the last page', async () => {
  const stack = S()
  const alice = await client(stack, 'alice')
  await stack.sql(`INSERT INTO tasks (id, owner_id, title) SELECT 'big-' || i, '${alice.id}', 'task ' || i FROM generate_series(1, 12000) i`)
  const A = device()
  const mine = await createTask(A, 'made before the first sync')
  const answers = await pullAnswers(() => sync(A, { ...alice.opts, clientId: `A-${alice.id}` }))
  assert.deepEqual(answers.map((a) => a.hasMore ?? false), [true, true, false])
  const ids = answers.flatMap((a) => Object.values(a.changes).flatMap((t) => t.updated.map((r) => r.id)))
  assert.equal(ids.length, 12000 + 2) // and the two tags
  assert.equal(new Set(ids).size, ids.length)
  assert.equal(await A.get('tasks').query().fetchCount(), 12001)
  assert.equal(await hasUnsyncedChanges({ database: A }), false)
  assert.equal(await stack.sql(`SELECT title FROM tasks WHERE id = '${mine}'`), 'made before the first sync')
})

test('back after the retention with an unpushed edit: a replacement keeps it, rows deleted meanwhile go', async () => {
  const stack = S()
  const alice = await client(stack, 'alice')
  const A = device()
  const keep = await createTask(A, 'kept')
  const gone = await createTask(A, 'deleted on the server meanwhile')
  await sync(A, alice.opts)
  const token = await A.adapter.getLocal('__watermelon_last_pulled_at') // WatermelonDB's stored token
  await write(A, async () => (await A.get('tasks').find(keep)).update((t) => t._setRaw('title', 'edited offline')))
  await stack.sql(`DELETE FROM tasks WHERE id = '${gone}'; SELECT sync_checkpoint();
                   UPDATE _pg_sync.checkpoints SET created_at = created_at - interval '40 days' WHERE id = ${token};
                   SELECT * FROM sync_prune('30 days');`)
  const answers = await pullAnswers(() => sync(A, alice.opts))
  assert.equal(answers[0].experimentalStrategy, 'replacement')
  assert.deepEqual((await raws(A, 'tasks')).map((r) => [r.id, r.title]), [[keep, 'edited offline']])
  assert.equal(await stack.sql(`SELECT string_agg(id || '=' || title, ',') FROM tasks WHERE owner_id = '${alice.id}'`), `${keep}=edited offline`)
  assert.equal(await hasUnsyncedChanges({ database: A }), false)
})
