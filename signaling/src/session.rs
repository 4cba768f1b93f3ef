//! One WebSocket connection: parses client frames, joins the SFU, and relays the participant's
//! events back. A connection can join, leave and join again; bad input gets an `error` and the
//! connection stays usable.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket};
use futures_util::SinkExt;
use roomcast_sfu::{
    Grants, LeaveReason, ParticipantHandle, RateLimiter, RoomId, ServerEvent, Sfu, Signal,
    SignalRefused,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::Instrument;

use crate::deadlines::Deadlines;
use crate::edge_metrics::EdgeMetrics;
use crate::limits::Strikes;
use crate::log_limit::{clip, RefusalLog};
use crate::metered::Meter;
use crate::placement::{place, Placement};
use crate::protocol::{ClientMessage, ErrorCode, KickReason, ServerMessage};
use crate::relay::{JoinFailure, Remote};
use crate::server::{EdgeOptions, Guard};
use crate::slots::Slot;
use crate::translate::{join_refused, joined_message, signal_of, update_of, Update};

/// Events buffered between a participant and its socket.
const EVENT_QUEUE: usize = 256;

/// Updates handled in one turn at most, their messages written with one flush (see
/// `Session::on_updates`): a quarter of the event queue, so a burst of events drains in a few
/// writes without one holding up the reads.
const COALESCED: usize = 64;

/// How long a closing session waits for the client's close frame.
const CLOSE_REPLY_WAIT: Duration = Duration::from_secs(1);

/// How often the session checks its deadlines.
const TICK: Duration = Duration::from_secs(1);

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// The room the connection is in: on this node, or on the node that owns it in a cluster.
struct Membership {
    room: RoomId,
    participant: Participant,
}

enum Participant {
    Local {
        handle: ParticipantHandle,
        events: mpsc::Receiver<ServerEvent>,
    },
    Relayed(Remote),
}

/// Who a join is for, and with what rights.
#[derive(Clone)]
enum Admission<'a> {
    /// Any name (or none): names may repeat in a room.
    Named(Option<&'a str>, Grants),
    /// A room token's subject: one participant per room.
    Identified(String, Grants),
}

/// What the edge took for a connection before upgrading it.
pub(crate) struct Connection {
    pub(crate) address: IpAddr,
    /// The bytes read on the connection; absent when the router is served some other way.
    pub(crate) meter: Option<Meter>,
    /// Held for the session's life: the connection counts against the caps until it ends.
    pub(crate) _slot: Slot,
    pub(crate) guard: Arc<Guard>,
}

struct Session {
    socket: WebSocket,
    connection: Connection,
    deadlines: Deadlines,
    refusals_logged: RefusalLog,
    sfu: Sfu,
    metrics: Arc<EdgeMetrics>,
    options: Arc<EdgeOptions>,
    membership: Option<Membership>,
    rate: RateLimiter,
    strikes: Strikes,
    /// Set when the server ends the conversation (an operator removed the participant, or the
    /// client kept sending what it must not).
    closing: bool,
    /// Why, when the client is told only by the close frame.
    close_reason: Option<(u16, &'static str)>,
}

/// Serves one connection until the client goes away.
pub(crate) async fn run(
    socket: WebSocket,
    connection: Connection,
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
    let read = connection.meter.as_ref().map_or(0, Meter::read);
    let session = Session {
        socket,
        connection,
        deadlines: Deadlines::new(limits, now, read),
        refusals_logged: RefusalLog::new(limits.strike_window),
        sfu,
        metrics,
        rate: RateLimiter::new(
            limits.messages_per_second,
            limits.message_burst,
            now.into_std(),
        ),
        strikes: Strikes::new(limits.max_strikes, limits.strike_window, now),
        options,
        membership: None,
        closing: false,
        close_reason: None,
    };
    session.serve().instrument(span).await;
}

impl Session {
    async fn serve(mut self) {
        tracing::debug!("connected");
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let every = self.options.limits.ping_interval;
        let mut ping = tokio::time::interval_at(Instant::now() + every, every);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !self.closing {
            tokio::select! {
                frame = self.socket.recv() => {
                    let Some(frame) = frame else { break };
                    let (now, read) = (Instant::now(), self.bytes_read());
                    match frame {
                        Ok(Message::Text(text)) => {
                            self.deadlines.message(now, read);
                            if self.within_rate().await {
                                self.on_text(text.as_str()).await;
                            }
                        }
                        Ok(Message::Binary(_)) => {
                            self.deadlines.message(now, read);
                            if self.within_rate().await {
                                self.refuse(ErrorCode::BinaryFrame, "binary frames are not part of the protocol").await;
                            }
                        }
                        // The socket answers pings itself; a ping flood still spends the rate.
                        Ok(Message::Ping(_)) => {
                            self.deadlines.control_frame(now, read);
                            self.within_rate().await;
                        }
                        Ok(Message::Pong(_)) => self.deadlines.control_frame(now, read),
                        Ok(Message::Close(_)) => break,
                        Err(error) => {
                            tracing::debug!(error = %clip(&error.to_string()), "websocket error");
                            break;
                        }
                    }
                }
                Some(update) = next_update(&mut self.membership) => self.on_updates(update).await,
                _ = tick.tick() => {
                    self.check_deadlines(Instant::now());
                    self.check_relay(Instant::now()).await;
                }
                _ = ping.tick() => self.ping().await,
            }
        }
        // Dropping the handle is the participant's cue to leave the room.
        self.membership = None;
        if self.closing {
            let frame = self.close_reason.map(|(code, reason)| CloseFrame {
                code,
                reason: reason.into(),
            });
            let _ = self.socket.send(Message::Close(frame)).await;
            self.await_close_reply().await;
        }
        tracing::debug!("disconnected");
    }

    /// Reads (and ignores) what the client still sends until it answers our close frame, for a
    /// second at most: a socket dropped with unread input is reset, and the reset can destroy
    /// our last messages (the reason for the close) before the client reads them.
    async fn await_close_reply(&mut self) {
        let drain = async {
            while let Some(Ok(message)) = self.socket.recv().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(CLOSE_REPLY_WAIT, drain).await;
    }

    fn bytes_read(&self) -> u64 {
        self.connection.meter.as_ref().map_or(0, Meter::read)
    }

    /// Closes the connection when it has stayed out of a room, kept a message unfinished, or
    /// left pings unanswered for too long.
    fn check_deadlines(&mut self, now: Instant) {
        let read = self.bytes_read();
        if let Some(why) = self.deadlines.missed(now, read) {
            tracing::debug!("closing: {why}");
            self.closing = true;
            self.close_reason = Some((close_code::POLICY, why));
        }
    }

    async fn ping(&mut self) {
        if let Err(error) = self.socket.send(Message::Ping(Default::default())).await {
            tracing::debug!(%error, "ping to a closing socket");
        }
    }

    /// The connection is outside any room from now: it must join again in time, and only a
    /// little of what it sends meanwhile is read.
    fn unjoined(&mut self) {
        self.deadlines.left(Instant::now());
        if let Some(meter) = &self.connection.meter {
            meter.allow_only(self.options.limits.unjoined_bytes as u64);
        }
    }

    fn joined(&mut self) {
        self.deadlines.joined();
        if let Some(meter) = &self.connection.meter {
            meter.unlimit();
        }
    }

    /// Whether a message may be handled now; past the rate each message is dropped with a
    /// `rate_limited` error, which counts as a strike.
    async fn within_rate(&mut self) -> bool {
        if self.rate.allow(std::time::Instant::now()) {
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
            message => match signal_of(message) {
                Ok(signal) => self.signal(signal, text).await,
                Err((code, why)) => self.refuse(code, why).await,
            },
        }
    }

    /// The name and rights a join gets: the token's, when the server requires tokens. A token's
    /// subject is an identity, which only one participant in a room may have.
    fn admission<'a>(
        &self,
        room: &str,
        name: Option<&'a str>,
        token: Option<&str>,
    ) -> Result<Admission<'a>, String> {
        let Some(tokens) = &self.options.room_tokens else {
            return Ok(Admission::Named(name, Grants::ALL));
        };
        let claims = tokens.verify(token, room).map_err(|e| e.to_string())?;
        let grants = claims.grants();
        Ok(Admission::Identified(claims.sub, grants))
    }

    async fn join(&mut self, room: &str, name: Option<&str>, token: Option<&str>) {
        if self.membership.is_some() {
            return self
                .refuse(ErrorCode::AlreadyJoined, "leave the current room first")
                .await;
        }
        let admission = match self.admission(room, name, token) {
            Ok(admission) => admission,
            Err(why) => return self.refuse(ErrorCode::Unauthorized, why).await,
        };
        // A room whose owner was just lost stays claimed until the claim lapses: meanwhile its
        // joins find nobody reading the owner's mailbox, and wait for the room to be free.
        let lapsed = Instant::now() + roomcast_cluster::LEASE + Duration::from_secs(2);
        loop {
            let open_here = self.sfu.has_room(room);
            let owner = match place(self.options.cluster.as_ref(), room, open_here).await {
                Ok(Placement::Here) => return self.join_here(room, admission).await,
                Ok(Placement::There(owner)) => owner,
                Err(why) => return self.refuse(ErrorCode::Unavailable, why).await,
            };
            match self.join_there(room, owner, admission.clone()).await {
                Err(JoinFailure::NotListening) if Instant::now() < lapsed => {
                    tokio::time::sleep(Duration::from_millis(500)).await
                }
                Err(JoinFailure::Refused(update)) => return self.on_update(update).await,
                Err(JoinFailure::NotListening | JoinFailure::Unavailable) => {
                    let why = "the node that holds this room does not answer; try again shortly";
                    return self.refuse(ErrorCode::Unavailable, why).await;
                }
                Ok(()) => return,
            }
        }
    }

    /// Joins through the node that owns the room.
    async fn join_there(
        &mut self,
        room: &str,
        owner: roomcast_cluster::NodeId,
        admission: Admission<'_>,
    ) -> Result<(), JoinFailure> {
        let (Some(cluster), Some(room_id)) = (self.options.cluster.clone(), RoomId::parse(room))
        else {
            return Err(JoinFailure::Unavailable); // placed elsewhere only in a cluster, and only a valid room
        };
        let (remote, joined) =
            Remote::join(&cluster.relay, owner, relayed_join(room, admission)).await?;
        let span = tracing::Span::current();
        span.record("room", room);
        // The owner chose the participant's id; the logs here carry it too.
        if let Ok(message) = serde_json::from_str::<serde_json::Value>(&joined) {
            if let Some(id) = message["id"].as_str() {
                span.record("participant", id);
            }
        }
        tracing::info!(owner = %remote.owner(), "joined through the room's owner");
        self.send_text(joined).await;
        self.joined();
        self.membership = Some(Membership {
            room: room_id,
            participant: Participant::Relayed(remote),
        });
        Ok(())
    }

    async fn join_here(&mut self, room: &str, admission: Admission<'_>) {
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let joined = match admission {
            Admission::Named(name, grants) => {
                self.sfu.join_with(room, name, grants, events_tx).await
            }
            Admission::Identified(identity, grants) => {
                self.sfu.join_as(room, &identity, grants, events_tx).await
            }
        };
        match joined {
            Ok(joined) => {
                let span = tracing::Span::current();
                span.record("room", joined.room.as_str());
                span.record("participant", joined.id.as_str());
                self.send(joined_message(&joined)).await;
                self.joined();
                self.membership = Some(Membership {
                    room: joined.room,
                    participant: Participant::Local {
                        handle: joined.handle,
                        events,
                    },
                });
            }
            Err(error) => self.on_update(join_refused(room, error)).await,
        }
    }

    async fn leave(&mut self) {
        let Some(membership) = self.membership.take() else {
            return self.refuse(ErrorCode::NotJoined, "not in a room").await;
        };
        match membership.participant {
            // Dropping the handle leaves too, should the queue be full.
            Participant::Local { handle, .. } => {
                let _ = handle.signal(Signal::Leave);
            }
            Participant::Relayed(remote) => remote.leave().await,
        }
        self.unjoined();
        self.send(ServerMessage::Left {
            room: membership.room.to_string(),
        })
        .await;
    }

    /// Hands a client's signal to its participant: `text` is the message it came in, which a
    /// relayed session passes on as it is.
    async fn signal(&mut self, signal: Signal, text: &str) {
        let Some(membership) = &mut self.membership else {
            return self.refuse(ErrorCode::NotJoined, "join a room first").await;
        };
        let handle = match &mut membership.participant {
            Participant::Local { handle, .. } => handle,
            Participant::Relayed(remote) => return remote.send(text).await,
        };
        match handle.signal(signal) {
            Ok(()) => {}
            Err(SignalRefused::Busy) => {
                self.refuse(
                    ErrorCode::RateLimited,
                    "too many signals still being handled; this one was dropped",
                )
                .await
            }
            Err(SignalRefused::Gone) => tracing::debug!("signal after the participant ended"),
        }
    }

    /// Handles `first` and the updates already waiting behind it, their messages written with
    /// one flush: when hundreds leave a large room at once, every remaining member has hundreds
    /// of events to pass on, and a TCP write each made that a storm of syscalls on the core
    /// that forwards the room's media. At most [`COALESCED`] updates are handled per call, so
    /// the client's own messages wait no longer than that.
    async fn on_updates(&mut self, first: Update) {
        let mut update = Some(first);
        let mut fed = 0;
        let mut handled = 0;
        while let Some(next) = update.take() {
            handled += 1;
            match next {
                Update::Message { text } => {
                    if let Err(error) = self.socket.feed(Message::Text(text.into())).await {
                        tracing::debug!(%error, "send to a closing socket");
                    }
                    fed += 1;
                }
                other => {
                    self.flush(&mut fed).await;
                    self.on_update(other).await;
                }
            }
            if handled < COALESCED && !self.closing {
                update = ready_update(&mut self.membership);
            }
        }
        self.flush(&mut fed).await;
    }

    async fn flush(&mut self, fed: &mut usize) {
        if std::mem::take(fed) > 0 {
            if let Err(error) = self.socket.flush().await {
                tracing::debug!(%error, "send to a closing socket");
            }
        }
    }

    async fn on_update(&mut self, update: Update) {
        match update {
            Update::Message { text } => self.send_text(text).await,
            Update::Refusal { code, message } => self.refuse(code, message).await,
            Update::Left { reason } => self.on_left(reason).await,
            Update::NodeLost => self.on_node_lost().await,
        }
    }

    /// Pings the owner of a relayed session's room, and acts when it is judged lost.
    async fn check_relay(&mut self, now: Instant) {
        let Some(Membership {
            participant: Participant::Relayed(remote),
            ..
        }) = &mut self.membership
        else {
            return;
        };
        if let Some(update) = remote.tick(now).await {
            self.on_update(update).await;
        }
    }

    async fn on_node_lost(&mut self) {
        let Some(membership) = self.membership.take() else {
            return;
        };
        self.unjoined();
        self.send(ServerMessage::Kicked {
            room: membership.room.to_string(),
            reason: KickReason::NodeLost,
            message: "The server holding this room is gone: joining again.".to_owned(),
        })
        .await;
        self.closing = true;
    }

    async fn on_left(&mut self, reason: LeaveReason) {
        let Some(membership) = self.membership.take() else {
            return;
        };
        self.unjoined();
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
            // In a cluster the room goes on elsewhere: the node holding it is draining.
            LeaveReason::ServerShutdown if self.options.cluster.is_some() => (
                Some(KickReason::NodeDraining),
                "The server holding this room is shutting down: joining again.",
            ),
            LeaveReason::ServerShutdown => (
                Some(KickReason::ServerShutdown),
                "The server is shutting down.",
            ),
            LeaveReason::DuplicateIdentity => (
                Some(KickReason::DuplicateIdentity),
                "You joined this room again elsewhere.",
            ),
            LeaveReason::NegotiationTimeout => (
                Some(KickReason::NegotiationTimeout),
                "Your media connection was not set up in time.",
            ),
            LeaveReason::Moved => (
                Some(KickReason::RoomMoved),
                "This room now lives on another server: joining again.",
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
    /// told once more, disconnected and shut out for a while, so it cannot keep the server busy.
    /// Each kind of refusal is logged once per window: the client decides how many there are.
    async fn refuse(&mut self, code: ErrorCode, message: impl Into<String>) {
        let message = message.into();
        let message = clip(&message);
        let now = Instant::now();
        if self.refusals_logged.should_log(code, now) {
            tracing::info!(code = code.as_str(), detail = ?message, "refused client message");
        }
        self.metrics.error_sent(code);
        self.send(ServerMessage::error(code, message.into_owned()))
            .await;
        if !self.closing && self.strikes.add(now) {
            self.punish("too many refused messages");
            self.metrics.error_sent(ErrorCode::Abusive);
            self.send(ServerMessage::error(
                ErrorCode::Abusive,
                "too many refused messages: closing the connection",
            ))
            .await;
            self.closing = true;
        }
    }

    /// Shuts the connection's address out for a while (see `Penalties`).
    fn punish(&self, why: &str) {
        let address = self.connection.address;
        let ban = self
            .connection
            .guard
            .penalties
            .punish(address, Instant::now());
        tracing::warn!(%address, ban_s = ban.as_secs(), "closing an abusive connection ({why}); its address must wait");
    }

    async fn send(&mut self, message: ServerMessage) {
        self.send_text(message.to_json()).await
    }

    async fn send_text(&mut self, text: String) {
        if let Err(error) = self.socket.send(Message::Text(text.into())).await {
            tracing::debug!(%error, "send to a closing socket");
        }
    }
}

/// The next update if one is waiting already (a local participant's; a relayed one's arrive
/// one at a time).
fn ready_update(membership: &mut Option<Membership>) -> Option<Update> {
    match membership.as_mut().map(|m| &mut m.participant) {
        Some(Participant::Local { events, .. }) => events.try_recv().ok().map(update_of),
        _ => None,
    }
}

async fn next_update(membership: &mut Option<Membership>) -> Option<Update> {
    match membership.as_mut().map(|m| &mut m.participant) {
        Some(Participant::Local { events, .. }) => events.recv().await.map(update_of),
        Some(Participant::Relayed(remote)) => remote.next().await,
        None => std::future::pending().await,
    }
}

/// The letter that asks a room's owner to run a participant this node admitted.
fn relayed_join(room: &str, admission: Admission<'_>) -> crate::relay::Body {
    let (name, identity, grants) = match admission {
        Admission::Named(name, grants) => (name.map(str::to_owned), None, grants),
        Admission::Identified(identity, grants) => (None, Some(identity), grants),
    };
    crate::relay::Body::Join {
        room: room.to_owned(),
        name,
        identity,
        publish: grants.publish,
        subscribe: grants.subscribe,
    }
}
