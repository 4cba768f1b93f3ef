//! The node registry: each node's record under a key that lapses unless its heartbeat rewrites it.

use redis::AsyncCommands;

use crate::claims::millis;
use crate::keys;
use crate::{ClusterError, NodeId, NodeRecord, NodeState, Redis, LEASE};

#[derive(Clone)]
pub struct Registry {
    redis: Redis,
    lease_ms: u64,
}

impl Registry {
    pub fn new(redis: Redis) -> Self {
        Self {
            redis,
            lease_ms: millis(LEASE),
        }
    }

    /// The same with another lease (tests use short ones).
    pub fn with_lease(mut self, lease: std::time::Duration) -> Self {
        self.lease_ms = millis(lease);
        self
    }

    /// Writes (or rewrites) a node's record, alive for one [`LEASE`].
    pub async fn publish(&self, record: &NodeRecord) -> Result<(), ClusterError> {
        let json =
            serde_json::to_string(record).map_err(|e| ClusterError::Corrupt(e.to_string()))?;
        self.redis
            .connection()
            .pset_ex::<_, _, ()>(keys::node(&record.id), json, self.lease_ms)
            .await
            .map_err(ClusterError::from_redis)
    }

    /// Takes a node out of the registry at once (a clean shutdown; a dead node just lapses).
    pub async fn remove(&self, id: &NodeId) -> Result<(), ClusterError> {
        self.redis
            .connection()
            .del::<_, ()>(keys::node(id))
            .await
            .map_err(ClusterError::from_redis)
    }

    /// Every node alive now, by id. A record this version cannot read is skipped.
    pub async fn nodes(&self) -> Result<Vec<NodeRecord>, ClusterError> {
        let records = read_prefixed(&mut self.redis.connection(), keys::NODE_PREFIX).await?;
        let mut nodes: Vec<NodeRecord> = records
            .into_iter()
            .filter_map(|(_, json)| serde_json::from_str(&json).ok())
            .collect();
        nodes.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        Ok(nodes)
    }
}

/// Where a new room goes: the serving node with the fewest participants, then the fewest rooms,
/// then the lowest id (so every node that asks picks the same one).
pub fn place(nodes: &[NodeRecord]) -> Option<&NodeRecord> {
    nodes
        .iter()
        .filter(|n| n.state == NodeState::Serving)
        .min_by(|a, b| {
            (a.load.participants, a.load.rooms, a.id.as_str()).cmp(&(
                b.load.participants,
                b.load.rooms,
                b.id.as_str(),
            ))
        })
}

/// Every key under `prefix` with its value, the prefix taken off each name (a key that expired
/// between the scan and the read is left out).
pub(crate) async fn read_prefixed(
    connection: &mut redis::aio::ConnectionManager,
    prefix: &str,
) -> Result<Vec<(String, String)>, ClusterError> {
    let names = scan(connection, &format!("{prefix}*")).await?;
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let values: Vec<Option<String>> = connection
        .mget(&names)
        .await
        .map_err(ClusterError::from_redis)?;
    Ok(names
        .iter()
        .zip(values)
        .filter_map(|(name, value)| Some((name.strip_prefix(prefix)?.to_owned(), value?)))
        .collect())
}

/// Every key matching `pattern`, without blocking Redis the way `KEYS` would.
async fn scan(
    connection: &mut redis::aio::ConnectionManager,
    pattern: &str,
) -> Result<Vec<String>, ClusterError> {
    let mut cursor: u64 = 0;
    let mut found = Vec::new();
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(500)
            .query_async(connection)
            .await
            .map_err(ClusterError::from_redis)?;
        found.extend(batch);
        if next == 0 {
            found.sort();
            found.dedup();
            return Ok(found);
        }
        cursor = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeLoad;

    fn node(id: &str, state: NodeState, participants: u64, rooms: u64) -> NodeRecord {
        NodeRecord {
            id: NodeId::parse(id).unwrap(),
            url: format!("http://{id}"),
            state,
            load: NodeLoad {
                rooms,
                participants,
                cpu: 0.0,
            },
            updated_ms: 0,
        }
    }

    #[test]
    fn a_new_room_goes_to_the_serving_node_with_the_fewest_participants() {
        let nodes = [
            node("a", NodeState::Serving, 10, 1),
            node("b", NodeState::Draining, 0, 0),
            node("c", NodeState::Serving, 3, 2),
        ];
        assert_eq!(place(&nodes).unwrap().id.as_str(), "c");
    }

    #[test]
    fn ties_go_to_fewer_rooms_then_the_lowest_id() {
        let nodes = [
            node("b", NodeState::Serving, 4, 1),
            node("a", NodeState::Serving, 4, 1),
            node("c", NodeState::Serving, 4, 2),
        ];
        assert_eq!(place(&nodes).unwrap().id.as_str(), "a");
    }

    #[test]
    fn with_every_node_draining_there_is_nowhere_to_go() {
        assert!(place(&[node("a", NodeState::Draining, 0, 0)]).is_none());
    }
}
