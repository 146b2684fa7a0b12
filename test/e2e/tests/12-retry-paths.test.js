// Retry paths: what a client needs when a push fails for a transient reason.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { useStack, settle, assertConverged, lit } from '../lib/harness.js'

const S = useStack({ functionEnv: { SYNC_LOCK_TIMEOUT: '300ms' } })

// After a 409 the client pulls and pushes again (README, WatermelonDB's docs). A checkpoint recorded
// after the client's previous pull but before the write it conflicted with (here: a scheduler's
// sync_checkpoint(); any other client's pull does the same) must not answer the retry's pull, or
// the retry pulls nothing and conflicts again: a pull in a read-write transaction answers up to its
// own snapshot and reuses a recorded checkpoint only when it is exact for the caller.
test('a 409 retry made at once succeeds', async (t) => {
  const stack = S()
  const alice = await stack.newUser('alice')
  const A = await stack.newDevice(alice, 'A')
  const B = await stack.newDevice(alice, 'B')
  const x = await A.create('tasks', { title: 'original', body: 'original' })
  await settle([A, B])
  await A.update('tasks', x, { title: 'title from A' })
  await B.update('tasks', x, { body: 'body from B' })

  let failure = null
  try {
    await A.sync({
      afterPull: async () => {
        await stack.sql('SELECT sync_checkpoint();') // a scheduler's checkpoint, or another client's pull
        await B.sync() // B pushes x after that checkpoint
      },
    })
  } catch (e) {
    failure = e
  }
  const report = A.syncs.at(-1)
  t.diagnostic(
    JSON.stringify(report.attempts.map((a) => ({ lastPulledAt: a.lastPulledAt, timestamp: a.timestamp, pulled: a.pulled, error: a.error?.code ?? null }))),
  )
  assert.equal(report.recovery, '409-retry')
  assert.equal(failure, null, `the retry failed: ${failure?.message}`)
  await settle([A, B])
  await assertConverged(stack, [A, B])
})

// A push waits for row locks held by other transactions. When it gives up (the function's
// SYNC_LOCK_TIMEOUT, 300ms here; a lost deadlock, 40P01, or a serialization failure, 40001, are the
// same kind of transient failure), the function answers with a retryable status (503; 409 for
// 40P01/40001), never 500, and nothing of the push is applied.
test('a push that times out waiting for a row lock is answered 503, not 500', async (t) => {
  const stack = S()
  const alice = await stack.newUser('alice')
  const A = await stack.newDevice(alice, 'A')
  const id = await A.create('tasks', { title: 'one' })
  await settle([A])
  await A.update('tasks', id, { title: 'one from A' })

  const T = await stack.session()
  try {
    await T.run(`BEGIN; UPDATE tasks SET body = 'T' WHERE id = ${lit(id)};`)
    const outcome = await A.sync().then(
      (report) => ({ report }),
      (error) => ({ error }),
    )
    assert.ok(outcome.error, 'the push should have timed out on the lock')
    assert.equal(outcome.error.code, '55P03')
    assert.equal(outcome.error.status, 503)
    await T.run('COMMIT;')
  } finally {
    await T.close()
  }
  assert.equal(await stack.sql(`SELECT title FROM tasks WHERE id = ${lit(id)}`), 'one')
  await settle([A])
  await assertConverged(stack, [A])
  assert.equal(await stack.sql(`SELECT title FROM tasks WHERE id = ${lit(id)}`), 'one from A')
})
