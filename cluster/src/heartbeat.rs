//! A node's heartbeat: every [`HEARTBEAT`] it rewrites its record with its load and renews its
//! room claims. Redis going away is logged once when it goes and once when it is back, not on
//! every beat; the node goes on serving the rooms it has meanwhile.

use std::sync::atomic::{AtomicBool, Ordering};
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
    draining: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Heartbeat {
    /// Starts beating for the node `claims` speaks for, reachable at `url`.
    pub fn start(
        registry: Registry,
        claims: RoomClaims,
        url: String,
        load: impl LoadSource,
    ) -> Self {
        let draining = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(beat(registry, claims, url, load, Arc::clone(&draining)));
        Self { draining, task }
    }

    /// From now on the node says it is draining: no new rooms are placed on it.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn beat(
    registry: Registry,
    claims: RoomClaims,
    url: String,
    load: impl LoadSource,
    draining: Arc<AtomicBool>,
) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reachable = true;
    loop {
        tick.tick().await;
        let state = if draining.load(Ordering::Relaxed) {
            NodeState::Draining
        } else {
            NodeState::Serving
        };
        let record = NodeRecord {
            id: claims.node().clone(),
            url: url.clone(),
            state,
            load: load.load(),
            updated_ms: now_ms(),
        };
        let result = match registry.publish(&record).await {
            Ok(()) => release_then_refresh(&claims, &load).await,
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
                    load.room_taken(&room);
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
    load: &impl LoadSource,
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
