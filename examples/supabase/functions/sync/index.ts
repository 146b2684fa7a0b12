// pg_sync edge function: maps WatermelonDB's pull/push over HTTP to
// sync_pull / sync_push, the way PostgREST would. It holds no sync logic.
//
//   POST .../sync/pull  {"lastPulledAt": n|null, "schemaVersion": n, "migration": {...}|null,
//                        "pageSize": n, "replacement": true, "turbo": true}   (the last three optional)
//   POST .../sync/push  {"changes": {...}, "lastPulledAt": n}
//   GET  .../sync/events                    Server-Sent Events: "ready", then "pull" when the user's
//                                           data changed (?access_token=<JWT> where no header can be set)
//   GET  .../sync/status                    sync_status(client_id)
//   GET  .../sync/conflicts                 sync_conflicts(), as a JSON array
//   POST .../sync/conflicts/<id>/resolve    {"resolution": "server"|"client"|"merged", "merged": {...}}
//   Authorization: Bearer <JWT signed HS256 with the project's JWT secret>
//   X-Sync-Client-Id: <the device>          optional: client_id of every call (devices, no echo)
//   Idempotency-Key: <one push>             optional: push_id of a push (applied once)
//
// A token whose role is SYNC_SERVICE_ROLE (trusted server code) may add "user_id" to either body
// to act for that user; no other token may.
//
// Environment: SUPABASE_DB_URL (or DATABASE_URL), JWT_SECRET (or SUPABASE_JWT_SECRET), and
// optionally:
//   DB_POOL_SIZE          connections in the pool (10)
//   SYNC_ROLES            roles a token may act as ("authenticated,anon,service_role")
//   SYNC_SERVICE_ROLE     the role whose tokens may pass user_id ("service_role")
//   SYNC_LOCK_TIMEOUT     how long a push waits for row locks held by others before 503 ("5s")
//   SYNC_MAX_BODY_BYTES   largest request body (default: the database's pg_sync.max_push_bytes)
//   SYNC_CORS_ORIGINS     origins allowed to call from a browser, comma-separated ("*")
//   SYNC_JWT_REQUIRE_EXP  "false" accepts tokens without an "exp" claim ("true")
//   SYNC_PAGE_SIZE        page size of pulls that give no pageSize and are not Turbo ("5000"; "0": none)
//   SYNC_USER_CLAIM       the claim holding the user id, as pg_sync.user_claim ("sub"): events only
//   SYNC_EVENTS_POLL_MS   how often the events poller asks the database (500)
//   SYNC_EVENTS_KEEPALIVE_MS  a comment on every event stream this often (15000)
//   SYNC_EVENTS_MAX_CONNECTIONS  event streams one instance holds at most (1000)
//   SUPABASE_DB_REPLICA_URL (or DATABASE_REPLICA_URL)  a read replica (hot standby) for pulls;
//                         pushes, pulls the replica cannot answer and pulls sent to .../pull?primary
//                         (a client's retry after a 409) go to the primary
//   DB_REPLICA_POOL_SIZE  connections in the replica's pool (DB_POOL_SIZE)
import postgres from "npm:postgres@3.4.5";
import { jwtVerify } from "npm:jose@5.9.6";

const env = (name: string) => Deno.env.get(name);
const dbUrl = env("SUPABASE_DB_URL") ?? env("DATABASE_URL");
const secret = env("JWT_SECRET") ?? env("SUPABASE_JWT_SECRET");
if (!dbUrl || !secret) throw new Error("set SUPABASE_DB_URL (or DATABASE_URL) and JWT_SECRET");

const sql = postgres(dbUrl, {
  max: Number(env("DB_POOL_SIZE") ?? 10),
  prepare: false, // works behind PgBouncer in transaction mode too
  onnotice: () => {},
});
// Pulls only: a hot standby. Read-only pulls there answer up to the newest checkpoint it has
// replayed; what it cannot answer (a token it has not replayed yet: SY004, no checkpoint yet, a
// recovery conflict, the replica down) the primary answers, and its answer is final.
const replicaUrl = env("SUPABASE_DB_REPLICA_URL") ?? env("DATABASE_REPLICA_URL");
const replica = replicaUrl
  ? postgres(replicaUrl, {
    max: Number(env("DB_REPLICA_POOL_SIZE") ?? env("DB_POOL_SIZE") ?? 10),
    prepare: false,
    onnotice: () => {},
  })
  : null;
let replicaWarned = 0;
const replicaDown = (e: unknown) => { // logged at most once a minute
  if (Date.now() - replicaWarned < 60_000) return;
  replicaWarned = Date.now();
  console.error(`replica unavailable, pulls go to the primary: ${(e as Error).message}`);
};
const key = new TextEncoder().encode(secret);
const lockTimeout = env("SYNC_LOCK_TIMEOUT") ?? "5s";
const serviceRole = env("SYNC_SERVICE_ROLE") ?? "service_role";
const list = (value: string) => value.split(",").map((r) => r.trim()).filter((r) => r !== "");
const roles = new Set(list(env("SYNC_ROLES") ?? `authenticated,anon,${serviceRole}`));
const requireExp = !/^(0|false|no|off)$/i.test(env("SYNC_JWT_REQUIRE_EXP") ?? "true");
const corsOrigins = list(env("SYNC_CORS_ORIGINS") ?? "*");
const configuredMaxBody = env("SYNC_MAX_BODY_BYTES");
if (configuredMaxBody !== undefined && !(Number(configuredMaxBody) > 0)) {
  throw new Error("SYNC_MAX_BODY_BYTES must be a positive number of bytes");
}
// A whole number from the environment, within [min, max].
function intEnv(name: string, fallback: number, min: number, max: number): number {
  const value = env(name);
  if (value === undefined || value.trim() === "") return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new Error(`${name} must be an integer from ${min} to ${max}`);
  return n;
}
// 0: pulls are paged only when the client asks (pageSize)
const defaultPageSize = intEnv("SYNC_PAGE_SIZE", 5000, 0, 1_000_000);
const userClaim = env("SYNC_USER_CLAIM") ?? "sub";
const eventsPollMs = intEnv("SYNC_EVENTS_POLL_MS", 500, 10, 3_600_000);
const eventsKeepAliveMs = intEnv("SYNC_EVENTS_KEEPALIVE_MS", 15_000, 10, 3_600_000);
const eventsMax = intEnv("SYNC_EVENTS_MAX_CONNECTIONS", 1000, 0, 1_000_000);

// SQLSTATE -> HTTP status. Everything else is a 500 without details.
export function statusFor(code: string, route: string): number {
  if (code === "SY005") return 403; // the device (X-Sync-Client-Id) is deactivated
  if (code === "SY006") return 400; // an Idempotency-Key used again with another push
  if (code === "SY007") return 409; // the conflict is resolved already
  if (code === "42704" && route === "resolve") return 404; // no such conflict (or another user's)
  // push conflict, or the push lost a deadlock / serialization race: pull, then push again
  if (code === "SY001" || (route === "push" && (code === "40001" || code === "40P01"))) return 409;
  // a pull that raced DDL (a table rewritten while it waited): retry the pull
  if (code === "40001" || code === "40P01") return 503;
  // lock not available, statement timeout, token not visible yet (standby lag): retry later
  if (code === "55P03" || code === "57014" || code === "SY004") return 503;
  if (code === "SY002" || code === "SY003") return 410; // token expired/unknown: reset the client
  if (code === "28000") return 401; // no user id
  if (code === "42501") return 403; // not allowed
  if (code === "54000") return 413; // push larger than pg_sync.max_push_records / max_push_bytes
  if (code.startsWith("22") || code.startsWith("23") || ["42P01", "42804"].includes(code)) return 400;
  return 500;
}

// An answer that is not 200: always {"error": "...", "code": "<SQLSTATE>"}, plus "record" when the
// database's error context names the pushed record it is about.
class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly record: string | null = null,
  ) {
    super(message);
  }
}

// CORS, as in Supabase's function template: any origin by default (SYNC_CORS_ORIGINS narrows it),
// the headers a sync client sends, on every answer including errors.
function corsHeaders(req: Request): Record<string, string> {
  const origin = req.headers.get("origin");
  const allowed = corsOrigins.includes("*") ? "*" : origin !== null && corsOrigins.includes(origin) ? origin : null;
  const headers: Record<string, string> = {
    "access-control-allow-headers":
      "authorization, x-client-info, apikey, content-type, x-sync-client-id, idempotency-key",
    "access-control-allow-methods": "GET, POST, OPTIONS",
    "access-control-expose-headers": "www-authenticate",
    "access-control-max-age": "86400",
  };
  if (allowed !== null) headers["access-control-allow-origin"] = allowed;
  if (!corsOrigins.includes("*")) headers["vary"] = "Origin";
  return headers;
}

function reply(req: Request, status: number, body: string, extra: Record<string, string> = {}): Response {
  return new Response(body, {
    status,
    headers: { "content-type": "application/json", ...corsHeaders(req), ...extra },
  });
}

// The JWT: the Authorization header, or (queryToken, for GET .../events: a browser's EventSource
// sends no headers of its own) the access_token query parameter (RFC 6750, section 2.3).
async function authenticate(req: Request, queryToken = false): Promise<Record<string, unknown>> {
  const header = req.headers.get("authorization");
  const fromQuery = queryToken && header === null ? new URL(req.url).searchParams.get("access_token") : null;
  const jwt = fromQuery || /^Bearer\s+(\S+)\s*$/i.exec(header ?? "")?.[1];
  if (!jwt) {
    throw new HttpError(401, "28000", "missing bearer token", { "www-authenticate": 'Bearer realm="pg_sync"' });
  }
  try {
    const { payload } = await jwtVerify(jwt, key, {
      algorithms: ["HS256"],
      requiredClaims: requireExp ? ["exp"] : [],
    });
    return payload as Record<string, unknown>;
  } catch (e) {
    const reason = (e as Error).message.replaceAll('"', "'");
    throw new HttpError(401, "28000", `invalid bearer token: ${reason}`, {
      "www-authenticate": `Bearer realm="pg_sync", error="invalid_token", error_description="${reason}"`,
    });
  }
}

// The largest body accepted: SYNC_MAX_BODY_BYTES, else the database's pg_sync.max_push_bytes (its
// built-in default when the setting is not visible to this connection) plus room for the envelope
// around "changes". Read once.
let maxBody: number | null = configuredMaxBody === undefined ? null : Number(configuredMaxBody);
async function bodyLimit(): Promise<number> {
  if (maxBody === null) {
    const [row] = await sql`
      SELECT pg_catalog.pg_size_bytes(coalesce(pg_catalog.current_setting('pg_sync.max_push_bytes', true), '64MB'))::text AS n`;
    maxBody = Number(row.n) + 64 * 1024;
  }
  return maxBody;
}

// Reads the body as bytes, refusing it (413) as soon as it is known to be too large: from
// Content-Length before reading anything, or while streaming it in. Nothing beyond the limit is
// ever held.
async function readBody(req: Request): Promise<Uint8Array> {
  const limit = await bodyLimit();
  const tooLarge = () =>
    new HttpError(413, "54000", `the request body is larger than ${limit} bytes (pg_sync.max_push_bytes)`, {
      connection: "close",
    });
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) {
    req.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  if (req.body === null) return new Uint8Array(0);
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0];
  const body = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    body.set(chunk, at);
    at += chunk.byteLength;
  }
  return body;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
function text(body: Uint8Array): string {
  try {
    return utf8.decode(body);
  } catch {
    throw new HttpError(400, "22021", "the body is not valid UTF-8");
  }
}

// Runs fn in one transaction as the token's role, with its claims set exactly like PostgREST.
function asCaller<T>(
  role: string,
  claims: Record<string, unknown>,
  fn: (tx: postgres.TransactionSql) => Promise<T>,
  db: postgres.Sql = sql,
) {
  return db.begin(async (tx) => {
    await tx.unsafe(`SET LOCAL ROLE "${role.replaceAll('"', '""')}"`);
    await tx`SELECT set_config('lock_timeout', ${lockTimeout}, true)`;
    await tx`SELECT set_config('request.jwt.claims', ${JSON.stringify(claims)}, true)`;
    return await fn(tx);
  });
}

// The device headers: X-Sync-Client-Id (client_id) and Idempotency-Key (push_id). pg_sync takes 1 to
// 255 bytes; over HTTP they are 1 to 255 visible ASCII characters (no spaces: a header sent twice
// arrives as "a, b" and is refused). An Idempotency-Key may be quoted, as the IETF draft writes it.
const visibleAscii = /^[\x21-\x7e]{1,255}$/;
function deviceHeader(req: Request, name: string): string | null {
  let value = req.headers.get(name);
  if (value === null) return null;
  if (name === "Idempotency-Key" && /^"[^"\\]+"$/.test(value)) value = value.slice(1, -1);
  if (!visibleAscii.test(value)) {
    throw new HttpError(400, "22023", `${name} must be 1 to 255 visible ASCII characters`);
  }
  return value;
}

const badToken = () => new HttpError(400, "22023", "lastPulledAt must be an integer or null");
const badUserId = () => new HttpError(400, "22023", "user_id must be a string");
const notTrusted = () => new HttpError(403, "42501", `only a ${serviceRole} token may pass user_id`);

const badFlag = (name: string) => new HttpError(400, "22023", `${name} must be true, false or null`);

// A pull's body is small: parsed here. Besides WatermelonDB's pull arguments:
//   pageSize     page_size: at most that many records, "hasMore": true when more remain (the client
//                pulls again from the answer's timestamp); without it SYNC_PAGE_SIZE applies
//   turbo        true: a Turbo Login first pull (unsafeTurbo), which must come whole: never paged
//   replacement  true: the client applies "experimentalStrategy": "replacement" (WatermelonDB 0.27
//                and later): a token older than the retention gets the whole scope instead of 410
// With a replica: the replica answers unless the client asks for the primary (.../pull?primary,
// the pull that follows a 409 must see the state the push conflicted with) or cannot answer (a
// pull longer than one page needs page tokens, which only the primary records: SY004).
// served["x-sync-served-by"] says which one did.
async function pull(
  req: Request,
  role: string,
  claims: Record<string, unknown>,
  served: Record<string, string> = {},
): Promise<string> {
  const clientId = deviceHeader(req, "X-Sync-Client-Id");
  let args: Record<string, unknown>;
  try {
    args = JSON.parse(text(await readBody(req)));
  } catch (e) {
    if (e instanceof HttpError) throw e;
    throw new HttpError(400, "22P02", `the body is not JSON: ${(e as Error).message}`);
  }
  if (typeof args !== "object" || args === null || Array.isArray(args)) {
    throw new HttpError(400, "22023", "the body must be a JSON object");
  }
  const lastPulledAt = (args.lastPulledAt ?? null) as number | null;
  if (lastPulledAt !== null && !Number.isSafeInteger(lastPulledAt)) throw badToken();
  const userId = args.user_id ?? null;
  if (userId !== null && typeof userId !== "string") throw badUserId();
  if (userId !== null && role !== serviceRole) throw notTrusted();
  const schemaVersion = (args.schemaVersion ?? null) as number | null;
  const migration = args.migration == null ? null : JSON.stringify(args.migration);
  const turbo = args.turbo ?? false;
  if (typeof turbo !== "boolean") throw badFlag("turbo");
  const replacement = args.replacement ?? false;
  if (typeof replacement !== "boolean") throw badFlag("replacement");
  let pageSize = (args.pageSize ?? null) as number | null;
  if (pageSize !== null && !Number.isSafeInteger(pageSize)) {
    throw new HttpError(400, "22023", "pageSize must be an integer or null");
  }
  if (pageSize !== null && turbo) throw new HttpError(400, "22023", "a Turbo pull is never paged: leave pageSize out");
  if (pageSize === null && !turbo && defaultPageSize > 0) pageSize = defaultPageSize;
  const call = (db: postgres.Sql) =>
    asCaller(role, claims, async (tx) => {
      const [row] = await tx`
      SELECT sync_pull(last_pulled_at => ${lastPulledAt}::bigint,
                       schema_version => ${schemaVersion}::integer,
                       migration => ${migration}::text::jsonb,
                       user_id => ${userId as string | null}::text,
                       client_id => ${clientId}::text,
                       page_size => ${pageSize}::integer,
                       replacement_ok => ${replacement}::boolean)::text AS r`;
      return row.r as string;
    }, db);
  if (replica !== null && !new URL(req.url).searchParams.has("primary")) {
    try {
      const body = await call(replica);
      served["x-sync-served-by"] = "replica";
      return body;
    } catch (e) {
      // the primary's answer is final: it knows every token it issued
      const code = (e as { code?: unknown }).code;
      if (typeof code !== "string" || !/^[0-9A-Z]{5}$/.test(code)) replicaDown(e);
    }
  }
  const body = await call(sql);
  if (replica !== null) served["x-sync-served-by"] = "primary";
  return body;
}

// The members of a JSON object's text, without parsing their values: key -> [start, end) of each
// value's text (a repeated key keeps its last value, as JSON.parse does). Strings and nested
// containers are skipped over, not checked: the caller parses the values it uses. null when the
// text is not one JSON object.
export function topLevelMembers(s: string): Map<string, [number, number]> | null {
  const n = s.length;
  let i = 0;
  const skipSpace = () => {
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c !== 32 && c !== 10 && c !== 13 && c !== 9) break;
    }
  };
  const skipString = (): boolean => { // at '"'
    for (let from = i + 1; ;) {
      const quote = s.indexOf('"', from);
      if (quote < 0) return false;
      let backslashes = 0;
      while (s.charCodeAt(quote - 1 - backslashes) === 92) backslashes++;
      if (backslashes % 2 === 0) {
        i = quote + 1;
        return true;
      }
      from = quote + 1;
    }
  };
  const skipValue = (): boolean => {
    const c = s.charCodeAt(i);
    if (c === 34) return skipString();
    if (c === 123 || c === 91) { // { [
      for (let depth = 0; i < n;) {
        const d = s.charCodeAt(i);
        if (d === 34) {
          if (!skipString()) return false;
          continue;
        }
        if (d === 123 || d === 91) depth++;
        else if ((d === 125 || d === 93) && --depth === 0) {
          i++;
          return true;
        }
        i++;
      }
      return false;
    }
    const start = i; // number, true, false, null
    for (; i < n; i++) {
      const d = s.charCodeAt(i);
      if (d === 44 || d === 125 || d === 93 || d === 32 || d === 10 || d === 13 || d === 9) break;
    }
    return i > start;
  };

  const members = new Map<string, [number, number]>();
  skipSpace();
  if (s.charCodeAt(i) !== 123) return null;
  i++;
  skipSpace();
  if (s.charCodeAt(i) === 125) i++;
  else {
    for (;;) {
      skipSpace();
      const keyStart = i;
      if (s.charCodeAt(i) !== 34 || !skipString()) return null;
      let key: string;
      try {
        key = JSON.parse(s.slice(keyStart, i));
      } catch {
        return null;
      }
      skipSpace();
      if (s.charCodeAt(i) !== 58) return null; // :
      i++;
      skipSpace();
      const valueStart = i;
      if (!skipValue()) return null;
      members.set(key, [valueStart, i]);
      skipSpace();
      const c = s.charCodeAt(i++);
      if (c === 125) break;
      if (c !== 44) return null;
    }
  }
  skipSpace();
  return i === n ? members : null;
}

const notJson = (e: unknown) => new HttpError(400, "22P02", `the body is not JSON: ${(e as Error).message}`);

// A push's records never become objects here: the body's top-level members are located by
// topLevelMembers, the small ones (lastPulledAt, user_id, anything else) are parsed, and the text of
// "changes" goes to the database as it came, where sync_push reads it with its own parser.
async function push(req: Request, role: string, claims: Record<string, unknown>): Promise<string> {
  const clientId = deviceHeader(req, "X-Sync-Client-Id");
  const pushId = deviceHeader(req, "Idempotency-Key");
  const body = text(await readBody(req));
  const members = topLevelMembers(body);
  if (members === null) {
    try {
      JSON.parse(body);
    } catch (e) {
      throw notJson(e);
    }
    throw new HttpError(400, "22023", "the body must be a JSON object");
  }
  const small: Record<string, unknown> = {};
  for (const [key, [start, end]] of members) {
    if (key === "changes") continue;
    try {
      small[key] = JSON.parse(body.slice(start, end));
    } catch (e) {
      throw notJson(e);
    }
  }
  const span = members.get("changes");
  const changes = span === undefined ? null : body.slice(span[0], span[1]);
  if (changes === null || changes.charCodeAt(0) !== 123) throw new HttpError(400, "22023", "changes must be an object");
  const lastPulledAt = (small.lastPulledAt ?? null) as number | null;
  if (lastPulledAt !== null && !Number.isSafeInteger(lastPulledAt)) throw badToken();
  const userId = small.user_id ?? null;
  if (userId !== null && typeof userId !== "string") throw badUserId();
  if (userId !== null && role !== serviceRole) throw notTrusted();
  return await asCaller(role, claims, async (tx) => {
    const [row] = await tx`
      SELECT sync_push(changes => ${changes}::text::json,
                       last_pulled_at => ${lastPulledAt}::bigint,
                       user_id => ${userId as string | null}::text,
                       client_id => ${clientId}::text,
                       push_id => ${pushId}::text)::text AS r`;
    return row.r as string;
  });
}

// GET .../status: sync_status() of the caller, of the device named by X-Sync-Client-Id if any.
async function syncStatus(req: Request, role: string, claims: Record<string, unknown>): Promise<string> {
  const clientId = deviceHeader(req, "X-Sync-Client-Id");
  return await asCaller(role, claims, async (tx) => {
    const [row] = await tx`SELECT sync_status(client_id => ${clientId}::text)::text AS r`;
    return row.r as string;
  });
}

// GET .../conflicts: the caller's open conflicts (sync_conflicts()), oldest first, as a JSON array.
async function listConflicts(role: string, claims: Record<string, unknown>): Promise<string> {
  return await asCaller(role, claims, async (tx) => {
    const [row] = await tx`
      SELECT coalesce(json_agg(c ORDER BY c.conflict_id), '[]')::text AS r FROM sync_conflicts() c`;
    return row.r as string;
  });
}

// POST .../conflicts/<id>/resolve {"resolution": "server"|"client"|"merged", "merged": {...}}:
// sync_resolve_conflict(). An id that is not a conflict id names no conflict: 404, as an unknown one.
async function resolveConflict(
  req: Request,
  role: string,
  claims: Record<string, unknown>,
  id: string,
): Promise<string> {
  if (!/^[1-9][0-9]{0,18}$/.test(id) || BigInt(id) > 9223372036854775807n) {
    throw new HttpError(404, "42704", `no conflict ${JSON.stringify(id)}`);
  }
  let args: Record<string, unknown>;
  try {
    args = JSON.parse(text(await readBody(req)));
  } catch (e) {
    if (e instanceof HttpError) throw e;
    throw notJson(e);
  }
  if (typeof args !== "object" || args === null || Array.isArray(args)) {
    throw new HttpError(400, "22023", "the body must be a JSON object");
  }
  if (typeof args.resolution !== "string") throw new HttpError(400, "22023", "resolution must be a string");
  const merged = args.merged ?? null;
  if (merged !== null && (typeof merged !== "object" || Array.isArray(merged))) {
    throw new HttpError(400, "22023", "merged must be a JSON object");
  }
  const resolution = args.resolution;
  const mergedText = merged === null ? null : JSON.stringify(merged);
  return await asCaller(role, claims, async (tx) => {
    const [row] = await tx`
      SELECT sync_resolve_conflict(conflict_id => ${id}::bigint,
                                   resolution => ${resolution}::text,
                                   merged => ${mergedText}::text::json)::text AS r`;
    return row.r as string;
  });
}

// GET .../events: a Server-Sent Events stream per connected device. One poller per instance asks
// the database every SYNC_EVENTS_POLL_MS, for all connected users in one call, which of them have
// changes (sync_changed_users), and sends each such user's streams "event: pull". Each user is
// asked about from a position taken before the user's first stream was registered, so a change
// committed after a stream opened is never missed (a hint may come twice, which costs an empty pull).
// The first event of a stream, "ready", tells the device to sync once (it may have missed changes
// while it had no stream). Writers pay nothing: no NOTIFY, no trigger of the function's own.
type EventStream = { send: (chunk: string) => void; close: () => void };
type Listener = { since: string; streams: Set<EventStream> };
const listeners = new Map<string, Listener>(); // user id -> its streams and its position
let eventStreams = 0;
let position: string | null = null; // the "next" of the latest poll: where newcomers start
let starting: Promise<string> | null = null;
let polling = false;
let keepAliveTimer: ReturnType<typeof setInterval> | undefined;
let pollWarned = 0;
const encoder = new TextEncoder();

// The poller's database calls run as the connection's own role: GRANT EXECUTE ON FUNCTION
// sync_changed_users(text, text[]) to the role SUPABASE_DB_URL / DATABASE_URL logs in as.
async function changedUsers(since: string | null, users: string[]) {
  const [row] = await sql`SELECT sync_changed_users(${since}::text, ${users}::text[])::text AS r`;
  return JSON.parse(row.r) as { next: string; all: boolean; users: string[] };
}

// The first position, before the first stream of this instance is registered.
async function startPosition(): Promise<string> {
  if (position !== null) return position;
  starting ??= changedUsers(null, []).then((r) => (position = r.next)).finally(() => (starting = null));
  return await starting;
}

async function pollOnce() {
  const groups = new Map<string, string[]>(); // position -> users asked about from there
  for (const [user, listener] of listeners) {
    const users = groups.get(listener.since);
    if (users) users.push(user);
    else groups.set(listener.since, [user]);
  }
  // Users registered at different times start from different positions: one call per position.
  // Afterwards all of them go on from the first call's "next": taken before any of this poll's
  // probes, it leaves nothing unseen (at worst a change is hinted twice), and the groups merge.
  let first: string | null = null;
  const asked: string[] = [];
  for (const [since, users] of groups) {
    let answer;
    try {
      answer = await changedUsers(since, users);
    } catch (e) {
      // positions kept as they were: the next poll asks again from there, nothing is missed
      if (Date.now() - pollWarned > 60_000) {
        pollWarned = Date.now();
        console.error("events: polling sync_changed_users failed:", e);
      }
      break;
    }
    first ??= answer.next;
    asked.push(...users);
    const changed = new Set(answer.users);
    const event = `event: pull\ndata: ${JSON.stringify({ all: answer.all })}\n\n`;
    for (const user of users) {
      if (!answer.all && !changed.has(user)) continue;
      for (const stream of listeners.get(user)?.streams ?? []) stream.send(event);
    }
  }
  if (first === null) return;
  for (const user of asked) {
    const listener = listeners.get(user);
    if (listener) listener.since = first; // (a user whose streams closed meanwhile is gone)
  }
  position = first;
}

// Runs while any stream is open; a new stream starts it again.
async function pollLoop() {
  polling = true;
  try {
    while (listeners.size > 0) {
      await new Promise((resolve) => setTimeout(resolve, eventsPollMs));
      if (listeners.size > 0) await pollOnce().catch((e) => console.error("events: a poll failed:", e));
    }
  } finally {
    polling = false; // no await between the last check and here: a stream registered since restarts it
  }
}

function keepAlive() {
  for (const listener of listeners.values()) {
    for (const stream of [...listener.streams]) stream.send(": keep-alive\n\n");
  }
}

async function events(req: Request, claims: Record<string, unknown>): Promise<Response> {
  const userId = claims[userClaim];
  if (typeof userId !== "string" || userId === "") {
    throw new HttpError(401, "28000", `the token has no user id (claim "${userClaim}")`);
  }
  const full = () =>
    new HttpError(503, "53300", `this instance holds ${eventsMax} event streams already: retry later`, {
      "retry-after": "10",
    });
  if (eventStreams >= eventsMax) throw full();
  const since = await startPosition();
  if (eventStreams >= eventsMax) throw full(); // others were registered while it waited

  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let open = true;
  const stream: EventStream = {
    send(chunk) {
      if (!open) return;
      try {
        controller.enqueue(encoder.encode(chunk));
      } catch {
        stream.close(); // the connection is gone
      }
    },
    close() {
      if (!open) return;
      open = false;
      eventStreams--;
      const listener = listeners.get(userId);
      listener?.streams.delete(stream);
      if (listener?.streams.size === 0) listeners.delete(userId);
      if (eventStreams === 0) {
        clearInterval(keepAliveTimer);
        keepAliveTimer = undefined;
      }
      try {
        controller.close();
      } catch {
        // closed already
      }
    },
  };
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
    cancel() {
      stream.close(); // the client disconnected
    },
  });
  eventStreams++;
  let listener = listeners.get(userId);
  if (!listener) listeners.set(userId, listener = { since, streams: new Set() });
  listener.streams.add(stream);
  keepAliveTimer ??= setInterval(keepAlive, eventsKeepAliveMs);
  if (!polling) pollLoop();
  stream.send(`retry: 3000\nevent: ready\ndata: {}\n\n`);

  return new Response(body, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      "x-accel-buffering": "no", // proxies must not hold events back
      ...corsHeaders(req),
    },
  });
}

// The routes, by the end of the path: [route, method, conflict id].
function routeOf(pathname: string): [string, string, string] | null {
  const resolveMatch = pathname.match(/\/conflicts\/([^/]+)\/resolve\/?$/);
  if (resolveMatch) return ["resolve", "POST", resolveMatch[1]];
  const name = pathname.match(/\/(pull|push|status|conflicts|events)\/?$/)?.[1];
  if (!name) return null;
  return [name, name === "pull" || name === "push" ? "POST" : "GET", ""];
}

// The PostgreSQL error context line that names a pushed record (`record "x" of table "t", column
// "c"`), when the error has one.
function recordOf(e: unknown): string | null {
  const where = (e as { where?: unknown }).where;
  if (typeof where !== "string") return null;
  return where.split("\n").find((line) => /^record ".*" of table "/.test(line)) ?? null;
}

export async function handle(req: Request): Promise<Response> {
  try {
    const found = routeOf(new URL(req.url).pathname);
    if (!found) {
      throw new HttpError(
        404,
        "42883",
        "not found: POST .../pull, .../push, .../conflicts/<id>/resolve; GET .../status, .../conflicts, .../events",
      );
    }
    const [route, method, conflictId] = found;
    if (req.method === "OPTIONS") return new Response("ok", { headers: corsHeaders(req) }); // preflight
    if (req.method !== method) throw new HttpError(405, "0A000", `use ${method}`, { allow: `${method}, OPTIONS` });

    const claims = await authenticate(req, route === "events");
    const role = typeof claims.role === "string" ? claims.role : "authenticated";
    if (!roles.has(role)) throw new HttpError(403, "42501", `role ${role} may not sync`);
    try {
      if (route === "events") return await events(req, claims);
      const served: Record<string, string> = {};
      const body = route === "pull"
        ? await pull(req, role, claims, served)
        : route === "push"
        ? await push(req, role, claims)
        : route === "status"
        ? await syncStatus(req, role, claims)
        : route === "conflicts"
        ? await listConflicts(role, claims)
        : await resolveConflict(req, role, claims, conflictId);
      return reply(req, 200, body, served);
    } catch (e) {
      if (e instanceof HttpError) throw e;
      const code = typeof (e as { code?: unknown }).code === "string" ? (e as { code: string }).code : "";
      // events: the poller's database errors are the server's (a missing GRANT), not the client's
      const status = route === "events" ? 500 : statusFor(code, route);
      if (status === 500) {
        console.error(e);
        throw new HttpError(500, code || "XX000", "internal error");
      }
      const record = recordOf(e);
      throw new HttpError(status, code, (e as Error).message, {}, record);
    }
  } catch (e) {
    if (!(e instanceof HttpError)) {
      console.error(e);
      e = new HttpError(500, "XX000", "internal error");
    }
    const { status, code, message, headers, record } = e as HttpError;
    // every 401 says how to authenticate (RFC 6750), also when the database found no user id
    const extra = { ...headers };
    if (status === 401 && !extra["www-authenticate"]) extra["www-authenticate"] = 'Bearer realm="pg_sync"';
    return reply(
      req,
      status,
      JSON.stringify(record === null ? { error: message, code } : { error: message, code, record }),
      extra,
    );
  }
}

if (import.meta.main) {
  const port = Number(env("PORT") ?? 8000);
  Deno.serve({ port, hostname: env("HOST") ?? "127.0.0.1" }, handle);
}
