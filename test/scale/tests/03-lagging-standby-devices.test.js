// WatermelonDB devices syncing through the edge function with a read replica that lags: a standby
// with recovery_min_apply_delay = 1h from its start, so it stays at the state of its base backup
// for the whole test while the primary moves on.
//   - pulls go to the replica; a token it has not replayed (one the primary handed out) is
//     answered by the primary in the same request: no 503, no 410, no skipped change;
//   - after a 409, README's client code (examples/web/src/sync.js) pulls with ?primary, sees the
//     write its push conflicted with and pushes again successfully; a client that retries the
//     pull on the replica gets the same stale answer and a second 409;
//   - once the standby applies everything (delay 0), devices converge with pulls it serves.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { register } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { assertConverged, SyncHttpError } from '../../e2e/lib/harness.js'
import { startTopology, stopTopology, waitReplay } from '../lib.js'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const REPO = path.resolve(HERE, '../../..')
register('../../e2e/lib/resolve-watermelondb.mjs', import.meta.url)
const { sync } = await import(path.join(REPO, 'examples/web/src/sync.js'))

// every answer of the function, with the database that served it
const answers = []
const realFetch = globalThis.fetch
globalThis.fetch = async (url, init) => {
  const res = await realFetch(url, init)
  answers.push({ route: new URL(url).pathname.split('/').pop(), query: new URL(url).search, status: res.status, servedBy: res.headers.get('x-sync-served-by') })
  return res
}
const since = (mark) => answers.slice(mark)

let stack, user, seed
before(async () => {
  stack = await startTopology({
    delay: '1h',
    // what the frozen standby holds: one task and a checkpoint
    beforeStandby: async (s) => {
      user = await s.newUser('lag')
      await s.sql(`INSERT INTO tasks (id, owner_id, title) VALUES ('seed', '${user.id}', 'from the start'); SELECT sync_checkpoint();`)
    },
  })
  seed = Number(await stack.standby.sql('SELECT max(id) FROM _pg_sync.checkpoints'))
})
after(async () => {
  globalThis.fetch = realFetch
  if (stack) await stopTopology(stack)
})

const readme = (device) => sync(device.database, { url: stack.functionUrl, jwt: device.user.token })
const titles = async (device) => Object.fromEntries((await device.raws('tasks')).map((r) => [r.id, r.title]))

test('pulls from a lagging replica: stale but never wrong; tokens it lacks go to the primary', async () => {
  const d1 = await stack.newDevice(user, 'd1')
  const d2 = await stack.newDevice(user, 'd2')
  let mark = answers.length
  await readme(d1)
  assert.deepEqual(since(mark).map((a) => [a.route, a.status, a.servedBy]), [['pull', 200, 'replica']])
  assert.deepEqual(await titles(d1), { seed: 'from the start' })

  // d1 creates a task: the pull goes to the replica, the push to the primary
  const id = await d1.create('tasks', { title: 'made on d1' })
  mark = answers.length
  await readme(d1)
  assert.deepEqual(since(mark).map((a) => [a.route, a.status, a.servedBy]), [['pull', 200, 'replica'], ['push', 200, null]])

  // d2 on the replica: the replica's state (stale), with the replica's token
  mark = answers.length
  await readme(d2)
  assert.deepEqual(await titles(d2), { seed: 'from the start' })
  assert.equal(since(mark)[0].servedBy, 'replica')

  // a token from the primary (a pull with ?primary, as after a 409) that the replica never
  // replayed: the function asks the primary, in the same request
  const post = (query, lastPulledAt) =>
    realFetch(`${stack.functionUrl}/pull${query}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${user.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ lastPulledAt }),
    })
  const fromPrimary = await post('?primary', seed)
  assert.equal(fromPrimary.headers.get('x-sync-served-by'), 'primary')
  const token = (await fromPrimary.json()).timestamp
  assert.equal(await stack.standby.sql(`SELECT count(*) FROM _pg_sync.checkpoints WHERE id = ${token}`), '0')
  for (let i = 0; i < 3; i++) {
    const r = await post('', token)
    assert.equal(r.status, 200)
    assert.equal(r.headers.get('x-sync-served-by'), 'primary')
    assert.ok((await r.json()).timestamp >= token)
  }
  assert.ok(id)
})

test("after a 409, README's client pulls from the primary and its retry succeeds; a replica retry conflicts again", async () => {
  const a = await stack.newDevice(user, 'a')
  const b = await stack.newDevice(user, 'b')
  const c = await stack.newDevice(user, 'c')
  for (const d of [a, b, c]) await readme(d) // all hold the replica's token (seed)
  // b edits the seed task; its push goes to the primary, the replica never sees it
  await b.update('tasks', 'seed', { title: 'edited on b' })
  await readme(b)
  assert.equal((await stack.query(`SELECT title FROM tasks WHERE id = 'seed'`))[0].title, 'edited on b')

  // a edits the same task (another column): push from the replica's token -> 409; README's
  // retry pulls with ?primary, gets b's edit, merges per column, pushes again
  await a.update('tasks', 'seed', { isDone: true })
  let mark = answers.length
  await readme(a)
  assert.deepEqual(since(mark).map((x) => [x.route + x.query, x.status, x.servedBy]), [
    ['pull', 200, 'replica'],
    ['push', 409, null],
    ['pull?primary', 200, 'primary'],
    ['push', 200, null],
  ])
  const row = (await stack.query(`SELECT title, is_done FROM tasks WHERE id = 'seed'`))[0]
  assert.deepEqual(row, { title: 'edited on b', is_done: true })
  assert.equal(await a.unsynced(), false)
  // a now holds the primary's token, which the replica lacks: its next pull is served by the primary
  mark = answers.length
  await readme(a)
  assert.deepEqual(since(mark).map((x) => [x.route, x.status, x.servedBy]), [['pull', 200, 'primary']])

  // c does the same with a client that retries its pull on the replica (the harness's routine):
  // the replica still lacks the write it conflicts with, so the retry conflicts again
  await c.update('tasks', 'seed', { position: 7 })
  mark = answers.length
  await assert.rejects(c.sync(), (e) => e instanceof SyncHttpError && e.status === 409)
  assert.deepEqual(since(mark).map((x) => [x.route + x.query, x.status, x.servedBy]), [
    ['pull', 200, 'replica'],
    ['push', 409, null],
    ['pull', 200, 'replica'],
    ['push', 409, null],
  ])
  // README's client gets c out of it
  await readme(c)
  assert.equal(await c.unsynced(), false)
})

test('once the standby applies everything, devices converge on pulls it serves', async () => {
  const devices = [await stack.newDevice(user, 'x'), await stack.newDevice(user, 'y')]
  for (const d of devices) await readme(d)
  await devices[0].create('tasks', { title: 'late' })
  await readme(devices[0])
  await promisify(execFile)(path.join(HERE, '../topology.sh'), ['delay', stack.dir, '0'])
  await stack.sql('SELECT sync_checkpoint();')
  await waitReplay(stack)
  const mark = answers.length
  for (let round = 0; round < 2; round++) for (const d of devices) await readme(d)
  assert.ok(since(mark).every((x) => x.status === 200 && (x.route !== 'pull' || x.servedBy === 'replica')), JSON.stringify(since(mark)))
  await assertConverged(stack, devices)
  // no answer of the whole file was a 410 or a 503
  assert.deepEqual(answers.filter((x) => x.status === 410 || x.status === 503), [])
})
