// PgBouncer (Debian's pgbouncer package) in transaction pooling mode in front of a stack's
// cluster, for running the suite the way a pooled deployment does (PGSYNC_E2E_POOLER=pgbouncer):
// the edge function connects to PgBouncer, which hands each transaction to any of
// PGSYNC_E2E_POOL_SIZE (default 2) server connections, fewer than the function's pool (10), so
// consecutive transactions of one function connection land on different server sessions.
// Loopback only, trust authentication (a throwaway cluster).
import { spawn, execFileSync } from 'node:child_process'
import { writeFileSync, existsSync, readFileSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { anyFreePort } from './proc.js'

const BIN = process.env.PGBOUNCER ?? (existsSync('/usr/sbin/pgbouncer') ? '/usr/sbin/pgbouncer' : 'pgbouncer')

function accepts(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}

// The settings a deployment needs (README, "PgBouncer"); returns the file's text.
export function pgbouncerIni({ dir, port, pgPort, poolSize }) {
  return `[databases]
* = host=127.0.0.1 port=${pgPort}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = trust
auth_file = ${dir}/pgbouncer.users
admin_users = postgres
pool_mode = transaction
default_pool_size = ${poolSize}
max_client_conn = 500
ignore_startup_parameters = extra_float_digits
logfile = ${dir}/pgbouncer.log
pidfile = ${dir}/pgbouncer.pid
`
}

// Starts PgBouncer for the cluster on 127.0.0.1:pgPort, with its files in dir. Returns
// {port, url, stats(), stop()}.
export async function startPgBouncer({ dir, pgPort, poolSize = Number(process.env.PGSYNC_E2E_POOL_SIZE ?? 2) }) {
  let lastError
  for (let tries = 0; tries < 3; tries++) {
    const port = await anyFreePort()
    writeFileSync(path.join(dir, 'pgbouncer.users'), '"postgres" ""\n')
    writeFileSync(path.join(dir, 'pgbouncer.ini'), pgbouncerIni({ dir, port, pgPort, poolSize }))
    if (process.getuid?.() === 0) execFileSync('chown', ['postgres:', path.join(dir, 'pgbouncer.ini'), path.join(dir, 'pgbouncer.users')])
    const [cmd, args] = process.getuid?.() === 0
      ? ['runuser', ['-u', 'postgres', '--', BIN, path.join(dir, 'pgbouncer.ini')]]
      : [BIN, [path.join(dir, 'pgbouncer.ini')]]
    const child = spawn(cmd, args, { stdio: 'ignore' })
    let exited = false
    child.once('exit', () => (exited = true))
    for (let i = 0; i < 300 && !exited; i++) {
      if (await accepts(port)) {
        return {
          port,
          url: `postgres://postgres@127.0.0.1:${port}/postgres`,
          log: () => (existsSync(path.join(dir, 'pgbouncer.log')) ? readFileSync(path.join(dir, 'pgbouncer.log'), 'utf8') : ''),
          stop: () =>
            new Promise((resolve) => {
              if (exited) return resolve()
              child.once('exit', resolve)
              child.kill('SIGTERM')
            }),
          kill: () => child.kill('SIGKILL'),
        }
      }
      await new Promise((r) => setTimeout(r, 50))
    }
    child.kill('SIGKILL')
    lastError = new Error(`pgbouncer did not start on port ${port}`)
  }
  throw lastError
}
