//! Joining a cluster (`--redis`): this node's record and heartbeat in Redis, its mailbox for
//! relayed signaling, and what the edge needs to list the cluster's nodes.

use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result};
use roomcast_cluster::{
    Heartbeat, LoadSource, Mailbox, NodeId, NodeLoad, Redis, Registry, RoomClaims,
};
use roomcast_sfu::Sfu;
use roomcast_signaling::{ClusterMember, Relay};

/// This node in its cluster; dropping it stops the heartbeat.
pub struct Membership {
    pub member: ClusterMember,
    heartbeat: Option<Heartbeat>,
}

impl Membership {
    /// Connects to Redis and starts beating; the node is listed within one heartbeat.
    pub async fn join(
        url: &str,
        node_url: String,
        sfu: Sfu,
        max_message_bytes: usize,
    ) -> Result<Self> {
        let redis = Redis::connect(url)
            .await
            .context("connecting to the cluster's Redis (--redis)")?;
        let node = NodeId::random();
        let (mailbox, postman) = Mailbox::open(url, &node)
            .await
            .context("subscribing to this node's mailbox in the cluster's Redis (--redis)")?;
        let registry = Registry::new(redis.clone());
        let claims = RoomClaims::new(redis, node.clone());
        let heartbeat = Heartbeat::start(
            registry.clone(),
            claims.clone(),
            node_url.clone(),
            SfuLoad::new(sfu.clone()),
        );
        let relay = Relay::start(mailbox, postman, claims.clone(), sfu, max_message_bytes);
        tracing::info!(%node, url = %node_url, "joined the cluster");
        Ok(Self {
            member: ClusterMember {
                registry,
                claims,
                relay,
            },
            heartbeat: Some(heartbeat),
        })
    }

    /// The first step of a shutdown: the node says it is draining and gives up its rooms'
    /// claims (see [`Heartbeat::drain`]).
    pub async fn drain(&mut self) {
        let Some(heartbeat) = self.heartbeat.take() else {
            return;
        };
        match heartbeat.drain().await {
            Ok(()) => tracing::info!(
                "draining: no new rooms here, and this node's rooms are free to move"
            ),
            Err(error) => {
                tracing::warn!(%error, "could not say this node is draining or give up its rooms; they lapse by themselves")
            }
        }
    }

    /// Waits, until `deadline` at most, for the participants this node runs for other nodes'
    /// clients to have told their entry nodes they left.
    pub async fn settle(&self, deadline: tokio::time::Instant) {
        self.member.relay.settle(deadline).await;
    }

    /// Takes the node out of the registry at once.
    pub async fn leave(self) {
        drop(self.heartbeat);
        let node = self.member.claims.node().clone();
        if let Err(error) = self.member.registry.remove(&node).await {
            tracing::warn!(%error, "could not take this node out of the registry; it lapses by itself");
        }
    }
}

/// The node's load as the registry shows it: rooms and participants from the SFU, CPU from the
/// process's own accounting since the last reading.
struct SfuLoad {
    sfu: Sfu,
    last: Mutex<(Instant, f64)>,
}

impl SfuLoad {
    fn new(sfu: Sfu) -> Self {
        Self {
            sfu,
            last: Mutex::new((Instant::now(), cpu_seconds())),
        }
    }
}

impl LoadSource for SfuLoad {
    fn load(&self) -> NodeLoad {
        let totals = self.sfu.totals();
        let (now, used) = (Instant::now(), cpu_seconds());
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.duration_since(last.0).as_secs_f64();
        let cpu = if elapsed > 0.0 {
            (used - last.1) / elapsed
        } else {
            0.0
        };
        *last = (now, used);
        NodeLoad {
            rooms: totals.rooms,
            participants: totals.participants,
            cpu: (cpu * 100.0).round() / 100.0,
        }
    }

    /// Everyone here is told to join again, which takes them to the node that holds the room.
    fn room_taken(&self, room: &str) {
        self.sfu.hand_over_room(room);
    }

    fn open_rooms(&self) -> Vec<String> {
        self.sfu
            .rooms()
            .into_iter()
            .map(|r| r.id.to_string())
            .collect()
    }
}

/// CPU time this process has used, user and system, in seconds.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given and reads nothing else.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}
