// pg_sync edge function: maps WatermelonDB's pull/push over HTTP to
// sync_pull / sync_push, the way PostgREST would. It holds no sync logic.
//
//   POST .../sync/pull  {"lastPulledAt": n|null, "schemaVersion": n, "migration": {...}|null}
//   POST .../sync/push  {"changes": {...}, "lastPulledAt": n}
//   Authorization: Bearer <JWT signed HS256 with the project's JWT secret>
//
// Environment: SUPABASE_DB_URL (or DATABASE_URL), JWT_SECRET (or
// SUPABASE_JWT_SECRET), optional DB_POOL_SIZE (default 10), SYNC_ROLES (roles
// a token may act as; default "authenticated,anon") and SYNC_LOCK_TIMEOUT (how
// long a push waits for row locks held by others before answering 503;
// default "5s").
import postgres from "npm:postgres@3.4.5";
import { jwtVerify } from "npm:jose@5.9.6";

const dbUrl = Deno.env.get("SUPABASE_DB_URL") ?? Deno.env.get("DATABASE_URL");
const secret = Deno.env.get("JWT_SECRET") ?? Deno.env.get("SUPABASE_JWT_SECRET");
if (!dbUrl || !secret) throw new Error("set SUPABASE_DB_URL (or DATABASE_URL) and JWT_SECRET");

const sql = postgres(dbUrl, {
  max: Number(Deno.env.get("DB_POOL_SIZE") ?? 10),
  prepare: false, // works behind PgBouncer in transaction mode too
  onnotice: () => {},
});
const key = new TextEncoder().encode(secret);
const lockTimeout = Deno.env.get("SYNC_LOCK_TIMEOUT") ?? "5s";
const roles = new Set((Deno.env.get("SYNC_ROLES") ?? "authenticated,anon").split(",").map((r) => r.trim()));

// SQLSTATE -> HTTP status. Everything else is a 500 without details.
function statusFor(code: string, route: string): number {
  // push conflict, or the push lost a deadlock / serialization race: pull, then push again
  if (code === "SY001" || (route === "push" && (code === "40001" || code === "40P01"))) return 409;
  // a pull that raced DDL (a table rewritten while it waited): retry the pull
  if (code === "40001" || code === "40P01") return 503;
  // lock not available, statement timeout, token not visible yet (standby lag): retry later
  if (code === "55P03" || code === "57014" || code === "SY004") return 503;
  if (code === "SY002" || code === "SY003") return 410; // token expired/unknown: reset the client
  if (code === "28000") return 401; // no user id
  if (code === "42501") return 403; // not allowed
  if (code.startsWith("22") || code.startsWith("23") || ["42P01", "42804", "54000"].includes(code)) return 400;
  return 500;
}

function reply(status: number, body: string | object): Response {
  return new Response(typeof body === "string" ? body : JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

async function authenticate(req: Request): Promise<Record<string, unknown> | null> {
  const header = req.headers.get("authorization") ?? "";
  const match = /^Bearer\s+(.+)$/i.exec(header);
  if (!match) return null;
  try {
    const { payload } = await jwtVerify(match[1], key, { algorithms: ["HS256"] });
    return payload as Record<string, unknown>;
  } catch {
    return null;
  }
}

export async function handle(req: Request): Promise<Response> {
  const route = new URL(req.url).pathname.match(/\/(pull|push)\/?$/)?.[1];
  if (!route) return reply(404, { error: "not found: POST .../pull or .../push" });
  if (req.method !== "POST") return reply(405, { error: "use POST" });

  const claims = await authenticate(req);
  if (!claims) return reply(401, { error: "missing or invalid bearer token", code: "28000" });
  const role = typeof claims.role === "string" ? claims.role : "authenticated";
  if (!roles.has(role)) return reply(403, { error: `role ${role} may not sync`, code: "42501" });

  let args: Record<string, unknown>;
  try {
    args = await req.json();
    if (typeof args !== "object" || args === null || Array.isArray(args)) throw new Error();
  } catch {
    return reply(400, { error: "the body must be a JSON object", code: "22023" });
  }
  const lastPulledAt = args.lastPulledAt ?? null;
  if (lastPulledAt !== null && !Number.isSafeInteger(lastPulledAt)) {
    return reply(400, { error: "lastPulledAt must be an integer or null", code: "22023" });
  }

  try {
    const body = await sql.begin(async (tx) => {
      await tx.unsafe(`SET LOCAL ROLE "${role.replaceAll('"', '""')}"`);
      await tx`SELECT set_config('lock_timeout', ${lockTimeout}, true)`;
      await tx`SELECT set_config('request.jwt.claims', ${JSON.stringify(claims)}, true)`;
      if (route === "pull") {
        const [row] = await tx`
          SELECT sync_pull(last_pulled_at => ${lastPulledAt}::bigint,
                           schema_version => ${args.schemaVersion ?? null}::integer,
                           migration => ${args.migration == null ? null : JSON.stringify(args.migration)}::text::jsonb)::text AS r`;
        return row.r as string;
      }
      if (typeof args.changes !== "object" || args.changes === null) {
        throw Object.assign(new Error("changes must be an object"), { code: "22023" });
      }
      const [row] = await tx`
        SELECT sync_push(changes => ${JSON.stringify(args.changes)}::text::json,
                         last_pulled_at => ${lastPulledAt}::bigint)::text AS r`;
      return row.r as string;
    });
    return reply(200, body);
  } catch (e) {
    const code = typeof (e as { code?: unknown }).code === "string" ? (e as { code: string }).code : "";
    const status = statusFor(code, route);
    if (status === 500) {
      console.error(e);
      return reply(500, { error: "internal error", code: code || "XX000" });
    }
    return reply(status, { error: (e as Error).message, code });
  }
}

if (import.meta.main) {
  const port = Number(Deno.env.get("PORT") ?? 8000);
  Deno.serve({ port, hostname: Deno.env.get("HOST") ?? "127.0.0.1" }, handle);
}
