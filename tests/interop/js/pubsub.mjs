// pubsub mode of peer-js: a js-libp2p node with @chainsafe/libp2p-gossipsub
// driven by commands on stdin; see "pubsub mode" in tests/interop/README.md.
// Loaded by peer.mjs (after its Promise.withResolvers polyfill).

import { createInterface } from 'node:readline'

const { createLibp2p } = await import('libp2p')
const { tcp } = await import('@libp2p/tcp')
const { noise } = await import('@chainsafe/libp2p-noise')
const { yamux } = await import('@chainsafe/libp2p-yamux')
const { identify } = await import('@libp2p/identify')
const { ping } = await import('@libp2p/ping')
const { gossipsub } = await import('@chainsafe/libp2p-gossipsub')
const { multiaddr } = await import('@multiformats/multiaddr')
const { createHash } = await import('node:crypto')

function parseKV (args, fail) {
  const kv = {}
  for (const a of args) {
    const i = a.indexOf('=')
    if (i < 0) fail(`pubsub: ${JSON.stringify(a)} is not key=value`)
    kv[a.slice(0, i)] = a.slice(i + 1)
  }
  return kv
}

function seqnoBytes (seqno) {
  const b = new Uint8Array(8)
  new DataView(b.buffer).setBigUint64(0, BigInt(seqno))
  return b
}

// from || seqno: go-libp2p-pubsub's default message ID
function goMsgId (msg) {
  if (msg.type !== 'signed') return createHash('sha256').update(msg.data).digest()
  const from = msg.from.toMultihash().bytes
  const id = new Uint8Array(from.length + 8)
  id.set(from, 0)
  id.set(seqnoBytes(msg.sequenceNumber), from.length)
  return id
}

const sha256MsgId = (msg) => new Uint8Array(createHash('sha256').update(msg.data).digest())
const hexOfB64 = (s) => Buffer.from(s, 'base64').toString('hex')

export async function runPubsub (o, privateKey, { emit, logf, fail }) {
  const kv = parseKV(o.pos.slice(1), fail)
  const num = (k) => {
    if (kv[k] == null) return undefined
    const v = Number(kv[k])
    if (!Number.isInteger(v)) fail(`pubsub: bad ${k}=${kv[k]}`)
    return v
  }
  const opts = {
    globalSignaturePolicy: kv.sign === 'none' ? 'StrictNoSign' : 'StrictSign',
    fallbackToFloodsub: true
  }
  if (kv.msgid == null || kv.msgid === 'go') opts.msgIdFn = goMsgId
  else if (kv.msgid === 'sha256') opts.msgIdFn = sha256MsgId
  else if (kv.msgid !== 'native') fail('pubsub: msgid must be go, native or sha256')
  for (const [k, name] of [['d', 'D'], ['dlo', 'Dlo'], ['dhi', 'Dhi'], ['dlazy', 'Dlazy'], ['dout', 'Dout'],
    ['dscore', 'Dscore'], ['idontwant', 'idontwantMinDataSize']]) {
    if (num(k) !== undefined) opts[name] = num(k)
  }
  if (kv.flood != null) opts.floodPublish = kv.flood === 'true'
  if (kv.px === 'true') opts.doPX = true
  // js scores peers by default and follows PX only from peers scoring >= 10
  if (kv.acceptpx != null) opts.scoreThresholds = { acceptPXThreshold: Number(kv.acceptpx) }

  let node
  try {
    node = await createLibp2p({
      privateKey,
      addresses: { listen: [o.listen] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: { identify: identify(), ping: ping(), pubsub: gossipsub(opts) },
      connectionManager: {
        maxConnections: 100000,
        inboundConnectionThreshold: 1000000,
        allow: ['/ip4/127.0.0.0/ipcidr/8', '/ip6/::1/ipcidr/128']
      }
    })
  } catch (err) {
    fail(`node: ${err.message}`)
  }
  const ps = node.services.pubsub
  const self = node.peerId.toString()
  ps.addEventListener('gossipsub:message', (evt) => {
    const { propagationSource, msgId, msg } = evt.detail
    const text = Buffer.from(msg.data).toString('utf8')
    emit('message', {
      topic: msg.topic,
      from: msg.type === 'signed' ? msg.from.toString() : '',
      data: text.length > 256 ? text.slice(0, 256) : text,
      size: msg.data.length,
      id: hexOfB64(msgId),
      receivedFrom: propagationSource.toString(),
      local: propagationSource.toString() === self
    })
  })
  emit('ready', { peerId: self, listenAddrs: node.getMultiaddrs().map(a => a.toString()) })

  const rl = createInterface({ input: process.stdin })
  for await (const raw of rl) {
    const line = raw.trim()
    const sp1 = line.indexOf(' ')
    const cmd = sp1 < 0 ? line : line.slice(0, sp1)
    const rest = sp1 < 0 ? '' : line.slice(sp1 + 1)
    const sp2 = rest.indexOf(' ')
    const arg1 = sp2 < 0 ? rest : rest.slice(0, sp2)
    const arg2 = sp2 < 0 ? '' : rest.slice(sp2 + 1)
    try {
      switch (cmd) {
        case 'connect': {
          try {
            const conn = await node.dial(multiaddr(arg1))
            emit('connect', { ok: true, peerId: conn.remotePeer.toString() })
          } catch (err) {
            emit('connect', { ok: false, message: err.message })
          }
          break
        }
        case 'sub': ps.subscribe(arg1); emit('subscribed', { topic: arg1 }); break
        case 'unsub': ps.unsubscribe(arg1); emit('unsubscribed', { topic: arg1 }); break
        case 'pub':
        case 'pubsize': {
          let data = Buffer.from(arg2, 'utf8')
          if (cmd === 'pubsize') {
            const n = Number(arg2)
            const head = `${process.hrtime.bigint()}-`
            data = Buffer.from(head.padEnd(Math.max(n, head.length), 'x'), 'utf8')
          }
          try {
            await ps.publish(arg1, new Uint8Array(data))
            emit('published', { topic: arg1, size: data.length })
          } catch (err) {
            emit('publish-error', { topic: arg1, message: err.message })
          }
          break
        }
        case 'peers':
          emit('peers', {
            topic: arg1,
            peers: ps.getSubscribers(arg1).map(p => p.toString()),
            mesh: ps.getMeshPeers(arg1)
          })
          break
        case 'exit': process.exit(0); break
        case '': break
        default: emit('error', { message: `unknown command ${cmd}` })
      }
    } catch (err) {
      logf('command', cmd, 'failed:', err.message)
      emit('error', { message: err.message })
    }
  }
  process.exit(0)
}
