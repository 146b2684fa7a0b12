// Issue 13, problems 6 and 7, on make run's schema (examples/demo.sql).
// 6: a local edit to the pull-only table (tags) does not block the device: the push answers 200,
//    the tag is listed in experimentalRejectedIds, the rest of the push is applied, and the next
//    pull sends the server's rows again. A record the server has no row for is not marked on this
//    shared table (a mark would reach every user): the README's client code drops it itself.
// 7: the GRANTs that let the sync functions work also open the tables to direct SQL (PostgREST's
//    /rest/v1/tasks); row-level security keeps `authenticated` to its own rows there.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startDemoStack, call, user } from './lib.js'

let stack
before(async () => {
  stack = await startDemoStack()
})
after(async () => stack?.stop())

const empty = { created: [], updated: [], deleted: [] }

test('a pushed tag is rejected for that record only; the next pull resends the server row', async () => {
  const alice = user()
  const token = await stack.sign({ sub: alice, role: 'authenticated' })
  const first = await call(stack, 'pull', { token, body: { lastPulledAt: null } })
  assert.deepEqual(first.body.changes.tags.updated.map((t) => t.id).sort(), ['t-home', 't-urgent'])

  const pushed = await call(stack, 'push', {
    token,
    body: {
      changes: {
        tags: {
          created: [{ id: 't-mine', label: 'made on a device', _status: 'created', _changed: '' }],
          updated: [{ id: 't-urgent', label: 'renamed on a device', _status: 'updated', _changed: 'label' }],
          deleted: ['t-home'],
        },
        tasks: { created: [{ id: `${alice}-t`, title: 'applied', is_done: false }], updated: [], deleted: [] },
        projects: empty,
      },
      lastPulledAt: first.body.timestamp,
    },
  })
  assert.equal(pushed.status, 200, pushed.text)
  assert.deepEqual(pushed.body.experimentalRejectedIds.tags.sort(), ['t-home', 't-mine', 't-urgent'])
  assert.equal(pushed.body.created, 1)
  assert.equal(await stack.sql(`SELECT title FROM tasks WHERE id = '${alice}-t'`), 'applied')
  assert.equal(await stack.sql(`SELECT string_agg(id || '=' || label, ',' ORDER BY id) FROM tags`), 't-home=home,t-urgent=urgent')

  const next = await call(stack, 'pull', { token, body: { lastPulledAt: first.body.timestamp } })
  assert.equal(next.status, 200)
  const tags = next.body.changes.tags
  assert.deepEqual(
    tags.updated.map((t) => [t.id, t.label]).sort(),
    [
      ['t-home', 'home'],
      ['t-urgent', 'urgent'],
    ],
  )
  assert.deepEqual(tags.deleted, []) // (t-mine: not sent to anyone)
  // and another user's pull is not disturbed by alice's attempt
  const bobToken = await stack.sign({ sub: user(), role: 'authenticated' })
  const bobFirst = await call(stack, 'pull', { token: bobToken, body: { lastPulledAt: null } })
  assert.equal((await call(stack, 'pull', { token: bobToken, body: { lastPulledAt: bobFirst.body.timestamp } })).body.changes.tags.updated.length, 0)
})

// What PostgREST does for a request of `authenticated`: the role and the claims, then plain SQL.
async function asUser(id, statements) {
  const claims = JSON.stringify({ sub: id, role: 'authenticated' }).replaceAll("'", "''")
  return stack.sql(`BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '${claims}', true) \\g /dev/null
${statements}
COMMIT;`)
}

async function sqlState(promise) {
  try {
    await promise
    return null
  } catch (e) {
    return /ERROR:\s+(.*)/.exec(e.message)?.[1] ?? e.message
  }
}

test("direct SQL as authenticated sees and changes only the caller's rows", async () => {
  const alice = user()
  const bob = user()
  await stack.sql(`INSERT INTO tasks (id, owner_id, title) VALUES ('${alice}-a', '${alice}', 'alice''s'), ('${bob}-b', '${bob}', 'bob''s');
                   INSERT INTO projects (id, owner_id, name) VALUES ('${bob}-p', '${bob}', 'bob''s project');`)
  assert.equal(await asUser(alice, `SELECT string_agg(id, ',') FROM tasks WHERE owner_id IN ('${alice}', '${bob}');`), `${alice}-a`)
  assert.equal(await asUser(alice, `SELECT count(*) FROM projects WHERE owner_id = '${bob}';`), '0')
  // updates and deletes of bob's rows find nothing to change
  await asUser(alice, `UPDATE tasks SET title = 'taken' WHERE id = '${bob}-b'; DELETE FROM tasks WHERE id = '${bob}-b';`)
  assert.equal(await stack.sql(`SELECT title FROM tasks WHERE id = '${bob}-b'`), "bob's")
  // a row for bob, or moving alice's row to bob, is refused
  assert.match(await sqlState(asUser(alice, `INSERT INTO tasks (id, owner_id, title) VALUES ('${alice}-x', '${bob}', 'x');`)), /row-level security/)
  assert.match(await sqlState(asUser(alice, `UPDATE tasks SET owner_id = '${bob}' WHERE id = '${alice}-a';`)), /row-level security/)
  // her own rows work as usual
  await asUser(alice, `UPDATE tasks SET title = 'mine, edited' WHERE id = '${alice}-a';`)
  assert.equal(await stack.sql(`SELECT title FROM tasks WHERE id = '${alice}-a'`), 'mine, edited')
  // tags: readable by everyone, writable by nobody through these roles
  assert.equal(await asUser(alice, `SELECT count(*) FROM tags;`), '2')
  assert.match(await sqlState(asUser(alice, `INSERT INTO tags VALUES ('t-x', 'x');`)), /permission denied|row-level security/)
  // without claims (a pooled connection after PostgREST reset them): no rows, no error
  assert.equal(await stack.sql(`BEGIN; SET LOCAL ROLE authenticated; SELECT set_config('request.jwt.claims', '', true) \\g /dev/null
SELECT count(*) FROM tasks; COMMIT;`), '0')
})

test('sync through the function still works under those policies', async () => {
  const alice = user()
  const token = await stack.sign({ sub: alice, role: 'authenticated' })
  const first = await call(stack, 'pull', { token, body: { lastPulledAt: null } })
  const pushed = await call(stack, 'push', {
    token,
    body: {
      changes: { tasks: { created: [{ id: `${alice}-s`, owner_id: 'someone-else', title: 'synced', is_done: true }], updated: [], deleted: [] } },
      lastPulledAt: first.body.timestamp,
    },
  })
  assert.equal(pushed.status, 200, pushed.text)
  assert.equal(await stack.sql(`SELECT owner_id FROM tasks WHERE id = '${alice}-s'`), alice)
  const again = await call(stack, 'pull', { token, body: { lastPulledAt: first.body.timestamp } })
  assert.deepEqual(again.body.changes.tasks.updated.map((t) => t.id), [`${alice}-s`])
})
