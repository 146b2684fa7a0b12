// Scenario 19: a big first sync in pages. The function pages every pull that gives no pageSize by
// SYNC_PAGE_SIZE (5,000 here, its default); the device pulls page after page (each page one
// synchronize(), pushing after the last one) until an answer without hasMore.
//   - 100,000 rows: every row reaches the device, none twice across the pages, page tokens
//     increase, no page holds more than 5,000 records, and the device holds exactly the database's
//     rows afterwards;
//   - the Node heap (process.memoryUsage().heapUsed, sampled during the sync) stays bounded: what
//     the paged 100,000-row sync needs on top of the rows it keeps is compared with the whole peak
//     of an unpaged first sync of one page's worth (5,000 rows); the figures, and those of the same
//     100,000 rows unpaged, are printed.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import v8 from 'node:v8'
import { runInNewContext } from 'node:vm'
import { useStack, assertConverged, lit } from '../lib/harness.js'

const PAGE = 5000
const ROWS = 100_000
const S = useStack({ functionEnv: { SYNC_PAGE_SIZE: String(PAGE) } })

v8.setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc')
const MB = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MB`

// heapUsed before (after a full GC), its peak while fn runs (sampled every 2 ms and whenever a page
// arrives), and after (after a full GC: what the device keeps).
async function measureHeap(fn) {
  gc()
  const before = process.memoryUsage().heapUsed
  let peak = before
  const sample = () => {
    const used = process.memoryUsage().heapUsed
    if (used > peak) peak = used
  }
  const timer = setInterval(sample, 2)
  try {
    await fn(sample)
  } finally {
    clearInterval(timer)
  }
  sample()
  gc()
  const after = process.memoryUsage().heapUsed
  return { before, peak, after, kept: after - before, transient: peak - after }
}

async function insertTasks(stack, user, n, prefix) {
  await stack.sql(`
    INSERT INTO tasks (id, owner_id, title, body, is_done, position)
      SELECT format('${prefix}-%s', lpad(i::text, 6, '0')), ${lit(user.id)}, 'task ' || i,
             repeat('body of task ' || i || ' ', 3), i % 3 = 0, i / 7.0
      FROM generate_series(1, ${n}) i;`)
}

test('a 100,000-row first sync in pages converges, each row once; the heap stays bounded', async (t) => {
  const stack = S()
  const alice = await stack.newUser('alice')
  const carol = await stack.newUser('carol')
  const bob = await stack.newUser('bob')
  await insertTasks(stack, alice, ROWS, 'a')
  await insertTasks(stack, carol, PAGE - 20, 'c')
  await insertTasks(stack, bob, 10, 'b')
  await stack.sql(`INSERT INTO projects (id, name) SELECT 'p-' || i, 'project ' || i FROM generate_series(1, 20) i;`)

  // The reference: one page's worth (4,980 tasks and 20 projects), which fits in one answer.
  const C = await stack.newDevice(carol, 'C')
  let reference
  const refHeap = await measureHeap(async (sample) => {
    reference = await C.sync({ onPullResult: sample })
  })
  assert.equal(reference.attempts.length, 1)
  assert.equal(reference.attempts[0].hasMore, false)
  assert.equal(reference.attempts[0].pulled, PAGE)
  await assertConverged(stack, [C])

  // The paged sync.
  const A = await stack.newDevice(alice, 'A')
  const seen = [] // every id the pages carried, in order
  const tokens = []
  let report
  const started = Date.now()
  const pagedHeap = await measureHeap(async (sample) => {
    report = await A.sync({
      onPullResult: (result) => {
        sample()
        tokens.push(result.timestamp)
        for (const table of Object.values(result.changes)) {
          assert.equal(table.created.length, 0)
          assert.equal(table.deleted.length, 0, 'a first pull has no tombstones')
          for (const row of table.updated) seen.push(row.id)
        }
      },
    })
  })
  const elapsed = Date.now() - started
  const pages = report.attempts
  assert.equal(report.recovery, null)
  assert.ok(pages.every((p) => p.error === null))
  assert.ok(pages.length >= ROWS / PAGE, `${pages.length} pages`)
  assert.ok(pages.every((p) => p.pulled <= PAGE), 'no page holds more than the page size')
  assert.ok(pages.slice(0, -1).every((p) => p.hasMore) && !pages.at(-1).hasMore)
  for (let i = 1; i < tokens.length; i++) assert.ok(tokens[i] > tokens[i - 1], 'page tokens increase')
  assert.equal(seen.length, ROWS + 20, 'every row once: 100,000 tasks and 20 projects')
  assert.equal(new Set(seen).size, seen.length, 'no id twice across the pages')
  assert.equal(await A.database.get('tasks').query().fetchCount(), ROWS)
  await assertConverged(stack, [A])
  // and the next sync has nothing
  const next = await A.sync()
  assert.equal(next.attempts.length, 1)
  assert.equal(next.attempts[0].pulled, 0)

  // The same 100,000 rows unpaged, for the figures only.
  const U = await stack.newDevice(alice, 'U', { pageSize: 1_000_000 })
  let unpaged
  const unpagedHeap = await measureHeap(async (sample) => {
    unpaged = await U.sync({ onPullResult: sample })
  })
  assert.equal(unpaged.attempts.length, 1)
  assert.equal(unpaged.attempts[0].pulled, ROWS + 20)

  const line = (name, h) =>
    `${name}: peak ${MB(h.peak - h.before)} over the start, kept ${MB(h.kept)}, peak over what it keeps ${MB(h.transient)}`
  t.diagnostic(line(`unpaged first sync of ${PAGE} rows (the reference)`, refHeap))
  t.diagnostic(line(`paged first sync of ${ROWS} rows, ${pages.length} pages of ${PAGE}, ${elapsed} ms`, pagedHeap))
  t.diagnostic(line(`unpaged first sync of the same ${ROWS} rows`, unpagedHeap))
  // Bounded by the page, not by the data: on top of the rows it keeps, the paged sync needs no more
  // than a few times the whole peak of a one-page sync (generous: garbage waits for the collector).
  const bound = 4 * (refHeap.peak - refHeap.before) + 16 * 2 ** 20
  assert.ok(
    pagedHeap.transient <= bound,
    `paged sync: ${MB(pagedHeap.transient)} over what it keeps, more than ${MB(bound)}`,
  )
})
