// Child processes and loopback ports, shared by the end-to-end harness, its PgBouncer and the
// scale tests.
import { execFile } from 'node:child_process'
import net from 'node:net'
import path from 'node:path'

// Runs cmd with args (input on its stdin); resolves with its stdout, rejects with an Error
// whose message names the command and whose .stderr is what it printed there.
export function run(cmd, args, { input, env } = {}) {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { env: env ?? process.env, maxBuffer: 256 << 20 }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(new Error(`${path.basename(cmd)} ${args.join(' ')} failed: ${stderr || err.message}`), { stderr }))
      else resolve(stdout)
    })
    if (input !== undefined) child.stdin.end(input)
  })
}

export function portIsFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer()
    srv.once('error', () => resolve(false))
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)))
  })
}

// A port the system hands out as free on 127.0.0.1.
export function anyFreePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}
