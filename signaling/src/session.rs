//! One WebSocket connection: parses client frames, joins the SFU, and relays the participant's
//! events back. A connection can join, leave and join again; bad input gets an `error` and the
//! connection stays usable.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket};
use roomcast_sfu::{
    ForwardedTrack, Grants, IceCandidate, JoinError, Joined, LeaveReason, MediaKind,
    ParticipantHandle, ParticipantInfo, RoomId, ServerEvent, Sfu, Signal, Source, TrackSettings,
};
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::edge_metrics::EdgeMetrics;
use crate::limits::{RateLimiter, Strikes};
use crate::protocol::{
    CandidateJson, ClientMessage, ErrorCode, ForwardedTrackJson, IceServerJson, KickReason,
    KindJson, ParticipantJson, ServerMessage, SourceJson, SpeakerJson, MAX_SOURCES,
};
use crate::server::EdgeOptions;

/// Events buffered between a participant and its socket.
const EVENT_QUEUE: usize = 256;

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

struct Membership {
    handle: ParticipantHandle,
    room: RoomId,
    events: mpsc::Receiver<ServerEvent>,
}

struct Session {
    socket: WebSocket,
    sfu: Sfu,
    metrics: Arc<EdgeMetrics>,
    options: Arc<EdgeOptions>,
    membership: Option<Membership>,
    rate: RateLimiter,
    strikes: Strikes,
    /// Set when the server ends the conversation (an operator removed the participant, or the
    /// client kept sending what it must not).
    closing: bool,
}

/// Serves one connection until the client goes away.
pub(crate) async fn run(
    socket: WebSocket,
    sfu: Sfu,
    metrics: Arc<EdgeMetrics>,
    options: Arc<EdgeOptions>,
) {
    let _open = metrics.connection_opened();
    let id = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed);
    let span = tracing::info_span!(
        "ws",
        conn = id,
        room = tracing::field::Empty,
        participant = tracing::field::Empty
    );
    let now = tokio::time::Instant::now();
    let limits = &options.limits;
    let session = Session {
        socket,
        sfu,
        metrics,
        rate: RateLimiter::new(limits.messages_per_second, limits.message_burst, now),
        strikes: Strikes::new(limits.max_strikes, limits.strike_window, now),
        options,
        membership: None,
        closing: false,
    };
    session.serve().instrument(span).await;
}

impl Session {
    async fn serve(mut self) {
        tracing::debug!("connected");
        while !self.closing {
            tokio::select! {
                frame = self.socket.recv() => match frame {
                    Some(Ok(Message::Text(text))) => {
                        if self.within_rate().await {
                            self.on_text(text.as_str()).await;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        if self.within_rate().await {
                            self.refuse(ErrorCode::BinaryFrame, "binary frames are not part of the protocol").await;
                        }
                    }
                    // The socket answers pings itself; a ping flood still spends the rate.
                    Some(Ok(Message::Ping(_))) => {
                        self.within_rate().await;
                    }
                    Some(Ok(Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Err(error)) => {
                        tracing::info!(%error, "websocket error");
                        break;
                    }
                },
                Some(event) = next_event(&mut self.membership) => self.on_event(event).await,
            }
        }
        // Dropping the handle is the participant's cue to leave the room.
        self.membership = None;
        if self.closing {
            let _ = self.socket.send(Message::Close(None)).await;
        }
        tracing::debug!("disconnected");
    }

    /// Whether a message may be handled now; past the rate each message is dropped with a
    /// `rate_limited` error, which counts as a strike.
    async fn within_rate(&mut self) -> bool {
        if self.rate.allow(tokio::time::Instant::now()) {
            return true;
        }
        self.refuse(
            ErrorCode::RateLimited,
            "too many messages: slow down; this one was dropped",
        )
        .await;
        false
    }

    async fn on_text(&mut self, text: &str) {
        let max = self.options.limits.max_message_bytes;
        let message = match ClientMessage::parse_limited(text, max) {
            Ok(message) => message,
            Err(error) => return self.refuse(error.code, error.message).await,
        };
        match message {
            ClientMessage::Join { room, name, token } => {
                self.join(&room, name.as_deref(), token.as_deref()).await
            }
            ClientMessage::Leave {} => self.leave().await,
            ClientMessage::Offer { sources, .. } if sources.len() > MAX_SOURCES => {
                let why = format!("an offer names at most {MAX_SOURCES} sources");
                self.refuse(ErrorCode::InvalidMessage, &why).await
            }
            ClientMessage::Offer { sdp, sources } => {
                let sources = sources
                    .into_iter()
                    .map(|(mid, source)| (mid, source_from_json(source)))
                    .collect();
                self.signal(Signal::Offer { sdp, sources }).await
            }
            ClientMessage::Mute { kind, muted } => {
                let kind = match kind {
                    KindJson::Audio => MediaKind::Audio,
                    KindJson::Video => MediaKind::Video,
                };
                self.signal(Signal::Mute { kind, muted }).await
            }
            ClientMessage::Answer { sdp } => self.signal(Signal::Answer(sdp)).await,
            ClientMessage::Candidate { candidate } => {
                self.signal(Signal::Candidate(candidate.map(candidate_from_json)))
                    .await
            }
            ClientMessage::TrackSettings {
                track,
                visible,
                width,
                height,
            } => {
                let settings = TrackSettings {
                    track,
                    visible,
                    size: width.zip(height),
                };
                self.signal(Signal::TrackSettings(settings)).await
            }
        }
    }

    /// The name and rights a join gets: the token's, when the server requires tokens.
    fn admission<'a>(
        &self,
        room: &str,
        name: Option<&'a str>,
        token: Option<&str>,
    ) -> Result<(Option<std::borrow::Cow<'a, str>>, Grants), String> {
        let Some(tokens) = &self.options.room_tokens else {
            return Ok((name.map(Into::into), Grants::ALL));
        };
        let claims = tokens.verify(token, room).map_err(|e| e.to_string())?;
        let grants = claims.grants();
        Ok((Some(claims.sub.into()), grants))
    }

    async fn join(&mut self, room: &str, name: Option<&str>, token: Option<&str>) {
        if self.membership.is_some() {
            return self
                .refuse(ErrorCode::AlreadyJoined, "leave the current room first")
                .await;
        }
        let (name, grants) = match self.admission(room, name, token) {
            Ok(admission) => admission,
            Err(why) => return self.refuse(ErrorCode::Unauthorized, why).await,
        };
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        match self
            .sfu
            .join_with(room, name.as_deref(), grants, events_tx)
            .await
        {
            Ok(joined) => {
                let span = tracing::Span::current();
                span.record("room", joined.room.as_str());
                span.record("participant", joined.id.as_str());
                self.send(joined_message(&joined)).await;
                self.membership = Some(Membership {
                    handle: joined.handle,
                    room: joined.room,
                    events,
                });
            }
            Err(JoinError::Full { capacity }) => {
                tracing::info!(room, capacity, "room full");
                self.send(ServerMessage::Full {
                    room: room.to_owned(),
                    capacity,
                })
                .await;
            }
            Err(error @ JoinError::InvalidRoom) => {
                self.refuse(ErrorCode::InvalidRoom, error.to_string()).await
            }
            Err(error @ JoinError::InvalidName) => {
                self.refuse(ErrorCode::InvalidName, error.to_string()).await
            }
            Err(error @ JoinError::ServerFull { .. }) => {
                self.refuse(ErrorCode::ServerFull, error.to_string()).await
            }
            Err(error @ JoinError::TooManyRooms { .. }) => {
                self.refuse(ErrorCode::TooManyRooms, error.to_string())
                    .await
            }
            Err(error @ JoinError::Peer(_)) => {
                tracing::error!(%error, "join failed");
                self.refuse(ErrorCode::Internal, "could not create a peer connection")
                    .await;
            }
        }
    }

    async fn leave(&mut self) {
        let Some(membership) = self.membership.take() else {
            return self.refuse(ErrorCode::NotJoined, "not in a room").await;
        };
        membership.handle.signal(Signal::Leave).await;
        self.send(ServerMessage::Left {
            room: membership.room.to_string(),
        })
        .await;
    }

    async fn signal(&mut self, signal: Signal) {
        let Some(membership) = &mut self.membership else {
            return self.refuse(ErrorCode::NotJoined, "join a room first").await;
        };
        // The participant answers on its bounded event queue and waits for room there: keep taking
        // its events while waiting to hand it this signal, or a client flooding signals leaves
        // both waiting for each other forever (and the session deaf even to the socket closing).
        let mut taken = Vec::new();
        let delivered = {
            let deliver = membership.handle.signal(signal);
            tokio::pin!(deliver);
            loop {
                tokio::select! {
                    delivered = &mut deliver => break delivered,
                    Some(event) = membership.events.recv() => taken.push(event),
                }
            }
        };
        if !delivered {
            tracing::debug!("signal after the participant ended");
        }
        for event in taken {
            self.on_event(event).await;
        }
    }

    async fn on_event(&mut self, event: ServerEvent) {
        let message = match event {
            ServerEvent::ParticipantJoined(p) => ServerMessage::ParticipantJoined {
                participant: participant_to_json(&p),
            },
            ServerEvent::ParticipantUpdated(p) => ServerMessage::ParticipantUpdated {
                participant: participant_to_json(&p),
            },
            ServerEvent::ParticipantLeft(id) => {
                ServerMessage::ParticipantLeft { id: id.to_string() }
            }
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
                return self.refuse(code, error.to_string()).await;
            }
            ServerEvent::Left(reason) => return self.on_left(reason).await,
        };
        self.send(message).await;
    }

    async fn on_left(&mut self, reason: LeaveReason) {
        let Some(membership) = self.membership.take() else {
            return;
        };
        let room = membership.room.to_string();
        let (kick, message) = match reason {
            LeaveReason::Requested => (None, ""),
            LeaveReason::PeerFailed => {
                self.refuse(ErrorCode::PeerFailed, "the media connection failed")
                    .await;
                (None, "")
            }
            LeaveReason::Kicked => (
                Some(KickReason::Kicked),
                "An operator removed you from the room.",
            ),
            LeaveReason::RoomClosed => {
                (Some(KickReason::RoomClosed), "An operator closed the room.")
            }
            LeaveReason::ServerShutdown => (
                Some(KickReason::ServerShutdown),
                "The server is shutting down.",
            ),
        };
        match kick {
            Some(reason) => {
                tracing::info!(?reason, "removed by the server");
                self.send(ServerMessage::Kicked {
                    room,
                    reason,
                    message: message.to_owned(),
                })
                .await;
                self.closing = true;
            }
            None => self.send(ServerMessage::Left { room }).await,
        }
    }

    /// Tells the client what was refused and why; a client that keeps earning refusals is
    /// told once more and disconnected, so it cannot keep the server busy.
    async fn refuse(&mut self, code: ErrorCode, message: impl Into<String>) {
        let message = message.into();
        tracing::info!(code = code.as_str(), detail = %message, "refused client message");
        self.metrics.error_sent(code);
        self.send(ServerMessage::error(code, message)).await;
        if !self.closing && self.strikes.add(tokio::time::Instant::now()) {
            tracing::warn!("closing an abusive connection");
            self.metrics.error_sent(ErrorCode::Abusive);
            self.send(ServerMessage::error(
                ErrorCode::Abusive,
                "too many refused messages: closing the connection",
            ))
            .await;
            self.closing = true;
        }
    }

    async fn send(&mut self, message: ServerMessage) {
        if let Err(error) = self
            .socket
            .send(Message::Text(message.to_json().into()))
            .await
        {
            tracing::debug!(%error, "send to a closing socket");
        }
    }
}

async fn next_event(membership: &mut Option<Membership>) -> Option<ServerEvent> {
    match membership {
        Some(m) => m.events.recv().await,
        None => std::future::pending().await,
    }
}

fn joined_message(joined: &Joined) -> ServerMessage {
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
