//! Room ownership: a room lives on exactly one node, named by a key only that node refreshes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::AsyncCommands;

use crate::keys;
use crate::registry::read_prefixed;
use crate::{ClusterError, NodeId, Redis, LEASE};

/// Renews a claim only if it is still the caller's.
const REFRESH: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0";

/// Gives a claim up only if it is still the caller's.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

/// Who owns a room, as a claim found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// This node: it claimed the room now or holds it already.
    Mine,
    /// Another node holds the room.
    Elsewhere(NodeId),
}

/// This node's claims on rooms.
#[derive(Clone)]
pub struct RoomClaims {
    redis: Redis,
    node: NodeId,
    /// The rooms this node holds, refreshed by its heartbeat, each with when it was last
    /// claimed (a join in progress may not have opened its room yet).
    held: Arc<Mutex<BTreeMap<String, Instant>>>,
    lease_ms: u64,
}

impl RoomClaims {
    pub fn new(redis: Redis, node: NodeId) -> Self {
        Self {
            redis,
            node,
            held: Arc::default(),
            lease_ms: millis(LEASE),
        }
    }

    /// The same with another lease (tests use short ones).
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease_ms = millis(lease);
        self
    }

    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// Claims `room` for this node unless another node holds it.
    pub async fn claim(&self, room: &str) -> Result<Claim, ClusterError> {
        let owner = self.claim_for(room, &self.node).await?;
        Ok(if owner == self.node {
            Claim::Mine
        } else {
            Claim::Elsewhere(owner)
        })
    }

    /// Claims `room` for `node` (placement chose it) unless a node holds it already; returns
    /// the owner. A node claimed for learns it when the join reaches it, and from then renews
    /// the claim itself; should the join never reach it, the claim lapses within a lease.
    pub async fn claim_for(&self, room: &str, node: &NodeId) -> Result<NodeId, ClusterError> {
        let mut connection = self.redis.connection();
        let key = keys::room(room);
        // Twice at most: a claim that lapses between SET NX and GET leaves the room free again.
        for _ in 0..2 {
            let set: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(node.as_str())
                .arg("NX")
                .arg("PX")
                .arg(self.lease_ms)
                .query_async(&mut connection)
                .await
                .map_err(ClusterError::from_redis)?;
            let owner = if set.is_some() {
                Some(node.as_str().to_owned())
            } else {
                connection
                    .get(&key)
                    .await
                    .map_err(ClusterError::from_redis)?
            };
            let Some(owner) = owner else { continue };
            let owner = NodeId::parse(&owner)
                .ok_or_else(|| ClusterError::Corrupt(format!("owner of {room}: {owner:?}")))?;
            if owner == self.node {
                self.hold(room);
            }
            return Ok(owner);
        }
        Err(ClusterError::Unavailable(format!(
            "the claim on {room} keeps lapsing"
        )))
    }

    /// The node that owns `room`, if any does.
    pub async fn owner(&self, room: &str) -> Result<Option<NodeId>, ClusterError> {
        let owner: Option<String> = self
            .redis
            .connection()
            .get(keys::room(room))
            .await
            .map_err(ClusterError::from_redis)?;
        Ok(owner.and_then(|o| NodeId::parse(&o)))
    }

    /// Renews every claim this node holds; returns the rooms whose claim it found lost (it
    /// lapsed, and perhaps another node claimed the room since), which it no longer holds.
    pub async fn refresh(&self) -> Result<Vec<String>, ClusterError> {
        let rooms: Vec<String> = self.lock().keys().cloned().collect();
        let script = redis::Script::new(REFRESH);
        let mut connection = self.redis.connection();
        let mut lost = Vec::new();
        for room in rooms {
            let renewed: i64 = script
                .key(keys::room(&room))
                .arg(self.node.as_str())
                .arg(self.lease_ms)
                .invoke_async(&mut connection)
                .await
                .map_err(ClusterError::from_redis)?;
            if renewed == 0 {
                self.lock().remove(&room);
                lost.push(room);
            }
        }
        Ok(lost)
    }

    /// Gives up `room` (it closed), unless another node holds it by now.
    pub async fn release(&self, room: &str) -> Result<(), ClusterError> {
        self.lock().remove(room);
        redis::Script::new(RELEASE)
            .key(keys::room(room))
            .arg(self.node.as_str())
            .invoke_async::<i64>(&mut self.redis.connection())
            .await
            .map(|_| ())
            .map_err(ClusterError::from_redis)
    }

    /// Gives up every room this node holds (it is draining: joins for them go elsewhere now).
    pub async fn release_all(&self) -> Result<(), ClusterError> {
        for room in self.held() {
            self.release(&room).await?;
        }
        Ok(())
    }

    /// Every claimed room in the cluster with its owner, by room.
    pub async fn all(&self) -> Result<Vec<(String, NodeId)>, ClusterError> {
        let claims = read_prefixed(&mut self.redis.connection(), &keys::room("")).await?;
        Ok(claims
            .into_iter()
            .filter_map(|(room, owner)| Some((room, NodeId::parse(&owner)?)))
            .collect())
    }

    /// The rooms this node holds, as far as it knows.
    pub fn held(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Releases the claims on rooms that are not open here (they closed, or the join that
    /// claimed one failed), except those claimed within `grace` (a join may still be opening
    /// its room). Returns the rooms released.
    pub async fn release_unused(
        &self,
        open: &[String],
        grace: Duration,
    ) -> Result<Vec<String>, ClusterError> {
        let now = Instant::now();
        let unused: Vec<String> = self
            .lock()
            .iter()
            .filter(|(room, claimed)| {
                !open.contains(room) && now.saturating_duration_since(**claimed) >= grace
            })
            .map(|(room, _)| room.clone())
            .collect();
        for room in &unused {
            self.release(room).await?;
        }
        Ok(unused)
    }

    fn hold(&self, room: &str) {
        self.lock().insert(room.to_owned(), Instant::now());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Instant>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
