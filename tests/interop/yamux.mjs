// yamux.mjs — the @chainsafe/libp2p-yamux side of the yamux interop test.
//
//   node yamux.mjs server PORT [--once]   answer streams (protocol below); PORT 0 picks one
//   node yamux.mjs client HOST:PORT       drive a peer's responder, print TAP lines
//
// The muxer runs directly over a Node `net` socket through a small adapter
// that gives the socket the message-stream shape the package's
// AbstractStreamMuxer expects (send() -> boolean, 'message' / 'drain' /
// 'close' events, abort()).
//
// Per-stream protocol (same as tests/interop/yamux_peer.c): the opener sends
// "YMX1" | flags u32 | reply_len u64 | reply_seed u32, a body, then FIN. Flags:
// 1 RESET (responder resets at once), 2 STATS (responder answers resets_seen
// u64), 4 SINK (no hashing). The responder reads to FIN and answers
// SHA-256(body) | body length u64 | reply_len bytes of content | FIN. Content is
// xorshift32 from a seed, each state as 4 little-endian bytes.

import net from 'node:net'
import { createHash } from 'node:crypto'

// The package (and @libp2p/utils) call Promise.withResolvers, which Node only
// has from v22; Debian's Node is v20. Same semantics, defined before loading.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function () {
    let resolve, reject
    const promise = new this((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}
const { yamux } = await import('@chainsafe/libp2p-yamux')

const HDR = 20
const F_RESET = 1
const F_STATS = 2

// ---- content ---------------------------------------------------------------

class Gen {
  constructor (seed) { this.x = (seed >>> 0) || 1; this.left = new Uint8Array(0) }
  next (n) {
    const out = new Uint8Array(n)
    let i = 0
    while (i < n && this.left.length > 0) { out[i++] = this.left[0]; this.left = this.left.subarray(1) }
    let x = this.x
    while (n - i >= 4) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5; x >>>= 0
      out[i] = x & 255; out[i + 1] = (x >>> 8) & 255; out[i + 2] = (x >>> 16) & 255; out[i + 3] = x >>> 24
      i += 4
    }
    if (i < n) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5; x >>>= 0
      const b = new Uint8Array([x & 255, (x >>> 8) & 255, (x >>> 16) & 255, x >>> 24])
      let k = 0
      while (i < n) out[i++] = b[k++]
      this.left = b.subarray(k)
    }
    this.x = x
    return out
  }
}

const be64 = (v) => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(v)); return b }

// ---- the socket adapter ------------------------------------------------------

function noopLog () {}
noopLog.trace = noopLog
noopLog.error = noopLog
noopLog.enabled = false
noopLog.newScope = () => noopLog

class SocketConn extends EventTarget {
  constructor (socket, direction) {
    super()
    this.socket = socket
    this.direction = direction
    this.log = noopLog
    this.status = 'open'
    this.error = null
    socket.setNoDelay(true)
    socket.on('data', (buf) => {
      const e = new Event('message'); e.data = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
      this.dispatchEvent(e)
    })
    socket.on('drain', () => this.dispatchEvent(new Event('drain')))
    socket.on('close', () => { this.status = 'closed'; this.dispatchEvent(new Event('close')) })
    socket.on('error', (err) => { this.error = this.error ?? err })
  }

  send (data) {
    let ok = true
    if (data instanceof Uint8Array) ok = this.socket.write(data)
    else for (const chunk of data) ok = this.socket.write(chunk)
    return ok
  }

  abort (err) { this.error = this.error ?? err; this.socket.destroy() }
  async close () { this.socket.end() }
}

function startMuxer (socket, direction, onStream) {
  const conn = new SocketConn(socket, direction)
  const muxer = yamux({ enableKeepAlive: true })().createStreamMuxer(conn)
  if (onStream) muxer.addEventListener('stream', (evt) => onStream(evt.detail))
  return { conn, muxer }
}

// Write everything, honouring backpressure.
async function sendAll (stream, data) {
  if (!stream.send(data)) await stream.onDrain()
}

async function readAll (stream, onChunk) {
  for await (const chunk of stream) onChunk(chunk.subarray ? chunk.subarray() : chunk)
}

// ---- responder ---------------------------------------------------------------

let resetsSeen = 0

async function respond (stream) {
  let hdr = Buffer.alloc(0)
  let flags = 0
  let count = 0
  const sha = createHash('sha256')
  try {
    for await (const c of stream) {
      let chunk = Buffer.from(c.subarray ? c.subarray() : c)
      if (hdr.length < HDR) {
        const k = Math.min(HDR - hdr.length, chunk.length)
        hdr = Buffer.concat([hdr, chunk.subarray(0, k)])
        chunk = chunk.subarray(k)
        if (hdr.length === HDR) {
          if (hdr.toString('latin1', 0, 4) !== 'YMX1') throw new Error('bad magic')
          flags = hdr.readUInt32BE(4)
          if (flags & F_RESET) { stream.abort(new Error('reset requested')); return }
        }
      }
      count += chunk.length
      if (chunk.length) sha.update(chunk)
    }
  } catch (err) {
    resetsSeen++
    return
  }
  if (hdr.length < HDR) { stream.abort(new Error('short header')); return }
  if (flags & F_STATS) {
    await sendAll(stream, be64(resetsSeen))
    await stream.close()
    return
  }
  await sendAll(stream, Buffer.concat([sha.digest(), be64(count)]))
  let left = Number(hdr.readBigUInt64BE(8))
  const gen = new Gen(hdr.readUInt32BE(16))
  while (left > 0) {
    const k = Math.min(left, 64 * 1024)
    await sendAll(stream, gen.next(k))
    left -= k
  }
  await stream.close()
}

// ---- client ------------------------------------------------------------------

let failures = 0
let tests = 0
function tap (ok, msg) {
  tests++
  if (!ok) failures++
  console.log(`${ok ? 'ok' : 'not ok'} - ${msg}`)
}

async function request (muxer, idx, flags, bodyLen, replyLen, opts = {}) {
  const stream = await muxer.createStream()
  const res = { prefix: Buffer.alloc(0), replyGot: 0, mismatch: false, error: null, digest: null }
  const reader = (async () => {
    const want = new Gen(2000 + idx)
    try {
      await readAll(stream, (chunk) => {
        let c = Buffer.from(chunk)
        if (res.prefix.length < 40) {
          const k = Math.min(40 - res.prefix.length, c.length)
          res.prefix = Buffer.concat([res.prefix, c.subarray(0, k)])
          c = c.subarray(k)
        }
        if (c.length) {
          if (!Buffer.from(want.next(c.length)).equals(c)) res.mismatch = true
          res.replyGot += c.length
        }
      })
    } catch (err) { res.error = err }
  })()
  const hdr = Buffer.alloc(HDR)
  hdr.write('YMX1', 0, 'latin1'); hdr.writeUInt32BE(flags, 4); hdr.writeBigUInt64BE(BigInt(replyLen), 8); hdr.writeUInt32BE(2000 + idx, 16)
  const sha = createHash('sha256')
  try {
    await sendAll(stream, hdr)
    const gen = new Gen(1000 + idx)
    let left = bodyLen
    while (left > 0) {
      const k = Math.min(left, 64 * 1024)
      const chunk = gen.next(k)
      sha.update(chunk)
      await sendAll(stream, chunk)
      left -= k
      if (opts.resetAfter !== undefined && bodyLen - left >= opts.resetAfter) {
        await opts.gate
        stream.abort(new Error('client reset'))
        return res
      }
    }
    res.digest = sha.digest()
    await stream.close()
  } catch (err) { res.error = res.error ?? err }
  await reader
  return res
}

function bulkOk (r, bodyLen, replyLen) {
  return !r.error && r.prefix.length === 40 && r.digest && r.prefix.subarray(0, 32).equals(r.digest) &&
    Number(r.prefix.readBigUInt64BE(32)) === bodyLen && r.replyGot === replyLen && !r.mismatch
}

async function runClient (hostport) {
  const i = hostport.lastIndexOf(':')
  const socket = net.connect({ host: hostport.slice(0, i), port: Number(hostport.slice(i + 1)) })
  await new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  const { conn, muxer } = startMuxer(socket, 'outbound', respond)

  // Many concurrent streams.
  const N = 64
  const per = 160 * 1024
  let t0 = Date.now()
  const many = await Promise.all(Array.from({ length: N }, (_, k) => request(muxer, k, 0, per, per)))
  const bad = many.filter(r => !bulkOk(r, per, per))
  tap(bad.length === 0, `js client: ${N} concurrent streams, ${per} bytes each way, SHA-256 and counts match (${Date.now() - t0} ms)`)
  for (const r of bad.slice(0, 3)) console.log(`#   error=${r.error} prefix=${r.prefix.length} reply=${r.replyGot} mismatch=${r.mismatch}`)

  // One big stream: 10 MB each way.
  const big = 10 * 1000 * 1000
  t0 = Date.now()
  const b = await request(muxer, 500, 0, big, big)
  tap(bulkOk(b, big, big), `js client: 10 MB each way on one stream, SHA-256 and counts match (${Date.now() - t0} ms)`)
  if (!bulkOk(b, big, big)) console.log(`#   error=${b.error} prefix=${b.prefix.length} reply=${b.replyGot} mismatch=${b.mismatch}`)

  // Half-close: the body ends with our FIN, the reply arrives after it, then the peer's FIN.
  const h = await request(muxer, 501, 0, 0, 1000)
  tap(bulkOk(h, 0, 1000), 'js client: half-close (empty body, FIN, reply after it, FIN back)')

  // Resets. Stream 503 opens and sends 64 KiB first; the peer-reset round
  // trip that follows proves the peer has taken 503 (frames are handled in
  // order), then we reset 503 and ask the peer what it saw.
  let abort503
  const r503 = request(muxer, 503, 0, 2 * 1024 * 1024, 0, { resetAfter: 64 * 1024, gate: new Promise(resolve => { abort503 = resolve }) })
  const rs = await request(muxer, 502, F_RESET, 1000, 0)
  tap(rs.error !== null, `js client: a stream the peer resets fails (${rs.error?.name ?? 'no error'})`)
  abort503()
  await r503
  const st = await request(muxer, 504, F_STATS, 0, 0)
  const seen = st.prefix.length >= 8 ? Number(st.prefix.readBigUInt64BE(0)) : -1
  tap(!st.error && seen >= 1, `js client: the peer saw the stream we reset (resets_seen ${seen})`)

  const rtt = await muxer.ping()
  tap(rtt >= 0, `js client: ping answered (${rtt} ms)`)

  tap(conn.error === null && muxer.status === 'open', `js client: no session error (${conn.error ?? 'none'})`)
  await muxer.close()
  socket.end()
  await new Promise(resolve => { if (socket.destroyed) resolve(); else socket.once('close', resolve) })
  console.log(`1..${tests}`)
  process.exit(failures ? 1 : 0)
}

function runServer (port, once) {
  let sessions = 0
  const server = net.createServer((socket) => {
    const id = ++sessions
    const { conn, muxer } = startMuxer(socket, 'inbound', (stream) => {
      respond(stream).catch((err) => console.log(`# respond: ${err}`))
    })
    socket.on('close', () => {
      const ok = conn.error === null
      tap(ok, `js server: session ${id} ended without a protocol error (${conn.error ?? 'none'}, muxer ${muxer.status})`)
      if (once) { server.close(); process.exit(failures ? 1 : 0) }
    })
  })
  server.listen(Number(port), '127.0.0.1', () => console.log(`listening ${server.address().port}`))
}

const [mode, arg, ...rest] = process.argv.slice(2)
if (mode === 'server') runServer(arg, rest.includes('--once'))
else if (mode === 'client') runClient(arg).catch((err) => { console.log(`not ok - js client: ${err.stack}`); process.exit(1) })
else { console.error('usage: yamux.mjs server PORT [--once] | client HOST:PORT'); process.exit(2) }
