//! Flags for the bounds on what clients may make the server hold (see `docs/security.md`).

use clap::Args;
use roomcast_sfu::SfuLimits;
use roomcast_signaling::EdgeLimits;

#[derive(Debug, Args)]
#[command(next_help_heading = "Limits")]
pub struct LimitFlags {
    /// Rooms open at once.
    #[arg(long, env = "ROOMCAST_MAX_ROOMS", default_value_t = SfuLimits::default().max_rooms, value_parser = at_least_one)]
    pub max_rooms: usize,

    /// Participants on the server at once, across rooms.
    #[arg(long, env = "ROOMCAST_MAX_PARTICIPANTS", default_value_t = SfuLimits::default().max_participants, value_parser = at_least_one)]
    pub max_participants: usize,

    /// ICE candidates one participant may send.
    #[arg(long, env = "ROOMCAST_MAX_CANDIDATES", default_value_t = SfuLimits::default().max_candidates, value_parser = at_least_one)]
    pub max_candidates: usize,

    /// Largest offer or answer SDP, in bytes.
    #[arg(long, env = "ROOMCAST_MAX_SDP_BYTES", default_value_t = SfuLimits::default().max_sdp_bytes, value_parser = at_least_one)]
    pub max_sdp_bytes: usize,

    /// Messages per second one participant may write on its data channel (also its burst).
    #[arg(long, env = "ROOMCAST_DATA_RATE", default_value_t = SfuLimits::default().data_messages_per_second)]
    pub data_rate: f64,

    /// Largest signaling message, in bytes; a larger one closes the connection.
    #[arg(long, env = "ROOMCAST_MAX_MESSAGE_BYTES", default_value_t = EdgeLimits::default().max_message_bytes, value_parser = at_least_one)]
    pub max_message_bytes: usize,

    /// Sustained signaling messages per second per connection.
    #[arg(long, env = "ROOMCAST_MESSAGE_RATE", default_value_t = EdgeLimits::default().messages_per_second)]
    pub message_rate: f64,

    /// Signaling messages a connection may send in a burst.
    #[arg(long, env = "ROOMCAST_MESSAGE_BURST", default_value_t = EdgeLimits::default().message_burst)]
    pub message_burst: f64,

    /// Refused messages within 10 s after which a connection is closed.
    #[arg(long, env = "ROOMCAST_MAX_STRIKES", default_value_t = EdgeLimits::default().max_strikes)]
    pub max_strikes: u32,

    /// Open WebSocket connections at once.
    #[arg(long, env = "ROOMCAST_MAX_CONNECTIONS", default_value_t = EdgeLimits::default().max_connections, value_parser = at_least_one)]
    pub max_connections: usize,

    /// Open WebSocket connections from one client address at once.
    #[arg(long, env = "ROOMCAST_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = EdgeLimits::default().max_connections_per_address, value_parser = at_least_one)]
    pub max_connections_per_address: usize,
}

fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

impl LimitFlags {
    pub fn sfu(&self) -> SfuLimits {
        SfuLimits {
            max_rooms: self.max_rooms,
            max_participants: self.max_participants,
            max_candidates: self.max_candidates,
            max_sdp_bytes: self.max_sdp_bytes,
            data_messages_per_second: self.data_rate.max(0.1),
        }
    }

    pub fn edge(&self) -> EdgeLimits {
        EdgeLimits {
            max_message_bytes: self.max_message_bytes,
            messages_per_second: self.message_rate.max(0.1),
            message_burst: self.message_burst.max(1.0),
            max_strikes: self.max_strikes,
            max_connections: self.max_connections,
            max_connections_per_address: self.max_connections_per_address,
            ..EdgeLimits::default()
        }
    }
}
