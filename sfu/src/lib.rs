//! roomcast's media plane.
//!
//! Rooms of participants, each holding one PeerConnection to the server, and the RTP fan-out that
//! forwards every track a participant publishes to every other participant in the room, and the
//! messages each writes on its `data` channel to the others' (the one JSON this crate reads). It
//! knows nothing of HTTP, WebSockets or the signaling protocol: the edge calls [`Sfu::join`],
//! feeds the returned [`ParticipantHandle`] the client's [`Signal`]s and relays the
//! [`ServerEvent`]s it receives.
//!
//! Only the `peer` module touches webrtc-rs types; everything else is domain code.

mod allocation;
mod bwe;
mod config;
mod data;
mod downlink;
mod error;
mod fanout;
mod forwarder;
mod grants;
mod ice_servers;
mod ids;
mod limits;
mod negotiation;
mod participant;
mod peer;
mod presence;
mod publication;
mod rate;
mod recording;
mod room;
mod sfu;
mod signal;
mod speakers;
mod stats;
mod subscription;

pub use config::{IceServer, PortRange, SfuConfig};
pub use data::{DataRejection, MAX_DATA_MESSAGE_BYTES};
pub use error::{JoinError, SfuError, SignalError};
/// A forwarder's per-packet work, exposed for the microbenchmarks in `benches/`.
#[doc(hidden)]
pub use forwarder::ForwarderBench;
pub use grants::Grants;
pub use ice_servers::{ephemeral_credential, IceServers, TurnAuth};
pub use ids::{DisplayName, ParticipantId, RoomId};
pub use limits::SfuLimits;
pub use participant::{ParticipantHandle, SignalRefused};
pub use peer::MediaKind;
/// The fan-out step of the per-packet path, exposed for the microbenchmarks in `benches/`.
#[doc(hidden)]
pub use publication::FanOutBench;
pub use rate::RateLimiter;
pub use recording::{DeleteError, RecordingError, RecordingFile};
pub use sfu::{Joined, Sfu};
pub use signal::{
    Description, ForwardedTrack, IceCandidate, LeaveReason, ParticipantInfo, ServerEvent, Signal,
    Source, TrackSettings,
};
pub use speakers::Speaker;
pub use stats::{ConnectionState, LayerReport, ParticipantReport, RoomReport, Totals, TrackReport};
