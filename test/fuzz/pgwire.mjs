// A minimal PostgreSQL client for the fuzz test: the simple query protocol
// over a Unix socket or TCP, with pipelining (several queries written at
// once, answers read in order). Reports each query's rows, the error's
// fields (SQLSTATE, severity, message, detail) and a lost connection, which
// is what the fuzz oracle needs and what a client library would blur.
// Authentication: trust, password and md5 (PGPASSWORD); the test clusters
// use trust.
import net from 'node:net'
import crypto from 'node:crypto'

export class ConnectionLost extends Error {}

export class PgConn {
  static connect({ host, port, user, database, password, appName = 'pg_sync_fuzz' }) {
    const sock = host.startsWith('/')
      ? net.createConnection({ path: `${host}/.s.PGSQL.${port}` })
      : net.createConnection({ host, port: Number(port) })
    const conn = new PgConn(sock, user, password)
    return new Promise((resolve, reject) => {
      sock.once('error', reject)
      sock.once('connect', () => {
        sock.off('error', reject)
        const params = Buffer.from(`user\0${user}\0database\0${database}\0application_name\0${appName}\0client_encoding\0UTF8\0\0`)
        const head = Buffer.alloc(8)
        head.writeInt32BE(8 + params.length, 0)
        head.writeInt32BE(196608, 4)
        sock.write(Buffer.concat([head, params]))
        conn.startup = { resolve: () => resolve(conn), reject }
      })
    })
  }

  constructor(sock, user, password) {
    this.sock = sock
    this.user = user
    this.password = password
    this.buf = Buffer.alloc(0)
    this.pending = [] // queries written, answers not complete
    this.lost = null
    this.pid = null
    this.notices = 0
    sock.on('data', (d) => this.onData(d))
    sock.on('error', (e) => this.onClose(e))
    sock.on('close', () => this.onClose(new Error('socket closed')))
  }

  onClose(err) {
    if (this.lost) return
    this.lost = err
    const e = new ConnectionLost(`connection lost: ${err.message}`)
    if (this.startup) this.startup.reject(e)
    for (const q of this.pending.splice(0)) q.reject(e)
  }

  onData(d) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d
    let off = 0
    while (this.buf.length - off >= 5) {
      const type = String.fromCharCode(this.buf[off])
      const len = this.buf.readInt32BE(off + 1)
      if (this.buf.length - off < 1 + len) break
      this.onMessage(type, this.buf.subarray(off + 5, off + 1 + len))
      off += 1 + len
    }
    this.buf = off === this.buf.length ? Buffer.alloc(0) : Buffer.from(this.buf.subarray(off))
  }

  send(type, body) {
    const head = Buffer.alloc(5)
    head[0] = type.charCodeAt(0)
    head.writeInt32BE(4 + body.length, 1)
    this.sock.write(Buffer.concat([head, body]))
  }

  onMessage(type, body) {
    const q = this.pending[0]
    switch (type) {
      case 'R': {
        const code = body.readInt32BE(0)
        if (code === 0) return
        if (code === 3) return this.send('p', Buffer.from(`${this.password ?? ''}\0`))
        if (code === 5) {
          const md5 = (b) => crypto.createHash('md5').update(b).digest('hex')
          const inner = md5(Buffer.from(`${this.password ?? ''}${this.user}`))
          return this.send('p', Buffer.from(`md5${md5(Buffer.concat([Buffer.from(inner), body.subarray(4, 8)]))}\0`))
        }
        this.startup?.reject(new Error(`authentication method ${code} not supported (use trust, password or md5)`))
        return this.sock.destroy()
      }
      case 'K':
        this.pid = body.readInt32BE(0)
        return
      case 'S': case 'A':
        return
      case 'N':
        this.notices++
        return
      case 'Z':
        if (this.startup) {
          const s = this.startup
          this.startup = null
          return s.resolve()
        }
        this.pending.shift()
        return q.resolve({ results: q.results, error: q.error })
      case 'E': {
        const err = parseError(body)
        if (this.startup) return this.startup.reject(Object.assign(new Error(err.message), err))
        if (q) q.error = err
        else this.lastUnsolicited = err // e.g. FATAL before the socket closes
        return
      }
      case 'T': {
        const n = body.readInt16BE(0)
        const fields = []
        let p = 2
        for (let i = 0; i < n; i++) {
          const end = body.indexOf(0, p)
          fields.push(body.toString('utf8', p, end))
          p = end + 1 + 18
        }
        q.cur = { fields, rows: [] }
        return
      }
      case 'D': {
        const n = body.readInt16BE(0)
        const row = []
        let p = 2
        for (let i = 0; i < n; i++) {
          const len = body.readInt32BE(p)
          p += 4
          if (len < 0) row.push(null)
          else { row.push(body.toString('utf8', p, p + len)); p += len }
        }
        q.cur.rows.push(row)
        return
      }
      case 'C':
        q.results.push({ ...(q.cur ?? { fields: [], rows: [] }), command: body.toString('utf8', 0, body.length - 1) })
        q.cur = null
        return
      case 'I':
        return
      default:
        return
    }
  }

  // Writes one simple query; resolves with {results, error} when the server
  // is ready again (an error is a result here, not an exception).
  query(sql) {
    if (this.lost) return Promise.reject(new ConnectionLost(`connection lost: ${this.lost.message}`))
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject, results: [], error: null, cur: null })
      this.send('Q', Buffer.from(sql.replaceAll('\0', '') + '\0', 'utf8'))
    })
  }

  // Several queries written at once; answers in order.
  pipeline(sqls) {
    return Promise.all(sqls.map((s) => this.query(s)))
  }

  // The first value of the last result, throwing on error (for setup).
  async value(sql) {
    const r = await this.query(sql)
    if (r.error) throw Object.assign(new Error(`${r.error.code}: ${r.error.message} (in: ${sql.slice(0, 200)})`), r.error)
    const last = r.results.at(-1)
    return last?.rows?.[0]?.[0] ?? null
  }

  async rows(sql) {
    const r = await this.query(sql)
    if (r.error) throw Object.assign(new Error(`${r.error.code}: ${r.error.message} (in: ${sql.slice(0, 200)})`), r.error)
    return r.results.at(-1)?.rows ?? []
  }

  close() {
    if (!this.lost) {
      this.send('X', Buffer.alloc(0))
      this.sock.end()
    }
  }
}

function parseError(body) {
  const f = {}
  let p = 0
  while (p < body.length && body[p] !== 0) {
    const t = String.fromCharCode(body[p])
    const end = body.indexOf(0, p + 1)
    f[t] = body.toString('utf8', p + 1, end)
    p = end + 1
  }
  return { code: f.C, severity: f.V ?? f.S, message: f.M, detail: f.D, hint: f.H, where: f.W }
}
