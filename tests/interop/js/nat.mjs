// nat.mjs: "peer-js nat ..." - circuit relay v2 roles (and DCUtR, AutoNAT v1 server, mDNS
// discovery where js-libp2p 2.10 supports them) for the libp2p.h NAT tests. Contract:
// tests/interop/README.md, section "NAT traversal". peer.mjs only dispatches here.
//
//   peer-js nat relay [flags]                      relay service (stock limits)
//   peer-js nat listen --relay <relay/p2p/ID>      reserve there, serve /echo/1.0.0 over it
//   peer-js nat dial <relay>/p2p-circuit/p2p/<ID> <ping n | echo bytes | hold s>
//   peer-js nat mdns                               mDNS discovery: print discovered peers
// flags: --seed <64 hex> --listen <multiaddr> --timeout <seconds> --stdin-exit

const { createLibp2p } = await import('libp2p')
const { tcp } = await import('@libp2p/tcp')
const { noise } = await import('@chainsafe/libp2p-noise')
const { yamux } = await import('@chainsafe/libp2p-yamux')
const { identify } = await import('@libp2p/identify')
const { ping } = await import('@libp2p/ping')
const { circuitRelayServer, circuitRelayTransport } = await import('@libp2p/circuit-relay-v2')
const { generateKeyPair, generateKeyPairFromSeed } = await import('@libp2p/crypto/keys')
const { multiaddr } = await import('@multiformats/multiaddr')

const ECHO = '/echo/1.0.0'
const PING = '/ipfs/ping/1.0.0'
const MANY = 1 << 16

function emit (event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + '\n')
}
function logf (...a) { process.stderr.write('peer-js nat: ' + a.join(' ') + '\n') }
function fail (message) {
  message = String(message?.message ?? message)
  emit('error', { message })
  logf('error:', message)
  process.exit(1)
}
const now = () => performance.now()
const round3 = (x) => Math.round(x * 1000) / 1000
const toBytes = (c) => c instanceof Uint8Array ? c : c.subarray()

function usage () {
  process.stderr.write(`usage: peer-js nat relay|listen --relay <addr>|dial <circuit> <action> [args]|mdns [flags]
flags: --seed <64 hex> --listen <multiaddr> --timeout <seconds> --stdin-exit
`)
  process.exit(2)
}

function parse (argv) {
  const o = { seed: null, listen: '/ip4/127.0.0.1/tcp/0', relay: null, timeout: 60, stdinExit: false, pos: [] }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (!a.startsWith('--')) { o.pos.push(a); continue }
    const [name, val] = a.slice(2).split(/=(.*)/s)
    const value = () => val !== undefined ? val : (i + 1 < argv.length ? argv[++i] : usage())
    switch (name) {
      case 'seed': o.seed = value(); break
      case 'listen': o.listen = value(); break
      case 'relay': o.relay = value(); break
      case 'timeout': o.timeout = Number(value()); if (!(o.timeout > 0)) usage(); break
      case 'stdin-exit': o.stdinExit = true; break
      case 'no-holepunch': break // js DCUtR is not enabled in this peer (README)
      default: logf(`unknown flag --${name}`); usage()
    }
  }
  return o
}

async function readAll (stream, want) {
  const chunks = []
  let n = 0
  for await (const c of stream.source) {
    const b = toBytes(c)
    chunks.push(b)
    n += b.length
    if (want != null && n >= want) break
  }
  const out = new Uint8Array(n)
  let off = 0
  for (const c of chunks) { out.set(c, off); off += c.length }
  return out
}

async function serveEcho ({ stream }) {
  try {
    await stream.sink(stream.source)
    await stream.close()
  } catch (err) {
    stream.abort(err)
  }
}

async function newNode (o, extra = {}) {
  const privateKey = o.seed == null
    ? await generateKeyPair('Ed25519')
    : await generateKeyPairFromSeed('Ed25519', Uint8Array.from(Buffer.from(o.seed, 'hex')))
  const node = await createLibp2p({
    privateKey,
    addresses: { listen: extra.listen ?? [o.listen] },
    transports: [tcp(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ maxInboundStreams: MANY, maxOutboundStreams: MANY })],
    services: { identify: identify(), ping: ping(), ...(extra.services ?? {}) },
    connectionManager: {
      maxConnections: 100000,
      maxIncomingPendingConnections: 100000,
      inboundConnectionThreshold: 1000000,
      allow: ['/ip4/127.0.0.0/ipcidr/8', '/ip6/::1/ipcidr/128', '/ip4/198.51.100.0/ipcidr/24',
        '/ip4/192.0.2.0/ipcidr/24', '/ip4/203.0.113.0/ipcidr/24']
    }
  })
  await node.handle(ECHO, serveEcho, { maxInboundStreams: MANY, maxOutboundStreams: MANY, runOnLimitedConnection: true })
  node.addEventListener('connection:open', (evt) => {
    const c = evt.detail
    emit('connected', { peerId: c.remotePeer.toString(), relayed: c.limits != null, addr: c.remoteAddr.toString() })
  })
  node.addEventListener('connection:close', (evt) => {
    emit('disconnected', { peerId: evt.detail.remotePeer.toString(), relayed: evt.detail.limits != null })
  })
  return node
}

function ready (node) {
  emit('ready', { peerId: node.peerId.toString(), listenAddrs: node.getMultiaddrs().map(a => a.toString()) })
}

async function relayMain (o) {
  // js keeps a reservation until its TTL even after the client left, and holds 15 by default:
  // the NAT bed reserves hundreds of times, so raise the cap (limits per circuit stay stock)
  const node = await newNode(o, { services: { relay: circuitRelayServer({ reservations: { maxReservations: 4096 } }) } })
  ready(node)
  await new Promise(() => {})
}

async function listenMain (o) {
  if (o.relay == null) usage()
  const node = await newNode(o, { listen: [o.listen, `${o.relay}/p2p-circuit`] })
  const deadline = Date.now() + o.timeout * 1000
  let circuit
  while (!(circuit = node.getMultiaddrs().find(a => a.toString().includes('/p2p-circuit')))) {
    if (Date.now() > deadline) fail('no reservation')
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  emit('reserved', { relay: multiaddr(o.relay).getPeerId(), addrs: [circuit.toString()] })
  ready(node)
  await new Promise(() => {})
}

async function dialMain (o) {
  if (o.pos.length < 3) usage()
  const node = await newNode(o)
  const target = multiaddr(o.pos[1])
  const [action, ...args] = o.pos.slice(2)
  const t0 = now()
  let conn
  try { conn = await node.dial(target) } catch (err) { fail(`dial: ${err.message}`) }
  emit('dialed', { peerId: conn.remotePeer.toString(), ms: round3(now() - t0) })
  const opts = { runOnLimitedConnection: true, maxOutboundStreams: MANY }
  switch (action) {
    case 'ping': { // one 32-byte round trip per stream (js closes the write side with sink)
      const n = Number(args[0] ?? 1)
      for (let i = 0; i < n; i++) {
        const data = crypto.getRandomValues(new Uint8Array(32))
        const t = now()
        const s = await conn.newStream(PING, opts)
        const [, got] = await Promise.all([s.sink([data]), readAll(s, 32)])
        if (got.length < 32) fail('ping: short answer')
        for (let k = 0; k < 32; k++) if (got[k] !== data[k]) fail('ping: wrong echo')
        emit('ping', { rttMs: round3(now() - t) })
        await s.close().catch(() => {})
      }
      break
    }
    case 'echo': {
      const size = Number(args[0])
      const data = new Uint8Array(size)
      for (let i = 0; i < size; i++) data[i] = (i * 7) % 256
      const t = now()
      const s = await conn.newStream(ECHO, opts)
      const [, got] = await Promise.all([s.sink([data]), readAll(s)])
      if (got.length !== size) fail(`echo: got ${got.length} bytes, want ${size}`)
      for (let i = 0; i < size; i++) if (got[i] !== data[i]) fail(`echo: byte ${i} differs`)
      await s.close().catch(() => {})
      emit('echo', { ok: true, streams: 1, bytes: size, ms: round3(now() - t) })
      break
    }
    case 'hold': {
      await new Promise(resolve => setTimeout(resolve, Number(args[0]) * 1000))
      emit('hold', { ok: node.getConnections(conn.remotePeer).length > 0, seconds: Number(args[0]) })
      break
    }
    default: fail(`unknown action ${action}`)
  }
  await Promise.race([node.stop().catch(() => {}), new Promise(resolve => setTimeout(resolve, 2000))])
  process.exit(0)
}

async function mdnsMain (o) {
  const { mdns } = await import('@libp2p/mdns')
  const node = await newNode(o, { services: { mdns: mdns({ interval: 1000 }) } })
  node.addEventListener('peer:discovery', (evt) => {
    emit('discovered', { peerId: evt.detail.id.toString(), addrs: evt.detail.multiaddrs.map(a => a.toString()) })
  })
  ready(node)
  await new Promise(() => {})
}

export async function natMain (argv) {
  const o = parse(argv)
  setTimeout(() => { logf(`timeout after ${o.timeout}s`); process.exit(3) }, o.timeout * 1000)
  if (o.stdinExit) {
    process.stdin.on('end', () => process.exit(0))
    process.stdin.on('error', () => process.exit(0))
    process.stdin.resume()
  }
  try {
    switch (o.pos[0]) {
      case 'relay': return await relayMain(o)
      case 'listen': return await listenMain(o)
      case 'dial': return await dialMain(o)
      case 'mdns': return await mdnsMain(o)
      default: usage()
    }
  } catch (err) {
    fail(err)
  }
}
