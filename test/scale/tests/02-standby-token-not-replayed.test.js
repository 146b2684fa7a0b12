// A token the primary issued is never refused as unknown (SY003) on a standby that has not
// replayed it, also when checkpoint ids do not follow commit order: two checkpoints A < B, B
// commits first, the standby replays B and stops (replay paused) before A commits. A pull with A
// on the standby answers SY004 (retry on the primary); the edge function does that retry itself,
// so the device gets 200 with the primary's answer, never a 410 that would reset it.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { startTopology, stopTopology, waitReplay, pauseReplay, resumeReplay, httpPull, SqlError } from '../lib.js'

let stack
after(async () => {
  if (stack) await stopTopology(stack)
})

const pullSql = (token, user) => `SELECT sync_pull(last_pulled_at => ${token ?? 'NULL'}, user_id => '${user}');`
async function refusal(promise) {
  try {
    await promise
  } catch (e) {
    if (e instanceof SqlError) return e.code
    throw e
  }
  return null
}
const ids = (answer) => answer.changes.tasks.updated.map((r) => r.id).sort()

test('checkpoints that commit out of id order: the standby answers SY004, the function retries on the primary', async () => {
  stack = await startTopology()
  const user = await stack.newUser('a')
  await stack.primary.sql(`INSERT INTO tasks (id, owner_id, title) VALUES ('t0', '${user.id}', 'before');`)
  const t0 = Number(await stack.primary.sql('SELECT sync_checkpoint();'))

  // A: recorded first, committed last
  const x = await stack.session()
  const a = Number(await x.run(`BEGIN; INSERT INTO tasks (id, owner_id, title) VALUES ('ta', '${user.id}', 'a'); SELECT sync_checkpoint();`))
  const b = Number(await stack.primary.sql(`INSERT INTO tasks (id, owner_id, title) VALUES ('tb', '${user.id}', 'b'); SELECT sync_checkpoint();`))
  assert.ok(a < b, `checkpoint ids ${a} < ${b}`)
  await waitReplay(stack)
  await pauseReplay(stack)
  await x.run('COMMIT;')
  await x.close()

  const onStandby = await stack.standby.query('SELECT id FROM _pg_sync.checkpoints ORDER BY id')
  assert.ok(onStandby.some((r) => r.id === b) && !onStandby.some((r) => r.id === a), 'the standby has B and not A')

  // the primary issued A: the standby cannot tell yet, and says so
  assert.equal(await refusal(stack.standby.sql(pullSql(a, user.id))), 'SY004')
  // tokens it has replayed it answers, up to B at most, never further than it can see
  const fromT0 = JSON.parse(await stack.standby.sql(pullSql(t0, user.id)))
  assert.ok([t0, b].includes(fromT0.timestamp), `answered up to ${fromT0.timestamp}`)
  // garbage and another database's tokens are still refused as never issued
  assert.equal(await refusal(stack.standby.sql(pullSql(1, user.id))), 'SY003')
  assert.equal(await refusal(stack.standby.sql(pullSql(-5, user.id))), 'SY003')

  // through the function: 200 from the primary, the primary's answer (ta's and tb's rows)
  const viaFunction = await httpPull(stack, user, a)
  assert.equal(viaFunction.status, 200, JSON.stringify(viaFunction.body))
  assert.equal(viaFunction.servedBy, 'primary')
  assert.deepEqual(ids(viaFunction.body), ['ta', 'tb'])
  // a replayed token is answered by the standby
  const replayed = await httpPull(stack, user, t0)
  assert.equal(replayed.status, 200)
  assert.equal(replayed.servedBy, 'replica')
  // a garbage token: the primary has the last word, 410
  const garbage = await httpPull(stack, user, 1)
  assert.equal(garbage.status, 410)
  assert.equal(garbage.code, 'SY003')

  // once the standby replays A, it answers A like the primary (nothing skipped)
  await resumeReplay(stack)
  const c = Number(await stack.primary.sql('SELECT sync_checkpoint();'))
  await waitReplay(stack)
  const primaryAnswer = await stack.primary.sql(`BEGIN READ ONLY; ${pullSql(a, user.id)} COMMIT;`)
  const standbyAnswer = await stack.standby.sql(pullSql(a, user.id))
  assert.equal(standbyAnswer, primaryAnswer)
  assert.equal(JSON.parse(standbyAnswer).timestamp, c)
  assert.deepEqual(ids(JSON.parse(standbyAnswer)), ['ta', 'tb'])
  const after = await httpPull(stack, user, a)
  assert.equal(after.servedBy, 'replica')
  assert.deepEqual(ids(after.body), ['ta', 'tb'])
})

test('a standby stopped behind the primary: every token the primary issued since is SY004 there, 200 through the function', async () => {
  const user = await stack.newUser('b')
  await stack.primary.sql(`INSERT INTO tasks (id, owner_id, title) VALUES ('b0', '${user.id}', 'x'); SELECT sync_checkpoint();`)
  await waitReplay(stack)
  const start = JSON.parse(await stack.standby.sql(pullSql(null, user.id))).timestamp
  await pauseReplay(stack)
  let token = start
  const issued = []
  for (let i = 1; i <= 20; i++) {
    await stack.primary.sql(`INSERT INTO tasks (id, owner_id, title) VALUES ('b${i}', '${user.id}', 'x');`)
    token = JSON.parse(await stack.primary.sql(pullSql(token, user.id))).timestamp // a device on the primary
    issued.push(token)
  }
  for (const t of issued) {
    assert.equal(await refusal(stack.standby.sql(pullSql(t, user.id))), 'SY004', `token ${t}`)
    const r = await httpPull(stack, user, t)
    assert.equal(r.status, 200)
    assert.equal(r.servedBy, 'primary')
  }
  // a device holding the standby's token gets what the standby has, and later the rest
  const stale = await httpPull(stack, user, start)
  assert.equal(stale.servedBy, 'replica')
  assert.deepEqual(ids(stale.body), [])
  await resumeReplay(stack)
  await stack.primary.sql('SELECT sync_checkpoint();')
  await waitReplay(stack)
  const caughtUp = await httpPull(stack, user, start)
  assert.equal(caughtUp.servedBy, 'replica')
  assert.equal(ids(caughtUp.body).length, 20)
  // a pull that names its device is served on the standby too (it records nothing there)
  const named = await stack.standby.sql(`SELECT sync_pull(last_pulled_at => ${start}, user_id => '${user.id}', client_id => 'phone');`)
  assert.equal(named, await stack.standby.sql(pullSql(start, user.id)))
})
