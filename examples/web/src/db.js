// The demo app's local database: WatermelonDB with LokiJS on IndexedDB, one database per user
// name, with the tables of examples/demo.sql. Models without decorator syntax: WatermelonDB's
// decorators are plain functions, applied here by hand.
import { Database, Model, appSchema, tableSchema } from '@nozbe/watermelondb'
import { schemaMigrations } from '@nozbe/watermelondb/Schema/migrations'
import LokiJSAdapter from '@nozbe/watermelondb/adapters/lokijs'
import { field, date, readonly } from '@nozbe/watermelondb/decorators'

export const schema = appSchema({
  version: 1,
  tables: [
    tableSchema({
      name: 'projects',
      columns: [
        { name: 'owner_id', type: 'string' },
        { name: 'name', type: 'string' },
        { name: 'created_at', type: 'number' },
        { name: 'updated_at', type: 'number' },
      ],
    }),
    tableSchema({
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
    tableSchema({ name: 'tags', columns: [{ name: 'label', type: 'string' }] }),
  ],
})

// Migrations start empty; with them the app may set migrationsEnabledAtVersion.
export const migrations = schemaMigrations({ migrations: [] })

function decorate(ModelClass, props) {
  for (const [key, decorators] of Object.entries(props)) {
    let descriptor
    for (const d of decorators.slice().reverse()) descriptor = d(ModelClass.prototype, key, descriptor)
    Object.defineProperty(ModelClass.prototype, key, descriptor)
  }
}

export class Project extends Model {
  static table = 'projects'
}
decorate(Project, {
  name: [field('name')],
  createdAt: [readonly, date('created_at')],
  updatedAt: [readonly, date('updated_at')],
})

export class Task extends Model {
  static table = 'tasks'
}
decorate(Task, {
  ownerId: [field('owner_id')],
  projectId: [field('project_id')],
  title: [field('title')],
  isDone: [field('is_done')],
  position: [field('position')],
  createdAt: [readonly, date('created_at')],
  updatedAt: [readonly, date('updated_at')], // WatermelonDB touches it on every update
})

export class Tag extends Model {
  static table = 'tags'
}
decorate(Tag, { label: [field('label')] })

export function openDatabase(user) {
  const adapter = new LokiJSAdapter({
    schema,
    migrations,
    dbName: `pg_sync_demo:${user}`,
    useWebWorker: false,
    useIncrementalIndexedDB: true,
  })
  return new Database({ adapter, modelClasses: [Project, Task, Tag] })
}
