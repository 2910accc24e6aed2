// dht.mjs: the "dht" mode of peer-js, a @libp2p/kad-dht node driven by
// commands on stdin (see tests/interop/README.md, "DHT mode").
//
//   peer-js dht <server|client> <protocol-prefix> [flags]
//
// It never contacts the public network: no bootstrap module, only the peers
// named by "bootstrap" commands. Imported by peer.mjs after its polyfill.

import { createInterface } from 'node:readline'

const { createLibp2p } = await import('libp2p')
const { tcp } = await import('@libp2p/tcp')
const { noise } = await import('@chainsafe/libp2p-noise')
const { yamux } = await import('@chainsafe/libp2p-yamux')
const { identify } = await import('@libp2p/identify')
const { ping } = await import('@libp2p/ping')
const { kadDHT, passthroughMapper } = await import('@libp2p/kad-dht')
const { multiaddr } = await import('@multiformats/multiaddr')
const { peerIdFromString } = await import('@libp2p/peer-id')
const { CID } = await import('multiformats/cid')

const enc = new TextEncoder()
const dec = new TextDecoder()
const MANY = 1 << 16

function keyBytes (s) {
  return s.startsWith('hex:') ? Uint8Array.from(Buffer.from(s.slice(4), 'hex')) : enc.encode(s)
}

async function command (node, f, emit, logf) {
  const [cmd, ...args] = f
  const signal = AbortSignal.timeout(30000)
  const no = (err) => emit(cmd, { ok: false, error: String(err?.message ?? err) })
  try {
    switch (cmd) {
      case 'bootstrap': {
        for (const a of args) await node.dial(multiaddr(a), { signal })
        // js pings a new contact before it enters the table: wait for it (bounded)
        for (let i = 0; i < 50 && node.services.dht.routingTable.size < args.length; i++) {
          await new Promise(resolve => setTimeout(resolve, 100))
        }
        await node.services.dht.refreshRoutingTable({ signal }).catch(err => logf('refresh:', err.message))
        emit(cmd, { ok: true, rt: node.services.dht.routingTable.size })
        break
      }
      case 'put':
        await node.contentRouting.put(keyBytes(args[0]), enc.encode(args[1]), { signal })
        emit(cmd, { ok: true })
        break
      case 'get': {
        const v = await node.contentRouting.get(keyBytes(args[0]), { signal })
        emit(cmd, { ok: true, value: dec.decode(v), hex: Buffer.from(v).toString('hex') })
        break
      }
      case 'provide':
        await node.contentRouting.provide(CID.parse(args[0]), { signal })
        emit(cmd, { ok: true })
        break
      case 'findprovs': {
        const want = Number(args[1] ?? 1)
        const ids = []
        for await (const p of node.contentRouting.findProviders(CID.parse(args[0]), { signal })) {
          if (!ids.includes(p.id.toString())) ids.push(p.id.toString())
          if (ids.length >= want) break
        }
        emit(cmd, { ok: ids.length > 0, providers: ids })
        break
      }
      case 'findpeer': {
        const p = await node.peerRouting.findPeer(peerIdFromString(args[0]), { signal })
        emit(cmd, { ok: true, addrs: p.multiaddrs.map(a => a.toString()) })
        break
      }
      case 'closest': {
        const ids = []
        for await (const p of node.peerRouting.getClosestPeers(keyBytes(args[0]), { signal })) ids.push(p.id.toString())
        emit(cmd, { ok: true, peers: ids })
        break
      }
      case 'rt': {
        const ids = []
        for (const c of node.services.dht.routingTable.kb.toIterable()) ids.push(c.peerId.toString())
        emit(cmd, { ok: true, peers: ids })
        break
      }
      default:
        no('bad command')
    }
  } catch (err) {
    no(err)
  }
}

export async function runDHT (o, privateKey, emit, logf, fail) {
  if (o.pos.length < 3) fail('usage: peer-js dht <server|client> <protocol-prefix>')
  const permissive = { t: async () => {} }
  const node = await createLibp2p({
    privateKey,
    addresses: { listen: [o.listen] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ maxInboundStreams: MANY, maxOutboundStreams: MANY })],
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({
        protocol: `${o.pos[2]}/kad/1.0.0`,
        clientMode: o.pos[1] === 'client',
        peerInfoMapper: passthroughMapper, // keep 127.0.0.1 addresses
        validators: o.pos[2] === '/ipfs' ? {} : permissive,
        selectors: o.pos[2] === '/ipfs' ? {} : { t: () => 0 },
        allowQueryWithZeroPeers: true
      })
    },
    connectionManager: {
      maxConnections: 100000,
      maxIncomingPendingConnections: 100000,
      inboundConnectionThreshold: 1000000,
      allow: ['/ip4/127.0.0.0/ipcidr/8', '/ip6/::1/ipcidr/128']
    }
  }).catch(err => fail(`node: ${err.message}`))
  emit('ready', {
    peerId: node.peerId.toString(),
    listenAddrs: node.getMultiaddrs().map(a => a.toString())
  })
  // one command at a time, in order
  const rl = createInterface({ input: process.stdin })
  for await (const line of rl) {
    const f = line.trim().split(/\s+/).filter(Boolean)
    if (f.length) await command(node, f, emit, logf)
  }
  process.exit(0)
}
