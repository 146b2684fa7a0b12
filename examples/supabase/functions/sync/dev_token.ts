// Prints a JWT for local development: HS256 with JWT_SECRET, for user $1
// (default demo-user), role "authenticated", valid for 24 hours.
import { SignJWT } from "npm:jose@5.9.6";

const secret = Deno.env.get("JWT_SECRET");
if (!secret) throw new Error("set JWT_SECRET");
const sub = Deno.args[0] ?? "demo-user";
const jwt = await new SignJWT({ sub, role: "authenticated" })
  .setProtectedHeader({ alg: "HS256", typ: "JWT" })
  .setIssuedAt()
  .setExpirationTime("24h")
  .sign(new TextEncoder().encode(secret));
console.log(jwt);
