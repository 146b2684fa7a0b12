// Scenario 24: realtime hints. A device listens to the function's GET .../events with README's
// listen() (examples/web/src/sync.js, over an EventSource for Node) and syncs when told: once when
// the stream opens, then at every "pull" event. The function polls sync_changed_users every 500 ms
// (SYNC_EVENTS_POLL_MS, its default).
//   - 50 SQL writes to the user's rows, one after the other: each is followed by a hint, after which
//     the device's sync brings the row; write -> hint latency (from issuing the write to the event's
//     arrival) p50/p99 printed (each write issued at a random point of the poller's cycle);
//   - another device's pushes reach it the same way;
//   - hints follow the user: another user's write hints no one else, a shared table's write hints
//     everyone ("all": true); on one stream, events arrive in the order they were sent, which makes
//     "no hint" checkable without waiting for one.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { register } from 'node:module'
import { setTimeout as delay } from 'node:timers/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { useStack, NodeEventSource, nextEvent, assertConverged, assertCleanSync, lit } from '../lib/harness.js'

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
register('../lib/resolve-watermelondb.mjs', import.meta.url)
const { listen } = await import(path.join(REPO, 'examples/web/src/sync.js'))

const S = useStack()
const WRITES = 50

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]

test('a device that listens syncs when told: every write is hinted; latency measured', async (t) => {
  const stack = S()
  const alice = await stack.newUser('alice')
  const A = await stack.newDevice(alice, 'A')
  const W = await stack.newDevice(alice, 'W')

  // The app: syncs one at a time; a hint during a sync asks for one more after it.
  let running = null
  let again = false
  let idle = Promise.resolve()
  const syncs = []
  const onPull = () => {
    if (running) {
      again = true
      return
    }
    running = (async () => {
      do {
        again = false
        const report = await A.sync()
        assertCleanSync(report)
        syncs.push(report)
      } while (again)
      running = null
    })()
    idle = running
  }
  const sources = []
  class RecordedEventSource extends NodeEventSource {
    constructor(...args) {
      super(...args)
      sources.push(this)
    }
  }
  const ready = new Promise((resolve) => {
    const check = () => (sources[0] ? nextEvent(sources[0], 'ready').then(resolve) : setImmediate(check))
    check()
  })
  const stop = listen({ url: stack.functionUrl, jwt: alice.token, onPull, EventSource: RecordedEventSource })
  try {
    await ready
    await idle // the sync "ready" asked for
    assert.equal(syncs.length, 1)
    const [source] = sources
    const session = await stack.session()

    const latencies = []
    for (let i = 0; i < WRITES; i++) {
      const id = `w-${i}`
      // for the figures only: writes come at any point of the poller's cycle, as they would
      await delay(Math.random() * 500)
      let hint = nextEvent(source, 'pull')
      const issued = performance.now()
      await session.run(`INSERT INTO tasks (id, owner_id, title) VALUES (${lit(id)}, ${lit(alice.id)}, 'written ${i}');`)
      // The first hint after the write may come from a poll that ran just before the write
      // committed (a hint can come twice): then the device does not have the row yet, and the hint
      // of the write follows.
      for (;;) {
        const event = await hint
        hint = nextEvent(source, 'pull')
        await idle
        if (await A.has('tasks', id)) {
          latencies.push(event.at - issued)
          break
        }
      }
    }
    await session.close()
    assert.equal(latencies.length, WRITES, 'every write was hinted')
    const sorted = [...latencies].sort((a, b) => a - b)
    t.diagnostic(
      `write -> hint over ${WRITES} writes (SYNC_EVENTS_POLL_MS 500): p50 ${percentile(sorted, 50).toFixed(0)} ms, ` +
        `p99 ${percentile(sorted, 99).toFixed(0)} ms, max ${sorted.at(-1).toFixed(0)} ms; ${syncs.length} syncs`,
    )
    // (The latency is a figure, not an assertion: a stalled machine must not fail the test. Each
    // write's hint is waited for, at most nextEvent's 20 s, which only turns a missing hint into a
    // failure.)

    // Another device's pushes. The first hint after a push may come from a poll just before it; the
    // push's own may then come while the device syncs or is being checked, so hints are counted
    // from the stream's record of its events (checked and listened for in the same tick: none is
    // missed).
    const pullEvents = () => source.received.filter((e) => e.type === 'pull').length
    for (let i = 0; i < 3; i++) {
      let handled = pullEvents()
      const id = await W.create('tasks', { title: `pushed by W ${i}` })
      assertCleanSync(await W.sync())
      for (let hints = 1; ; hints++) {
        if (pullEvents() === handled) await nextEvent(source, 'pull')
        handled = pullEvents()
        await idle
        if (await A.has('tasks', id)) break
        assert.ok(hints < 2, 'the device had the push after the first or the second hint')
      }
    }
    await assertConverged(stack, [A])
  } finally {
    stop()
    await idle
  }
  assert.equal(sources[0].readyState, NodeEventSource.CLOSED)
})

test('hints follow the user: none for another user, "all" for a shared table', async () => {
  const stack = S()
  const carol = await stack.newUser('carol')
  const dave = await stack.newUser('dave')
  const c = stack.events(carol)
  const d = stack.events(dave, { query: true }) // the token in ?access_token=
  await Promise.all([nextEvent(c, 'ready'), nextEvent(d, 'ready')])

  // a shared table: everyone (and from that poll on, both are asked about in one call)
  let [cAll, dAll] = [nextEvent(c, 'pull'), nextEvent(d, 'pull')]
  await stack.sql(`INSERT INTO projects (id, name) VALUES ('p-1', 'shared')`)
  assert.deepEqual(JSON.parse((await cAll).data), { all: true })
  assert.deepEqual(JSON.parse((await dAll).data), { all: true })
  const after = c.received.length

  // dave's row: dave is hinted, carol is not
  const dHint = nextEvent(d, 'pull')
  await stack.sql(`INSERT INTO tasks (id, owner_id, title) VALUES ('d-1', ${lit(dave.id)}, 'dave''s')`)
  assert.deepEqual(JSON.parse((await dHint).data), { all: false })
  // A hint to carol for dave's row would have been sent by the poll that hinted dave, so before the
  // next "all" event on carol's stream.
  ;[cAll, dAll] = [nextEvent(c, 'pull'), nextEvent(d, 'pull')]
  await stack.sql(`UPDATE projects SET name = 'renamed' WHERE id = 'p-1'`)
  assert.deepEqual(JSON.parse((await cAll).data), { all: true })
  await dAll
  assert.deepEqual(c.received.slice(after).map((e) => [e.type, e.data]), [['pull', '{"all":true}']], 'carol got no hint for dave')
  c.close()
  d.close()
})
