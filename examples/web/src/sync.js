import { synchronize } from '@nozbe/watermelondb/sync'

// POSTs to the pg_sync edge function; a non-2xx answer throws (with .status and .code), so
// WatermelonDB marks nothing as synced.
async function call(url, route, body, jwt) {
  const res = await fetch(`${url}/${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${jwt}` },
    body: JSON.stringify(body),
  })
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

// url: the function, e.g. 'https://<project>.supabase.co/functions/v1/sync'
// jwt: the user's access token
// pullOnlyTables: tables registered with {"pull_only": true} (the server never takes local edits)
// migrationsEnabledAtVersion: only when the adapter was given `migrations` (schemaMigrations)
export async function sync(database, { url, jwt, pullOnlyTables = [], migrationsEnabledAtVersion }) {
  let dropped = 0
  const createdHere = [] // records of pull-only tables created on this device: the server has none
  // afterConflict: the pull must see what the push conflicted with; with a read replica, only
  // the primary is sure to (pull?primary)
  const once = (afterConflict = false) =>
    synchronize({
      database,
      sendCreatedAsUpdated: true, // pg_sync sends every live record in `updated`
      migrationsEnabledAtVersion,
      pullChanges: ({ lastPulledAt, schemaVersion, migration }) =>
        call(url, afterConflict ? 'pull?primary' : 'pull', { lastPulledAt, schemaVersion, migration }, jwt),
      pushChanges: async ({ changes, lastPulledAt }) => {
        const result = await call(url, 'push', { changes, lastPulledAt }, jwt)
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
  try {
    await once()
  } catch (e) {
    if (e.status === 410) {
      // token expired or unknown: start over (local unsynced changes are lost)
      await database.write(() => database.unsafeResetDatabase())
    } else if (e.status !== 409 && e.status !== 503) {
      throw e // offline, 401 (get a new token), 400, ...
    }
    await once(e.status === 409) // retry once (409: pull, merge, push again; 503: the server was busy)
  }
  if (createdHere.length > 0) {
    await database.write(async () => {
      for (const [table, id] of createdHere) {
        const record = await database.get(table).find(id).catch(() => null)
        if (record) await record.destroyPermanently()
      }
    })
  }
  if (dropped > 0) await once() // brings the server's rows for the dropped edits now
}
