// Scenario 23: a schema migration of the app adds a column the server has had all along. The
// device synced at schema version 1 (no tasks.priority), then its app is updated to version 2,
// whose migration adds the column: WatermelonDB filled it with null on the device, and with
// migrationsEnabledAtVersion: 1 its next pull sends migration {"from": 1, "columns": [{"table":
// "tasks", "columns": ["priority"]}]}. pg_sync answers the changes since the token plus every row
// whose priority is set (the only rows the device lacks something of), so:
//   - the pull carries exactly those rows (updated) and the rows deleted since (deleted);
//   - afterwards the device holds exactly the database's rows, priority included.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { useStack, ROLES_SQL, assertConverged, assertCleanSync, assertWatermelonQuiet, settle, lit } from '../lib/harness.js'

const require = createRequire(import.meta.url)
const { appSchema, tableSchema } = require('@nozbe/watermelondb')
const { schemaMigrations, addColumns } = require('@nozbe/watermelondb/Schema/migrations')

const S = useStack({
  schemaSql: `${ROLES_SQL}
CREATE TABLE tasks (
    id         text PRIMARY KEY,
    owner_id   text NOT NULL,
    title      text,
    priority   integer,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
SELECT sync_register_table('tasks', owner_column => 'owner_id');
GRANT SELECT, INSERT, UPDATE, DELETE ON tasks TO authenticated;`,
  // the app's version 2 (version 1 had no priority)
  clientTables: [
    {
      name: 'tasks',
      owner: 'owner_id',
      columns: { owner_id: 'string', title: 'string?', priority: 'number?', created_at: 'timestamp', updated_at: 'timestamp' },
    },
  ],
})

const V1 = appSchema({
  version: 1,
  tables: [
    tableSchema({
      name: 'tasks',
      columns: [
        { name: 'owner_id', type: 'string' },
        { name: 'title', type: 'string', isOptional: true },
        { name: 'created_at', type: 'number' },
        { name: 'updated_at', type: 'number' },
      ],
    }),
  ],
})
const PRIORITY = { name: 'priority', type: 'number', isOptional: true }
const V2 = appSchema({ version: 2, tables: [tableSchema({ ...V1.tables.tasks, columns: [...V1.tables.tasks.columnArray, PRIORITY] })] })
const MIGRATIONS = schemaMigrations({
  migrations: [{ toVersion: 2, steps: [addColumns({ table: 'tasks', columns: [PRIORITY] })] }],
})

test('a migration adding a column: the device gets exactly the rows where it is set, plus the changes', async () => {
  const stack = S()
  const alice = await stack.newUser('alice')
  const bob = await stack.newUser('bob')
  // 200 tasks, priority set on every fifth; bob's tasks have priorities too
  await stack.sql(`
    INSERT INTO tasks (id, owner_id, title, priority)
      SELECT format('t-%s', lpad(i::text, 3, '0')), ${lit(alice.id)}, 'task ' || i, CASE WHEN i % 5 = 0 THEN i END
      FROM generate_series(1, 200) i;
    INSERT INTO tasks (id, owner_id, title, priority) SELECT 'b-' || i, ${lit(bob.id)}, 'bob', i FROM generate_series(1, 5) i;`)
  const A = await stack.newDevice(alice, 'A', { schema: V1, migrations: schemaMigrations({ migrations: [] }) })
  A.migrationsEnabledAtVersion = 1
  const first = await A.sync()
  assertCleanSync(first)
  assert.equal(first.attempts[0].pulled, 200)
  assert.equal('priority' in (await A.raw('tasks', 't-005')), false, 'version 1 has no priority')

  // While the device runs version 1: a title changed, a priority set, rows deleted and inserted.
  await stack.sql(`
    UPDATE tasks SET title = 'edited' WHERE id IN ('t-001', 't-002', 't-010');
    UPDATE tasks SET priority = 7 WHERE id = 't-003';
    DELETE FROM tasks WHERE id IN ('t-004', 't-015');
    INSERT INTO tasks (id, owner_id, title, priority) VALUES ('n-1', ${lit(alice.id)}, 'new', NULL), ('n-2', ${lit(alice.id)}, 'new', 2);`)
  const changed = ['t-001', 't-002', 't-003', 't-010', 'n-1', 'n-2']
  const withPriority = (await stack.query(`SELECT id FROM tasks WHERE owner_id = ${lit(alice.id)} AND priority IS NOT NULL`)).map((r) => r.id)
  assert.equal(withPriority.length, 40 - 1 + 2) // t-015's deleted; t-003's and n-2's set

  // The app is updated: version 2 adds tasks.priority.
  await A.upgrade(V2, MIGRATIONS)
  // what LokiJSAdapter logs while it migrates the local database
  const migrating = ['[Loki] Database has old schema version. Migration is required.', '[Loki] Migrating from version 1 to 2...', '[Loki] Migration successful']
  const logged = assertWatermelonQuiet([/^\[Loki\] (Database has old schema|Migrating from|Migration successful)/])
  assert.deepEqual(logged.map((e) => e.text), migrating)
  assert.equal((await A.raw('tasks', 't-005')).priority, null, 'the migration filled the new column with null')
  const report = await A.sync()
  assert.equal(report.recovery, null)
  assert.equal(report.attempts.length, 1)
  // WatermelonDB says what it does, and nothing else
  assert.deepEqual(report.log, [{ level: 'log', text: '[Sync] Performing migration sync from 1 to 2' }])
  assert.equal(assertWatermelonQuiet([/^\[Sync\] Performing migration sync from 1 to 2$/]).length, 1)
  const [attempt] = report.attempts
  assert.deepEqual(attempt.migration, { from: 1, tables: [], columns: [{ table: 'tasks', columns: ['priority'] }] })
  const { tasks } = attempt.pullResult.changes
  assert.deepEqual(tasks.updated.map((r) => r.id).sort(), [...new Set([...withPriority, ...changed])].sort(), 'exactly the rows with a priority, and the changed ones')
  assert.deepEqual(tasks.deleted.sort(), ['t-004', 't-015'])
  assert.ok(!JSON.stringify(attempt.pullResult).includes(bob.id), "nothing of bob's")
  assert.equal((await A.raw('tasks', 't-005')).priority, 5)
  assert.equal((await A.raw('tasks', 't-003')).priority, 7)
  await assertConverged(stack, [A])

  // And on from there: version 2 syncs as usual; a device installed at version 2 gets it all.
  await A.update('tasks', 't-006', { priority: 1 })
  const B = await stack.newDevice(alice, 'B')
  await settle([A, B])
  await assertConverged(stack, [A, B])
})
