import { synchronize } from '@nozbe/watermelondb/sync'

// POSTs to the pg_sync edge function; a non-2xx answer throws (with .status and .code), so
// WatermelonDB marks nothing as synced.
async function call(url, route, body, jwt, clientId) {
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${jwt}` }
  if (clientId) headers['x-sync-client-id'] = clientId // the device: it gets no echo of its own pushes
  const res = await fetch(`${url}/${route}`, { method: 'POST', headers, body: JSON.stringify(body) })
  const text = await res.text()
  if (!res.ok) {
    let code
    try {
      code = JSON.parse(text).code
    } catch {}
    throw Object.assign(new Error(`sync ${route}: HTTP ${res.status} ${text}`), { status: res.status, code })
  }
  return JSON.parse(text)
}

// Thrown by pushChanges while a paged pull has pages to come: the push waits for the last page.
class NotYet extends Error {}

// url: the function, e.g. 'https://<project>.supabase.co/functions/v1/sync'
// jwt: the user's access token
// clientId: optional, a stable id of this install (e.g. a UUID kept in local storage)
// pullOnlyTables: tables registered with {"pull_only": true} (the server never takes local edits)
// migrationsEnabledAtVersion: only when the adapter was given `migrations` (schemaMigrations)
// pageSize: optional, records per page (the function's default, SYNC_PAGE_SIZE, otherwise)
export async function sync(database, { url, jwt, clientId, pullOnlyTables = [], migrationsEnabledAtVersion, pageSize }) {
  let dropped = 0
  let hasMore = false
  const createdHere = [] // records of pull-only tables created on this device: the server has none
  // afterConflict: the pull must see what the push conflicted with; with a read replica, only
  // the primary is sure to (pull?primary)
  const once = (afterConflict = false) =>
    synchronize({
      database,
      sendCreatedAsUpdated: true, // pg_sync sends every live record in `updated`
      migrationsEnabledAtVersion,
      pullChanges: async ({ lastPulledAt, schemaVersion, migration }) => {
        // replacement: an expired token gets the whole scope (WatermelonDB keeps unpushed changes)
        const body = { lastPulledAt, schemaVersion, migration, pageSize, replacement: true }
        const result = await call(url, afterConflict ? 'pull?primary' : 'pull', body, jwt, clientId)
        hasMore = result.hasMore === true
        return result
      },
      pushChanges: async ({ changes, lastPulledAt }) => {
        // A push with a page token conflicts on every row the pull has not sent yet: push after
        // the last page. Throwing keeps the local changes pending; the page is applied already.
        if (hasMore) throw new NotYet()
        const result = await call(url, 'push', { changes, lastPulledAt }, jwt, clientId)
        // A record of a pull-only table comes back in experimentalRejectedIds, and WatermelonDB
        // keeps a rejected record dirty and pushes it again at every sync. Taking it out of the
        // list makes WatermelonDB mark it synced (a local delete is forgotten); the server then
        // sends its own row at the next pull. A record created here is removed below.
        for (const table of pullOnlyTables) {
          const rejected = result.experimentalRejectedIds?.[table] ?? []
          const created = new Set((changes[table]?.created ?? []).map((r) => r.id))
          for (const id of rejected) if (created.has(id)) createdHere.push([table, id])
          dropped += rejected.length
          delete result.experimentalRejectedIds?.[table]
        }
        return result
      },
    })
  const allPages = async (afterConflict = false) => {
    do {
      try {
        await once(afterConflict)
      } catch (e) {
        if (!(e instanceof NotYet)) throw e
      }
    } while (hasMore)
  }
  try {
    await allPages()
  } catch (e) {
    if (e.status === 410) {
      // a token this server never issued (another database, a restored backup): start over
      // (local unsynced changes are lost; an expired token gets a replacement instead)
      await database.write(() => database.unsafeResetDatabase())
    } else if (e.status !== 409 && e.status !== 503) {
      throw e // offline, 401 (get a new token), 400, ...
    }
    await allPages(e.status === 409) // retry once (409: pull, merge, push again; 503: the server was busy)
  }
  if (createdHere.length > 0) {
    await database.write(async () => {
      for (const [table, id] of createdHere) {
        const record = await database.get(table).find(id).catch(() => null)
        if (record) await record.destroyPermanently()
      }
    })
  }
  if (dropped > 0) await allPages() // brings the server's rows for the dropped edits now
}

// Listens to the function's events (GET .../events, Server-Sent Events) and calls onPull when
// this device should sync: when the stream opens (again after every reconnect: changes may have
// come meanwhile) and whenever the user's data changed on the server. onPull must not start a
// sync while one runs (WatermelonDB refuses concurrent ones): queue it. Returns a function that
// stops listening.
export function listen({ url, jwt, onPull, EventSource = globalThis.EventSource }) {
  let source = null
  let timer = null
  const open = () => {
    // EventSource sends no headers of its own: the token goes in the query string
    source = new EventSource(`${url}/events?access_token=${encodeURIComponent(jwt)}`)
    source.addEventListener('ready', () => onPull())
    source.addEventListener('pull', () => onPull())
    source.onerror = () => {
      // a dropped connection is reopened by EventSource; a refused one (401, 503) is closed
      if (source.readyState === EventSource.CLOSED) timer = setTimeout(open, 10_000)
    }
  }
  open()
  return () => {
    clearTimeout(timer)
    source.close()
  }
}
