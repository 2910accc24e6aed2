// peer-js: js-libp2p reference peer for the libp2p.h interop tests.
//
// The command-line contract is shared with tests/interop/go and
// tests/interop/rust; see tests/interop/README.md.
//
// Run with Node 20: js-libp2p 2.x reaches Promise.withResolvers (Node >= 22)
// through mortice -> it-queue, so we polyfill it before loading libp2p. The
// libp2p modules are therefore imported dynamically, after the polyfill.

if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers () {
    let resolve, reject
    const promise = new this((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}

if (process.argv[2] === 'nat') await (await import('./nat.mjs')).natMain(process.argv.slice(3)) // NAT roles

const { createLibp2p } = await import('libp2p')
const { tcp } = await import('@libp2p/tcp')
const { noise } = await import('@chainsafe/libp2p-noise')
const { yamux } = await import('@chainsafe/libp2p-yamux')
const { identify } = await import('@libp2p/identify')
const { ping } = await import('@libp2p/ping')
const { generateKeyPair, generateKeyPairFromSeed } = await import('@libp2p/crypto/keys')
const { multiaddr } = await import('@multiformats/multiaddr')

// Environment-driven test-plans ping test (never returns): transport-interop.mjs.
if (process.argv[2] === 'transport-interop') await (await import('./transport-interop.mjs')).main()

const ECHO = '/echo/1.0.0'
const RESET = '/test/reset/1.0.0'
const SOURCE = '/test/source/1.0.0'
const PERF = '/perf/1.0.0'
const MANY = 1 << 16 // per-protocol stream limits ("unlimited" for tests)

// ---------------------------------------------------------------- output

function emit (event, fields = {}) {
  // stdout writes to pipes and files are synchronous in Node on Linux.
  process.stdout.write(JSON.stringify({ event, ...fields }) + '\n')
}

function logf (...a) {
  process.stderr.write('peer-js: ' + a.join(' ') + '\n')
}

function fail (message) {
  message = String(message?.message ?? message)
  emit('error', { message })
  logf('error:', message)
  process.exit(1)
}

const now = () => performance.now()
const round3 = (x) => Math.round(x * 1000) / 1000

// ---------------------------------------------------------------- args

function usage () {
  process.stderr.write(`usage: peer-js listen [flags]
       peer-js dial <multiaddr/p2p/ID> <action> [args] [flags]
       peer-js pubsub [key=value ...] [flags]   (commands on stdin, see README)
       peer-js transport-interop   (test-plans ping test, configured by environment)
       peer-js dht <server|client> <protocol-prefix> [flags]   (commands on stdin)
actions: identify | ping <n> | echo <bytes> [streams] | reset-mid | close-mid |
         perf <upload> <download> | hold <seconds>
flags: --seed <64 hex> --listen <multiaddr> --timeout <seconds> --stdin-exit
`)
  process.exit(2)
}

function parseArgs (argv) {
  const o = { seed: null, listen: '/ip4/127.0.0.1/tcp/0', timeout: 60, stdinExit: false, pos: [] }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (!a.startsWith('--')) { o.pos.push(a); continue }
    let [name, val] = a.slice(2).split(/=(.*)/s)
    const value = () => {
      if (val !== undefined) return val
      if (i + 1 >= argv.length) { logf(`missing value for --${name}`); usage() }
      return argv[++i]
    }
    switch (name) {
      case 'seed': o.seed = value(); break
      case 'listen': o.listen = value(); break
      case 'timeout': {
        const t = Number(value())
        if (!(t > 0)) { logf('bad --timeout'); usage() }
        o.timeout = t
        break
      }
      case 'stdin-exit': o.stdinExit = true; break
      default: logf(`unknown flag --${name}`); usage()
    }
  }
  return o
}

function numArg (args, i, def, what) {
  if (i >= args.length) {
    if (def == null) fail(`missing argument: ${what}`)
    return def
  }
  const v = Number(args[i])
  if (!Number.isSafeInteger(v) || v < 0) fail(`bad ${what}: ${JSON.stringify(args[i])}`)
  return v
}

// ---------------------------------------------------------------- stream helpers

const toBytes = (chunk) => chunk instanceof Uint8Array ? chunk : chunk.subarray()

/** Pull-style reader over stream.source. */
class Reader {
  constructor (stream) {
    this.it = stream.source[Symbol.asyncIterator]()
    this.buf = new Uint8Array(0)
    this.eof = false
  }

  async fill () {
    const { value, done } = await this.it.next()
    if (done) { this.eof = true; return false }
    const b = toBytes(value)
    if (this.buf.length === 0) this.buf = b
    else {
      const n = new Uint8Array(this.buf.length + b.length)
      n.set(this.buf); n.set(b, this.buf.length)
      this.buf = n
    }
    return true
  }

  /** Up to n bytes; fewer only at EOF. */
  async read (n) {
    while (this.buf.length < n && !this.eof) await this.fill()
    const out = this.buf.subarray(0, n)
    this.buf = this.buf.subarray(out.length)
    return out
  }

  /** Count and discard everything until EOF. */
  async drain () {
    let total = this.buf.length
    this.buf = new Uint8Array(0)
    while (true) {
      const { value, done } = await this.it.next()
      if (done) { this.eof = true; return total }
      total += value.byteLength
    }
  }
}

function * patternChunks (n) {
  const chunk = new Uint8Array(251 * 256)
  for (let i = 0; i < chunk.length; i++) chunk[i] = i % 251
  while (n > 0) {
    const m = Math.min(n, chunk.length)
    yield chunk.subarray(0, m)
    n -= m
  }
}

function * zeroChunks (n) {
  const chunk = new Uint8Array(64 * 1024)
  while (n > 0) {
    const m = Math.min(n, chunk.length)
    yield chunk.subarray(0, m)
    n -= m
  }
}

function u64be (n) {
  const b = new Uint8Array(8)
  new DataView(b.buffer).setBigUint64(0, BigInt(n))
  return b
}

// ---------------------------------------------------------------- protocol servers

async function serveEcho ({ stream }) {
  try {
    // sink() writes every chunk as it arrives and closes our write side at EOF.
    await stream.sink(stream.source)
    await stream.close()
  } catch (err) {
    stream.abort(err)
  }
}

async function serveReset ({ stream }) {
  try {
    await new Reader(stream).read(1024)
  } catch {}
  stream.abort(new Error('test reset'))
}

async function serveSource ({ stream }) {
  try {
    const r = new Reader(stream)
    const hdr = await r.read(8)
    if (hdr.length !== 8) throw new Error('short header')
    const n = Number(new DataView(hdr.buffer, hdr.byteOffset, 8).getBigUint64(0))
    await stream.sink(patternChunks(n)) // closes the write side when done
    await Promise.race([r.drain(), new Promise(resolve => setTimeout(resolve, 30000).unref())])
    await stream.close()
  } catch (err) {
    stream.abort(err)
  }
}

async function servePerf ({ stream }) {
  try {
    const r = new Reader(stream)
    const hdr = await r.read(8)
    if (hdr.length !== 8) throw new Error('short header')
    const n = Number(new DataView(hdr.buffer, hdr.byteOffset, 8).getBigUint64(0))
    await r.drain()
    await stream.sink(zeroChunks(n))
    await stream.close()
  } catch (err) {
    stream.abort(err)
  }
}

// ---------------------------------------------------------------- dial actions

async function echoOnce (conn, size, idx) {
  let stream
  try {
    stream = await conn.newStream(ECHO, { maxOutboundStreams: MANY })
  } catch (err) {
    throw new Error(`stream ${idx}: open: ${err.message}`)
  }
  const data = new Uint8Array(size)
  for (let i = 0; i < size; i++) data[i] = (i * 7 + idx) % 256
  const r = new Reader(stream)
  try {
    const [, got] = await Promise.all([
      stream.sink([data]),
      r.read(size + 1).then(async (b) => { if (!r.eof) await r.drain(); return b })
    ])
    if (got.length !== size) throw new Error(`got ${got.length} bytes, want ${size}`)
    for (let i = 0; i < size; i++) {
      if (got[i] !== data[i]) throw new Error(`byte ${i} differs`)
    }
    await stream.close()
  } catch (err) {
    stream.abort(err)
    throw new Error(`stream ${idx}: ${err.message}`)
  }
}

function identifyJson (r) {
  return {
    peerId: r.peerId.toString(),
    agentVersion: r.agentVersion ?? '',
    protocolVersion: r.protocolVersion ?? '',
    protocols: r.protocols ?? [],
    listenAddrs: (r.listenAddrs ?? []).map(a => a.toString()),
    observedAddr: r.observedAddr?.toString() ?? ''
  }
}

async function runDial (node, o) {
  if (o.pos.length < 3) usage()
  let target
  try { target = multiaddr(o.pos[1]) } catch (err) { fail(`bad multiaddr: ${err.message}`) }
  const targetId = target.getPeerId()
  if (targetId == null) fail('multiaddr needs /p2p/<id>')
  const action = o.pos[2]
  const args = o.pos.slice(3)

  const identified = Promise.withResolvers()
  node.addEventListener('peer:identify', (evt) => {
    if (evt.detail.peerId.toString() === targetId) identified.resolve(evt.detail)
    else emit('identify', identifyJson(evt.detail))
  })

  const t0 = now()
  let conn
  try {
    conn = await node.dial(target)
  } catch (err) {
    fail(`dial: ${err.message}`)
  }
  // js-libp2p 2.10 does not check the /p2p/ id of a dialed TCP address
  // against the key proven in the Noise handshake (go and rust do), so we
  // check it here to keep the "wrong id fails" contract.
  if (conn.remotePeer.toString() !== targetId) {
    const got = conn.remotePeer.toString()
    await conn.close().catch(() => {})
    fail(`dial: peer id mismatch: expected ${targetId}, remote key is ${got}`)
  }
  emit('connected', { peerId: targetId, ms: round3(now() - t0) })

  switch (action) {
    case 'identify': {
      const r = await identified.promise
      emit('identify', identifyJson(r))
      emit('self', { peerId: node.peerId.toString() })
      break
    }
    case 'ping': {
      const n = numArg(args, 0, 1, 'ping count')
      for (let i = 0; i < n; i++) {
        const t = now()
        try {
          await node.services.ping.ping(conn.remotePeer)
        } catch (err) {
          fail(`ping: ${err.message}`)
        }
        emit('ping', { rttMs: round3(now() - t) })
      }
      break
    }
    case 'echo': {
      const size = numArg(args, 0, null, 'echo bytes')
      const streams = Math.max(1, numArg(args, 1, 1, 'echo streams'))
      const t = now()
      const results = await Promise.allSettled(
        Array.from({ length: streams }, (_, i) => echoOnce(conn, size, i)))
      const bad = results.find(r => r.status === 'rejected')
      if (bad) fail(`echo: ${bad.reason.message}`)
      emit('echo', { ok: true, streams, bytes: size, ms: round3(now() - t) })
      break
    }
    case 'reset-mid':
    case 'close-mid': {
      let stream
      try {
        stream = await conn.newStream(ECHO, { maxOutboundStreams: MANY })
      } catch (err) { fail(`${action}: open: ${err.message}`) }
      const data = new Uint8Array(100000)
      for (let i = 0; i < data.length; i++) data[i] = (i * 7) % 256
      if (action === 'reset-mid') {
        const sinking = stream.sink([data]).catch(() => {})
        const one = await new Reader(stream).read(1).catch(err => fail(`reset-mid: read: ${err.message}`))
        if (one.length !== 1) fail('reset-mid: stream ended before any echo')
        stream.abort(new Error('reset-mid'))
        await sinking
      } else {
        try {
          await stream.sink([data])
          await stream.close()
        } catch (err) { fail(`close-mid: ${err.message}`) }
      }
      try {
        await echoOnce(conn, 10, 0)
      } catch (err) { fail(`${action}: follow-up echo: ${err.message}`) }
      emit(action, { ok: true })
      break
    }
    case 'perf': {
      const up = numArg(args, 0, null, 'upload bytes')
      const down = numArg(args, 1, null, 'download bytes')
      const t = now()
      let stream
      try {
        stream = await conn.newStream(PERF, { maxOutboundStreams: MANY })
        const r = new Reader(stream)
        const [, got] = await Promise.all([
          stream.sink((function * () { yield u64be(down); yield * zeroChunks(up) })()),
          r.drain()
        ])
        if (got !== down) throw new Error(`downloaded ${got} bytes, want ${down}`)
        await stream.close()
        emit('perf', { uploadBytes: up, downloadBytes: got, ms: round3(now() - t) })
      } catch (err) {
        stream?.abort(err)
        fail(`perf: ${err.message}`)
      }
      break
    }
    case 'hold': {
      const secs = Number(args[0])
      if (!(secs >= 0)) fail('hold: bad seconds')
      await new Promise(resolve => setTimeout(resolve, secs * 1000))
      if (node.getConnections(conn.remotePeer).length === 0) fail(`hold: connection to ${targetId} was lost`)
      emit('hold', { ok: true, seconds: secs })
      break
    }
    default: { // bench.mjs: benchmark actions
      const { runBench } = await import('./bench.mjs')
      const helpers = { node, conn, target, emit, fail, numArg, now, round3, Reader, zeroChunks, u64be }
      if (!await runBench(action, args, helpers)) fail(`unknown action ${JSON.stringify(action)}`)
    }
  }
}

// ---------------------------------------------------------------- main

const o = parseArgs(process.argv.slice(2))
const mode = o.pos[0]
if (mode !== 'listen' && mode !== 'dial' && mode !== 'pubsub' && mode !== 'dht') usage()

setTimeout(() => { logf(`timeout after ${o.timeout}s`); process.exit(3) }, o.timeout * 1000)
if (o.stdinExit) {
  process.stdin.on('end', () => { logf('stdin closed, exiting'); process.exit(0) })
  process.stdin.on('error', () => process.exit(0))
  process.stdin.resume()
}

let privateKey
if (o.seed == null) {
  privateKey = await generateKeyPair('Ed25519')
} else {
  if (!/^[0-9a-fA-F]{64}$/.test(o.seed)) fail('--seed must be 64 hex characters')
  privateKey = await generateKeyPairFromSeed('Ed25519', Uint8Array.from(Buffer.from(o.seed, 'hex')))
}

if (mode === 'pubsub') await (await import('./pubsub.mjs')).runPubsub(o, privateKey, { emit, logf, fail })
if (mode === 'dht') { // dht.mjs: a kad-dht node driven by stdin commands
  const { runDHT } = await import('./dht.mjs')
  await runDHT(o, privateKey, emit, logf, fail)
}

let node
try {
  node = await createLibp2p({
    privateKey,
    addresses: { listen: [o.listen] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ maxInboundStreams: MANY, maxOutboundStreams: MANY })],
    services: { identify: identify(), ping: ping() },
    connectionManager: {
      maxConnections: 100000,
      maxIncomingPendingConnections: 100000,
      inboundConnectionThreshold: 1000000,
      allow: ['/ip4/127.0.0.0/ipcidr/8', '/ip6/::1/ipcidr/128']
    }
  })
} catch (err) {
  fail(`node: ${err.message}`)
}

const handlerOpts = { maxInboundStreams: MANY, maxOutboundStreams: MANY, runOnLimitedConnection: true }
await node.handle(ECHO, serveEcho, handlerOpts)
await node.handle(RESET, serveReset, handlerOpts)
await node.handle(SOURCE, serveSource, handlerOpts)
await node.handle(PERF, servePerf, handlerOpts)

node.addEventListener('connection:open', (evt) => {
  if (mode === 'listen') emit('connected', { peerId: evt.detail.remotePeer.toString() })
})
node.addEventListener('connection:close', (evt) => {
  emit('disconnected', { peerId: evt.detail.remotePeer.toString() })
})

if (mode === 'listen') {
  node.addEventListener('peer:identify', (evt) => emit('identify', identifyJson(evt.detail)))
  emit('ready', {
    peerId: node.peerId.toString(),
    listenAddrs: node.getMultiaddrs().map(a => a.toString())
  })
} else {
  await runDial(node, o)
  // Best-effort graceful shutdown, bounded so we never hang here.
  await Promise.race([node.stop().catch(() => {}), new Promise(resolve => setTimeout(resolve, 2000))])
  process.exit(0)
}
