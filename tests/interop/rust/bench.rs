//! Benchmark dial actions for bench/run (see tests/interop/README.md,
//! "Benchmark actions"): perfn, rtt, handshakes.
//!
//! perfn runs on the connection main.rs made; rtt and handshakes make their
//! own connections with dedicated client swarms (TCP + Noise + yamux, like
//! main.rs), so every iteration is a fresh connection.

use std::{
    future::Future,
    sync::OnceLock,
    time::{Duration, Instant},
};

use futures::{future, AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::{
    noise,
    swarm::{dial_opts::DialOpts, SwarmEvent},
    tcp, yamux, Multiaddr, PeerId, Swarm, SwarmBuilder,
};
use serde_json::json;

use super::{emit, ms, num_arg, write_zeros, Control, ECHO, PERF};

static TARGET: OnceLock<Multiaddr> = OnceLock::new();

/// The dial target (main.rs sets it before running an action).
pub fn set_target(addr: Multiaddr) {
    let _ = TARGET.set(addr);
}

pub fn is_bench_action(action: &str) -> bool {
    matches!(action, "perfn" | "rtt" | "handshakes")
}

async fn perf_once(ctl: Control, peer: PeerId, up: u64, down: u64) -> Result<(), String> {
    let mut s = ctl.open(peer, PERF).await.map_err(|e| format!("open: {e}"))?;
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
    let got = r.map_err(|e| e.to_string())?;
    if got != down {
        return Err(format!("downloaded {got} bytes, want {down}"));
    }
    Ok(())
}

fn client_swarm() -> Swarm<libp2p_stream::Behaviour> {
    SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(tcp::Config::new().nodelay(true), noise::Config::new, yamux::Config::default)
        .expect("transport")
        .with_behaviour(|_| libp2p_stream::Behaviour::new())
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build()
}

/// Await f while driving the swarm (stream opens and I/O need the swarm polled).
async fn drive<F: Future>(swarm: &mut Swarm<libp2p_stream::Behaviour>, f: F) -> F::Output {
    let mut f = Box::pin(f);
    loop {
        tokio::select! {
            r = &mut f => return r,
            _ = swarm.select_next_some() => {}
        }
    }
}

/// Dial a new connection to peer; Ok once it is established.
async fn connect(swarm: &mut Swarm<libp2p_stream::Behaviour>, peer: PeerId) -> Result<libp2p::swarm::ConnectionId, String> {
    let addr = TARGET.get().cloned().ok_or("no target")?;
    let opts = DialOpts::peer_id(peer)
        .addresses(vec![addr])
        .condition(libp2p::swarm::dial_opts::PeerCondition::Always)
        .build();
    let cid = opts.connection_id();
    swarm.dial(opts).map_err(|e| format!("dial: {e}"))?;
    loop {
        match swarm.select_next_some().await {
            SwarmEvent::ConnectionEstablished { connection_id, .. } if connection_id == cid => return Ok(cid),
            SwarmEvent::OutgoingConnectionError { connection_id, error, .. } if connection_id == cid => {
                return Err(format!("dial: {error}"))
            }
            _ => {}
        }
    }
}

/// Close a connection and wait until the swarm reports it closed.
async fn disconnect(swarm: &mut Swarm<libp2p_stream::Behaviour>, cid: libp2p::swarm::ConnectionId) {
    if !swarm.close_connection(cid) {
        return;
    }
    loop {
        if let SwarmEvent::ConnectionClosed { connection_id, .. } = swarm.select_next_some().await {
            if connection_id == cid {
                return;
            }
        }
    }
}

async fn rtt(peer: PeerId, iters: u64) -> Result<(), String> {
    let mut swarm = client_swarm();
    let mut ctl = swarm.behaviour().new_control();
    let mut out = Vec::new();
    for _ in 0..iters {
        let t0 = Instant::now();
        let cid = connect(&mut swarm, peer).await?;
        let r: Result<(), String> = drive(&mut swarm, async {
            let mut s = ctl.open_stream(peer, ECHO).await.map_err(|e| format!("open: {e}"))?;
            s.write_all(&[42]).await.map_err(|e| e.to_string())?;
            s.flush().await.map_err(|e| e.to_string())?;
            let mut b = [0u8; 1];
            s.read_exact(&mut b).await.map_err(|e| e.to_string())?;
            if b[0] != 42 {
                return Err("echo differs".into());
            }
            out.push(ms(t0.elapsed()));
            let _ = s.close().await;
            Ok(())
        })
        .await;
        r?;
        disconnect(&mut swarm, cid).await;
    }
    emit("rtt", json!({ "ms": out }));
    Ok(())
}

async fn handshakes(peer: PeerId, secs: f64, parallel: u64) -> Result<(), String> {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let t0 = Instant::now();
    let workers = (0..parallel).map(|_| {
        tokio::spawn(async move {
            let mut swarm = client_swarm();
            let (mut done, mut failed) = (0u64, 0u64);
            while Instant::now() < end && failed <= 100 {
                match connect(&mut swarm, peer).await {
                    Ok(cid) => {
                        done += 1;
                        swarm.close_connection(cid);
                    }
                    Err(_) => failed += 1,
                }
            }
            (done, failed)
        })
    });
    let mut done = 0;
    let mut failed = 0;
    for r in future::join_all(workers).await {
        let (d, f) = r.map_err(|e| e.to_string())?;
        done += d;
        failed += f;
    }
    if failed > 100 {
        return Err("handshakes: too many failed dials".into());
    }
    let t = t0.elapsed();
    emit(
        "handshakes",
        json!({ "count": done, "failed": failed, "parallel": parallel, "ms": ms(t),
                "perSec": done as f64 / t.as_secs_f64() }),
    );
    Ok(())
}

pub async fn run(action: &str, args: &[String], peer: PeerId, ctl: Control) -> Result<(), String> {
    match action {
        "perfn" => {
            let n = num_arg(args, 0, None, "streams");
            let up = num_arg(args, 1, None, "upload bytes");
            let down = num_arg(args, 2, None, "download bytes");
            let t0 = Instant::now();
            let jobs = (0..n).map(|_| tokio::spawn(perf_once(ctl.clone(), peer, up, down)));
            for r in future::join_all(jobs).await {
                r.map_err(|e| e.to_string())?.map_err(|e| format!("perfn: {e}"))?;
            }
            emit(
                "perfn",
                json!({ "streams": n, "uploadBytes": up * n, "downloadBytes": down * n, "ms": ms(t0.elapsed()) }),
            );
            Ok(())
        }
        "rtt" => rtt(peer, num_arg(args, 0, None, "iterations")).await,
        "handshakes" => {
            let secs: f64 = args.first().and_then(|s| s.parse().ok()).ok_or("handshakes: bad seconds")?;
            handshakes(peer, secs, num_arg(args, 1, Some(1), "parallel")).await
        }
        other => Err(format!("unknown action {other:?}")),
    }
}
