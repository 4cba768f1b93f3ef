//! Data channels: what one participant writes on its `data` channel reaches the `data` channels
//! of the others in its room.
//!
//! A client writes `{"payload": <any JSON>, "to": ["<id>", …]}` (`to` absent: everyone else);
//! each recipient gets `{"from": "<sender id>", "payload": …}`, the payload byte for byte as
//! sent. The [`gate`] decides what passes (size, rate, the right to publish, the shape), the
//! room hands each recipient's copy to that recipient's bounded outbox, and the [`relay`] tasks
//! move messages between the channels and the room.

pub(crate) mod envelope;
pub(crate) mod gate;
pub(crate) mod relay;

#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};

use thiserror::Error;

/// Largest message a client may write on its `data` channel, in bytes.
pub const MAX_DATA_MESSAGE_BYTES: usize = 16 * 1024;

/// Why a data channel message was not relayed. The sender is told; no one else notices.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DataRejection {
    #[error("data channel message of {size} bytes exceeds {max}")]
    TooLarge { size: usize, max: usize },
    #[error("data channel message is not JSON: {0}")]
    BadJson(String),
    #[error("data channel message: {0}")]
    Invalid(&'static str),
    #[error("too many data channel messages: slow down; messages are being dropped")]
    RateLimited,
    #[error("your room token does not allow sending data")]
    NotAllowed,
}

impl DataRejection {
    /// Every reason, in the order of [`DataCounters::rejected`].
    pub const REASONS: [&'static str; 5] = [
        "too_large",
        "bad_json",
        "invalid",
        "rate_limited",
        "not_allowed",
    ];

    /// The protocol's error code.
    pub fn code(&self) -> &'static str {
        match self {
            DataRejection::TooLarge { .. } => "too_large",
            DataRejection::BadJson(_) => "bad_json",
            DataRejection::Invalid(_) => "invalid_message",
            DataRejection::RateLimited => "rate_limited",
            DataRejection::NotAllowed => "unauthorized",
        }
    }

    fn index(&self) -> usize {
        match self {
            DataRejection::TooLarge { .. } => 0,
            DataRejection::BadJson(_) => 1,
            DataRejection::Invalid(_) => 2,
            DataRejection::RateLimited => 3,
            DataRejection::NotAllowed => 4,
        }
    }
}

/// Server-wide data channel figures.
#[derive(Debug, Default)]
pub(crate) struct DataCounters {
    /// Copies handed to a recipient's channel.
    pub(crate) delivered: AtomicU64,
    /// Copies dropped because the recipient's outbox was full (a receiver too slow to keep up).
    pub(crate) dropped: AtomicU64,
    /// Messages refused, by [`DataRejection::REASONS`].
    pub(crate) rejected: [AtomicU64; 5],
}

impl DataCounters {
    pub(crate) fn reject(&self, rejection: &DataRejection, n: u64) {
        self.rejected[rejection.index()].fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn rejected(&self) -> Vec<(&'static str, u64)> {
        DataRejection::REASONS
            .iter()
            .zip(&self.rejected)
            .map(|(reason, n)| (*reason, n.load(Ordering::Relaxed)))
            .collect()
    }
}
