//! Between the protocol's JSON and the SFU's types, for both kinds of session: one whose
//! participant is on this node and one relayed to the node that owns its room. What the SFU says
//! becomes an [`Update`] for the client, which travels between nodes as it is.

use roomcast_sfu::{
    ForwardedTrack, IceCandidate, JoinError, Joined, MediaKind, ParticipantInfo, ServerEvent,
    Signal, Source, TrackSettings,
};
use serde::{Deserialize, Serialize};

use crate::protocol::{
    CandidateJson, ClientMessage, ErrorCode, ForwardedTrackJson, IceServerJson, KindJson,
    ParticipantJson, ServerMessage, SourceJson, SpeakerJson, MAX_SOURCES,
};

/// What a session does for its client on an SFU event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "update", rename_all = "snake_case")]
pub(crate) enum Update {
    /// Sends this message (protocol JSON).
    Message { text: String },
    /// Tells the client what was refused; counts against it like any refusal.
    Refusal { code: ErrorCode, message: String },
    /// The participant is out of the room, for this reason.
    Left { reason: roomcast_sfu::LeaveReason },
    /// The node that held the participant's room is gone (said by an entry node of a cluster,
    /// never sent between nodes): the client should join again.
    NodeLost,
}

impl Update {
    pub(crate) fn message(message: &ServerMessage) -> Self {
        Update::Message {
            text: message.to_json(),
        }
    }

    fn refusal(code: ErrorCode, message: impl Into<String>) -> Self {
        Update::Refusal {
            code,
            message: message.into(),
        }
    }
}

/// The update an SFU event makes.
pub(crate) fn update_of(event: ServerEvent) -> Update {
    let message = match event {
        ServerEvent::ParticipantJoined(p) => ServerMessage::ParticipantJoined {
            participant: participant_to_json(&p),
        },
        ServerEvent::ParticipantUpdated(p) => ServerMessage::ParticipantUpdated {
            participant: participant_to_json(&p),
        },
        ServerEvent::ParticipantLeft(id) => ServerMessage::ParticipantLeft { id: id.to_string() },
        ServerEvent::Offer(d) => ServerMessage::Offer {
            tracks: tracks_to_json(&d.tracks),
            sdp: d.sdp,
        },
        ServerEvent::Answer(d) => ServerMessage::Answer {
            tracks: tracks_to_json(&d.tracks),
            sdp: d.sdp,
        },
        ServerEvent::Speakers(speakers) => ServerMessage::Speakers {
            speakers: speakers
                .into_iter()
                .map(|s| SpeakerJson {
                    id: s.id.to_string(),
                    // Two decimals say all a level meter shows.
                    level: (s.level * 100.0).round() / 100.0,
                })
                .collect(),
        },
        ServerEvent::Candidate(c) => ServerMessage::Candidate {
            candidate: c.map(candidate_to_json),
        },
        ServerEvent::Error(error) => {
            let code = ErrorCode::from_signal(error.code());
            return Update::refusal(code, error.to_string());
        }
        ServerEvent::Recording(active) => ServerMessage::Recording { active },
        ServerEvent::Left(reason) => return Update::Left { reason },
    };
    Update::message(&message)
}

/// What the client hears of a join the SFU refused: a `full` message or a refusal.
pub(crate) fn join_refused(room: &str, error: JoinError) -> Update {
    match error {
        JoinError::Full { capacity } => {
            tracing::info!(room, capacity, "room full");
            Update::message(&ServerMessage::Full {
                room: room.to_owned(),
                capacity,
            })
        }
        error @ JoinError::InvalidRoom => {
            Update::refusal(ErrorCode::InvalidRoom, error.to_string())
        }
        error @ JoinError::InvalidName => {
            Update::refusal(ErrorCode::InvalidName, error.to_string())
        }
        error @ JoinError::ServerFull { .. } => {
            Update::refusal(ErrorCode::ServerFull, error.to_string())
        }
        error @ JoinError::TooManyRooms { .. } => {
            Update::refusal(ErrorCode::TooManyRooms, error.to_string())
        }
        error @ JoinError::Peer(_) => {
            tracing::error!(%error, "join failed");
            Update::refusal(ErrorCode::Internal, "could not create a peer connection")
        }
    }
}

/// The signal a client message (other than join and leave) asks for, or why it is refused.
pub(crate) fn signal_of(message: ClientMessage) -> Result<Signal, (ErrorCode, String)> {
    Ok(match message {
        ClientMessage::Join { .. } | ClientMessage::Leave {} => {
            return Err((ErrorCode::InvalidMessage, "not a signal".to_owned()))
        }
        ClientMessage::Offer { sources, .. } if sources.len() > MAX_SOURCES => {
            let why = format!("an offer names at most {MAX_SOURCES} sources");
            return Err((ErrorCode::InvalidMessage, why));
        }
        ClientMessage::Offer { sdp, sources } => {
            let sources = sources
                .into_iter()
                .map(|(mid, source)| (mid, source_from_json(source)))
                .collect();
            Signal::Offer { sdp, sources }
        }
        ClientMessage::Mute { kind, muted } => {
            let kind = match kind {
                KindJson::Audio => MediaKind::Audio,
                KindJson::Video => MediaKind::Video,
            };
            Signal::Mute { kind, muted }
        }
        ClientMessage::Answer { sdp } => Signal::Answer(sdp),
        ClientMessage::Candidate { candidate } => {
            Signal::Candidate(candidate.map(candidate_from_json))
        }
        ClientMessage::TrackSettings {
            track,
            visible,
            width,
            height,
        } => Signal::TrackSettings(TrackSettings {
            track,
            visible,
            size: width.zip(height),
        }),
    })
}

pub(crate) fn joined_message(joined: &Joined) -> ServerMessage {
    ServerMessage::Joined {
        room: joined.room.to_string(),
        id: joined.id.to_string(),
        participants: joined
            .participants
            .iter()
            .map(participant_to_json)
            .collect(),
        ice_servers: joined
            .ice_servers
            .iter()
            .map(|s| IceServerJson {
                urls: s.urls.clone(),
                username: s.username.clone(),
                credential: s.credential.clone(),
            })
            .collect(),
    }
}

fn candidate_from_json(c: CandidateJson) -> IceCandidate {
    IceCandidate {
        candidate: c.candidate,
        sdp_mid: c.sdp_mid,
        sdp_mline_index: c.sdp_mline_index,
        username_fragment: c.username_fragment,
    }
}

fn participant_to_json(p: &ParticipantInfo) -> ParticipantJson {
    ParticipantJson {
        id: p.id.to_string(),
        name: p.name.as_str().to_owned(),
        audio_muted: p.audio_muted,
        video_muted: p.video_muted,
        publishes: p.publishes.iter().map(|s| s.as_str().to_owned()).collect(),
    }
}

fn tracks_to_json(tracks: &[ForwardedTrack]) -> Vec<ForwardedTrackJson> {
    tracks
        .iter()
        .map(|t| ForwardedTrackJson {
            mid: t.mid.clone(),
            track: t.track.clone(),
            participant: t.participant.to_string(),
            kind: t.kind.to_owned(),
            source: t.source.as_str().to_owned(),
        })
        .collect()
}

fn source_from_json(source: SourceJson) -> Source {
    match source {
        SourceJson::Microphone => Source::Microphone,
        SourceJson::Camera => Source::Camera,
        SourceJson::Screen => Source::Screen,
    }
}

fn candidate_to_json(c: IceCandidate) -> CandidateJson {
    CandidateJson {
        candidate: c.candidate,
        sdp_mid: c.sdp_mid,
        sdp_mline_index: c.sdp_mline_index,
        username_fragment: c.username_fragment,
    }
}
