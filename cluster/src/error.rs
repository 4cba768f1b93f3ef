//! What can go wrong talking to the cluster.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ClusterError {
    /// Redis could not be reached, or did not answer in time: the caller should treat the
    /// cluster as unavailable for now (joins that need it get `unavailable`).
    #[error("the cluster's Redis is unavailable: {0}")]
    Unavailable(String),
    /// Redis answered with something this version cannot read.
    #[error("unexpected data in the cluster's Redis: {0}")]
    Corrupt(String),
}

impl ClusterError {
    pub(crate) fn from_redis(e: redis::RedisError) -> Self {
        ClusterError::Unavailable(e.to_string())
    }
}
