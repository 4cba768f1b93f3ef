//! The messages exchanged between a participant and the edge, in domain terms.

use crate::ids::{DisplayName, ParticipantId};
use crate::peer::MediaKind;
use crate::speakers::Speaker;
use crate::SignalError;

/// What a client asks of its participant.
#[derive(Clone, Debug)]
pub enum Signal {
    /// The client's offer, with what the client says each of its media sections carries
    /// (mid → source); a section it does not name is a camera or a microphone by its kind.
    Offer {
        sdp: String,
        sources: Vec<(String, Source)>,
    },
    Answer(String),
    /// A remote ICE candidate; `None` marks the end of candidates.
    Candidate(Option<IceCandidate>),
    /// How the client shows one forwarded track.
    TrackSettings(TrackSettings),
    /// Stop (or resume) forwarding everything the client publishes of one kind.
    Mute {
        kind: MediaKind,
        muted: bool,
    },
    Leave,
}

impl Signal {
    /// An offer that names no sources.
    pub fn offer(sdp: String) -> Self {
        Signal::Offer {
            sdp,
            sources: Vec::new(),
        }
    }
}

/// How a client shows one forwarded video track.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackSettings {
    /// The forwarded track's id.
    pub track: String,
    pub visible: bool,
    /// Width and height of its tile in device pixels; `None` = unknown.
    pub size: Option<(u32, u32)>,
}

impl Default for TrackSettings {
    fn default() -> Self {
        Self {
            track: String::new(),
            visible: true,
            size: None,
        }
    }
}

/// An ICE candidate in the shape of the browser's RTCIceCandidateInit.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct IceCandidate {
    pub candidate: String,
    pub sdp_mid: Option<String>,
    pub sdp_mline_index: Option<u16>,
    pub username_fragment: Option<String>,
}

/// Someone in a room, as others see them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParticipantInfo {
    pub id: ParticipantId,
    pub name: DisplayName,
    pub audio_muted: bool,
    pub video_muted: bool,
    /// What the participant publishes now, in a stable order.
    pub publishes: Vec<Source>,
}

impl ParticipantInfo {
    /// Someone who has just arrived: publishing nothing yet, muted nowhere.
    pub fn new(id: ParticipantId, name: DisplayName) -> Self {
        Self {
            id,
            name,
            audio_muted: false,
            video_muted: false,
            publishes: Vec::new(),
        }
    }
}

/// What a published track carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Microphone,
    Camera,
    Screen,
}

impl Source {
    /// What a track of `kind` is when its publisher does not say.
    pub fn default_for(kind: MediaKind) -> Self {
        match kind {
            MediaKind::Audio => Source::Microphone,
            MediaKind::Video => Source::Camera,
        }
    }

    /// Whether a track of `kind` can be this: a screen share or a camera is video.
    pub fn fits(self, kind: MediaKind) -> bool {
        (self == Source::Microphone) == (kind == MediaKind::Audio)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Microphone => "microphone",
            Source::Camera => "camera",
            Source::Screen => "screen",
        }
    }
}

/// Why a participant's session ended. Serializable: a cluster relays it between nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// The client asked to leave or went away.
    Requested,
    /// The PeerConnection failed or closed.
    PeerFailed,
    /// An operator removed the participant.
    Kicked,
    /// An operator closed the room.
    RoomClosed,
    /// The server is shutting down.
    ServerShutdown,
    /// Someone joined the room with the same identity.
    DuplicateIdentity,
    /// The client did not complete its first offer and answer within the peer timeout.
    NegotiationTimeout,
    /// The room now lives on another node of the cluster (two nodes opened it while Redis
    /// forgot its owner): join again to land there.
    Moved,
}

/// A session description the server sends, with what each of its forwarded media sections
/// carries now. The server reuses the m-section of a track that ended for a later one, and an
/// m-section's `a=msid` must not change (RFC 8829, 5.2.2), so only this says which track, and
/// whose, a reused m-section carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Description {
    pub sdp: String,
    pub tracks: Vec<ForwardedTrack>,
}

/// One forwarded media section of a [`Description`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardedTrack {
    pub mid: String,
    /// The publication's id (the id `track_settings` names).
    pub track: String,
    /// Who publishes it.
    pub participant: ParticipantId,
    /// "audio" or "video".
    pub kind: &'static str,
    pub source: Source,
}

/// What the server tells a client.
#[derive(Clone, Debug)]
pub enum ServerEvent {
    ParticipantJoined(ParticipantInfo),
    /// Someone (you included) muted, unmuted, or published or stopped a track.
    ParticipantUpdated(ParticipantInfo),
    ParticipantLeft(ParticipantId),
    Offer(Description),
    Answer(Description),
    Candidate(Option<IceCandidate>),
    /// Who speaks now: the dominant speaker first, then loudest first; empty when no one does.
    Speakers(Vec<Speaker>),
    /// A signal was refused; the session goes on.
    Error(SignalError),
    /// The room is being recorded now (`true`), or no longer.
    Recording(bool),
    /// The participant is out of the room; no more events follow.
    Left(LeaveReason),
}
