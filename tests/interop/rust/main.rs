//! peer-rust: rust-libp2p reference peer for the libp2p.h interop tests.
//!
//! The command-line contract is shared with tests/interop/go and
//! tests/interop/js; see tests/interop/README.md.
//!
//! Custom protocols (/echo, /test/*, /perf) are served by a small
//! NetworkBehaviour defined below: every inbound stream for one of them is
//! handed to an unbounded channel (so bursts of streams are never dropped) and
//! outbound streams can be opened concurrently from any task.

use std::{
    collections::{HashMap, VecDeque},
    convert::Infallible,
    io::Write as _,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use futures::{
    channel::{mpsc, oneshot},
    future::{self, Either, Ready},
    AsyncReadExt, AsyncWriteExt, StreamExt,
};
use libp2p::{
    core::{transport::PortUse, upgrade::{InboundUpgrade, OutboundUpgrade, UpgradeInfo}, Endpoint},
    identify, identity,
    multiaddr::Protocol,
    noise, ping,
    swarm::{
        dial_opts::DialOpts,
        handler::{ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound, FullyNegotiatedOutbound},
        ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
        NetworkBehaviour, NotifyHandler, SubstreamProtocol, SwarmEvent, THandler, THandlerInEvent,
        THandlerOutEvent, ToSwarm,
    },
    tcp, yamux, Multiaddr, PeerId, Stream, StreamProtocol, SwarmBuilder,
};
use serde_json::{json, Value};

mod bench; // bench.rs: benchmark actions

const ECHO: StreamProtocol = StreamProtocol::new("/echo/1.0.0");
const RESET: StreamProtocol = StreamProtocol::new("/test/reset/1.0.0");
const SOURCE: StreamProtocol = StreamProtocol::new("/test/source/1.0.0");
const PERF: StreamProtocol = StreamProtocol::new("/perf/1.0.0");
const SERVED: [StreamProtocol; 4] = [ECHO, RESET, SOURCE, PERF];

// ------------------------------------------------------------------ output

fn emit(event: &str, fields: Value) {
    let mut obj = serde_json::Map::new();
    obj.insert("event".into(), Value::String(event.into()));
    if let Value::Object(m) = fields {
        obj.extend(m);
    }
    let line = serde_json::to_string(&Value::Object(obj)).unwrap();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

macro_rules! logf {
    ($($t:tt)*) => { eprintln!("peer-rust: {}", format!($($t)*)) };
}

mod pubsub; // "pubsub" mode: pubsub.rs

fn fail(msg: impl std::fmt::Display) -> ! {
    let msg = msg.to_string();
    emit("error", json!({ "message": msg }));
    logf!("error: {msg}");
    std::process::exit(1);
}

fn ms(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

// ------------------------------------------------------------------ args

struct Opts {
    seed: Option<String>,
    listen: String,
    timeout: f64,
    stdin_exit: bool,
    pos: Vec<String>,
}

fn usage() -> ! {
    eprintln!(
        "usage: peer-rust listen [flags]\n       peer-rust dial <multiaddr/p2p/ID> <action> [args] [flags]\n       \
peer-rust pubsub [key=value ...] [flags]   (commands on stdin, see README)\n\
actions: identify | ping <n> | echo <bytes> [streams] | reset-mid | close-mid |\n         \
perf <upload> <download> | hold <seconds>\n\
flags: --seed <64 hex> --listen <multiaddr> --timeout <seconds> --stdin-exit"
    );
    std::process::exit(2);
}

fn parse_args() -> Opts {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut o = Opts {
        seed: None,
        listen: "/ip4/127.0.0.1/tcp/0".into(),
        timeout: 60.0,
        stdin_exit: false,
        pos: vec![],
    };
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if let Some(flag) = a.strip_prefix("--") {
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (flag.to_string(), None),
            };
            let mut value = || -> String {
                if let Some(v) = inline.clone() {
                    return v;
                }
                i += 1;
                args.get(i).cloned().unwrap_or_else(|| {
                    eprintln!("missing value for --{name}");
                    usage()
                })
            };
            match name.as_str() {
                "seed" => o.seed = Some(value()),
                "listen" => o.listen = value(),
                "timeout" => {
                    o.timeout = value().parse().ok().filter(|t: &f64| *t > 0.0).unwrap_or_else(|| {
                        eprintln!("bad --timeout");
                        usage()
                    })
                }
                "stdin-exit" => o.stdin_exit = true,
                _ => {
                    eprintln!("unknown flag --{name}");
                    usage()
                }
            }
        } else {
            o.pos.push(a.clone());
        }
        i += 1;
    }
    o
}

fn num_arg(args: &[String], i: usize, default: Option<u64>, what: &str) -> u64 {
    match args.get(i) {
        None => default.unwrap_or_else(|| fail(format!("missing argument: {what}"))),
        Some(s) => s.parse().unwrap_or_else(|_| fail(format!("bad {what}: {s:?}"))),
    }
}

// ------------------------------------------------------------------ stream behaviour

/// Upgrade that accepts any of a list of protocols and returns the raw stream.
#[derive(Clone)]
struct Protos(Vec<StreamProtocol>);

impl UpgradeInfo for Protos {
    type Info = StreamProtocol;
    type InfoIter = std::vec::IntoIter<StreamProtocol>;
    fn protocol_info(&self) -> Self::InfoIter {
        self.0.clone().into_iter()
    }
}

impl InboundUpgrade<Stream> for Protos {
    type Output = (Stream, StreamProtocol);
    type Error = Infallible;
    type Future = Ready<Result<Self::Output, Infallible>>;
    fn upgrade_inbound(self, s: Stream, p: StreamProtocol) -> Self::Future {
        future::ready(Ok((s, p)))
    }
}

impl OutboundUpgrade<Stream> for Protos {
    type Output = (Stream, StreamProtocol);
    type Error = Infallible;
    type Future = Ready<Result<Self::Output, Infallible>>;
    fn upgrade_outbound(self, s: Stream, p: StreamProtocol) -> Self::Future {
        future::ready(Ok((s, p)))
    }
}

type OpenReply = oneshot::Sender<Result<Stream, String>>;

struct OpenReq {
    peer: PeerId,
    proto: StreamProtocol,
    reply: OpenReply,
}

impl std::fmt::Debug for OpenReq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OpenReq({}, {})", self.peer, self.proto)
    }
}

type Inbound = (PeerId, StreamProtocol, Stream);

struct StreamHandler {
    remote: PeerId,
    inbound: mpsc::UnboundedSender<Inbound>,
    pending: VecDeque<OpenReq>,
}

impl ConnectionHandler for StreamHandler {
    type FromBehaviour = OpenReq;
    type ToBehaviour = Infallible;
    type InboundProtocol = Protos;
    type OutboundProtocol = Protos;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = OpenReply;

    fn listen_protocol(&self) -> SubstreamProtocol<Protos, ()> {
        SubstreamProtocol::new(Protos(SERVED.to_vec()), ())
    }

    fn poll(
        &mut self,
        _cx: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Protos, OpenReply, Infallible>> {
        if let Some(req) = self.pending.pop_front() {
            return Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest {
                protocol: SubstreamProtocol::new(Protos(vec![req.proto]), req.reply)
                    .with_timeout(Duration::from_secs(30)),
            });
        }
        Poll::Pending
    }

    fn on_behaviour_event(&mut self, req: OpenReq) {
        self.pending.push_back(req);
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<Protos, Protos, (), OpenReply>,
    ) {
        match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
                protocol: (stream, proto),
                ..
            }) => {
                let _ = self.inbound.unbounded_send((self.remote, proto, stream));
            }
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol: (stream, _),
                info,
            }) => {
                let _ = info.send(Ok(stream));
            }
            ConnectionEvent::DialUpgradeError(DialUpgradeError { info, error }) => {
                let _ = info.send(Err(format!("{error:?}")));
            }
            _ => {}
        }
    }
}

struct StreamBehaviour {
    inbound: mpsc::UnboundedSender<Inbound>,
    open_rx: mpsc::UnboundedReceiver<OpenReq>,
    conns: HashMap<PeerId, Vec<ConnectionId>>,
}

impl StreamBehaviour {
    fn handler(&self, remote: PeerId) -> StreamHandler {
        StreamHandler { remote, inbound: self.inbound.clone(), pending: VecDeque::new() }
    }
}

impl NetworkBehaviour for StreamBehaviour {
    type ConnectionHandler = StreamHandler;
    type ToSwarm = ();

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler(peer))
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler(peer))
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionEstablished(e) => {
                self.conns.entry(e.peer_id).or_default().push(e.connection_id);
            }
            FromSwarm::ConnectionClosed(e) => {
                if let Some(v) = self.conns.get_mut(&e.peer_id) {
                    v.retain(|c| *c != e.connection_id);
                    if v.is_empty() {
                        self.conns.remove(&e.peer_id);
                    }
                }
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(&mut self, _: PeerId, _: ConnectionId, ev: THandlerOutEvent<Self>) {
        match ev {}
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<(), THandlerInEvent<Self>>> {
        while let Poll::Ready(Some(req)) = self.open_rx.poll_next_unpin(cx) {
            match self.conns.get(&req.peer).and_then(|v| v.last()) {
                Some(&cid) => {
                    return Poll::Ready(ToSwarm::NotifyHandler {
                        peer_id: req.peer,
                        handler: NotifyHandler::One(cid),
                        event: req,
                    })
                }
                None => {
                    let _ = req.reply.send(Err(format!("not connected to {}", req.peer)));
                }
            }
        }
        Poll::Pending
    }
}

#[derive(Clone)]
struct Control(mpsc::UnboundedSender<OpenReq>);

impl Control {
    async fn open(&self, peer: PeerId, proto: StreamProtocol) -> Result<Stream, String> {
        let (tx, rx) = oneshot::channel();
        self.0
            .unbounded_send(OpenReq { peer, proto, reply: tx })
            .map_err(|_| "swarm gone".to_string())?;
        rx.await.map_err(|_| "stream request dropped".to_string())?
    }
}

#[derive(libp2p::swarm::NetworkBehaviour)]
struct Behaviour {
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    streams: StreamBehaviour,
}

// ------------------------------------------------------------------ protocol servers
//
// In rust-yamux, dropping a stream that was not closed sends RST (reset);
// dropping it after close() sends nothing more (FIN was already sent).

async fn serve(proto: StreamProtocol, mut s: Stream) {
    let r: std::io::Result<()> = async {
        if proto == ECHO {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = s.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                s.write_all(&buf[..n]).await?;
            }
            s.close().await?;
        } else if proto == RESET {
            let mut buf = vec![0u8; 1024];
            let mut got = 0;
            while got < buf.len() {
                let n = s.read(&mut buf[got..]).await?;
                if n == 0 {
                    break;
                }
                got += n;
            }
            // Dropped without close: reset. (If the remote already sent FIN,
            // rust-yamux answers the drop with FIN instead of RST.)
        } else if proto == SOURCE {
            let mut hdr = [0u8; 8];
            s.read_exact(&mut hdr).await?;
            write_pattern(&mut s, u64::from_be_bytes(hdr)).await?;
            s.close().await?;
            let mut sink = vec![0u8; 16 * 1024];
            let _ = tokio::time::timeout(Duration::from_secs(30), async {
                while let Ok(n) = s.read(&mut sink).await {
                    if n == 0 {
                        break;
                    }
                }
            })
            .await;
        } else if proto == PERF {
            let mut hdr = [0u8; 8];
            s.read_exact(&mut hdr).await?;
            let mut sink = vec![0u8; 64 * 1024];
            while s.read(&mut sink).await? != 0 {}
            write_zeros(&mut s, u64::from_be_bytes(hdr)).await?;
            s.close().await?;
        }
        Ok(())
    }
    .await;
    if let Err(e) = r {
        logf!("{proto} stream: {e}");
    }
}

async fn write_pattern(s: &mut Stream, mut n: u64) -> std::io::Result<()> {
    let buf: Vec<u8> = (0..251 * 256).map(|i| (i % 251) as u8).collect();
    while n > 0 {
        let m = n.min(buf.len() as u64) as usize;
        s.write_all(&buf[..m]).await?;
        n -= m as u64;
    }
    Ok(())
}

async fn write_zeros(s: &mut Stream, mut n: u64) -> std::io::Result<()> {
    let buf = vec![0u8; 64 * 1024];
    while n > 0 {
        let m = n.min(buf.len() as u64) as usize;
        s.write_all(&buf[..m]).await?;
        n -= m as u64;
    }
    Ok(())
}

// ------------------------------------------------------------------ dial actions

enum Note {
    Identify(Value),
    Ping(Result<Duration, String>),
}

async fn echo_once(ctl: &Control, peer: PeerId, size: usize, idx: usize) -> Result<(), String> {
    let s = ctl.open(peer, ECHO).await.map_err(|e| format!("stream {idx}: open: {e}"))?;
    let data: Vec<u8> = (0..size).map(|i| ((i * 7 + idx) % 256) as u8).collect();
    let (mut rd, mut wr) = s.split();
    let write = async {
        wr.write_all(&data).await?;
        wr.close().await
    };
    let read = async {
        let mut got = Vec::with_capacity(size);
        rd.read_to_end(&mut got).await.map(|_| got)
    };
    let (w, r) = futures::join!(write, read);
    w.map_err(|e| format!("stream {idx}: write: {e}"))?;
    let got = r.map_err(|e| format!("stream {idx}: read: {e}"))?;
    if got.len() != size {
        return Err(format!("stream {idx}: got {} bytes, want {size}", got.len()));
    }
    if let Some(i) = (0..size).find(|&i| got[i] != data[i]) {
        return Err(format!("stream {idx}: byte {i} differs"));
    }
    Ok(())
}

async fn run_action(
    action: String,
    args: Vec<String>,
    peer: PeerId,
    ctl: Control,
    mut notes: mpsc::UnboundedReceiver<Note>,
    self_id: PeerId,
) -> Result<(), String> {
    match action.as_str() {
        "identify" => {
            while let Some(n) = notes.next().await {
                if let Note::Identify(v) = n {
                    emit("identify", v);
                    emit("self", json!({ "peerId": self_id.to_string() }));
                    return Ok(());
                }
            }
            Err("identify did not complete".into())
        }
        "ping" => {
            let count = num_arg(&args, 0, Some(1), "ping count");
            let mut done = 0;
            while done < count {
                match notes.next().await {
                    Some(Note::Ping(Ok(rtt))) => {
                        emit("ping", json!({ "rttMs": ms(rtt) }));
                        done += 1;
                    }
                    Some(Note::Ping(Err(e))) => return Err(format!("ping: {e}")),
                    Some(_) => {}
                    None => return Err("ping: connection gone".into()),
                }
            }
            Ok(())
        }
        "echo" => {
            let size = num_arg(&args, 0, None, "echo bytes") as usize;
            let streams = num_arg(&args, 1, Some(1), "echo streams").max(1) as usize;
            let t0 = Instant::now();
            let results =
                future::join_all((0..streams).map(|i| echo_once(&ctl, peer, size, i))).await;
            if let Some(Err(e)) = results.into_iter().find(|r| r.is_err()) {
                return Err(format!("echo: {e}"));
            }
            emit(
                "echo",
                json!({ "ok": true, "streams": streams, "bytes": size, "ms": ms(t0.elapsed()) }),
            );
            Ok(())
        }
        "reset-mid" | "close-mid" => {
            let s = ctl.open(peer, ECHO).await.map_err(|e| format!("{action}: open: {e}"))?;
            let data: Vec<u8> = (0..100000usize).map(|i| (i * 7 % 256) as u8).collect();
            if action == "reset-mid" {
                let (mut rd, mut wr) = s.split();
                let write = Box::pin(wr.write_all(&data));
                let mut one = [0u8; 1];
                let read = Box::pin(rd.read_exact(&mut one));
                match future::select(read, write).await {
                    Either::Left((r, _)) => r.map_err(|e| format!("reset-mid: read: {e}"))?,
                    Either::Right((w, read)) => {
                        w.map_err(|e| format!("reset-mid: write: {e}"))?;
                        read.await.map_err(|e| format!("reset-mid: read: {e}"))?;
                    }
                }
                // Both halves dropped here without close(): rust-yamux sends RST.
            } else {
                let mut s = s;
                s.write_all(&data).await.map_err(|e| format!("close-mid: write: {e}"))?;
                s.close().await.map_err(|e| format!("close-mid: close: {e}"))?;
                drop(s); // FIN sent; dropping also gives up the read side
            }
            echo_once(&ctl, peer, 10, 0)
                .await
                .map_err(|e| format!("{action}: follow-up echo: {e}"))?;
            emit(&action, json!({ "ok": true }));
            Ok(())
        }
        "perf" => {
            let up = num_arg(&args, 0, None, "upload bytes");
            let down = num_arg(&args, 1, None, "download bytes");
            let t0 = Instant::now();
            let mut s = ctl.open(peer, PERF).await.map_err(|e| format!("perf: open: {e}"))?;
            let r: std::io::Result<u64> = async {
                s.write_all(&down.to_be_bytes()).await?;
                write_zeros(&mut s, up).await?;
                s.close().await?;
                let mut buf = vec![0u8; 64 * 1024];
                let mut got = 0u64;
                loop {
                    let n = s.read(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    got += n as u64;
                }
                Ok(got)
            }
            .await;
            let got = r.map_err(|e| format!("perf: {e}"))?;
            if got != down {
                return Err(format!("perf: downloaded {got} bytes, want {down}"));
            }
            emit(
                "perf",
                json!({ "uploadBytes": up, "downloadBytes": got, "ms": ms(t0.elapsed()) }),
            );
            Ok(())
        }
        "hold" => {
            let secs: f64 = args
                .first()
                .and_then(|s| s.parse().ok())
                .filter(|s: &f64| *s >= 0.0)
                .ok_or("hold: bad seconds")?;
            tokio::time::sleep(Duration::from_secs_f64(secs)).await;
            emit("hold", json!({ "ok": true, "seconds": secs }));
            Ok(())
        }
        other if bench::is_bench_action(other) => bench::run(other, &args, peer, ctl).await,
        other => Err(format!("unknown action {other:?}")),
    }
}

// ------------------------------------------------------------------ main

fn identify_json(peer: &PeerId, info: &identify::Info) -> Value {
    json!({
        "peerId": peer.to_string(),
        "agentVersion": info.agent_version,
        "protocolVersion": info.protocol_version,
        "protocols": info.protocols.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        "listenAddrs": info.listen_addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "observedAddr": info.observed_addr.to_string(),
    })
}

mod nat; // relay / DCUtR roles: "peer-rust nat ..."

#[tokio::main]
async fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("nat") {
        return nat::nat_main(argv[1..].to_vec()).await;
    }
    let o = parse_args();
    let mode = o.pos.first().cloned().unwrap_or_else(|| usage());
    if mode == "pubsub" {
        pubsub::run(o).await;
    }
    if mode != "listen" && mode != "dial" {
        usage();
    }
    let listen_mode = mode == "listen";

    let timeout = o.timeout;
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs_f64(timeout)).await;
        logf!("timeout after {timeout}s");
        std::process::exit(3);
    });
    if o.stdin_exit {
        std::thread::spawn(|| {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            logf!("stdin closed, exiting");
            std::process::exit(0);
        });
    }

    let key = match &o.seed {
        None => identity::Keypair::generate_ed25519(),
        Some(h) => {
            let mut seed = hex::decode(h)
                .ok()
                .filter(|b| b.len() == 32)
                .unwrap_or_else(|| fail("--seed must be 64 hex characters"));
            identity::Keypair::ed25519_from_bytes(&mut seed).unwrap_or_else(|e| fail(e))
        }
    };

    // Dial target (parsed early so that a bad address fails before listening).
    let target = if listen_mode {
        None
    } else {
        if o.pos.len() < 3 {
            usage();
        }
        let addr: Multiaddr = o.pos[1].parse().unwrap_or_else(|e| fail(format!("bad multiaddr: {e}")));
        let peer = addr
            .iter()
            .find_map(|p| if let Protocol::P2p(id) = p { Some(id) } else { None })
            .unwrap_or_else(|| fail("multiaddr needs /p2p/<id>"));
        bench::set_target(addr.clone());
        Some((addr, peer, o.pos[2].clone(), o.pos[3..].to_vec()))
    };
    let ping_action = matches!(&target, Some((_, _, a, _)) if a == "ping");

    let (inbound_tx, mut inbound_rx) = mpsc::unbounded::<Inbound>();
    let (open_tx, open_rx) = mpsc::unbounded::<OpenReq>();
    let ctl = Control(open_tx);

    let mut swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(tcp::Config::new().nodelay(true), noise::Config::new, || {
            let mut c = yamux::Config::default();
            c.set_max_num_streams(4096); // 4096 * 256 KiB = the 1 GiB connection budget
            c
        })
        .unwrap_or_else(|e| fail(format!("transport: {e}")))
        .with_behaviour(|k| Behaviour {
            identify: identify::Behaviour::new(identify::Config::new(
                "ipfs/0.1.0".into(),
                k.public(),
            )),
            ping: ping::Behaviour::new(if ping_action {
                ping::Config::new().with_interval(Duration::from_millis(100))
            } else {
                ping::Config::new()
            }),
            streams: StreamBehaviour { inbound: inbound_tx, open_rx, conns: HashMap::new() },
        })
        .unwrap_or_else(|e| fail(format!("behaviour: {e}")))
        .with_swarm_config(|c| {
            c.with_idle_connection_timeout(Duration::from_secs(24 * 3600))
                .with_max_negotiating_inbound_streams(4096)
        })
        .build();

    tokio::spawn(async move {
        while let Some((_peer, proto, s)) = inbound_rx.next().await {
            tokio::spawn(serve(proto, s));
        }
    });

    let listen: Multiaddr = o.listen.parse().unwrap_or_else(|e| fail(format!("bad --listen: {e}")));
    swarm.listen_on(listen).unwrap_or_else(|e| fail(format!("listen: {e}")));
    let self_id = *swarm.local_peer_id();

    let (notes_tx, notes_rx) = mpsc::unbounded::<Note>();
    let mut notes_rx = Some(notes_rx);
    let mut action: Option<tokio::task::JoinHandle<Result<(), String>>> = None;
    let mut target_peer: Option<PeerId> = None;
    if let Some((addr, peer, _, _)) = &target {
        target_peer = Some(*peer);
        let opts = DialOpts::peer_id(*peer).addresses(vec![addr.clone()]).build();
        swarm.dial(opts).unwrap_or_else(|e| fail(format!("dial: {e}")));
    }
    let mut ready_printed = false;
    // Set once the dial action has finished: (exit code, deadline for a graceful close).
    let mut exiting: Option<(i32, tokio::time::Instant)> = None;

    loop {
        let ev = if let Some((code, deadline)) = exiting {
            tokio::select! {
                ev = swarm.select_next_some() => ev,
                _ = tokio::time::sleep_until(deadline) => std::process::exit(code),
            }
        } else if let Some(h) = action.as_mut() {
            tokio::select! {
                ev = swarm.select_next_some() => ev,
                r = h => {
                    let code = match r {
                        Ok(Ok(())) => 0,
                        Ok(Err(e)) => { emit("error", json!({"message": e})); logf!("error: {e}"); 1 }
                        Err(e) => { emit("error", json!({"message": e.to_string()})); 1 }
                    };
                    let peer = target_peer.unwrap();
                    if !swarm.is_connected(&peer) {
                        std::process::exit(code);
                    }
                    // Close our connections gracefully (bounded), like go's host.Close().
                    let _ = swarm.disconnect_peer_id(peer);
                    exiting = Some((code, tokio::time::Instant::now() + Duration::from_secs(2)));
                    continue;
                }
            }
        } else {
            swarm.select_next_some().await
        };
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => {
                if listen_mode && !ready_printed {
                    ready_printed = true;
                    let full = address.with(Protocol::P2p(self_id));
                    emit(
                        "ready",
                        json!({ "peerId": self_id.to_string(), "listenAddrs": [full.to_string()] }),
                    );
                }
            }
            SwarmEvent::ConnectionEstablished { peer_id, established_in, .. } => {
                if Some(peer_id) == target_peer {
                    if action.is_none() {
                        emit(
                            "connected",
                            json!({ "peerId": peer_id.to_string(), "ms": ms(established_in) }),
                        );
                        let (_, peer, act, args) = target.clone().unwrap();
                        action = Some(tokio::spawn(run_action(
                            act,
                            args,
                            peer,
                            ctl.clone(),
                            notes_rx.take().unwrap(),
                            self_id,
                        )));
                    }
                } else {
                    emit("connected", json!({ "peerId": peer_id.to_string() }));
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, cause, .. } => {
                emit("disconnected", json!({ "peerId": peer_id.to_string() }));
                if let Some(c) = cause {
                    logf!("connection to {peer_id} closed: {c}");
                }
                if Some(peer_id) == target_peer && !swarm.is_connected(&peer_id) {
                    if let Some((code, _)) = exiting {
                        std::process::exit(code);
                    }
                    // Let a running action observe the loss through its stream
                    // errors; "hold" and "ping" need it reported explicitly.
                    let _ = notes_tx.unbounded_send(Note::Ping(Err("connection closed".into())));
                    if let Some((_, _, act, _)) = &target {
                        if act == "hold" {
                            fail(format!("hold: connection to {peer_id} was lost"));
                        }
                    }
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                if peer_id == target_peer {
                    fail(format!("dial: {error}"));
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                let v = identify_json(&peer_id, &info);
                if Some(peer_id) == target_peer {
                    let _ = notes_tx.unbounded_send(Note::Identify(v));
                } else {
                    emit("identify", v);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Error {
                peer_id,
                error,
                ..
            })) => {
                logf!("identify with {peer_id} failed: {error}");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event { peer, result, .. })) => {
                if Some(peer) == target_peer && ping_action {
                    let _ = notes_tx.unbounded_send(Note::Ping(result.map_err(|e| e.to_string())));
                }
            }
            _ => {}
        }
    }
}
