//! A node's heartbeat: every [`HEARTBEAT`] it rewrites its record with its load and renews its
//! room claims. Redis going away is logged once when it goes and once when it is back, not on
//! every beat; the node goes on serving the rooms it has meanwhile.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::task::JoinHandle;

use crate::{Claim, NodeLoad, NodeRecord, NodeState, Registry, RoomClaims, HEARTBEAT};

/// What the heartbeat reads of the node (its load, and which rooms are open on it), and whom it
/// tells of a room another node claimed while this one ran it.
pub trait LoadSource: Send + Sync + 'static {
    fn load(&self) -> NodeLoad;
    fn open_rooms(&self) -> Vec<String>;
    /// `room`, open here, is claimed by another node now: the room lives there.
    fn room_taken(&self, room: &str);
}

/// The running heartbeat of this node.
pub struct Heartbeat {
    node: Arc<Beating>,
    task: JoinHandle<()>,
}

/// What the heartbeat speaks for.
struct Beating {
    registry: Registry,
    claims: RoomClaims,
    url: String,
    load: Box<dyn LoadSource>,
}

impl Beating {
    fn record(&self, state: NodeState) -> NodeRecord {
        NodeRecord {
            id: self.claims.node().clone(),
            url: self.url.clone(),
            state,
            load: self.load.load(),
            updated_ms: now_ms(),
        }
    }
}

impl Heartbeat {
    /// Starts beating for the node `claims` speaks for, reachable at `url`.
    pub fn start(
        registry: Registry,
        claims: RoomClaims,
        url: String,
        load: impl LoadSource,
    ) -> Self {
        let node = Arc::new(Beating {
            registry,
            claims,
            url,
            load: Box::new(load),
        });
        let task = tokio::spawn(beat(Arc::clone(&node)));
        Self { node, task }
    }

    /// The first step of a shutdown: stops beating (a beat would claim the still-open rooms
    /// again), says at once that the node is draining (no new room is placed on it) and gives up
    /// its rooms' claims, so that its participants, told to reconnect next, find their rooms
    /// re-created on a serving node.
    pub async fn drain(self) -> Result<(), crate::ClusterError> {
        self.task.abort();
        let node = &self.node;
        node.registry
            .publish(&node.record(NodeState::Draining))
            .await?;
        node.claims.release_all().await
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn beat(node: Arc<Beating>) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reachable = true;
    loop {
        tick.tick().await;
        let result = match node
            .registry
            .publish(&node.record(NodeState::Serving))
            .await
        {
            Ok(()) => release_then_refresh(&node.claims, node.load.as_ref()).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(lost) => {
                if !reachable {
                    tracing::info!("the cluster's Redis is reachable again");
                    reachable = true;
                }
                for room in lost {
                    tracing::warn!(%room, "another node claimed a room open here while Redis was out of reach: handing it over");
                    node.load.room_taken(&room);
                }
            }
            Err(error) if reachable => {
                tracing::warn!(%error, "the cluster's Redis is out of reach; rooms here keep running");
                reachable = false;
            }
            Err(_) => {}
        }
    }
}

/// Gives up the rooms that closed here (a beat after they did at most), renews the rest, and
/// claims again the rooms still open here whose claims lapsed (Redis was out of reach longer
/// than a lease); returns those another node took meanwhile.
async fn release_then_refresh(
    claims: &RoomClaims,
    load: &dyn LoadSource,
) -> Result<Vec<String>, crate::ClusterError> {
    let open = load.open_rooms();
    for room in claims.release_unused(&open, HEARTBEAT).await? {
        tracing::debug!(%room, "released the claim on a room that closed");
    }
    let mut taken = Vec::new();
    for room in claims.refresh().await? {
        if open.contains(&room) && claims.claim(&room).await? != Claim::Mine {
            taken.push(room);
        }
    }
    Ok(taken)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
