//! Signaling protocol v1: one JSON object per WebSocket text frame, with a `type` field.
//! Parsing never panics; every refusal carries a stable error code.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Text frames larger than this are refused with `too_large`: room for the largest SDP the SFU
/// accepts (512 KiB, see `SfuLimits`) with its JSON escaping.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// A message from a client.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    Join {
        room: String,
        #[serde(default)]
        name: Option<String>,
        /// A room access token; required when the server has a token secret.
        #[serde(default)]
        token: Option<String>,
    },
    Offer {
        sdp: String,
        /// What some of the offer's media sections carry, by mid (a screen share, say); a
        /// section not named is a camera or a microphone by its kind.
        #[serde(default)]
        sources: BTreeMap<String, SourceJson>,
    },
    Answer {
        sdp: String,
    },
    Candidate {
        candidate: Option<CandidateJson>,
    },
    Leave {},
    /// How the client shows one forwarded video track: the server sends no layer much larger
    /// than the tile, and nothing for a hidden one.
    TrackSettings {
        /// The forwarded track's id (`MediaStreamTrack.id` at the client).
        track: String,
        #[serde(default = "shown")]
        visible: bool,
        /// The tile's size in device pixels; absent = unknown (the top layer is wanted).
        #[serde(default)]
        width: Option<u32>,
        #[serde(default)]
        height: Option<u32>,
    },
    /// Stop (or resume) forwarding everything the client publishes of one kind.
    Mute {
        kind: KindJson,
        muted: bool,
    },
}

/// What a published track carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceJson {
    Microphone,
    Camera,
    Screen,
}

/// An offer names at most this many sources: more media sections than any client publishes.
pub const MAX_SOURCES: usize = 16;

/// A kind of media.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KindJson {
    Audio,
    Video,
}

fn shown() -> bool {
    true
}

const CLIENT_TYPES: [&str; 7] = [
    "join",
    "offer",
    "answer",
    "candidate",
    "leave",
    "track_settings",
    "mute",
];

/// The browser's RTCIceCandidateInit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CandidateJson {
    pub candidate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    #[serde(
        default,
        rename = "sdpMLineIndex",
        skip_serializing_if = "Option::is_none"
    )]
    pub sdp_mline_index: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_fragment: Option<String>,
}

/// A participant as the protocol shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantJson {
    pub id: String,
    pub name: String,
    pub audio_muted: bool,
    pub video_muted: bool,
    /// "microphone", "camera", "screen": what the participant publishes now.
    pub publishes: Vec<String>,
}

/// One speaker: who, and how loud (0 to 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeakerJson {
    pub id: String,
    pub level: f32,
}

/// What one forwarded media section of a server description carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardedTrackJson {
    pub mid: String,
    pub track: String,
    pub participant: String,
    pub kind: String,
    /// "microphone", "camera" or "screen".
    pub source: String,
}

/// The browser's RTCIceServer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServerJson {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// A message to a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Joined {
        room: String,
        id: String,
        participants: Vec<ParticipantJson>,
        ice_servers: Vec<IceServerJson>,
    },
    ParticipantJoined {
        participant: ParticipantJson,
    },
    /// Someone (you included) muted, unmuted, or started or stopped publishing something.
    ParticipantUpdated {
        participant: ParticipantJson,
    },
    ParticipantLeft {
        id: String,
    },
    Full {
        room: String,
        capacity: usize,
    },
    Offer {
        sdp: String,
        tracks: Vec<ForwardedTrackJson>,
    },
    Answer {
        sdp: String,
        tracks: Vec<ForwardedTrackJson>,
    },
    Candidate {
        candidate: Option<CandidateJson>,
    },
    /// Who speaks now: the dominant speaker first, then loudest first; empty when no one does.
    Speakers {
        speakers: Vec<SpeakerJson>,
    },
    /// The room is being recorded (`active: true`), or no longer; sent on joining a room that
    /// is being recorded too.
    Recording {
        active: bool,
    },
    Left {
        room: String,
    },
    /// An operator removed you; the connection closes after this message.
    Kicked {
        room: String,
        reason: KickReason,
        message: String,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
}

impl ServerMessage {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerMessage::Error {
            code,
            message: message.into(),
        }
    }

    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail: no maps with non-string keys, no floats.
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"internal","message":"serialization"}"#.to_owned()
        })
    }
}

/// Why an operator removed a participant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KickReason {
    Kicked,
    RoomClosed,
    ServerShutdown,
    /// The same identity joined the room again (another tab or device): the newest stays.
    DuplicateIdentity,
    /// The client did not set up its media connection in time.
    NegotiationTimeout,
    /// The node that held the room is gone (a cluster): join again, and the room is re-created
    /// on a node that is alive.
    NodeLost,
    /// The node that held the room is shutting down (a cluster): join again, and the room is
    /// re-created on a serving node.
    NodeDraining,
    /// The room now lives on another node (a cluster whose Redis forgot the room's owner, and
    /// two nodes opened it): join again to land there.
    RoomMoved,
}

/// Every error code the server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadJson,
    UnknownType,
    InvalidMessage,
    TooLarge,
    BinaryFrame,
    InvalidRoom,
    InvalidName,
    NotJoined,
    AlreadyJoined,
    BadSdp,
    BadCandidate,
    WrongState,
    PeerFailed,
    ServerFull,
    TooManyRooms,
    TooManyCandidates,
    UnknownTrack,
    RateLimited,
    Unauthorized,
    Abusive,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 22] = [
        ErrorCode::BadJson,
        ErrorCode::UnknownType,
        ErrorCode::InvalidMessage,
        ErrorCode::TooLarge,
        ErrorCode::BinaryFrame,
        ErrorCode::InvalidRoom,
        ErrorCode::InvalidName,
        ErrorCode::NotJoined,
        ErrorCode::AlreadyJoined,
        ErrorCode::BadSdp,
        ErrorCode::BadCandidate,
        ErrorCode::WrongState,
        ErrorCode::PeerFailed,
        ErrorCode::ServerFull,
        ErrorCode::TooManyRooms,
        ErrorCode::TooManyCandidates,
        ErrorCode::UnknownTrack,
        ErrorCode::RateLimited,
        ErrorCode::Unauthorized,
        ErrorCode::Abusive,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad_json",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::InvalidMessage => "invalid_message",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::BinaryFrame => "binary_frame",
            ErrorCode::InvalidRoom => "invalid_room",
            ErrorCode::InvalidName => "invalid_name",
            ErrorCode::NotJoined => "not_joined",
            ErrorCode::AlreadyJoined => "already_joined",
            ErrorCode::BadSdp => "bad_sdp",
            ErrorCode::BadCandidate => "bad_candidate",
            ErrorCode::WrongState => "wrong_state",
            ErrorCode::PeerFailed => "peer_failed",
            ErrorCode::ServerFull => "server_full",
            ErrorCode::TooManyRooms => "too_many_rooms",
            ErrorCode::TooManyCandidates => "too_many_candidates",
            ErrorCode::UnknownTrack => "unknown_track",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Abusive => "abusive",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    /// The code a `SignalError` from the SFU maps to.
    pub fn from_signal(code: &str) -> ErrorCode {
        ErrorCode::ALL
            .into_iter()
            .find(|c| c.as_str() == code)
            .unwrap_or(ErrorCode::Internal)
    }
}

/// Why a frame could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
}

impl ProtocolError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl ClientMessage {
    /// Parses one text frame of at most [`MAX_MESSAGE_BYTES`].
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        Self::parse_limited(text, MAX_MESSAGE_BYTES)
    }

    /// Parses one text frame of at most `max_bytes`.
    pub fn parse_limited(text: &str, max_bytes: usize) -> Result<Self, ProtocolError> {
        if text.len() > max_bytes {
            return Err(ProtocolError::new(
                ErrorCode::TooLarge,
                format!("message of {} bytes exceeds {max_bytes}", text.len()),
            ));
        }
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| ProtocolError::new(ErrorCode::BadJson, format!("not JSON: {e}")))?;
        let kind = value
            .as_object()
            .ok_or_else(|| ProtocolError::new(ErrorCode::InvalidMessage, "expected a JSON object"))?
            .get("type")
            .and_then(|t| t.as_str())
            .map(str::to_owned)
            .ok_or_else(|| {
                ProtocolError::new(ErrorCode::InvalidMessage, "missing string field `type`")
            })?;
        if !CLIENT_TYPES.contains(&kind.as_str()) {
            let shown: String = kind.chars().take(32).collect();
            return Err(ProtocolError::new(
                ErrorCode::UnknownType,
                format!("unknown message type {shown:?}"),
            ));
        }
        serde_json::from_value(value).map_err(|e| {
            ProtocolError::new(
                ErrorCode::InvalidMessage,
                format!("invalid {kind} message: {e}"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> ErrorCode {
        ClientMessage::parse(text).unwrap_err().code
    }

    #[test]
    fn an_offer_may_name_the_source_of_its_media_sections_by_mid() {
        let offer = r#"{"type":"offer","sdp":"v=0","sources":{"2":"screen","0":"microphone"}}"#;
        let sources = BTreeMap::from([
            ("0".to_owned(), SourceJson::Microphone),
            ("2".to_owned(), SourceJson::Screen),
        ]);
        let sdp = "v=0".to_owned();
        assert_eq!(
            ClientMessage::parse(offer).unwrap(),
            ClientMessage::Offer { sdp, sources }
        );
        let projector = r#"{"type":"offer","sdp":"v=0","sources":{"2":"projector"}}"#;
        assert!(ClientMessage::parse(projector).is_err());
    }

    #[test]
    fn join_with_and_without_a_name() {
        assert_eq!(
            ClientMessage::parse(r#"{"type":"join","room":"r1","name":"Ada"}"#).unwrap(),
            ClientMessage::Join {
                room: "r1".into(),
                name: Some("Ada".into()),
                token: None,
            }
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"join","room":"r1"}"#).unwrap(),
            ClientMessage::Join {
                room: "r1".into(),
                name: None,
                token: None,
            }
        );
    }

    #[test]
    fn candidates_use_the_browsers_field_names_and_null_ends_them() {
        let parsed = ClientMessage::parse(
            r#"{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 1.2.3.4 5 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"abc"}}"#,
        )
        .unwrap();
        let ClientMessage::Candidate { candidate: Some(c) } = parsed else {
            panic!("{parsed:?}")
        };
        assert_eq!(c.sdp_mid.as_deref(), Some("0"));
        assert_eq!(c.sdp_mline_index, Some(0));
        assert_eq!(c.username_fragment.as_deref(), Some("abc"));
        assert_eq!(
            ClientMessage::parse(r#"{"type":"candidate","candidate":null}"#).unwrap(),
            ClientMessage::Candidate { candidate: None }
        );
    }

    #[test]
    fn track_settings_say_how_a_tile_is_shown_and_default_to_visible_of_unknown_size() {
        assert_eq!(
            ClientMessage::parse(
                r#"{"type":"track_settings","track":"p1-2","visible":false,"width":640,"height":360}"#
            )
            .unwrap(),
            ClientMessage::TrackSettings {
                track: "p1-2".into(),
                visible: false,
                width: Some(640),
                height: Some(360),
            }
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"track_settings","track":"p1-2"}"#).unwrap(),
            ClientMessage::TrackSettings {
                track: "p1-2".into(),
                visible: true,
                width: None,
                height: None,
            }
        );
        let negative = ClientMessage::parse(r#"{"type":"track_settings","track":"t","width":-1}"#);
        assert_eq!(negative.unwrap_err().code, ErrorCode::InvalidMessage);
    }

    #[test]
    fn offer_answer_and_leave() {
        assert!(matches!(
            ClientMessage::parse(r#"{"type":"offer","sdp":"v=0"}"#),
            Ok(ClientMessage::Offer { .. })
        ));
        assert!(matches!(
            ClientMessage::parse(r#"{"type":"answer","sdp":"v=0"}"#),
            Ok(ClientMessage::Answer { .. })
        ));
        assert_eq!(
            ClientMessage::parse(r#"{"type":"leave"}"#).unwrap(),
            ClientMessage::Leave {}
        );
    }

    #[test]
    fn malformed_json_is_bad_json() {
        for text in ["", "{", "nope", r#"{"type":"join","room":}"#, "\u{0}"] {
            assert_eq!(code(text), ErrorCode::BadJson, "{text:?}");
        }
    }

    #[test]
    fn non_objects_and_missing_type_are_invalid() {
        for text in ["[]", "42", "null", r#"{"room":"r"}"#, r#"{"type":7}"#] {
            assert_eq!(code(text), ErrorCode::InvalidMessage, "{text:?}");
        }
    }

    #[test]
    fn unknown_types_are_named_as_such() {
        assert_eq!(code(r#"{"type":"dance"}"#), ErrorCode::UnknownType);
        assert_eq!(
            code(r#"{"type":"JOIN","room":"r"}"#),
            ErrorCode::UnknownType
        );
    }

    #[test]
    fn missing_or_mistyped_fields_are_invalid() {
        for text in [
            r#"{"type":"join"}"#,
            r#"{"type":"join","room":5}"#,
            r#"{"type":"offer"}"#,
            r#"{"type":"answer","sdp":null}"#,
            r#"{"type":"candidate","candidate":"x"}"#,
            r#"{"type":"join","room":"r","extra":1}"#,
        ] {
            assert_eq!(code(text), ErrorCode::InvalidMessage, "{text:?}");
        }
    }

    #[test]
    fn oversized_messages_are_too_large() {
        let huge = format!(
            r#"{{"type":"offer","sdp":"{}"}}"#,
            "a".repeat(MAX_MESSAGE_BYTES)
        );
        assert_eq!(code(&huge), ErrorCode::TooLarge);
    }

    #[test]
    fn error_codes_serialize_as_their_names() {
        for code in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
            assert_eq!(ErrorCode::from_signal(code.as_str()), code);
        }
        assert_eq!(ErrorCode::from_signal("nonsense"), ErrorCode::Internal);
    }

    #[test]
    fn server_messages_serialize_with_snake_case_types() {
        let json = ServerMessage::ParticipantLeft { id: "p1".into() }.to_json();
        assert_eq!(json, r#"{"type":"participant_left","id":"p1"}"#);
        let json = ServerMessage::error(ErrorCode::WrongState, "no").to_json();
        assert_eq!(
            json,
            r#"{"type":"error","code":"wrong_state","message":"no"}"#
        );
        let json = ServerMessage::Candidate { candidate: None }.to_json();
        assert_eq!(json, r#"{"type":"candidate","candidate":null}"#);
    }
}
