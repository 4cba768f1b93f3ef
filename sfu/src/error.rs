//! Errors the media plane reports to its callers.

use thiserror::Error;

use crate::data::DataRejection;

/// Why a participant could not join a room.
#[derive(Debug, Error)]
pub enum JoinError {
    #[error("room id must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'")]
    InvalidRoom,
    #[error("a name must be at most 64 characters, without control, invisible or text-direction characters")]
    InvalidName,
    #[error("room is full ({capacity} participants)")]
    Full { capacity: usize },
    #[error("the server is full ({max} participants)")]
    ServerFull { max: usize },
    #[error("the server has as many rooms open as it may ({max})")]
    TooManyRooms { max: usize },
    #[error("could not create a peer connection: {0}")]
    Peer(#[from] SfuError),
}

/// A client signal that could not be applied; the participant stays in the room.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SignalError {
    #[error("the session description could not be applied: {0}")]
    BadSdp(String),
    #[error("the ICE candidate could not be applied: {0}")]
    BadCandidate(String),
    #[error("{0}")]
    WrongState(&'static str),
    #[error("session description of {size} bytes exceeds {max}")]
    SdpTooLarge { size: usize, max: usize },
    #[error("more than {0} ICE candidates from one participant")]
    TooManyCandidates(usize),
    #[error("no forwarded track {0:?}")]
    UnknownTrack(String),
    #[error("{0}")]
    Data(#[from] DataRejection),
    #[error("the media connection is not responding")]
    Unresponsive,
}

impl SignalError {
    /// The protocol's error code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            SignalError::BadSdp(_) => "bad_sdp",
            SignalError::BadCandidate(_) => "bad_candidate",
            SignalError::WrongState(_) => "wrong_state",
            SignalError::SdpTooLarge { .. } => "too_large",
            SignalError::TooManyCandidates(_) => "too_many_candidates",
            SignalError::UnknownTrack(_) => "unknown_track",
            SignalError::Data(rejection) => rejection.code(),
            SignalError::Unresponsive => "internal",
        }
    }
}

/// A failure inside the WebRTC stack.
#[derive(Debug, Error)]
pub enum SfuError {
    #[error("webrtc: {0}")]
    WebRtc(String),
    #[error("could not bind UDP port {port}: {source}")]
    Bind { port: u16, source: std::io::Error },
}
