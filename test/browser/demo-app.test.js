// Browser test of make run's demo app: `make run` (examples/run.sh) on free ports with its own
// state directory, and headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core)
// with three browser contexts: two devices of one user (A1, A2) and a device of another user (B).
// Each context has its own storage (IndexedDB, localStorage): a device.
//
// Create, edit, delete on one device reach the other; edits made while a device is offline (the
// context set offline) sync when it is back; concurrent offline edits of one task converge as
// WatermelonDB merges them (per column, the device that syncs last wins; a delete wins over an
// edit); every device ends with exactly the database's rows of its user, and the other user sees
// none of them: not in the page, not in any answer the server sent it.
//
// No step waits for time: the app's #status says when every change is synced (data-pending="0").
// Screenshots of every step go to test/browser/out/.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, existsSync, realpathSync, chmodSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { randomUUID } from 'node:crypto'
import { chromium } from 'playwright-core'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const REPO = path.resolve(HERE, '../..')
const OUT = path.join(HERE, 'out')
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium'
const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

function freePort(avoid = []) {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => (avoid.includes(port) ? freePort(avoid).then(resolve, reject) : resolve(port)))
    })
  })
}

// --- make run -------------------------------------------------------------------------------------

const server = { output: '' }

async function startMakeRun() {
  server.runDir = mkdtempSync(path.join(tmpdir(), 'pg_sync_browser.'))
  chmodSync(server.runDir, 0o755) // reachable by the postgres user: the cluster stays in it
  server.pgPort = await freePort()
  server.httpPort = await freePort([server.pgPort])
  const deno = path.join(REPO, 'test/e2e/node_modules/.bin/deno')
  server.child = spawn('bash', [path.join(REPO, 'examples/run.sh')], {
    cwd: REPO,
    detached: true, // its own process group: Ctrl-C is sent to the group, as a terminal does
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      PGSYNC_RUN_DIR: server.runDir,
      PGSYNC_PORT: String(server.pgPort),
      PGSYNC_HTTP_PORT: String(server.httpPort),
      PGSYNC_SKIP_BUILD: '1',
      ...(existsSync(deno) ? { PGSYNC_DENO: realpathSync(deno) } : {}),
    },
  })
  server.exited = new Promise((resolve) => server.child.once('exit', (code, signal) => resolve({ code, signal })))
  await new Promise((resolve, reject) => {
    const onData = (chunk) => {
      server.output += chunk
      if (server.output.includes('Press Ctrl-C to stop')) resolve()
    }
    server.child.stdout.setEncoding('utf8').on('data', onData)
    server.child.stderr.setEncoding('utf8').on('data', onData)
    server.exited.then(({ code, signal }) => reject(new Error(`make run ended (${code ?? signal}):\n${server.output}`)))
  })
  server.url = `http://127.0.0.1:${server.httpPort}`
}

async function stopMakeRun() {
  if (!server.child) return
  if (server.child.exitCode === null && server.child.signalCode === null) {
    process.kill(-server.child.pid, 'SIGINT') // Ctrl-C
    await server.exited
  }
  assert.match(server.output, /stopped \(PostgreSQL and the sync server\)/)
  const moved = path.join(server.runDir, 'pg-location') // the cluster, if make run had to move it
  if (existsSync(moved)) rmSync(readFileSync(moved, 'utf8').trim(), { recursive: true, force: true })
  rmSync(server.runDir, { recursive: true, force: true })
}

function sql(query) {
  return execFileSync(
    'psql',
    ['-X', '-q', '-A', '-t', '-h', '127.0.0.1', '-p', String(server.pgPort), '-U', 'postgres', '-d', 'postgres', '-c', query],
    { encoding: 'utf8' },
  ).trim()
}

// The database's tasks of a user, in the shape the page shows them.
function dbTasks(user) {
  const json = sql(`SELECT coalesce(json_agg(json_build_object('id', id, 'title', title, 'done', is_done) ORDER BY id), '[]')
                    FROM tasks WHERE owner_id = '${user.replaceAll("'", "''")}'`)
  return JSON.parse(json)
}

// --- devices (browser contexts) ---------------------------------------------------------------

let browser
let shot = 0

class Device {
  constructor(name, context, page) {
    this.name = name
    this.context = context
    this.page = page
    this.pullAnswers = [] // the body of every answer to a pull this device made
    page.on('response', async (res) => {
      if (res.url().endsWith('/sync/pull')) this.pullAnswers.push(await res.text().catch(() => ''))
    })
    page.on('pageerror', (e) => (this.pageError = e))
  }

  static async open(name, user) {
    const context = await browser.newContext({ viewport: { width: 720, height: 640 } })
    const page = await context.newPage()
    const device = new Device(name, context, page)
    await page.goto(`${server.url}/`)
    await page.fill('#user', user)
    await page.click('#sign-in button[type="submit"]')
    await page.waitForSelector(`#whoami:text-is("${user}")`)
    await device.settled()
    return device
  }

  // Waits until every change made on the page is synced or tried and no sync runs (#status
  // data-pending="0", data-state not "syncing"), and returns that state, read in the same check:
  // the app also syncs whenever the function's events say the user's data changed (its own
  // pushes included), so a sync may start at any moment after.
  async settled() {
    const state = await this.page.waitForFunction(() => {
      const status = document.querySelector('#status')
      return status?.dataset.pending === '0' && status.dataset.state !== 'syncing' && status.dataset.state
    })
    assert.equal(this.pageError, undefined, `${this.name}: page error ${this.pageError}`)
    return state.jsonValue()
  }

  async screenshot(label) {
    shot++
    await this.page.screenshot({ path: path.join(OUT, `${String(shot).padStart(2, '0')}-${this.name}-${label}.png`) })
  }

  // The Sync button; resolves with the sync's outcome (idle, offline, error).
  async sync() {
    await this.page.click('#sync')
    return this.settled()
  }

  async add(title) {
    await this.page.fill('#new-title', title)
    await this.page.press('#new-title', 'Enter')
    await this.page.waitForSelector(`#tasks li .title >> nth=-1`)
    return this.settled()
  }

  row(title) {
    return this.page.locator('#tasks li', { has: this.page.locator(`.title[value="${title}"]`) })
  }

  async idOf(title) {
    const ids = await this.tasks()
    const found = ids.find((t) => t.title === title)
    assert.ok(found, `${this.name}: no task "${title}"`)
    return found.id
  }

  async rename(id, title) {
    const input = this.page.locator(`#tasks li[data-id="${id}"] .title`)
    await input.fill(title)
    await input.press('Enter')
    return this.settled()
  }

  async toggle(id) {
    await this.page.click(`#tasks li[data-id="${id}"] .done`)
    return this.settled()
  }

  async remove(id) {
    await this.page.click(`#tasks li[data-id="${id}"] .delete`)
    await this.page.waitForSelector(`#tasks li[data-id="${id}"]`, { state: 'detached' })
    return this.settled()
  }

  async tasks() {
    const rows = await this.page.$$eval('#tasks li', (lis) =>
      lis.map((li) => ({ id: li.dataset.id, title: li.querySelector('.title').value, done: li.querySelector('.done').checked })),
    )
    return rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  async offline() {
    await this.context.setOffline(true)
  }

  // Back online: the app syncs on the browser's `online` event; resolves when that sync is done.
  async online() {
    const back = this.page.evaluate(() => new Promise((resolve) => addEventListener('online', () => resolve(), { once: true })))
    await this.context.setOffline(false)
    await back
    return this.settled()
  }
}

before(async () => {
  mkdirSync(OUT, { recursive: true })
  await startMakeRun()
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS })
})

after(async () => {
  await browser?.close()
  await stopMakeRun()
})

test('two devices of a user and another user: create, edit, delete, offline edits, conflicts; all converge, nothing leaks', async () => {
  const alice = `alice-${randomUUID().slice(0, 8)}`
  const bob = `bob-${randomUUID().slice(0, 8)}`
  const A1 = await Device.open('A1', alice)
  const A2 = await Device.open('A2', alice)
  const B = await Device.open('B', bob)
  for (const d of [A1, A2, B]) assert.equal(await d.page.textContent('#tags'), 'home, urgent')

  // create on A1, see it on A2; bob sees nothing
  for (const title of ['Buy milk', 'Walk the dog', 'Write report']) assert.equal(await A1.add(title), 'idle')
  await A1.screenshot('created')
  assert.equal(await A2.sync(), 'idle')
  assert.deepEqual(await A2.tasks(), await A1.tasks())
  assert.deepEqual((await A2.tasks()).map((t) => t.title).sort(), ['Buy milk', 'Walk the dog', 'Write report'])
  assert.equal(await B.sync(), 'idle')
  assert.deepEqual(await B.tasks(), [])
  await A2.screenshot('synced')
  await B.screenshot('nothing-of-alice')

  // edit on A2, delete on A1
  const milk = await A1.idOf('Buy milk')
  const dog = await A1.idOf('Walk the dog')
  const report = await A1.idOf('Write report')
  assert.equal(await A2.rename(dog, 'Walk the dog twice'), 'idle')
  assert.equal(await A2.toggle(milk), 'idle')
  assert.equal(await A1.remove(report), 'idle')
  await A1.sync()
  await A2.sync()
  assert.deepEqual(await A1.tasks(), [
    { id: milk, title: 'Buy milk', done: true },
    { id: dog, title: 'Walk the dog twice', done: false },
  ].sort((a, b) => (a.id < b.id ? -1 : 1)))
  assert.deepEqual(await A2.tasks(), await A1.tasks())
  await A2.screenshot('edited-and-deleted')

  // offline edits on A2 while A1 keeps working online
  await A2.offline()
  assert.equal(await A2.add('Offline idea'), 'offline')
  assert.equal(await A2.rename(milk, 'Buy oat milk'), 'offline')
  await A2.screenshot('offline')
  assert.equal(await A1.toggle(dog), 'idle')
  assert.equal(await A2.online(), 'idle')
  assert.equal(await A1.sync(), 'idle')
  const idea = await A1.idOf('Offline idea')
  assert.deepEqual(await A1.tasks(), await A2.tasks())
  assert.deepEqual(
    (await A1.tasks()).map((t) => [t.title, t.done]).sort(),
    [
      ['Buy oat milk', true],
      ['Offline idea', false],
      ['Walk the dog twice', true],
    ],
  )
  await A1.screenshot('offline-edits-arrived')

  // conflicts: both devices offline; the same title edited on both, and an edit against a delete
  await A1.offline()
  await A2.offline()
  assert.equal(await A1.rename(idea, 'Idea from A1'), 'offline')
  assert.equal(await A2.rename(idea, 'Idea from A2'), 'offline')
  assert.equal(await A2.toggle(idea), 'offline')
  assert.equal(await A1.rename(milk, 'Buy soy milk'), 'offline')
  assert.equal(await A2.remove(milk), 'offline')
  await A1.screenshot('conflict-offline')
  await A2.screenshot('conflict-offline')
  assert.equal(await A1.online(), 'idle') // A1 syncs first
  assert.equal(await A2.online(), 'idle') // A2 last: its edited columns win; its delete wins
  assert.equal(await A1.sync(), 'idle')
  const expected = [
    { id: dog, title: 'Walk the dog twice', done: true },
    { id: idea, title: 'Idea from A2', done: true },
  ].sort((a, b) => (a.id < b.id ? -1 : 1))
  assert.deepEqual(await A1.tasks(), expected)
  assert.deepEqual(await A2.tasks(), expected)

  // bob works too, and every device converges on its user's rows in the database
  assert.equal(await B.add("Bob's own task"), 'idle')
  for (let round = 0; round < 2; round++) for (const d of [A1, A2, B]) assert.equal(await d.sync(), 'idle')
  assert.deepEqual(await A1.tasks(), dbTasks(alice))
  assert.deepEqual(await A2.tasks(), dbTasks(alice))
  assert.deepEqual(await B.tasks(), dbTasks(bob))
  assert.deepEqual((await B.tasks()).map((t) => t.title), ["Bob's own task"])
  assert.ok(!(await A1.tasks()).some((t) => t.title === "Bob's own task"))
  for (const d of [A1, A2, B]) await d.screenshot('converged')

  // nothing of alice ever reached bob's browser: no id, no title, in any pull answer
  const aliceIds = [milk, dog, report, idea]
  assert.ok(B.pullAnswers.length >= 3, 'B pulled')
  for (const body of B.pullAnswers) {
    for (const id of aliceIds) assert.ok(!body.includes(id), `alice's task ${id} reached bob`)
    assert.ok(!body.includes(alice), "alice's user id reached bob")
  }

  for (const d of [A1, A2, B]) await d.context.close()
})

test("after a reload the app signs in again by itself and shows the user's tasks", async () => {
  const carol = `carol-${randomUUID().slice(0, 8)}`
  const C = await Device.open('C', carol)
  assert.equal(await C.add('survives a reload'), 'idle')
  await C.page.reload()
  await C.page.waitForSelector(`#whoami:text-is("${carol}")`)
  await C.settled()
  assert.deepEqual((await C.tasks()).map((t) => t.title), ['survives a reload'])
  assert.deepEqual(await C.tasks(), dbTasks(carol))
  await C.screenshot('after-reload')
  await C.context.close()
})

test('the development token route exists only when make run enables it', async () => {
  const res = await fetch(`${server.url}/dev/token?user=dave`)
  assert.equal(res.status, 200)
  const { token } = await res.json()
  const pull = await fetch(`${server.url}/sync/pull`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: '{"lastPulledAt": null}',
  })
  assert.equal(pull.status, 200)
  // the same server code without PGSYNC_DEV_TOKENS=1 has no such route
  const port = await freePort([server.pgPort, server.httpPort])
  const child = spawn(path.join(REPO, 'test/e2e/node_modules/.bin/deno'), [
    'run', '--quiet', '--config', path.join(REPO, 'examples/supabase/functions/sync/deno.json'),
    '--allow-net', '--allow-env', '--allow-read', `--allow-write=${path.join(REPO, 'examples/supabase/functions/sync')}`, '--allow-sys',
    path.join(REPO, 'examples/dev/server.ts'),
  ], {
    env: { ...process.env, PORT: String(port), DATABASE_URL: `postgres://postgres@127.0.0.1:${server.pgPort}/postgres`, JWT_SECRET: 'x', PGSYNC_INSTANCE: 'plain' },
    stdio: 'ignore',
  })
  try {
    for (;;) {
      const health = await fetch(`http://127.0.0.1:${port}/dev/health`).then((r) => r.json(), () => null)
      if (health?.instance === 'plain') break
      assert.equal(child.exitCode, null, 'the server exited')
      await new Promise((r) => setTimeout(r, 200)) // readiness polling, bounded by the test's timeout
    }
    assert.equal((await fetch(`http://127.0.0.1:${port}/dev/token?user=dave`)).status, 404)
  } finally {
    child.kill('SIGTERM')
  }
})
