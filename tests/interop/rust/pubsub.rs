//! pubsub mode of peer-rust: a rust-libp2p gossipsub node driven by commands
//! on stdin; see "pubsub mode" in tests/interop/README.md.

use std::{collections::HashMap, time::Duration};

use futures::StreamExt;
use libp2p::{
    gossipsub::{self, IdentTopic, MessageAuthenticity, MessageId, ValidationMode},
    identify, identity,
    multiaddr::Protocol,
    noise, ping,
    swarm::{dial_opts::DialOpts, SwarmEvent},
    tcp, yamux, Multiaddr, PeerId, SwarmBuilder,
};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::AsyncBufReadExt;

use crate::{emit, fail, Opts};

#[derive(libp2p::swarm::NetworkBehaviour)]
struct PsBehaviour {
    gossipsub: gossipsub::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

fn kv_usize(kv: &HashMap<String, String>, k: &str) -> Option<usize> {
    kv.get(k).map(|v| v.parse().unwrap_or_else(|_| fail(format!("pubsub: bad {k}={v}"))))
}

/// from || seqno (go-libp2p-pubsub's default message ID).
fn go_message_id(m: &gossipsub::Message) -> MessageId {
    let mut id = m.source.map(|p| p.to_bytes()).unwrap_or_default();
    if let Some(s) = m.sequence_number {
        id.extend_from_slice(&s.to_be_bytes());
    }
    MessageId::from(id)
}

fn sha256_message_id(m: &gossipsub::Message) -> MessageId {
    MessageId::from(Sha256::digest(&m.data).to_vec())
}

fn config(kv: &HashMap<String, String>, anonymous: bool) -> gossipsub::Config {
    let mut b = gossipsub::ConfigBuilder::default();
    match kv.get("msgid").map(String::as_str) {
        None | Some("go") => {
            b.message_id_fn(go_message_id);
        }
        Some("native") => {}
        Some("sha256") => {
            b.message_id_fn(sha256_message_id);
        }
        Some(o) => fail(format!("pubsub: bad msgid={o}")),
    }
    b.validation_mode(if anonymous { ValidationMode::Anonymous } else { ValidationMode::Strict });
    if let Some(v) = kv_usize(kv, "d") {
        b.mesh_n(v);
    }
    if let Some(v) = kv_usize(kv, "dlo") {
        b.mesh_n_low(v);
    }
    if let Some(v) = kv_usize(kv, "dhi") {
        b.mesh_n_high(v);
    }
    if let Some(v) = kv_usize(kv, "dlazy") {
        b.gossip_lazy(v);
    }
    if let Some(v) = kv_usize(kv, "dout") {
        b.mesh_outbound_min(v);
    }
    if let Some(v) = kv_usize(kv, "dscore") {
        b.retain_scores(v);
    }
    if let Some(v) = kv_usize(kv, "idontwant") {
        b.idontwant_message_size_threshold(v);
    }
    if let Some(v) = kv.get("flood") {
        b.flood_publish(v == "true");
    }
    if kv.get("px").map(String::as_str) == Some("true") {
        b.do_px().prune_peers(16); // rust offers no peers by default (prune_peers 0)
    }
    b.heartbeat_initial_delay(Duration::from_millis(100));
    b.build().unwrap_or_else(|e| fail(format!("pubsub config: {e}")))
}

pub async fn run(o: Opts) -> ! {
    let timeout = o.timeout;
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs_f64(timeout)).await;
        logf!("timeout after {timeout}s");
        std::process::exit(3);
    });
    let mut kv = HashMap::new();
    for a in &o.pos[1..] {
        let (k, v) = a.split_once('=').unwrap_or_else(|| fail(format!("pubsub: {a:?} is not key=value")));
        kv.insert(k.to_string(), v.to_string());
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
    let anonymous = kv.get("sign").map(String::as_str) == Some("none");
    let cfg = config(&kv, anonymous);
    let mut swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(tcp::Config::new().nodelay(true), noise::Config::new, yamux::Config::default)
        .unwrap_or_else(|e| fail(format!("transport: {e}")))
        .with_behaviour(|k| {
            let auth = if anonymous { MessageAuthenticity::Anonymous } else { MessageAuthenticity::Signed(k.clone()) };
            PsBehaviour {
                gossipsub: gossipsub::Behaviour::new(auth, cfg).unwrap_or_else(|e| fail(format!("gossipsub: {e}"))),
                identify: identify::Behaviour::new(identify::Config::new("ipfs/0.1.0".into(), k.public())),
                ping: ping::Behaviour::new(ping::Config::new()),
            }
        })
        .unwrap_or_else(|e| fail(format!("behaviour: {e}")))
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(24 * 3600)))
        .build();
    let listen: Multiaddr = o.listen.parse().unwrap_or_else(|e| fail(format!("bad --listen: {e}")));
    swarm.listen_on(listen).unwrap_or_else(|e| fail(format!("listen: {e}")));
    let self_id = *swarm.local_peer_id();

    let (tx, mut rx) = futures::channel::mpsc::unbounded::<String>();
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            if tx.unbounded_send(l).is_err() {
                break;
            }
        }
        let _ = tx.unbounded_send("exit".into());
    });

    let mut ready = false;
    let mut dialing: Vec<PeerId> = vec![];
    loop {
        tokio::select! {
            cmd = rx.next() => {
                let cmd = cmd.unwrap_or_else(|| "exit".into());
                let f: Vec<&str> = cmd.trim().splitn(3, ' ').collect();
                let gs = &mut swarm.behaviour_mut().gossipsub;
                match f[0] {
                    "exit" => std::process::exit(0),
                    "connect" => {
                        let addr: Multiaddr = match f.get(1).and_then(|a| a.parse().ok()) {
                            Some(a) => a,
                            None => { emit("connect", json!({"ok": false, "message": "bad address"})); continue; }
                        };
                        let peer = addr.iter().find_map(|p| if let Protocol::P2p(id) = p { Some(id) } else { None });
                        match peer {
                            Some(peer) => {
                                if swarm.is_connected(&peer) {
                                    emit("connect", json!({"ok": true, "peerId": peer.to_string()}));
                                } else if let Err(e) = swarm.dial(DialOpts::peer_id(peer).addresses(vec![addr]).build()) {
                                    emit("connect", json!({"ok": false, "message": e.to_string()}));
                                } else {
                                    dialing.push(peer);
                                }
                            }
                            None => emit("connect", json!({"ok": false, "message": "no /p2p/"})),
                        }
                    }
                    "sub" => {
                        gs.subscribe(&IdentTopic::new(f[1])).unwrap_or_else(|e| fail(format!("subscribe: {e:?}")));
                        emit("subscribed", json!({"topic": f[1]}));
                    }
                    "unsub" => {
                        gs.unsubscribe(&IdentTopic::new(f[1]));
                        emit("unsubscribed", json!({"topic": f[1]}));
                    }
                    "pub" | "pubsize" => {
                        let data: Vec<u8> = if f[0] == "pubsize" {
                            let n: usize = f.get(2).and_then(|s| s.parse().ok()).unwrap_or(0);
                            let mut d = format!("{}-", std::time::SystemTime::now()
                                .duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()).into_bytes();
                            d.resize(n.max(d.len()), b'x');
                            d
                        } else {
                            f.get(2).unwrap_or(&"").as_bytes().to_vec()
                        };
                        let size = data.len();
                        match gs.publish(IdentTopic::new(f[1]), data) {
                            Ok(id) => emit("published", json!({"topic": f[1], "size": size, "id": hex::encode(id.0)})),
                            Err(e) => emit("publish-error", json!({"topic": f[1], "message": format!("{e:?}")})),
                        }
                    }
                    "peers" => {
                        let hash = IdentTopic::new(f[1]).hash();
                        let peers: Vec<String> = gs.all_peers()
                            .filter(|(_, ts)| ts.contains(&&hash)).map(|(p, _)| p.to_string()).collect();
                        let mesh: Vec<String> = gs.mesh_peers(&hash).map(|p| p.to_string()).collect();
                        emit("peers", json!({"topic": f[1], "peers": peers, "mesh": mesh}));
                    }
                    "" => {}
                    other => emit("error", json!({"message": format!("unknown command {other}")})),
                }
            }
            ev = swarm.select_next_some() => match ev {
                SwarmEvent::NewListenAddr { address, .. } if !ready => {
                    ready = true;
                    let full = address.with(Protocol::P2p(self_id));
                    emit("ready", json!({"peerId": self_id.to_string(), "listenAddrs": [full.to_string()]}));
                }
                SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                    if let Some(i) = dialing.iter().position(|p| *p == peer_id) {
                        dialing.remove(i);
                        emit("connect", json!({"ok": true, "peerId": peer_id.to_string()}));
                    }
                }
                SwarmEvent::OutgoingConnectionError { peer_id: Some(peer), error, .. } => {
                    if let Some(i) = dialing.iter().position(|p| *p == peer) {
                        dialing.remove(i);
                        emit("connect", json!({"ok": false, "message": error.to_string()}));
                    }
                }
                SwarmEvent::Behaviour(PsBehaviourEvent::Gossipsub(gossipsub::Event::Message {
                    propagation_source, message_id, message,
                })) => {
                    let mut data = String::from_utf8_lossy(&message.data).to_string();
                    data.truncate(256);
                    emit("message", json!({
                        "topic": message.topic.as_str(),
                        "from": message.source.map(|p| p.to_string()).unwrap_or_default(),
                        "data": data,
                        "size": message.data.len(),
                        "id": hex::encode(&message_id.0),
                        "receivedFrom": propagation_source.to_string(),
                        "local": false,
                    }));
                }
                SwarmEvent::Behaviour(PsBehaviourEvent::Gossipsub(other)) => logf!("gossipsub: {other:?}"),
                _ => {}
            }
        }
    }
}
