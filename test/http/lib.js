// Helpers of the HTTP tests of the edge function: a stack (cluster + function, from the e2e
// harness) with make run's demo schema, raw HTTP requests, and the function's memory.
import http from 'node:http'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { randomUUID } from 'node:crypto'
import { startStack } from '../e2e/lib/harness.js'

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const DEMO_SQL = readFileSync(process.env.PGSYNC_HTTP_DEMO_SQL ?? path.join(REPO, 'examples/demo.sql'), 'utf8')

// A stack on make run's schema (projects and tasks per user with RLS, tags pull-only).
// extraSql runs after the schema. PGSYNC_HTTP_FUNCTION_DIR and PGSYNC_HTTP_DEMO_SQL run the tests
// against another copy of the function and of the schema (older ones, to see which tests fail).
export function startDemoStack({ functionEnv = {}, extraSql = '' } = {}) {
  const functionDir = process.env.PGSYNC_HTTP_FUNCTION_DIR
  return startStack({ schemaSql: `${DEMO_SQL}\n${extraSql}`, functionEnv, ...(functionDir ? { functionDir } : {}) })
}

export const user = () => `u-${randomUUID()}`

// fetch with a JSON body and a bearer token; returns {status, headers, body (parsed when JSON), text}.
export async function call(stack, route, { token, body, raw, method = 'POST', headers = {} } = {}) {
  const res = await fetch(`${stack.functionUrl}/${route}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined || raw !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  })
  const text = await res.text()
  let parsed
  try {
    parsed = JSON.parse(text)
  } catch {}
  return { status: res.status, headers: res.headers, body: parsed, text }
}

// A push sent the way a big or slow upload arrives: the headers first, then the body in chunks of
// spaces (valid JSON whitespace), stopping at the first byte of the answer or after maxBytes.
// contentLength: declared (and never all sent, unless maxBytes reaches it); without it the body
// is chunked, and ended after maxBytes. Resolves {status, headers, body, sent}.
export function upload(url, token, { contentLength, maxBytes, chunkBytes = 1 << 20 }) {
  return new Promise((resolve, reject) => {
    const u = new URL(url)
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
    if (contentLength !== undefined) headers['content-length'] = String(contentLength)
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers })
    const chunk = Buffer.alloc(chunkBytes, 0x20)
    let sent = 0
    let answered = false
    req.on('response', (res) => {
      answered = true
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d) => (text += d))
      res.on('end', () => {
        req.destroy()
        let body
        try {
          body = JSON.parse(text)
        } catch {
          body = text
        }
        resolve({ status: res.statusCode, headers: res.headers, body, sent })
      })
      res.on('error', reject)
    })
    req.on('error', (e) => {
      if (!answered) reject(e)
    })
    const pump = () => {
      while (!answered && sent < maxBytes) {
        sent += chunk.length
        if (!req.write(chunk)) {
          req.once('drain', pump)
          return
        }
      }
      if (!answered && contentLength === undefined) req.end()
    }
    req.flushHeaders()
    pump()
  })
}

// The function's resident memory, in MB.
export function rssMb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)[1]) / 1024
}
