// What the function passes on from sync_push (README: the push result, the function's errors):
// the result's "conflicts", "errors" and "experimentalRejectedIds" come through as the database
// wrote them; an error about a value of a pushed record carries "record", the error context line
// naming record, table and column; a constraint's error names the record in its message.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startDemoStack, call, user } from './lib.js'

const TABLES_SQL = `
CREATE TABLE answers (id text PRIMARY KEY, owner_id text NOT NULL, verb text, score int);
SELECT sync_register_table('answers', owner_column => 'owner_id', conflict_policy => 'insert_only');
CREATE TABLE drafts (id text PRIMARY KEY, owner_id text NOT NULL, body text, updated_at timestamptz);
SELECT sync_register_table('drafts', owner_column => 'owner_id', conflict_policy => 'last_write_wins');
CREATE TABLE cards (id text PRIMARY KEY, owner_id text NOT NULL, code varchar(3), n int CHECK (n >= 0));
SELECT sync_register_table('cards', owner_column => 'owner_id', options => '{"push_mode": "per_record"}');
GRANT SELECT, INSERT, UPDATE, DELETE ON answers, drafts, cards TO authenticated;
`

let stack
before(async () => {
  stack = await startDemoStack({ extraSql: TABLES_SQL })
})
after(async () => stack?.stop())

const empty = { created: [], updated: [], deleted: [] }

async function signedIn() {
  const id = user()
  return { id, token: await stack.sign({ sub: id, role: 'authenticated' }) }
}
const pull = async (u) => (await call(stack, 'pull', { token: u.token, body: { lastPulledAt: null } })).body
const push = (u, changes, lastPulledAt) => call(stack, 'push', { token: u.token, body: { changes, lastPulledAt } })

test('insert_only: rejected changes come back in experimentalRejectedIds and errors, the rest applies', async () => {
  const alice = await signedIn()
  const [s1, s2] = [`${alice.id}-s1`, `${alice.id}-s2`]
  const first = await pull(alice)
  const created = await push(alice, { answers: { ...empty, created: [{ id: s1, verb: 'answered', score: 3 }] } }, first.timestamp)
  assert.deepEqual(created.body, { created: 1, updated: 0, deleted: 0 })
  const second = await pull(alice)
  const res = await push(
    alice,
    { answers: { created: [{ id: s2, verb: 'new', score: 0 }], updated: [{ id: s1, verb: 'answered', score: 5 }], deleted: [] } },
    second.timestamp,
  )
  assert.equal(res.status, 200, res.text)
  assert.deepEqual(res.body, {
    created: 1,
    updated: 0,
    deleted: 0,
    experimentalRejectedIds: { answers: [s1] },
    errors: { answers: { [s1]: 'records of this table cannot be changed once created' } },
  })
  const del = await push(alice, { answers: { ...empty, deleted: [s2] } }, second.timestamp)
  assert.deepEqual(del.body.experimentalRejectedIds, { answers: [s2] })
  assert.deepEqual(del.body.errors, { answers: { [s2]: 'records of this table cannot be deleted by clients' } })
  assert.deepEqual(await stack.query(`SELECT id, score FROM answers WHERE owner_id = '${alice.id}' ORDER BY id`), [
    { id: s1, score: 3 },
    { id: s2, score: 0 },
  ])
})

test('last_write_wins: the result lists each settled conflict and a clamped timestamp', async () => {
  const alice = await signedIn()
  const [older, fast] = [`${alice.id}-older`, `${alice.id}-fast`]
  await stack.sql(`INSERT INTO drafts VALUES ('${older}', '${alice.id}', 'server', now()), ('${fast}', '${alice.id}', 'server', now())`)
  const first = await pull(alice)
  await stack.sql(`UPDATE drafts SET body = 'server edit', updated_at = now() WHERE id = '${older}'`)
  const res = await push(
    alice,
    {
      drafts: {
        ...empty,
        updated: [
          { id: older, body: 'older edit', updated_at: Date.parse('2020-01-01T00:00:00Z') },
          { id: fast, body: 'an hour fast', updated_at: Date.now() + 3600_000 },
        ],
      },
    },
    first.timestamp,
  )
  assert.equal(res.status, 200, res.text)
  assert.equal(res.body.updated, 1)
  assert.deepEqual(
    res.body.conflicts.sort((a, b) => (a.id < b.id ? -1 : 1)),
    [
      { table: 'drafts', id: fast, policy: 'last_write_wins', resolution: 'client', clamped: true },
      { table: 'drafts', id: older, policy: 'last_write_wins', resolution: 'server' },
    ].sort((a, b) => (a.id < b.id ? -1 : 1)),
  )
  // stored: the clamped time (not an hour ahead), and the server's row where the server won
  const stored = await stack.query(
    `SELECT id, body, updated_at <= now() AS not_ahead FROM drafts WHERE owner_id = '${alice.id}' ORDER BY id`,
  )
  assert.deepEqual(stored, [
    { id: fast, body: 'an hour fast', not_ahead: true },
    { id: older, body: 'server edit', not_ahead: true },
  ])
})

test('per_record: a record that does not fit is rejected with its reason, the others commit', async () => {
  const alice = await signedIn()
  const first = await pull(alice)
  const ids = ['ok', 'long', 'negative'].map((s) => `${alice.id}-${s}`)
  const res = await push(
    alice,
    { cards: { ...empty, created: [{ id: ids[0], code: 'abc', n: 1 }, { id: ids[1], code: 'abcd', n: 1 }, { id: ids[2], code: 'x', n: -1 }] } },
    first.timestamp,
  )
  assert.equal(res.status, 200, res.text)
  assert.equal(res.body.created, 1)
  assert.deepEqual(res.body.experimentalRejectedIds.cards.sort(), [ids[1], ids[2]].sort())
  assert.deepEqual(Object.keys(res.body.errors.cards).sort(), [ids[1], ids[2]].sort())
  assert.match(res.body.errors.cards[ids[1]], /too long/)
  assert.match(res.body.errors.cards[ids[2]], /check constraint/)
  assert.equal(await stack.sql(`SELECT string_agg(id, ',') FROM cards WHERE owner_id = '${alice.id}'`), ids[0])
})

test('an error about a pushed value carries "record": the context line naming record, table and column', async () => {
  const alice = await signedIn()
  const first = await pull(alice)
  const t = `${alice.id}-t`
  const wrongKind = await push(alice, { tasks: { ...empty, created: [{ id: t, title: 'x', is_done: 'yes' }] } }, first.timestamp)
  assert.equal(wrongKind.status, 400, wrongKind.text)
  assert.deepEqual(wrongKind.body, {
    error: 'expected a boolean, got a string',
    code: '42804',
    record: `record "${t}" of table "tasks", column "is_done"`,
  })
  const badText = await push(alice, { tasks: { ...empty, created: [{ id: t, title: 'x', position: '1.5' }] } }, first.timestamp)
  assert.equal(badText.body.code, '42804')
  assert.equal(badText.body.record, `record "${t}" of table "tasks", column "position"`)
  // a constraint: the message itself names the record (no context line to add)
  const notNull = await push(alice, { tasks: { ...empty, created: [{ id: t, title: null }] } }, first.timestamp)
  assert.equal(notNull.status, 400)
  assert.equal(notNull.body.code, '23502')
  assert.match(notNull.body.error, new RegExp(`^record "${t}" of table "tasks": null value in column "title"`))
  // errors that are not about a record have no "record"
  const shape = await call(stack, 'push', { token: alice.token, raw: '{"lastPulledAt": null}' })
  assert.deepEqual(Object.keys(shape.body).sort(), ['code', 'error'])
  assert.equal(await stack.sql(`SELECT count(*) FROM tasks WHERE id = '${t}'`), '0')
})
