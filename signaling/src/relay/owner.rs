//! The owner's side of a relayed session: runs the participant in this node's SFU as a local
//! session would, with the entry node's letters for the client's messages and its mailbox for
//! the client's ears.

use std::time::Duration;

use roomcast_cluster::{Claim, NodeId};
use roomcast_sfu::{Grants, ServerEvent, Signal, SignalRefused};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::Instrument;

use super::wire::{Body, Letter};
use super::{Relay, SILENCE};
use crate::protocol::{ClientMessage, ErrorCode};
use crate::translate::{join_refused, joined_message, signal_of, update_of, Update};

/// Events buffered between the participant and the relay, as for a local session.
const EVENT_QUEUE: usize = 256;

/// How often the session checks that its entry node is still there.
const CHECK: Duration = Duration::from_secs(1);

/// Serves one relayed participant, from its join letter until it leaves or its entry node is
/// lost.
pub(super) async fn serve(relay: Relay, join: Letter, letters: mpsc::Receiver<Body>) {
    let span = tracing::info_span!(
        "relayed",
        entry = %join.from,
        session = %join.session,
        room = tracing::field::Empty,
        participant = tracing::field::Empty
    );
    let session = join.session.clone();
    run(&relay, join, letters).instrument(span).await;
    relay.unroute(&session);
}

async fn run(relay: &Relay, join: Letter, mut letters: mpsc::Receiver<Body>) {
    let Body::Join {
        room,
        name,
        identity,
        publish,
        subscribe,
    } = join.body
    else {
        return;
    };
    let entry = Entry {
        relay,
        node: join.from,
        session: join.session,
    };
    // The entry node placed the room here; a claim that lapsed meanwhile may have moved it.
    match relay.inner.claims.claim(&room).await {
        Ok(Claim::Mine) => {}
        Ok(Claim::Elsewhere(_)) | Err(_) => {
            let update = Update::Refusal {
                code: ErrorCode::Unavailable,
                message: "the room moved to another node; join again".to_owned(),
            };
            entry.say(Body::Update { update }).await;
            return;
        }
    }
    let (events_tx, mut events) = mpsc::channel(EVENT_QUEUE);
    let grants = Grants { publish, subscribe };
    let sfu = &relay.inner.sfu;
    let joined = match &identity {
        Some(identity) => sfu.join_as(&room, identity, grants, events_tx).await,
        None => {
            sfu.join_with(&room, name.as_deref(), grants, events_tx)
                .await
        }
    };
    let joined = match joined {
        Ok(joined) => joined,
        Err(error) => {
            let update = join_refused(&room, error);
            entry.say(Body::Update { update }).await;
            return;
        }
    };
    let span = tracing::Span::current();
    span.record("room", joined.room.as_str());
    span.record("participant", joined.id.as_str());
    tracing::info!("relayed participant joined");
    let text = joined_message(&joined).to_json();
    entry
        .say(Body::Joined {
            room: joined.room.to_string(),
            text,
        })
        .await;
    let handle = joined.handle;
    let mut last_heard = Instant::now();
    let mut check = tokio::time::interval(CHECK);
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { break };
                let left = matches!(event, ServerEvent::Left(_));
                entry.say(Body::Update { update: update_of(event) }).await;
                if left { break }
            }
            letter = letters.recv() => {
                let Some(letter) = letter else { break };
                last_heard = Instant::now();
                match letter {
                    Body::Client { text } => {
                        if let Some(update) = signal(&handle, &text, relay.inner.max_message_bytes) {
                            entry.say(Body::Update { update }).await;
                        }
                    }
                    Body::Leave => {
                        let _ = handle.signal(Signal::Leave);
                        break;
                    }
                    Body::Ping => entry.say(Body::Pong).await,
                    _ => {}
                }
            }
            _ = check.tick() => {
                let now = Instant::now();
                if now.saturating_duration_since(last_heard) > SILENCE && relay.up_for(now) > SILENCE {
                    tracing::info!("the entry node relaying this participant went silent: it leaves");
                    break;
                }
            }
        }
    }
    // Dropping the handle is the participant's cue to leave the room.
}

/// Hands a relayed client message to the participant; returns the refusal to relay back, if any.
fn signal(handle: &roomcast_sfu::ParticipantHandle, text: &str, max: usize) -> Option<Update> {
    let refusal = |code, message: &str| {
        Some(Update::Refusal {
            code,
            message: message.to_owned(),
        })
    };
    let message = match ClientMessage::parse_limited(text, max) {
        Ok(message) => message,
        Err(error) => return refusal(error.code, &error.message),
    };
    let signal = match signal_of(message) {
        Ok(signal) => signal,
        Err((code, why)) => return refusal(code, &why),
    };
    match handle.signal(signal) {
        Ok(()) => None,
        Err(SignalRefused::Busy) => refusal(
            ErrorCode::RateLimited,
            "too many signals still being handled; this one was dropped",
        ),
        Err(SignalRefused::Gone) => None,
    }
}

/// Where the session's letters go.
struct Entry<'a> {
    relay: &'a Relay,
    node: NodeId,
    session: String,
}

impl Entry<'_> {
    async fn say(&self, body: Body) {
        if let Err(error) = self.relay.post(&self.node, &self.session, body).await {
            tracing::debug!(%error, "could not relay to the entry node");
        }
    }
}
