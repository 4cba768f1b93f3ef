//! The admin API's JSON shapes, documented in the OpenAPI document.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use roomcast_sfu::{ParticipantReport, RecordingFile, RoomReport, TrackReport};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A room and everyone in it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RoomView {
    pub id: String,
    /// When the room was created, in milliseconds since the Unix epoch.
    pub created_ms: u64,
    pub participant_count: usize,
    pub participants: Vec<ParticipantView>,
    /// In a cluster (`--redis`): the id of the node the room lives on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Whether the room is being recorded.
    #[serde(default)]
    pub recording: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ParticipantView {
    pub id: String,
    pub name: String,
    /// When the participant joined, in milliseconds since the Unix epoch.
    pub joined_ms: u64,
    /// new, connecting, connected, disconnected, failed or closed.
    pub connection_state: String,
    /// The selected ICE candidate pair, once there is one.
    pub candidate: Option<CandidateView>,
    /// What the server estimates this participant's downlink carries (bits/s), from its
    /// transport-wide congestion feedback or, failing that, the loss in its receiver reports;
    /// the video it receives is chosen to fit. Absent until it receives something.
    pub downlink_bps: Option<u64>,
    /// Tracks this participant sends to the server (bitrate in).
    pub published: Vec<TrackView>,
    /// Tracks the server forwards to this participant (bitrate out).
    pub forwarded: Vec<TrackView>,
}

/// Candidate types of the selected pair: host, srflx, prflx or relay.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CandidateView {
    /// The server's side.
    pub local: String,
    /// The participant's side: `relay` means the participant reaches the server through TURN.
    pub remote: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TrackView {
    pub id: String,
    /// The participant who publishes the track.
    pub publisher: String,
    /// audio or video.
    pub kind: String,
    pub codec: String,
    pub bitrate_bps: u64,
    pub packets: u64,
    pub bytes: u64,
    /// Published: sequence gaps seen by the server. Forwarded: cumulative loss the subscriber reported.
    pub packets_lost: u64,
    /// Forwarded only: fraction lost in the subscriber's last report interval (0 to 1).
    pub fraction_lost: Option<f64>,
    /// Interarrival jitter (published: measured by the server; forwarded: reported by the subscriber).
    pub jitter_ms: f64,
    /// Forwarded only: round-trip time from the subscriber's receiver reports.
    pub rtt_ms: Option<f64>,
    /// Forwarded only: PLI and FIR from the subscriber.
    pub keyframe_requests: u64,
    /// Forwarded only: NACKed packets from the subscriber.
    pub nacks: u64,
    /// Published with simulcast: its layers, lowest first (absent without simulcast).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<LayerView>,
    /// Forwarded video only: the simulcast layer the subscriber receives now (absent while paused
    /// or waiting for a keyframe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<u8>,
}

/// One simulcast layer of a published track.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LayerView {
    /// 0 is the lowest.
    pub index: u8,
    /// The publisher's RTP stream id (`q`, `h`, `f` from browsers).
    pub rid: String,
    pub bitrate_bps: u64,
    /// From the layer's last keyframe (VP8); 0 when not known yet.
    pub width: u32,
    pub height: u32,
}

/// One participant's file of one recording: VP8 video and Opus audio in WebM.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordingView {
    /// Names the file in `/api/recordings/{id}`.
    pub id: String,
    pub room: String,
    pub participant_id: String,
    pub participant_name: String,
    /// `video`, `audio`, or both.
    pub kinds: Vec<String>,
    /// When the file starts, in milliseconds since the Unix epoch.
    pub started_ms: u64,
    /// Written so far (while recording, as of the last flush, about every second).
    pub duration_ms: u64,
    /// Bytes on disk.
    pub size: u64,
    /// `recording`, `complete`, `failed`, or `interrupted` (the server stopped while writing it;
    /// the file plays up to its last flush).
    pub state: String,
    /// Why it failed (a full disk, say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<RecordingFile> for RecordingView {
    fn from(f: RecordingFile) -> Self {
        Self {
            id: f.id,
            room: f.room,
            participant_id: f.participant,
            participant_name: f.name,
            kinds: f.kinds,
            started_ms: f.started_ms,
            duration_ms: f.duration_ms,
            size: f.size,
            state: f.state,
            error: f.error,
        }
    }
}

/// Whether a room is being recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordingState {
    pub room: String,
    pub recording: bool,
}

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: String,
}

/// An error from the admin API.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// not_found, conflict, unauthorized, forbidden or internal.
    pub error: String,
    pub message: String,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                error: error.to_owned(),
                message: message.into(),
            },
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    pub fn unavailable(why: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", why)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

pub(crate) fn now_ms() -> u64 {
    unix_ms(SystemTime::now())
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

impl From<RoomReport> for RoomView {
    fn from(r: RoomReport) -> Self {
        Self {
            id: r.id.to_string(),
            created_ms: unix_ms(r.created),
            participant_count: r.participants.len(),
            participants: r.participants.into_iter().map(Into::into).collect(),
            node: None,
            recording: r.recording,
        }
    }
}

impl From<ParticipantReport> for ParticipantView {
    fn from(p: ParticipantReport) -> Self {
        Self {
            id: p.id.to_string(),
            name: p.name.as_str().to_owned(),
            joined_ms: unix_ms(p.joined),
            connection_state: p.connection.as_str().to_owned(),
            candidate: p
                .candidate_pair
                .map(|(local, remote)| CandidateView { local, remote }),
            downlink_bps: p.downlink_bps,
            published: p.published.into_iter().map(Into::into).collect(),
            forwarded: p.forwarded.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<TrackReport> for TrackView {
    fn from(t: TrackReport) -> Self {
        Self {
            id: t.id,
            publisher: t.publisher.to_string(),
            kind: t.kind.to_owned(),
            codec: t.codec,
            bitrate_bps: t.bitrate_bps,
            packets: t.packets,
            bytes: t.bytes,
            packets_lost: t.packets_lost,
            fraction_lost: t.fraction_lost,
            jitter_ms: t.jitter_ms,
            rtt_ms: t.rtt_ms,
            keyframe_requests: t.keyframe_requests,
            nacks: t.nacks,
            layers: t
                .layers
                .into_iter()
                .map(|l| LayerView {
                    index: l.index,
                    rid: l.rid,
                    bitrate_bps: l.bitrate_bps,
                    width: l.width,
                    height: l.height,
                })
                .collect(),
            layer: t.layer.filter(|_| t.kind == "video"),
        }
    }
}

/// A node of the service: every node when it is part of a cluster (`--redis`), else this one.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeView {
    pub id: String,
    /// The base URL other nodes and operators use to reach it (`--node-url`).
    pub url: String,
    /// serving (takes new rooms) or draining (keeps its rooms, takes no new ones).
    pub state: String,
    pub rooms: u64,
    pub participants: u64,
    /// CPU the process used over the last heartbeat, in cores.
    pub cpu: f64,
    /// When the node last reported, in milliseconds since the Unix epoch.
    pub updated_ms: u64,
}

impl From<roomcast_cluster::NodeRecord> for NodeView {
    fn from(n: roomcast_cluster::NodeRecord) -> Self {
        Self {
            id: n.id.to_string(),
            url: n.url,
            state: match n.state {
                roomcast_cluster::NodeState::Serving => "serving",
                roomcast_cluster::NodeState::Draining => "draining",
            }
            .to_owned(),
            rooms: n.load.rooms,
            participants: n.load.participants,
            cpu: n.load.cpu,
            updated_ms: n.updated_ms,
        }
    }
}
