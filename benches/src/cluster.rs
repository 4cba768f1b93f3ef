//! The `cluster` scenario: what it costs a client to reach a room through another node of a
//! cluster (its signaling relayed through Redis to the room's owner) instead of through the
//! owner itself.
//!
//! A Redis (Debian's `redis-server`) and two roomcast nodes, `entry` and `owner`. Every room the
//! scenario uses is claimed for `owner` in Redis before its first join, as placement does, so
//! that the same joins and messages can be sent once to `owner` directly and once through
//! `entry`. Three measurements, each on both paths:
//! - join time: WebSocket open to `joined` (signaling alone), and to a connected PeerConnection
//!   (a webrtc-rs subscriber joining a room with one publisher), joins one after another;
//! - message latency: one participant mutes and unmutes, another in the room times the
//!   `participant_updated` it is sent (both on the same path, so a relayed message crosses Redis
//!   twice: sender to owner, owner to the receiver's entry node);
//! - join throughput: `concurrency` clients join rooms of ten as fast as they are answered
//!   (signaling only), `storm_joins` in all; joins per second over the whole storm.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::admin;
use crate::histogram::Histogram;
use crate::peer::{Participant, PeerFactory, Role, Shared};
use crate::sfu_process::SfuProcess;
use crate::signaling::Signaling;

/// How long a subscriber may take to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Under the default message rate (20/s, burst 60) with room to spare.
const MESSAGE_GAP: Duration = Duration::from_millis(60);
/// Joiners per room in the throughput storm.
const STORM_ROOM: usize = 10;

#[derive(Clone, Copy, Debug)]
pub struct ClusterConfig {
    /// Joins timed one after another, per path and kind.
    pub joins: usize,
    /// Mute toggles timed per path.
    pub messages: usize,
    /// Joins in each path's throughput storm.
    pub storm_joins: usize,
    pub concurrency: usize,
}

/// One path's figures.
pub struct PathResult {
    pub label: &'static str,
    pub to_joined: Histogram,
    pub to_connected: Histogram,
    pub message: Histogram,
    pub storm_rate: f64,
    pub storm_to_joined: Histogram,
}

/// Runs the scenario against `binary`: the direct path first, then the relayed one.
pub async fn run(binary: &Path, config: ClusterConfig) -> Result<Vec<PathResult>> {
    let redis = Redis::start().await?;
    let cluster = ["--redis".to_owned(), redis.url()];
    let owner = SfuProcess::start_with(binary, None, 1000, &cluster).await?;
    let entry = SfuProcess::start_with(binary, None, 1000, &cluster).await?;
    let owner_id = node_id(owner.addr).await?;
    let paths = [("direct", owner.addr), ("relayed", entry.addr)];
    let mut results = Vec::new();
    for (label, addr) in paths {
        println!("cluster: {label} (through {addr})");
        let mut result = PathResult {
            label,
            to_joined: Histogram::default(),
            to_connected: Histogram::default(),
            message: Histogram::default(),
            storm_rate: 0.0,
            storm_to_joined: Histogram::default(),
        };
        let room = |what: &str| format!("{what}-{label}");
        for what in ["joins", "media", "messages"] {
            redis.claim(&room(what), &owner_id).await?;
        }
        time_joins(addr, &room("joins"), config.joins, &mut result.to_joined).await?;
        time_media_joins(
            owner.addr,
            addr,
            &room("media"),
            config.joins,
            &mut result.to_connected,
        )
        .await?;
        time_messages(
            addr,
            &room("messages"),
            config.messages,
            &mut result.message,
        )
        .await?;
        let rooms: Vec<String> = (0..config.storm_joins.div_ceil(STORM_ROOM))
            .map(|i| room(&format!("storm{i}")))
            .collect();
        for r in &rooms {
            redis.claim(r, &owner_id).await?;
        }
        result.storm_rate = storm(addr, &rooms, config, &mut result.storm_to_joined).await?;
        results.push(result);
    }
    owner.stop().await;
    entry.stop().await;
    Ok(results)
}

/// Signaling joins, one after another: WebSocket open to `joined`.
async fn time_joins(addr: SocketAddr, room: &str, n: usize, into: &mut Histogram) -> Result<()> {
    for i in 0..n {
        let started = Instant::now();
        let mut ws = Signaling::connect(addr).await?;
        ws.join(room, &format!("joiner {i}")).await?;
        into.record(started.elapsed().as_micros() as u64);
        ws.send(json!({"type": "leave"})).await?;
        wait_for(&mut ws, |m| m["type"] == "left").await?;
    }
    Ok(())
}

/// Subscribers joining a room with one publisher (on the owner), one after another:
/// WebSocket open to a connected PeerConnection.
async fn time_media_joins(
    owner: SocketAddr,
    addr: SocketAddr,
    room: &str,
    n: usize,
    into: &mut Histogram,
) -> Result<()> {
    let factory = PeerFactory::new()?;
    let shared = Arc::new(Shared::default());
    let publisher = Participant::join(&factory, owner, room, Role::Publisher, &shared).await?;
    publisher.connected(CONNECT_TIMEOUT).await?;
    for _ in 0..n {
        let started = Instant::now();
        let subscriber = Participant::join(&factory, addr, room, Role::Subscriber, &shared).await?;
        subscriber.connected(CONNECT_TIMEOUT).await?;
        into.record(started.elapsed().as_micros() as u64);
        subscriber.close().await;
    }
    publisher.close().await;
    Ok(())
}

/// A sender mutes and unmutes; a receiver times each `participant_updated` it gets.
async fn time_messages(addr: SocketAddr, room: &str, n: usize, into: &mut Histogram) -> Result<()> {
    let mut receiver = Signaling::connect(addr).await?;
    receiver.join(room, "receiver").await?;
    let mut sender = Signaling::connect(addr).await?;
    let sender_id = sender.join(room, "sender").await?.id;
    for i in 0..n {
        let muted = i % 2 == 0;
        let started = Instant::now();
        sender
            .send(json!({"type": "mute", "kind": "audio", "muted": muted}))
            .await?;
        wait_for(&mut receiver, |m| {
            m["type"] == "participant_updated"
                && m["participant"]["id"] == sender_id.as_str()
                && m["participant"]["audio_muted"] == muted
        })
        .await?;
        into.record(started.elapsed().as_micros() as u64);
        tokio::time::sleep(MESSAGE_GAP).await;
    }
    Ok(())
}

/// `storm_joins` signaling joins by `concurrency` clients at once; each stays in its room until
/// the storm ends. Returns joins per second over the storm.
async fn storm(
    addr: SocketAddr,
    rooms: &[String],
    config: ClusterConfig,
    into: &mut Histogram,
) -> Result<f64> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..config.concurrency {
        let (next, rooms, total) = (Arc::clone(&next), rooms.to_vec(), config.storm_joins);
        workers.spawn(async move {
            let mut held = Vec::new();
            let mut times = Histogram::default();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    return Ok::<_, anyhow::Error>((held, times));
                }
                let begun = Instant::now();
                let mut ws = Signaling::connect(addr).await?;
                ws.join(&rooms[i / STORM_ROOM], &format!("storm {i}"))
                    .await?;
                times.record(begun.elapsed().as_micros() as u64);
                held.push(ws);
            }
        });
    }
    let mut held = Vec::new();
    while let Some(done) = workers.join_next().await {
        let (sockets, times) = done??;
        into.merge(&times);
        held.extend(sockets);
    }
    let rate = config.storm_joins as f64 / started.elapsed().as_secs_f64();
    drop(held);
    // Let the rooms empty before the next path.
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(rate)
}

async fn wait_for(ws: &mut Signaling, wanted: impl Fn(&Value) -> bool) -> Result<Value> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.recv().await? {
                Some(m) if wanted(&m) => return Ok(m),
                Some(m) if m["type"] == "error" => bail!("server error: {m}"),
                Some(_) => continue,
                None => bail!("the server closed the connection"),
            }
        }
    })
    .await
    .map_err(|_| anyhow!("no awaited message within 10 s"))?
}

/// The id the node at `addr` has in the cluster, once it lists itself.
async fn node_id(addr: SocketAddr) -> Result<String> {
    let url = format!("http://{addr}");
    for _ in 0..50 {
        let nodes = admin::get_json(addr, "/api/nodes").await?;
        let me = nodes
            .as_array()
            .and_then(|n| n.iter().find(|n| n["url"] == url.as_str()));
        if let Some(id) = me.and_then(|n| n["id"].as_str()) {
            return Ok(id.to_owned());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the node at {addr} never listed itself")
}

/// A throwaway `redis-server` on a free loopback port, killed when dropped.
struct Redis {
    _child: Child,
    port: u16,
}

impl Redis {
    async fn start() -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting redis-server (apt-get install -y redis-server)")?;
        for _ in 0..250 {
            if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Ok(Self {
                    _child: child,
                    port,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!("redis-server did not start")
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Claims `room` for `node` as placement does (a lease the node renews once it holds it).
    async fn claim(&self, room: &str, node: &str) -> Result<()> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).await?;
        let command = format!("SET roomcast:room:{room} {node} PX 30000\r\n");
        stream.write_all(command.as_bytes()).await?;
        let mut reply = String::new();
        BufReader::new(stream).read_line(&mut reply).await?;
        anyhow::ensure!(reply.starts_with("+OK"), "claiming {room}: {reply}");
        Ok(())
    }
}

/// The results as a Markdown table, milliseconds.
pub fn table(results: &[PathResult]) -> String {
    let ms = |h: &Histogram, q: f64| {
        h.quantile(q)
            .map_or("–".to_owned(), |us| format!("{:.1}", us as f64 / 1000.0))
    };
    let mut out = String::from(
        "| path | to `joined` p50 / p99 (ms) | to connected media p50 / p99 (ms) | message p50 / p99 (ms) | join storm (joins/s) | storm's to `joined` p50 / p99 (ms) |\n|---|---|---|---|---|---|\n",
    );
    for r in results {
        out.push_str(&format!(
            "| {} | {} / {} | {} / {} | {} / {} | {:.0} | {} / {} |\n",
            r.label,
            ms(&r.to_joined, 0.5),
            ms(&r.to_joined, 0.99),
            ms(&r.to_connected, 0.5),
            ms(&r.to_connected, 0.99),
            ms(&r.message, 0.5),
            ms(&r.message, 0.99),
            r.storm_rate,
            ms(&r.storm_to_joined, 0.5),
            ms(&r.storm_to_joined, 0.99),
        ));
    }
    out
}
