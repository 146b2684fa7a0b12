// The demo todo app of make run. Signs in as any user name through the local server's
// development token route, keeps the user's tasks in WatermelonDB (LokiJS on IndexedDB, so it
// works offline) and syncs with the edge function after every change, on the Sync button, when
// the browser comes back online and when the function's events say the user's data changed (so a
// change made on another device shows up by itself).
import { Q } from '@nozbe/watermelondb'
import { openDatabase } from './db.js'
import { sync, listen } from './sync.js'

const SYNC_URL = `${location.origin}/sync`
const PULL_ONLY_TABLES = ['tags']
const $ = (selector) => document.querySelector(selector)

let session = null // {user, token, database, stopListening}
let subscriptions = []

// --- signing in -----------------------------------------------------------------------------------

async function fetchToken(user) {
  const res = await fetch(`/dev/token?user=${encodeURIComponent(user)}`)
  const body = await res.json()
  if (!res.ok) throw new Error(body.error ?? `HTTP ${res.status}`)
  return body.token
}

async function signIn(user) {
  const token = await fetchToken(user)
  localStorage.setItem('pg_sync_demo_user', user)
  start(user, token)
}

function signOut() {
  localStorage.removeItem('pg_sync_demo_user')
  for (const s of subscriptions) s.unsubscribe()
  subscriptions = []
  session?.stopListening()
  session = null
  showSignIn()
}

function showSignIn() {
  $('#signed-in').hidden = true
  $('#sign-in').hidden = false
  $('#user').focus()
}

function start(user, token) {
  session = { user, token, database: openDatabase(user) }
  $('#sign-in').hidden = true
  $('#signed-in').hidden = false
  $('#whoami').textContent = user
  const { database } = session
  subscriptions.push(
    database
      .get('tasks')
      .query(Q.sortBy('created_at', Q.asc))
      .observeWithColumns(['title', 'is_done'])
      .subscribe(renderTasks),
    database.get('tags').query(Q.sortBy('label', Q.asc)).observeWithColumns(['label']).subscribe(renderTags),
  )
  requestSync()
  listenAs(session)
}

// The function's events: a sync when the stream opens and whenever the server says so.
function listenAs(current) {
  current.stopListening?.()
  current.stopListening = listen({ url: SYNC_URL, jwt: current.token, onPull: () => session === current && requestSync() })
}

// --- rendering ----------------------------------------------------------------------------------

function renderTasks(tasks) {
  const list = $('#tasks')
  const seen = new Set()
  for (const task of tasks) {
    seen.add(task.id)
    let li = list.querySelector(`li[data-id="${CSS.escape(task.id)}"]`)
    if (!li) {
      li = document.createElement('li')
      li.dataset.id = task.id
      li.innerHTML =
        '<input type="checkbox" class="done" aria-label="done">' +
        '<input type="text" class="title" aria-label="title">' +
        '<button class="delete" title="delete">✕</button>'
      li.querySelector('.done').addEventListener('change', (e) => edit(task.id, { isDone: e.target.checked }))
      const title = li.querySelector('.title')
      title.addEventListener('keydown', (e) => e.key === 'Enter' && title.blur())
      title.addEventListener('change', () => edit(task.id, { title: title.value.trim() || '(untitled)' }))
      li.querySelector('.delete').addEventListener('click', () => remove(task.id))
    }
    list.appendChild(li) // keeps the query's order
    li.classList.toggle('is-done', task.isDone)
    li.querySelector('.done').checked = task.isDone
    const title = li.querySelector('.title')
    if (document.activeElement !== title) title.value = task.title
  }
  for (const li of [...list.children]) if (!seen.has(li.dataset.id)) li.remove()
  $('#count').textContent = `${tasks.filter((t) => !t.isDone).length} open, ${tasks.length} in all`
}

function renderTags(tags) {
  $('#tags').textContent = tags.map((t) => t.label).join(', ') || '(none)'
}

// --- local changes (each one followed by a sync) ------------------------------------------------

// Runs a local write, then asks for a sync. The change counts as pending from the moment the user
// made it, so #status never shows 0 pending while a change has not been synced (or tried).
function change(write) {
  writing++
  setStatus($('#status').dataset.state, $('#status').textContent)
  write()
    .catch((e) => console.error(e))
    .finally(() => {
      writing--
      requestSync()
    })
}

const add = (title) =>
  change(() => {
    const { database, user } = session
    return database.write(() =>
      database.get('tasks').create((t) => {
        t.ownerId = user // the server writes the owner anyway
        t.title = title
        t.isDone = false
      }),
    )
  })

const edit = (id, props) =>
  change(() => {
    const { database } = session
    return database.write(async () => {
      const task = await database.get('tasks').find(id)
      await task.update((t) => Object.assign(t, props))
    })
  })

const remove = (id) =>
  change(() => {
    const { database } = session
    return database.write(async () => (await database.get('tasks').find(id)).markAsDeleted())
  })

// --- syncing ------------------------------------------------------------------------------------
// Syncs run one at a time. Each request is answered by a sync that starts after it; #status
// shows data-pending (changes being written and sync requests not yet answered) and data-state
// (idle, syncing, offline, error).

let pending = 0
let writing = 0
let running = false

function setStatus(state, text) {
  const status = $('#status')
  status.dataset.state = state
  status.dataset.pending = String(pending + writing)
  status.textContent = text
}

function requestSync() {
  pending++
  setStatus(running ? 'syncing' : $('#status').dataset.state ?? 'idle', $('#status').textContent)
  if (!running) runSyncs()
}

async function runSyncs() {
  running = true
  while (pending > 0 && session) {
    const answering = pending
    const current = session
    setStatus('syncing', 'syncing…')
    let state = 'idle'
    let text
    try {
      try {
        await sync(current.database, { url: SYNC_URL, jwt: current.token, pullOnlyTables: PULL_ONLY_TABLES })
      } catch (e) {
        if (e.status !== 401) throw e
        current.token = await fetchToken(current.user) // expired: a new development token
        if (session === current) listenAs(current)
        await sync(current.database, { url: SYNC_URL, jwt: current.token, pullOnlyTables: PULL_ONLY_TABLES })
      }
      text = `synced at ${new Date().toLocaleTimeString()}`
    } catch (e) {
      const offline = !navigator.onLine || e instanceof TypeError // fetch: no network
      state = offline ? 'offline' : 'error'
      text = offline ? 'offline: changes are kept on this device and sync when it is back' : `sync failed: ${e.message}`
    }
    pending -= answering
    setStatus(state, text)
  }
  running = false
}

// --- wiring -------------------------------------------------------------------------------------

$('#sign-in').addEventListener('submit', (e) => {
  e.preventDefault()
  const user = $('#user').value.trim()
  if (user) signIn(user).catch((err) => ($('#sign-in-error').textContent = err.message))
})
$('#new-task').addEventListener('submit', (e) => {
  e.preventDefault()
  const input = $('#new-title')
  const title = input.value.trim()
  input.value = ''
  if (title) add(title)
})
$('#sync').addEventListener('click', () => requestSync())
$('#sign-out').addEventListener('click', signOut)
window.addEventListener('online', () => session && requestSync())

const saved = localStorage.getItem('pg_sync_demo_user')
if (saved) signIn(saved).catch(() => showSignIn())
else showSignIn()
