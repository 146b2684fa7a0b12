// A hot standby answers pulls exactly as the primary does.
//
// Writers run on the primary in four sessions (inserts, updates, deletes, owner changes, shared
// rows, transactions left open across checkpoints, prepared transactions committed later), while
// two issuer sessions record checkpoints (sync_checkpoint() and read-write pulls, as devices do),
// one of them inside a transaction that commits after the other's later checkpoint, so ids do
// not follow commit order. The standby streams all along. After each round, with nothing
// committing (one writer still holds open changes), a checkpoint C is recorded and, once the
// standby has replayed it:
//   - for every token issued so far (and a first pull) and every user, sync_pull on the standby
//     returns the same JSON, byte for byte, as on the primary in a read-only transaction, and
//     both answer up to C;
//   - the changes equal those of the primary's read-write pull (the edge function's).
// Meanwhile a device polls the standby with the token of its previous pull, and the primary when
// the standby answers SY004 (never SY003); at the end it holds exactly the primary's rows.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { lit } from '../../e2e/lib/harness.js'
import { startTopology, stopTopology, waitReplay, SqlError, prng } from '../lib.js'

const SEED = Number(process.env.SCALE_SEED ?? 20261204)
const ROUNDS = Number(process.env.SCALE_ROUNDS ?? 5)
const STEPS = Number(process.env.SCALE_STEPS ?? 80)
const USERS = ['u0', 'u1', 'u2', 'u3']

let stack
after(async () => {
  if (stack) await stopTopology(stack)
})

// A device's copy, kept from pulls: table -> id -> row.
function apply(copy, answer) {
  for (const [table, { created, updated, deleted }] of Object.entries(answer.changes)) {
    const rows = (copy[table] ??= new Map())
    for (const r of [...created, ...updated]) rows.set(r.id, JSON.stringify(r))
    for (const id of deleted) rows.delete(id)
  }
}
// changes with their lists in id order (the order of a list is not part of the answer)
const byId = (a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
const normal = (changes) =>
  Object.fromEntries(Object.entries(changes).map(([t, c]) => [t, {
    created: [...c.created].sort(byId), updated: [...c.updated].sort(byId), deleted: [...c.deleted].sort(),
  }]))
const sorted = (copy) =>
  Object.fromEntries(Object.entries(copy).map(([t, rows]) => [t, [...rows.entries()].sort()]))

test(`the standby answers every token as the primary does, while writers run (seed ${SEED})`, async () => {
  stack = await startTopology()
  const rnd = prng(SEED)
  const writers = []
  for (let w = 0; w < 4; w++) writers.push({ w, s: await stack.session(), open: false, ids: [], n: 0, prepared: null })
  const issuers = [await stack.session(), await stack.session()]
  let held = null // an issuer transaction holding a checkpoint it has not committed
  const tokens = [] // every token handed out so far (committed checkpoints)
  const pending = [] // prepared transactions to commit later (their writer waits: they hold its rows)
  const poller = { token: null, copy: {}, fromStandby: 0, fromPrimary: 0, retried: 0 }

  async function writerStep(wr) {
    const user = rnd.pick(USERS)
    const stmts = []
    if (!wr.open) stmts.push('BEGIN;')
    const k = rnd.int(6)
    if (k <= 1 || wr.ids.length === 0) {
      const id = `w${wr.w}-${wr.n++}`
      wr.ids.push(id)
      stmts.push(`INSERT INTO tasks (id, owner_id, title, position) VALUES (${lit(id)}, ${lit(user)}, ${lit(`t ${id}`)}, ${rnd.int(1000)});`)
    } else if (k === 2) {
      stmts.push(`UPDATE tasks SET title = ${lit(`edit ${rnd.int(1e6)}`)}, is_done = ${rnd() < 0.5} WHERE id = ${lit(rnd.pick(wr.ids))};`)
    } else if (k === 3) {
      stmts.push(`UPDATE tasks SET owner_id = ${lit(user)} WHERE id = ${lit(rnd.pick(wr.ids))};`)
    } else if (k === 4) {
      const id = wr.ids.splice(rnd.int(wr.ids.length), 1)[0]
      stmts.push(`DELETE FROM tasks WHERE id = ${lit(id)};`)
    } else {
      stmts.push(`INSERT INTO projects (id, name) VALUES (${lit(`p${wr.w}`)}, ${lit(`n${rnd.int(1e6)}`)})
                  ON CONFLICT (id) DO UPDATE SET name = excluded.name, updated_at = now();`)
    }
    wr.open = true
    const end = rnd()
    if (end < 0.3) {
      stmts.push('COMMIT;')
      wr.open = false
    } else if (end < 0.38) {
      const gid = `w${wr.w}-${wr.n++}`
      stmts.push(`PREPARE TRANSACTION ${lit(gid)};`)
      pending.push(wr)
      wr.prepared = gid
      wr.open = false
    }
    await wr.s.run(stmts.join('\n'))
  }

  async function issuerStep() {
    const k = rnd.int(5)
    if (k === 0 && held === null) {
      // a checkpoint recorded in a transaction that commits later, after others' newer ones
      held = await issuers[0].run('BEGIN; SELECT sync_checkpoint();')
    } else if (k === 1 && held !== null) {
      await issuers[0].run('COMMIT;')
      tokens.push(Number(held))
      held = null
    } else if (k === 2) {
      tokens.push(Number(await issuers[1].run('SELECT sync_checkpoint();')))
    } else {
      // a device's read-write pull on the primary, from a token it had
      const from = tokens.length ? rnd.pick(tokens) : null
      const out = await issuers[1].run(
        `SELECT sync_pull(last_pulled_at => ${from ?? 'NULL'}, user_id => ${lit(rnd.pick(USERS))})::json ->> 'timestamp';`,
      )
      tokens.push(Number(out))
    }
  }

  async function commitPrepared() {
    const wr = pending.shift()
    await stack.primary.sql(`COMMIT PREPARED ${lit(wr.prepared)};`)
    wr.prepared = null
  }

  async function pollStep(onPrimary = false) {
    const q = `SELECT sync_pull(last_pulled_at => ${poller.token ?? 'NULL'}, user_id => 'u0');`
    let out
    if (onPrimary) {
      // as after a 409: the primary answers (and hands out a token the standby may not have yet)
      out = await stack.primary.sql(q)
      poller.fromPrimary++
    } else try {
      out = await stack.standby.sql(q)
      poller.fromStandby++
    } catch (e) {
      // a token the standby has not replayed yet: SY004 (never SY003), and the primary answers
      assert.ok(e instanceof SqlError && e.code === 'SY004', `standby pull: ${e.message}`)
      out = await stack.primary.sql(q)
      poller.retried++
    }
    const answer = JSON.parse(out)
    apply(poller.copy, answer)
    poller.token = answer.timestamp
  }

  for (let round = 1; round <= ROUNDS; round++) {
    for (let step = 0; step < STEPS; step++) {
      const k = rnd()
      const free = writers.filter((w) => w.prepared === null)
      if (k < 0.55 && free.length) await writerStep(rnd.pick(free))
      else if (k < 0.8) await issuerStep()
      else if (k < 0.9 && pending.length) await commitPrepared()
      else await pollStep(rnd() < 0.25)
    }
    // Nothing commits from here to the comparison; writers may keep open changes.
    if (held !== null) {
      await issuers[0].run('COMMIT;')
      tokens.push(Number(held))
      held = null
    }
    const c = Number(await stack.primary.sql('SELECT sync_checkpoint();'))
    await waitReplay(stack)
    const series = [null, ...new Set(tokens)]
    const query = `SELECT json_agg(json_build_array(u, t, sync_pull(last_pulled_at => t, user_id => u)) ORDER BY u, t NULLS FIRST)
                     FROM unnest(ARRAY[${USERS.map(lit).join(',')}]) u,
                          unnest(ARRAY[${series.map((t) => t ?? 'NULL').join(',')}]::bigint[]) t;`
    const onPrimary = await stack.primary.sql(`BEGIN READ ONLY;\n${query}\nCOMMIT;`)
    const onStandby = await stack.standby.sql(query)
    assert.equal(onStandby, onPrimary, `round ${round}: the standby's answers differ from the primary's`)
    const answers = JSON.parse(onStandby)
    assert.equal(answers.length, USERS.length * series.length)
    for (const [u, t, answer] of answers) assert.equal(answer.timestamp, c, `round ${round}: ${u} from ${t} answered up to ${answer.timestamp}, not ${c}`)
    // the edge function's read-write pull on the primary (rolled back: it may record a checkpoint)
    const readWrite = JSON.parse(await stack.primary.sql(`BEGIN;\n${query}\nROLLBACK;`))
    assert.deepEqual(readWrite.map(([u, t, a]) => [u, t, normal(a.changes)]), answers.map(([u, t, a]) => [u, t, normal(a.changes)]))
    const open = writers.filter((w) => w.open).length
    console.log(`# round ${round}: ${series.length} tokens x ${USERS.length} users equal, up to ${c}; ${open} writers hold open changes, ${pending.length} prepared`)
  }

  // Everything commits; the device's copy equals a first pull on the primary.
  for (const wr of writers) if (wr.open) await wr.s.run('COMMIT;')
  while (pending.length) await commitPrepared()
  await stack.primary.sql('SELECT sync_checkpoint();')
  await waitReplay(stack)
  await pollStep()
  const full = JSON.parse(await stack.primary.sql(`SELECT sync_pull(last_pulled_at => NULL, user_id => 'u0');`))
  const expected = {}
  apply(expected, full)
  assert.deepEqual(sorted(poller.copy), sorted(expected), 'the device polling the standby holds other rows than the primary')
  assert.ok(poller.fromStandby > 0, 'no pull was answered by the standby')
  console.log(`# device: ${poller.fromStandby} pulls answered by the standby, ${poller.fromPrimary} on the primary, ${poller.retried} SY004 retried on the primary; ${expected.tasks?.size ?? 0} tasks, converged`)
  for (const s of [...writers.map((w) => w.s), ...issuers]) await s.close()
})
