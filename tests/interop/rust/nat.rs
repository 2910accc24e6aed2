//! nat.rs: "peer-rust nat ..." - circuit relay v2 and DCUtR roles for the libp2p.h NAT tests
//! (contract: tests/interop/README.md, section "NAT traversal"). main.rs only dispatches here;
//! this module reuses its stream behaviour (/echo/1.0.0) and output helpers.
//!
//!   peer-rust nat relay [flags]                          relay server (stock limits, no rate limits)
//!   peer-rust nat listen --relay <relay/p2p/ID> [flags]  reserve there (listen on /p2p-circuit)
//!   peer-rust nat dial <relay>/p2p-circuit/p2p/<ID> <ping n | echo bytes | direct bytes | hold s>
//! flags: --seed <64 hex> --listen <multiaddr> --timeout <seconds> --no-holepunch

use super::*;
use libp2p::{dcutr, relay, swarm::behaviour::toggle::Toggle};

#[derive(libp2p::swarm::NetworkBehaviour)]
struct NatBehaviour {
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    streams: StreamBehaviour,
    relay_client: relay::client::Behaviour,
    relay_server: Toggle<relay::Behaviour>,
    dcutr: Toggle<dcutr::Behaviour>,
}

struct NatOpts {
    seed: Option<String>,
    listen: String,
    relay: Option<String>,
    timeout: f64,
    holepunch: bool,
    pos: Vec<String>,
}

fn nat_usage() -> ! {
    eprintln!(
        "usage: peer-rust nat relay|listen --relay <addr>|dial <circuit> <ping n|echo bytes|direct bytes|hold s>\n\
flags: --seed <64 hex> --listen <multiaddr> --timeout <seconds> --no-holepunch"
    );
    std::process::exit(2);
}

fn parse_nat(args: &[String]) -> NatOpts {
    let mut o = NatOpts {
        seed: None,
        listen: "/ip4/127.0.0.1/tcp/0".into(),
        relay: None,
        timeout: 60.0,
        holepunch: true,
        pos: vec![],
    };
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if let Some(name) = a.strip_prefix("--") {
            let mut value = || -> String {
                i += 1;
                args.get(i).cloned().unwrap_or_else(|| nat_usage())
            };
            match name {
                "seed" => o.seed = Some(value()),
                "listen" => o.listen = value(),
                "relay" => o.relay = Some(value()),
                "timeout" => o.timeout = value().parse().unwrap_or_else(|_| nat_usage()),
                "no-holepunch" => o.holepunch = false,
                "stdin-exit" => {}
                _ => nat_usage(),
            }
        } else {
            o.pos.push(a.clone());
        }
        i += 1;
    }
    o
}

fn is_relayed(a: &Multiaddr) -> bool {
    a.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

fn target_peer(addr: &Multiaddr) -> PeerId {
    addr.iter()
        .filter_map(|p| if let Protocol::P2p(id) = p { Some(id) } else { None })
        .last()
        .unwrap_or_else(|| fail("multiaddr needs /p2p/<id>"))
}

pub async fn nat_main(args: Vec<String>) {
    let o = parse_nat(&args);
    let mode = o.pos.first().cloned().unwrap_or_else(|| nat_usage());
    let timeout = o.timeout;
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs_f64(timeout)).await;
        logf!("timeout after {timeout}s");
        std::process::exit(3);
    });
    let key = match &o.seed {
        None => identity::Keypair::generate_ed25519(),
        Some(h) => {
            let mut seed = hex::decode(h).ok().filter(|b| b.len() == 32).unwrap_or_else(|| nat_usage());
            identity::Keypair::ed25519_from_bytes(&mut seed).unwrap_or_else(|e| fail(e))
        }
    };
    let (inbound_tx, mut inbound_rx) = mpsc::unbounded::<Inbound>();
    let (open_tx, open_rx) = mpsc::unbounded::<OpenReq>();
    let ctl = Control(open_tx);
    let server = mode == "relay";
    let holepunch = o.holepunch && !server;
    let mut swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(tcp::Config::new().nodelay(true), noise::Config::new, yamux::Config::default)
        .unwrap_or_else(|e| fail(format!("transport: {e}")))
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .unwrap_or_else(|e| fail(format!("relay transport: {e}")))
        .with_behaviour(|k, relay_client| NatBehaviour {
            identify: identify::Behaviour::new(identify::Config::new("ipfs/0.1.0".into(), k.public())),
            ping: ping::Behaviour::new(ping::Config::new()),
            streams: StreamBehaviour { inbound: inbound_tx, open_rx, conns: HashMap::new() },
            relay_client,
            relay_server: Toggle::from(server.then(|| {
                let mut c = relay::Config::default();
                c.reservation_rate_limiters.clear(); // the bed reserves many times from one IP
                c.circuit_src_rate_limiters.clear();
                relay::Behaviour::new(k.public().to_peer_id(), c)
            })),
            dcutr: Toggle::from(holepunch.then(|| dcutr::Behaviour::new(k.public().to_peer_id()))),
        })
        .unwrap_or_else(|e| fail(format!("behaviour: {e}")))
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(24 * 3600)))
        .build();
    tokio::spawn(async move {
        while let Some((_peer, proto, s)) = inbound_rx.next().await {
            tokio::spawn(serve(proto, s));
        }
    });
    let listen: Multiaddr = o.listen.parse().unwrap_or_else(|e| fail(format!("bad --listen: {e}")));
    swarm.listen_on(listen).unwrap_or_else(|e| fail(format!("listen: {e}")));
    let self_id = *swarm.local_peer_id();

    let mut relay_addr: Option<Multiaddr> = None;
    if mode == "listen" {
        let ra: Multiaddr = o.relay.clone().unwrap_or_else(|| nat_usage()).parse().unwrap_or_else(|e| fail(format!("bad --relay: {e}")));
        swarm.listen_on(ra.clone().with(Protocol::P2pCircuit)).unwrap_or_else(|e| fail(format!("listen on circuit: {e}")));
        relay_addr = Some(ra);
    }
    // dial mode: target and action
    let mut target: Option<(Multiaddr, PeerId, String, Vec<String>)> = None;
    let mut pending_circuit: Option<Multiaddr> = None;
    if mode == "dial" {
        if o.pos.len() < 3 {
            nat_usage();
        }
        let addr: Multiaddr = o.pos[1].parse().unwrap_or_else(|e| fail(format!("bad multiaddr: {e}")));
        let peer = target_peer(&addr);
        // rust's DCUtR handler takes our address candidates when the relayed connection is
        // set up: connect to the relay and learn our observed address (identify) first, as an
        // app that has been on its relay for a while would have
        let relay_part: Multiaddr = addr.iter().take_while(|p| !matches!(p, Protocol::P2pCircuit)).collect();
        swarm.dial(relay_part.clone()).unwrap_or_else(|e| fail(format!("dial relay: {e}")));
        pending_circuit = Some(addr.clone());
        target = Some((addr, peer, o.pos[2].clone(), o.pos[3..].to_vec()));
    } else if mode != "relay" && mode != "listen" {
        nat_usage();
    }
    let t0 = Instant::now();
    let mut ready = false;
    let mut action: Option<tokio::task::JoinHandle<Result<(), String>>> = None;
    let mut relayed_at: HashMap<PeerId, Instant> = HashMap::new();
    let mut direct_tx: Option<oneshot::Sender<()>> = None;
    loop {
        let ev = if let Some(h) = action.as_mut() {
            tokio::select! {
                ev = swarm.select_next_some() => ev,
                r = h => {
                    match r {
                        Ok(Ok(())) => std::process::exit(0),
                        Ok(Err(e)) => fail(e),
                        Err(e) => fail(e),
                    }
                }
            }
        } else {
            swarm.select_next_some().await
        };
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => {
                if server && !is_relayed(&address) {
                    // rust's relay server serves hop only with a confirmed external address
                    swarm.add_external_address(address.clone());
                }
                if !ready && !is_relayed(&address) && mode != "listen" {
                    ready = true;
                    let full = address.with(Protocol::P2p(self_id));
                    emit("ready", json!({ "peerId": self_id.to_string(), "listenAddrs": [full.to_string()] }));
                }
            }
            SwarmEvent::Behaviour(NatBehaviourEvent::RelayClient(relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                renewal,
                ..
            })) => {
                if !renewal {
                    let circuit = relay_addr
                        .clone()
                        .unwrap()
                        .with(Protocol::P2pCircuit)
                        .with(Protocol::P2p(self_id));
                    emit("reserved", json!({ "relay": relay_peer_id.to_string(), "addrs": [circuit.to_string()] }));
                    emit("ready", json!({ "peerId": self_id.to_string(), "listenAddrs": [circuit.to_string()] }));
                }
            }
            SwarmEvent::Behaviour(NatBehaviourEvent::Identify(identify::Event::Received { .. })) => {
                if let Some(c) = pending_circuit.take() {
                    swarm.dial(c).unwrap_or_else(|e| fail(format!("dial: {e}")));
                }
            }
            SwarmEvent::Behaviour(NatBehaviourEvent::Dcutr(e)) => match e.result {
                Ok(_) => {}
                Err(err) => emit("holepunch-failed", json!({ "peerId": e.remote_peer_id.to_string(), "message": err.to_string() })),
            },
            SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. } => {
                let addr = endpoint.get_remote_address().clone();
                let relayed = endpoint.is_relayed();
                emit("connected", json!({ "peerId": peer_id.to_string(), "relayed": relayed, "addr": addr.to_string() }));
                if relayed {
                    relayed_at.entry(peer_id).or_insert_with(Instant::now);
                } else if let Some(t) = relayed_at.get(&peer_id) {
                    emit("direct", json!({ "peerId": peer_id.to_string(), "addr": addr.to_string(), "ms": ms(t.elapsed()) }));
                }
                if let Some((_, peer, act, args)) = &target {
                    if *peer == peer_id && relayed && action.is_none() {
                        emit("dialed", json!({ "peerId": peer.to_string(), "ms": ms(t0.elapsed()) }));
                        let (tx, rx) = oneshot::channel();
                        direct_tx = Some(tx);
                        action = Some(tokio::spawn(nat_action(act.clone(), args.clone(), *peer, ctl.clone(), rx, t0)));
                    }
                    if *peer == peer_id && !relayed {
                        if let Some(tx) = direct_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, endpoint, .. } => {
                emit("disconnected", json!({ "peerId": peer_id.to_string(), "relayed": endpoint.is_relayed() }));
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                if let Some((_, peer, _, _)) = &target {
                    if Some(*peer) == peer_id && action.is_none() {
                        fail(format!("dial: {error}"));
                    }
                }
            }
            SwarmEvent::ListenerClosed { reason: Err(e), .. } => logf!("listener closed: {e}"),
            _ => {}
        }
    }
}

async fn nat_action(
    action: String,
    args: Vec<String>,
    peer: PeerId,
    ctl: Control,
    direct: oneshot::Receiver<()>,
    t0: Instant,
) -> Result<(), String> {
    match action.as_str() {
        "echo" => {
            let size = num_arg(&args, 0, None, "echo bytes") as usize;
            let t = Instant::now();
            echo_once(&ctl, peer, size, 0).await?;
            emit("echo", json!({ "ok": true, "streams": 1, "bytes": size, "ms": ms(t.elapsed()) }));
        }
        "direct" => {
            let size = num_arg(&args, 0, None, "echo bytes") as usize;
            direct.await.map_err(|_| "no direct connection".to_string())?;
            emit("direct-ready", json!({ "peerId": peer.to_string(), "ms": ms(t0.elapsed()) }));
            let t = Instant::now();
            echo_once(&ctl, peer, size, 0).await?; // the newest connection: the direct one
            emit("echo", json!({ "ok": true, "streams": 1, "bytes": size, "ms": ms(t.elapsed()) }));
        }
        "ping" => {
            let n = num_arg(&args, 0, Some(1), "ping count");
            for _ in 0..n {
                let mut s = ctl.open(peer, StreamProtocol::new("/ipfs/ping/1.0.0")).await?;
                let data: Vec<u8> = (0..32).map(|i| i as u8).collect();
                let t = Instant::now();
                s.write_all(&data).await.map_err(|e| e.to_string())?;
                let mut got = [0u8; 32];
                s.read_exact(&mut got).await.map_err(|e| e.to_string())?;
                if got[..] != data[..] {
                    return Err("ping: wrong echo".into());
                }
                emit("ping", json!({ "rttMs": ms(t.elapsed()) }));
                let _ = s.close().await;
            }
        }
        "hold" => {
            let secs: f64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(0.0);
            tokio::time::sleep(Duration::from_secs_f64(secs)).await;
            emit("hold", json!({ "ok": true, "seconds": secs }));
        }
        _ => return Err(format!("unknown action {action}")),
    }
    Ok(())
}
