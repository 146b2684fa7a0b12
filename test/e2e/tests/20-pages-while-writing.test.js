// Scenario 20: writers commit while a device pages through a big first sync (20,000 rows, pages of
// 1,000). Between pages (the afterPull hook, after the server answered a page and before the device
// applies it) SQL updates, deletes and inserts rows on both sides of the pages already sent, another
// device of the user pushes, and a transaction opened during one page commits during a later one.
// The device also has a record of its own waiting to be pushed, which goes after the last page.
//   - no id twice across the pages; every row that existed when the pull began and that no writer
//     touched is in a page;
//   - the paged sync ends with its push, without a conflict;
//   - the next sync brings the rest: every device then holds exactly the database's rows.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { useStack, settle, assertConverged, assertCleanSync, lit } from '../lib/harness.js'

const S = useStack()
const ROWS = 20_000
const id = (i) => `t-${String(i).padStart(6, '0')}`

test('writers commit between the pages of a paged first sync: no id twice, the next sync converges', async () => {
  const stack = S()
  const alice = await stack.newUser('alice')
  const bob = await stack.newUser('bob')
  const B = await stack.newDevice(alice, 'B')
  const C = await stack.newDevice(bob, 'C')
  const fromB = await B.create('tasks', { title: 'made on B before', position: 1 })
  await C.create('tasks', { title: "bob's" })
  await settle([B, C])
  await stack.sql(`
    INSERT INTO tasks (id, owner_id, title, body, position)
      SELECT format('t-%s', lpad(i::text, 6, '0')), ${lit(alice.id)}, 'task ' || i, 'v1', i
      FROM generate_series(1, ${ROWS}) i;
    INSERT INTO projects (id, name) SELECT 'p-' || i, 'project ' || i FROM generate_series(1, 30) i;`)
  const atStart = new Set((await stack.query(`SELECT id FROM tasks WHERE owner_id = ${lit(alice.id)}`)).map((r) => r.id))

  const A = await stack.newDevice(alice, 'A', { pageSize: 1000 })
  const madeOnA = await A.create('tasks', { title: 'made on A offline, before its first sync' })
  const touched = new Set() // ids the writers changed while A paged
  const seen = []
  let session = null
  const report = await A.sync({
    afterPull: async (result, page) => {
      for (const table of Object.values(result.changes)) for (const row of table.updated) seen.push(row.id)
      const sent = seen.filter((x) => x.startsWith('t-')).sort()
      const lastSent = sent.at(-1)
      const later = (k) => id(Number(lastSent.slice(2)) + k) // a row of a page to come
      if (page === 1) {
        // a row already sent and one to come, updated; the same, deleted; new rows before and after
        const writes = [sent[10], later(5), sent[20], later(15)]
        writes.forEach((x) => touched.add(x))
        await stack.sql(`
          UPDATE tasks SET title = 'updated while A paged', updated_at = now() WHERE id IN (${lit(writes[0])}, ${lit(writes[1])});
          DELETE FROM tasks WHERE id IN (${lit(writes[2])}, ${lit(writes[3])});
          INSERT INTO tasks (id, owner_id, title) VALUES ('a-new-first', ${lit(alice.id)}, 'sorts before every page'),
                                                         ('z-new-last', ${lit(alice.id)}, 'sorts after every page');
          UPDATE projects SET name = 'renamed while A paged' WHERE id = 'p-3';`)
        // a transaction that stays open across pages
        session = await stack.session()
        touched.add(later(40)).add(sent[30])
        await session.run(`BEGIN; UPDATE tasks SET body = 'committed two pages later', updated_at = now()
                             WHERE id IN (${lit(later(40))}, ${lit(sent[30])});`)
      }
      if (page === 2) {
        // another device of the user pushes a new record and an edit of its own (pulling the 20,000
        // rows first, in pages of the function's default size, while A is in the middle of its own)
        await B.update('tasks', fromB, { title: 'edited on B while A paged' })
        await B.create('tasks', { title: 'made on B while A paged' })
        const bSync = await B.sync()
        assert.equal(bSync.recovery, null)
        assert.equal(bSync.attempts.length, ROWS / 5000 + 1)
        assert.equal(bSync.attempts.at(-1).pushed, 2)
      }
      if (page === 3) await session.run('COMMIT;')
      if (page === 5) {
        touched.add(later(1)).add(sent[0])
        await stack.sql(`UPDATE tasks SET is_done = true WHERE id IN (${lit(later(1))}, ${lit(sent[0])});
                         DELETE FROM projects WHERE id = 'p-7';`)
      }
    },
  })
  await session.close()

  assert.equal(report.recovery, null)
  assert.ok(report.attempts.length > 10, `${report.attempts.length} pages`)
  assert.ok(report.attempts.every((a) => a.error === null && a.pulled <= 1000))
  assert.equal(new Set(seen).size, seen.length, 'no id twice across the pages')
  for (const x of atStart) if (!touched.has(x)) assert.ok(seen.includes(x) || x === fromB, `${x} was in no page`)
  const last = report.attempts.at(-1)
  assert.equal(last.pushed, 1, 'the record made on A went with the last page')
  assert.ok(report.attempts.slice(0, -1).every((a) => a.pushed === null), 'nothing pushed before the last page')
  assert.equal(await stack.sql(`SELECT title FROM tasks WHERE id = ${lit(madeOnA)}`), 'made on A offline, before its first sync')

  // The next sync brings what changed while A paged.
  const next = await A.sync()
  assertCleanSync(next)
  await assertConverged(stack, [A])
  await settle([A, B, C])
  await assertConverged(stack, [A, B, C])
})
