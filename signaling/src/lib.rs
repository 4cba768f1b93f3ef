//! roomcast's edge: HTTP and HTTPS (rustls) serving the browser client and the WebSocket
//! signaling endpoint at `/ws`. Translates the JSON protocol (see `docs/protocol.md`) into calls
//! on [`roomcast_sfu::Sfu`] and the SFU's events back into JSON.

mod admin;
mod client_files;
mod deadlines;
mod edge_metrics;
mod error;
mod limits;
mod listener;
mod log_limit;
mod metered;
mod origin;
mod penalties;
mod placement;
mod protocol;
mod relay;
mod room_tokens;
mod security_headers;
mod server;
mod session;
mod slots;
mod tls;
mod translate;

pub use admin::{AdminAccess, ErrorBody, ParticipantView, RoomView, TrackView};
pub use edge_metrics::EdgeMetrics;
pub use error::SignalingError;
pub use limits::EdgeLimits;
pub use listener::{DRAIN_TIMEOUT, HEADER_TIMEOUT};
pub use protocol::{
    ClientMessage, ErrorCode, KickReason, ProtocolError, ServerMessage, MAX_MESSAGE_BYTES,
};
pub use relay::Relay;
pub use room_tokens::{RoomClaims, RoomTokens, TokenError};
pub use server::{router, serve_http, serve_https, ClusterMember, EdgeOptions};
pub use tls::{load_or_generate, TlsFiles};
