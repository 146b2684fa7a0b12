// Beyond the scenarios: devices syncing at the same time, with pg_sync's default settings.
// Four devices of two users edit, create and delete tasks and shared projects (a seeded sequence of
// operations), SQL writes at the same time, and all devices sync concurrently, round after round.
// Conflicting pushes answer 409; the app's routine retries once, and a push that conflicts again is
// left for the next round. When the writing stops, the devices sync in turn, twice: a pull always
// answers up to the last commit, so the first round pushes what every device still holds and the
// second brings every device everything, with no conflict left. Nothing is lost: every record's final state is
// the database's, every device agrees, and WatermelonDB logs nothing.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { useStack, assertConverged, SyncHttpError, lit } from '../lib/harness.js'

const S = useStack()

// Small deterministic PRNG (mulberry32).
function prng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

async function localOps(device, rnd, n, tag) {
  for (let i = 0; i < n; i++) {
    const tasks = await device.raws('tasks')
    const projects = await device.raws('projects')
    const pick = (list) => list[Math.floor(rnd() * list.length)]
    const r = rnd()
    if (r < 0.3 || tasks.length < 3) {
      await device.create('tasks', { title: `${tag} new ${i}`, body: null, isDone: false, position: rnd() })
    } else if (r < 0.75) {
      const column = pick(['title', 'body', 'isDone', 'position'])
      const value = { title: `${tag} title ${i}`, body: `${tag} body ${i}`, isDone: rnd() < 0.5, position: rnd() * 100 }[column]
      await device.update('tasks', pick(tasks).id, { [column]: value })
    } else if (r < 0.85) {
      await device.remove('tasks', pick(tasks).id)
    } else if (r < 0.95 || projects.length === 0) {
      if (projects.length < 4) await device.create('projects', { name: `${tag} project ${i}` })
      else await device.update('projects', pick(projects).id, { name: `${tag} renamed ${i}` })
    } else {
      await device.remove('projects', pick(projects).id)
    }
  }
}

async function sqlOps(stack, users, rnd, tag) {
  const user = users[Math.floor(rnd() * users.length)]
  const offset = Math.floor(rnd() * 5)
  // One transaction; it locks a project before a task, the order pushes lock in (tables in
  // registration order), so it cannot deadlock with a push (see 12-known-issues).
  await stack.sql(`
    BEGIN;
    UPDATE projects SET color = ${lit(tag)} WHERE id = (SELECT id FROM projects ORDER BY id LIMIT 1);
    UPDATE tasks SET title = ${lit(`${tag} by SQL`)}, updated_at = now()
      WHERE id = (SELECT id FROM tasks WHERE owner_id = ${lit(user.id)} ORDER BY id OFFSET ${offset} LIMIT 1);
    INSERT INTO tasks (id, owner_id, title) VALUES (${lit(`sql-${tag}`)}, ${lit(user.id)}, 'inserted by SQL');
    COMMIT;
  `)
}

test('devices syncing concurrently with SQL writers converge', async (t) => {
  const stack = S()
  const alice = await stack.newUser('alice')
  const bob = await stack.newUser('bob')
  const devices = [
    await stack.newDevice(alice, 'A'),
    await stack.newDevice(alice, 'B'),
    await stack.newDevice(alice, 'C'),
    await stack.newDevice(bob, 'D'),
  ]
  const rnd = prng(20240229)
  const stats = { syncs: 0, retried: 0, conflictsLeft: 0 }

  for (let round = 0; round < 12; round++) {
    for (const d of devices) await localOps(d, rnd, 4, `${d.name}${round}`)
    const syncs = devices.map(async (d) => {
      try {
        const report = await d.sync()
        stats.syncs++
        if (report.recovery === '409-retry') stats.retried++
        assert.notEqual(report.recovery, '410-reset')
        assert.deepEqual(report.log, [])
      } catch (e) {
        // The retry conflicted too: the records stay unsynced and go with the next round.
        if (!(e instanceof SyncHttpError && e.status === 409)) throw e
        stats.conflictsLeft++
      }
    })
    await Promise.all([...syncs, sqlOps(stack, [alice, bob], rnd, `r${round}`)])
  }

  // Writing has stopped: two rounds of syncs in turn, each succeeding at once.
  for (let round = 1; round <= 2; round++) {
    for (const d of devices) {
      const report = await d.sync()
      assert.equal(report.recovery, null, `${d.name}: the final round ${round} needed ${report.recovery}`)
      assert.deepEqual(report.log, [])
      if (round === 2) assert.equal(report.attempts[0].pushed, null, `${d.name} pushed in the second round`)
    }
  }
  await assertConverged(stack, devices)
  t.diagnostic(`syncs ${stats.syncs}, 409-retries ${stats.retried}, conflicts left for the next round ${stats.conflictsLeft}`)
  assert.ok((await stack.dbRows('tasks', alice)).length > 0 && (await stack.dbRows('projects')).length > 0)
})
