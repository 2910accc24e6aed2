// Benchmark dial actions for bench/run (see tests/interop/README.md,
// "Benchmark actions"): perfn, rtt, handshakes. peer.mjs passes its helpers
// in `h` (it is a script, not a module one could import from).

const { createLibp2p } = await import('libp2p')
const { tcp } = await import('@libp2p/tcp')
const { noise } = await import('@chainsafe/libp2p-noise')
const { yamux } = await import('@chainsafe/libp2p-yamux')
const { generateKeyPair } = await import('@libp2p/crypto/keys')

const PERF = '/perf/1.0.0'
const ECHO = '/echo/1.0.0'
const MANY = 1 << 16

async function perfOnce (h, conn, up, down) {
  const stream = await conn.newStream(PERF, { maxOutboundStreams: MANY })
  try {
    const r = new h.Reader(stream)
    const [, got] = await Promise.all([
      stream.sink((function * () { yield h.u64be(down); yield * h.zeroChunks(up) })()),
      r.drain()
    ])
    if (got !== down) throw new Error(`downloaded ${got} bytes, want ${down}`)
    await stream.close()
  } catch (err) {
    stream.abort(err)
    throw err
  }
}

// A dial-only node with the same transports as peer.mjs's.
async function clientNode () {
  return createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    addresses: { listen: [] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ maxInboundStreams: MANY, maxOutboundStreams: MANY })],
    connectionManager: {
      maxConnections: 100000,
      allow: ['/ip4/127.0.0.0/ipcidr/8', '/ip6/::1/ipcidr/128']
    }
  })
}

export async function runBench (action, args, h) {
  const { node, conn, target } = h
  switch (action) {
    case 'perfn': {
      const n = h.numArg(args, 0, null, 'streams')
      const up = h.numArg(args, 1, null, 'upload bytes')
      const down = h.numArg(args, 2, null, 'download bytes')
      const t = h.now()
      try {
        await Promise.all(Array.from({ length: n }, () => perfOnce(h, conn, up, down)))
      } catch (err) { h.fail(`perfn: ${err.message}`) }
      h.emit('perfn', { streams: n, uploadBytes: up * n, downloadBytes: down * n, ms: h.round3(h.now() - t) })
      return true
    }
    case 'rtt': {
      const iters = h.numArg(args, 0, null, 'iterations')
      const out = []
      for (let i = 0; i < iters; i++) {
        await node.hangUp(conn.remotePeer) // a fresh connection every time
        const t = h.now()
        try {
          const c = await node.dial(target)
          const stream = await c.newStream(ECHO, { maxOutboundStreams: MANY })
          const r = new h.Reader(stream)
          const [, b] = await Promise.all([stream.sink([Uint8Array.of(42)]), r.read(1)])
          if (b.length !== 1 || b[0] !== 42) throw new Error('echo differs')
          out.push(h.round3(h.now() - t))
          await stream.close()
        } catch (err) { h.fail(`rtt: ${err.message}`) }
      }
      h.emit('rtt', { ms: out })
      return true
    }
    case 'handshakes': {
      const secs = Number(args[0])
      const par = h.numArg(args, 1, 1, 'parallel')
      if (!(secs > 0)) h.fail('handshakes: bad seconds')
      await node.hangUp(conn.remotePeer)
      const clients = await Promise.all(Array.from({ length: par }, clientNode))
      const end = h.now() + secs * 1000
      const t = h.now()
      let done = 0
      let failed = 0
      await Promise.all(clients.map(async (c) => {
        while (h.now() < end && failed <= 100) {
          try {
            const x = await c.dial(target)
            done++
            await x.close()
          } catch { failed++ }
        }
      }))
      const ms = h.now() - t
      if (failed > 100) h.fail('handshakes: too many failed dials')
      h.emit('handshakes', { count: done, failed, parallel: par, ms: h.round3(ms), perSec: done / (ms / 1000) })
      await Promise.all(clients.map(c => c.stop().catch(() => {})))
      return true
    }
    default:
      return false
  }
}
