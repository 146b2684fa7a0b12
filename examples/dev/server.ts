// make run's HTTP server (development only). One port, four things:
//   /sync/pull, /sync/push, /sync/events, ... (also /functions/v1/sync/..., Supabase's path): the
//       edge function of examples/supabase/functions/sync, unchanged
//   /                 the demo web app, built by examples/web/build.sh into PGSYNC_WEB_DIR
//   /dev/token?user=NAME  a JWT for any user name: exists only when PGSYNC_DEV_TOKENS=1
//   /dev/health       {"instance": PGSYNC_INSTANCE}: make run's readiness check, which another
//                     program on the port cannot answer
// Environment: that of the edge function, plus the variables above.
import { handle } from "../supabase/functions/sync/index.ts";
import { mintToken } from "./token.mjs";

const env = (name: string) => Deno.env.get(name);
const webDir = env("PGSYNC_WEB_DIR");
const devTokens = env("PGSYNC_DEV_TOKENS") === "1";
const instance = env("PGSYNC_INSTANCE") ?? "";
const secret = env("JWT_SECRET") ?? env("SUPABASE_JWT_SECRET") ?? "";

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

const types: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  map: "application/json",
  png: "image/png",
  svg: "image/svg+xml",
};

async function staticFile(pathname: string): Promise<Response> {
  if (!webDir) return json(404, { error: "no web app (PGSYNC_WEB_DIR is not set)", code: "42883" });
  const name = pathname === "/" ? "index.html" : pathname.slice(1);
  if (!/^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/.test(name)) return json(404, { error: "not found", code: "42883" });
  try {
    const body = await Deno.readFile(`${webDir}/${name}`);
    const type = types[name.split(".").pop() ?? ""] ?? "application/octet-stream";
    return new Response(body, { headers: { "content-type": type, "cache-control": "no-cache" } });
  } catch {
    return json(404, { error: "not found", code: "42883" });
  }
}

function token(url: URL): Response {
  const user = url.searchParams.get("user") ?? "";
  if (user === "" || new TextEncoder().encode(user).length > 255) {
    return json(400, { error: "user: a user name of 1 to 255 bytes", code: "22023" });
  }
  return json(200, { user, token: mintToken(secret, user) });
}

export function serve(req: Request): Response | Promise<Response> {
  const url = new URL(req.url);
  const path = url.pathname;
  if (path === "/dev/health") return json(200, { instance });
  if (path === "/dev/token" && devTokens && req.method === "GET") return token(url);
  if (path.startsWith("/sync/") || path.startsWith("/functions/v1/sync/")) return handle(req);
  if (req.method === "GET" || req.method === "HEAD") return staticFile(path);
  return json(404, { error: "not found", code: "42883" });
}

Deno.serve({ port: Number(env("PORT") ?? 8787), hostname: env("HOST") ?? "127.0.0.1" }, serve);
