//! Several roomcast nodes as one service, coordinated through Redis (`--redis`).
//!
//! Redis holds two kinds of keys, each with a short expiry that only its writer refreshes, so a
//! node that dies (`kill -9`) simply lapses:
//! - `roomcast:node:<id>`: a node's record (its base URL, serving or draining, and its load),
//!   rewritten by its heartbeat; the registry is the set of such keys alive.
//! - `roomcast:room:<room>`: the id of the node that owns the room. The first join claims it
//!   atomically (`SET NX`); only the owner refreshes or releases it (compare-and-set scripts),
//!   so a node that lost its claim (it lapsed while the node was cut off) cannot take it back
//!   from the node that claimed it since.
//!
//! and one pub/sub channel per node, `roomcast:mail:<id>`: its mailbox, through which other
//! nodes relay the signaling of participants who reached the service through them.
//!
//! Nodes trust each other only through Redis: protect it with a password, TLS (`rediss://`) and
//! a private network (docs/scale-out.md).

mod claims;
mod error;
mod heartbeat;
mod keys;
mod mailbox;
mod node;
mod registry;

pub use claims::{Claim, RoomClaims};
pub use error::ClusterError;
pub use heartbeat::{Heartbeat, LoadSource};
pub use mailbox::{Delivery, Mailbox, Postman};
pub use node::{NodeId, NodeLoad, NodeRecord, NodeState};
pub use registry::{place, Registry};

use std::time::Duration;

/// How long a node's record and its room claims live without a refresh: a node killed outright
/// is forgotten, and its rooms free to be claimed again, within this.
pub const LEASE: Duration = Duration::from_secs(6);

/// How often a node refreshes its record and claims: three tries per lease.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// A connection to the cluster's Redis that reconnects by itself; cheap to clone.
#[derive(Clone)]
pub struct Redis {
    connection: redis::aio::ConnectionManager,
}

impl Redis {
    /// Connects to `url` (`redis://` or `rediss://`, password in the URL).
    pub async fn connect(url: &str) -> Result<Self, ClusterError> {
        let client = redis::Client::open(url).map_err(ClusterError::from_redis)?;
        let connection = redis::aio::ConnectionManager::new_with_config(client, manager_config())
            .await
            .map_err(ClusterError::from_redis)?;
        Ok(Self { connection })
    }

    pub(crate) fn connection(&self) -> redis::aio::ConnectionManager {
        self.connection.clone()
    }
}

/// Every connection to Redis gives up after 2 s, connecting or waiting for an answer, so a Redis
/// that went away is an error, never a hang.
pub(crate) fn manager_config() -> redis::aio::ConnectionManagerConfig {
    redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)))
}
