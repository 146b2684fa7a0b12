// Development JWTs: HS256 with the local server's secret, role "authenticated" (or another role),
// valid for 24 hours. Used by `make token`, make run's banner and its /dev/token route.
//
//   node examples/dev/token.mjs [--secret-file FILE] [--role ROLE] USER
//
// The secret comes from --secret-file (default: jwt_secret in PGSYNC_RUN_DIR, else in .run of this
// checkout), or from JWT_SECRET when there is no such file.
import { Buffer } from 'node:buffer'
import { createHmac } from 'node:crypto'
import { readFileSync } from 'node:fs'
import process from 'node:process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const base64url = (data) => Buffer.from(data).toString('base64url')

// A signed JWT for user `sub`.
export function mintToken(secret, sub, { role = 'authenticated', seconds = 24 * 3600 } = {}) {
  const now = Math.floor(Date.now() / 1000)
  const header = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))
  const payload = base64url(JSON.stringify({ sub, role, iat: now, exp: now + seconds }))
  const signature = createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url')
  return `${header}.${payload}.${signature}`
}

function main(argv) {
  const here = path.dirname(fileURLToPath(import.meta.url))
  let secretFile = process.env.PGSYNC_RUN_DIR
    ? path.join(process.env.PGSYNC_RUN_DIR, 'jwt_secret')
    : path.join(here, '../../.run/jwt_secret')
  let role = 'authenticated'
  const rest = []
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--secret-file') secretFile = argv[++i]
    else if (argv[i] === '--role') role = argv[++i]
    else rest.push(argv[i])
  }
  const user = rest[0]
  if (!user || rest.length > 1) {
    console.error('usage: make token USER=<user id> [ROLE=<role>]')
    process.exit(2)
  }
  if (Buffer.byteLength(user) > 255) {
    console.error('a user id is at most 255 bytes')
    process.exit(2)
  }
  let secret
  try {
    secret = readFileSync(secretFile, 'utf8').trim()
  } catch {
    secret = process.env.JWT_SECRET
  }
  if (!secret) {
    console.error(`no JWT secret in ${secretFile}: start the local server once with make run`)
    process.exit(1)
  }
  console.log(mintToken(secret, user, { role }))
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2))
}
