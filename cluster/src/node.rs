//! What a node says about itself in the registry.

use serde::{Deserialize, Serialize};

/// A node's id: random per process, so a restarted node is a new node.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(String);

impl NodeId {
    pub fn random() -> Self {
        Self(format!("n{:012x}", rand::random::<u64>() >> 16))
    }

    pub fn parse(s: &str) -> Option<Self> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Takes new rooms.
    Serving,
    /// Shutting down: keeps its rooms until they empty, takes no new ones.
    Draining,
}

/// How busy a node is, for placing new rooms on the least loaded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeLoad {
    pub rooms: u64,
    pub participants: u64,
    /// CPU the process used over the last heartbeat, in cores (1.0 = one core busy).
    pub cpu: f64,
}

/// A node as the registry lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: NodeId,
    /// The base URL other nodes and operators use to reach this node.
    pub url: String,
    pub state: NodeState,
    pub load: NodeLoad,
    /// When the record was written, in milliseconds since the Unix epoch.
    pub updated_ms: u64,
}
