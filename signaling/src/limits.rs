//! Bounds on what one signaling connection may send: message size, message rate, and how many
//! refusals it may earn before the server stops listening to it.

use std::time::Duration;

use tokio::time::Instant;

/// Per-connection and per-server bounds of the edge.
#[derive(Clone, Debug, PartialEq)]
pub struct EdgeLimits {
    /// Largest text message parsed; larger ones get `too_large` (and count as a refusal).
    pub max_message_bytes: usize,
    /// Sustained messages per second one connection may send.
    pub messages_per_second: f64,
    /// Messages a connection may send at once before the rate applies.
    pub message_burst: f64,
    /// Refused messages (bad input, over the rate) a connection may send within
    /// `strike_window` before it is closed.
    pub max_strikes: u32,
    pub strike_window: Duration,
    /// Open WebSocket connections at once; more are turned away with 503.
    pub max_connections: usize,
    /// Open WebSocket connections from one address; more are turned away with 429.
    pub max_connections_per_address: usize,
    /// Bytes read from a connection while it is not in a room (a join needs a few hundred);
    /// past them it is not read until it joins, so unauthenticated clients cannot make the
    /// server buffer big messages.
    pub unjoined_bytes: usize,
    /// A connection not in a room for this long is closed.
    pub join_timeout: Duration,
    /// How long a message may take to arrive once it has begun.
    pub unfinished_timeout: Duration,
    /// Pings go out this often; a connection that answers none for two intervals is closed.
    pub ping_interval: Duration,
    /// An address whose connection was closed as abusive may not connect for this long, twice
    /// as long after each further close, up to `abuse_backoff_max`.
    pub abuse_backoff: Duration,
    pub abuse_backoff_max: Duration,
}

impl Default for EdgeLimits {
    fn default() -> Self {
        Self {
            max_message_bytes: crate::protocol::MAX_MESSAGE_BYTES,
            // Trickle ICE sends a few dozen candidates in the first second.
            messages_per_second: 20.0,
            message_burst: 60.0,
            max_strikes: 20,
            strike_window: Duration::from_secs(10),
            max_connections: 10_000,
            max_connections_per_address: 32,
            unjoined_bytes: 64 * 1024,
            join_timeout: Duration::from_secs(10),
            unfinished_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(15),
            abuse_backoff: Duration::from_secs(10),
            abuse_backoff_max: Duration::from_secs(600),
        }
    }
}

/// Counts a connection's refusals in a sliding window.
#[derive(Debug)]
pub(crate) struct Strikes {
    max: u32,
    window: Duration,
    started: Instant,
    count: u32,
}

impl Strikes {
    pub(crate) fn new(max: u32, window: Duration, now: Instant) -> Self {
        Self {
            max,
            window,
            started: now,
            count: 0,
        }
    }

    /// Records one refusal; true when the connection has now earned more than it may.
    pub(crate) fn add(&mut self, now: Instant) -> bool {
        if now.saturating_duration_since(self.started) > self.window {
            self.started = now;
            self.count = 0;
        }
        self.count += 1;
        self.count > self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strikes_past_the_maximum_within_the_window_mean_out() {
        let t0 = Instant::now();
        let mut strikes = Strikes::new(2, Duration::from_secs(10), t0);
        assert!(!strikes.add(t0));
        assert!(!strikes.add(t0));
        assert!(strikes.add(t0));
    }

    #[test]
    fn strikes_are_forgiven_after_the_window() {
        let t0 = Instant::now();
        let mut strikes = Strikes::new(2, Duration::from_secs(10), t0);
        strikes.add(t0);
        strikes.add(t0);
        assert!(!strikes.add(t0 + Duration::from_secs(11)));
    }
}
