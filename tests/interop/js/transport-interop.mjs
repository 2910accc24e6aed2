// `peer-js transport-interop`: the libp2p/test-plans transport-interop test
// application (ping test), tcp + noise + yamux only, driven by environment
// variables and a Redis server. Imported by peer.mjs (after its polyfill);
// main() never returns: it exits the process.
//
// Two conventions of the runners (same as tests/transport-interop/main.c and
// tests/interop/go/transport_interop.go):
//  - legacy (libp2p/test-plans transport-interop/README.md): lowercase
//    is_dialer, redis_addr (default redis:6379), ip (default 0.0.0.0),
//    transport, security, muxer, test_timeout_seconds (or test_timeout_secs;
//    default 180). Redis key "listenerAddr". The dialer prints one JSON line
//    {"handshakePlusOneRTTMillis":X,"pingRTTMilllis":Y} (three l's).
//  - modern (libp2p/test-plans docs/write-a-transport-test-app.md), chosen when
//    IS_DIALER is set: IS_DIALER, REDIS_ADDR, TEST_KEY (both required),
//    TRANSPORT, SECURE_CHANNEL, MUXER, LISTENER_IP (default 0.0.0.0),
//    TEST_TIMEOUT_SECS, DEBUG (ignored). Redis key
//    "<TEST_KEY>_listener_multiaddr". The dialer prints YAML: a comment line,
//    then latency: / handshake_plus_one_rtt / ping_rtt / unit: ms.
// The listener RPUSHes its first non-loopback address (else the first one)
// with /p2p/<id>, logs "connection from <peer id>" per inbound connection and
// serves until killed (exit 1 when the timeout passes first). The dialer does
// not listen; it logs "dialing <addr> from <own id>", BLPOPs the address,
// dials (checking the remote key against the /p2p/ id, which js-libp2p 2.10
// does not do itself), pings once and reports the time from the start of the
// dial to the end of the ping, and the ping service's RTT. Logs go to stderr,
// stdout carries only the result; exit 0 on success, 1 on any failure.

import net from 'node:net'

const { createLibp2p } = await import('libp2p')
const { tcp } = await import('@libp2p/tcp')
const { noise } = await import('@chainsafe/libp2p-noise')
const { yamux } = await import('@chainsafe/libp2p-yamux')
const { identify } = await import('@libp2p/identify')
const { ping } = await import('@libp2p/ping')
const { multiaddr } = await import('@multiformats/multiaddr')

const log = (...a) => process.stderr.write('peer-js transport-interop: ' + a.join(' ') + '\n')
function die (msg) {
  log('error:', String(msg?.message ?? msg))
  process.exit(1)
}
const env = (name, def = '') => process.env[name] || def

function readSettings () {
  const s = { modern: process.env.IS_DIALER !== undefined }
  let timeout
  if (s.modern) {
    s.dialer = process.env.IS_DIALER === 'true'
    s.redisAddr = env('REDIS_ADDR')
    s.ip = env('LISTENER_IP', '0.0.0.0')
    s.transport = env('TRANSPORT'); s.security = env('SECURE_CHANNEL'); s.muxer = env('MUXER')
    timeout = env('TEST_TIMEOUT_SECS')
    if (!s.redisAddr) die('REDIS_ADDR is not set')
    if (!env('TEST_KEY')) die('TEST_KEY is not set (the modern convention needs it for the Redis key)')
    s.key = env('TEST_KEY') + '_listener_multiaddr'
  } else {
    if (process.env.is_dialer === undefined) {
      die('set IS_DIALER (with REDIS_ADDR, TEST_KEY, TRANSPORT, SECURE_CHANNEL, MUXER) ' +
          'or is_dialer (with redis_addr, ip, transport, security, muxer)')
    }
    s.dialer = process.env.is_dialer === 'true'
    s.redisAddr = env('redis_addr', 'redis:6379')
    s.ip = env('ip', '0.0.0.0')
    s.transport = env('transport'); s.security = env('security'); s.muxer = env('muxer')
    timeout = env('test_timeout_seconds', env('test_timeout_secs'))
    s.key = 'listenerAddr'
  }
  s.redisAddr = s.redisAddr.replace(/^redis:\/\//, '')
  s.timeoutMs = (Number(timeout) > 0 ? Number(timeout) : 180) * 1000
  // This peer is built with tcp/noise/yamux only (what libp2p.h speaks).
  if (s.transport !== 'tcp') die(`unsupported transport '${s.transport}' (peer-js transport-interop speaks: tcp)`)
  if (s.security !== 'noise') die(`unsupported security '${s.security}' (peer-js transport-interop speaks: noise)`)
  if (s.muxer !== 'yamux') die(`unsupported muxer '${s.muxer}' (peer-js transport-interop speaks: yamux)`)
  return s
}

// ---------------------------------------------------------------- RESP

// The little of a Redis client the test needs (RESP2): commands as arrays of
// bulk strings; replies become string, number, null, array, or an Error for
// "-ERR". Bounded: bulk <= 1 MiB, arrays <= 64 elements, nesting <= 4.

/** Parse one reply from buf at i: [value, next index], or null if incomplete. */
function parseReply (buf, i = 0, depth = 0) {
  if (depth > 4) throw new Error('redis reply nested too deeply')
  const eol = buf.indexOf('\r\n', i)
  if (eol < 0) {
    if (buf.length - i > 1024) throw new Error('redis reply line too long')
    return null
  }
  const type = String.fromCharCode(buf[i])
  const body = buf.toString('latin1', i + 1, eol)
  const next = eol + 2
  switch (type) {
    case '+': return [body, next]
    case '-': return [new Error(body), next]
    case ':': return [Number(body), next]
    case '$':
    case '*': {
      const n = Number(body)
      if (!Number.isInteger(n) || n < -1 || n > (type === '*' ? 64 : 1 << 20)) throw new Error(`bad redis length ${body}`)
      if (n === -1) return [null, next] // nil bulk / nil array (BLPOP timed out)
      if (type === '$') return buf.length < next + n + 2 ? null : [buf.toString('utf8', next, next + n), next + n + 2]
      const arr = []
      let j = next
      for (let k = 0; k < n; k++) {
        const r = parseReply(buf, j, depth + 1)
        if (r == null) return null
        arr.push(r[0]); j = r[1]
      }
      return [arr, j]
    }
    default: throw new Error(`unknown redis reply type ${JSON.stringify(type)}`)
  }
}

/** Open a connection; resolves to cmd(args, waitMs) => Promise<reply>, with cmd.close(). */
function respConnect (addr, waitMs) {
  const colon = addr.lastIndexOf(':')
  if (colon < 0) die(`bad redis address '${addr}' (want host:port)`)
  const host = addr.slice(0, colon).replace(/^\[(.*)\]$/, '$1')
  const port = Number(addr.slice(colon + 1))
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port })
    sock.setTimeout(waitMs, () => sock.destroy(new Error('connect timeout')))
    sock.once('error', reject)
    sock.once('connect', () => {
      sock.setTimeout(0)
      sock.removeListener('error', reject)
      let buf = Buffer.alloc(0)
      let pending = null // { resolve, reject, timer }: one command at a time
      const finish = (err, val) => {
        const p = pending; pending = null
        if (!p) return
        clearTimeout(p.timer)
        if (err) p.reject(err); else p.resolve(val)
      }
      sock.on('data', (chunk) => {
        buf = Buffer.concat([buf, chunk])
        try {
          const r = parseReply(buf)
          if (r == null) return
          buf = buf.subarray(r[1])
          finish(r[0] instanceof Error ? r[0] : null, r[0])
        } catch (err) { finish(err); sock.destroy() }
      })
      sock.on('error', (err) => finish(err))
      sock.on('close', () => finish(new Error('redis connection closed')))
      const cmd = (args, wait) => new Promise((resolve, reject) => {
        if (pending) return reject(new Error('redis: command already pending'))
        const timer = setTimeout(() => { finish(new Error(`redis ${args[0]}: no reply within ${wait} ms`)); sock.destroy() }, wait)
        pending = { resolve, reject, timer }
        sock.write(`*${args.length}\r\n` + args.map(a => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join(''))
      })
      cmd.close = () => sock.destroy()
      resolve(cmd)
    })
  })
}

/** Connect and wait for PONG, retrying until the deadline (Redis may start after us). */
async function redis (s, deadline) {
  for (;;) {
    let err
    try {
      const cmd = await respConnect(s.redisAddr, 5000)
      try {
        await cmd(['PING'], 5000)
        return cmd
      } catch (e) { cmd.close(); throw e }
    } catch (e) { err = e }
    if (Date.now() >= deadline) die(`cannot reach redis at ${s.redisAddr}: ${err.message}`)
    log(`redis ${s.redisAddr}: ${err.message} (retrying)`)
    await new Promise(resolve => setTimeout(resolve, 200))
  }
}

// ---------------------------------------------------------------- roles

async function newNode (s, listen) {
  const family = s.ip.includes(':') ? 'ip6' : 'ip4'
  try {
    return await createLibp2p({
      addresses: { listen: listen ? [`/${family}/${s.ip}/tcp/0`] : [] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: { identify: identify(), ping: ping() }
    })
  } catch (err) { die(`node: ${err.message}`) }
}

const isLoopback = (a) => /^\/ip4\/127\.|^\/ip6\/::1\//.test(a)

async function listen (s, deadline) {
  const node = await newNode(s, true)
  node.addEventListener('connection:open', (evt) => {
    log(`connection from ${evt.detail.remotePeer} (${evt.detail.remoteAddr})`)
  })
  const addrs = node.getMultiaddrs().map(a => a.toString())
  if (addrs.length === 0) die('the node reports no listen address')
  let addr = addrs.find(a => !isLoopback(a)) ?? addrs[0]
  if (!addr.includes('/p2p/')) addr += `/p2p/${node.peerId}`
  log(`listening on ${addrs.join(' ')}, advertising ${addr}`)
  const cmd = await redis(s, deadline)
  try {
    // A leftover value of another type under the key would make RPUSH fail (WRONGTYPE).
    if (s.modern) await cmd(['DEL', s.key], 5000)
    await cmd(['RPUSH', s.key, addr], 5000)
  } catch (err) { die(`publishing the address under '${s.key}': ${err.message}`) }
  cmd.close()
  // Serve (identify, ping) until the runner kills us.
  setTimeout(() => die(`timeout (${s.timeoutMs / 1000} s) reached without being stopped`), Math.max(0, deadline - Date.now()))
  return new Promise(() => {})
}

async function dial (s, deadline) {
  const cmd = await redis(s, deadline)
  const secs = String(Math.max(1, Math.ceil((deadline - Date.now()) / 1000)))
  let reply
  try {
    reply = await cmd(['BLPOP', s.key, secs], Number(secs) * 1000 + 5000)
  } catch (err) { die(`BLPOP ${s.key}: ${err.message}`) }
  cmd.close()
  if (!Array.isArray(reply) || reply.length !== 2 || typeof reply[1] !== 'string') {
    die(`no listener address under '${s.key}' within ${s.timeoutMs / 1000} s`)
  }
  let target
  try { target = multiaddr(reply[1]) } catch (err) { die(`bad listener multiaddr '${reply[1]}': ${err.message}`) }
  const targetId = target.getPeerId()
  if (targetId == null) die(`listener multiaddr '${reply[1]}' needs /p2p/<id>`)

  const node = await newNode(s, false)
  log(`dialing ${target} from ${node.peerId}`)
  const signal = AbortSignal.timeout(Math.max(1, deadline - Date.now()))
  const t0 = performance.now()
  let conn, rtt
  try {
    conn = await node.dial(target, { signal })
  } catch (err) { die(`connecting to ${target}: ${err.message}`) }
  if (conn.remotePeer.toString() !== targetId) die(`peer id mismatch: dialed ${targetId}, remote key is ${conn.remotePeer}`)
  try {
    rtt = await node.services.ping.ping(conn.remotePeer, { signal })
  } catch (err) { die(`ping ${targetId}: ${err.message}`) }
  const total = performance.now() - t0
  const ms = (x) => Number(x.toFixed(3))
  log(`connected and pinged: ${ms(total)} ms, ping ${ms(rtt)} ms`)
  if (s.modern) {
    process.stdout.write(`# Measurements from dialer\nlatency:\n  handshake_plus_one_rtt: ${ms(total)}\n  ping_rtt: ${ms(rtt)}\n  unit: ms\n`)
  } else {
    process.stdout.write(JSON.stringify({ handshakePlusOneRTTMillis: ms(total), pingRTTMilllis: ms(rtt) }) + '\n')
  }
  // Best-effort graceful shutdown, bounded.
  await Promise.race([node.stop().catch(() => {}), new Promise(resolve => setTimeout(resolve, 2000))])
  process.exit(0)
}

export async function main () {
  const s = readSettings()
  log(`${s.dialer ? 'dialer' : 'listener'}, ${s.modern ? 'modern' : 'legacy'} convention, ` +
      `${s.transport}/${s.security}/${s.muxer}, redis ${s.redisAddr}, key ${s.key}, timeout ${s.timeoutMs / 1000} s`)
  const deadline = Date.now() + s.timeoutMs
  // Never hang past the timeout (plus a little for the dialer's BLPOP slack).
  setTimeout(() => die(`timeout (${s.timeoutMs / 1000} s)`), s.timeoutMs + 6000).unref()
  try {
    if (s.dialer) await dial(s, deadline)
    else await listen(s, deadline)
  } catch (err) { die(err) }
}
