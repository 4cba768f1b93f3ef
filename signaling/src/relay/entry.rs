//! The entry node's side of a relayed session: joins through the owner, relays the client's
//! messages to it, and hands the owner's updates to the session; judges whether the owner is
//! still there.

use std::time::Duration;

use roomcast_cluster::NodeId;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::wire::Body;
use super::{Relay, PING_EVERY, SILENCE};
use crate::translate::Update;

/// How long the owner has to answer a join.
const JOIN_ANSWER: Duration = Duration::from_secs(5);

/// Pings that found nobody reading the owner's mailbox, in a row, before the owner counts as
/// gone: a node killed outright drops its subscription at once, one that only lost Redis for a
/// moment is back within a ping or two.
const UNREAD_PINGS: u32 = 2;

/// A participant that lives on another node, seen from the node its client reached.
pub(crate) struct Remote {
    relay: Relay,
    session: String,
    owner: NodeId,
    letters: mpsc::Receiver<Body>,
    last_heard: Instant,
    next_ping: Instant,
    unread_pings: u32,
    /// The owner ended the session (or is gone): nothing to tell it when this is dropped.
    ended: bool,
}

/// Why a relayed join did not happen.
#[derive(Debug)]
pub(crate) enum JoinFailure {
    /// The owner refused it: tell the client this.
    Refused(Update),
    /// Nobody reads the owner's mailbox: it is gone, and its claim on the room lapses soon.
    NotListening,
    /// Redis failed, or the owner did not answer in time.
    Unavailable,
}

impl Remote {
    /// Asks `owner` to run the participant that `join` (a [`Body::Join`]) describes; returns
    /// the session with the `joined` message to send, or why not.
    pub(crate) async fn join(
        relay: &Relay,
        owner: NodeId,
        join: Body,
    ) -> Result<(Remote, String), JoinFailure> {
        let (session, letters) = relay.new_session();
        let now = Instant::now();
        let mut remote = Remote {
            relay: relay.clone(),
            session,
            owner,
            letters,
            last_heard: now,
            next_ping: now + PING_EVERY,
            unread_pings: 0,
            ended: true,
        };
        match remote.post(join).await {
            Ok(true) => {}
            Ok(false) => return Err(JoinFailure::NotListening),
            Err(()) => return Err(JoinFailure::Unavailable),
        }
        // From here on the owner may hold a participant for this session: say goodbye on drop.
        remote.ended = false;
        let answer = tokio::time::timeout(JOIN_ANSWER, remote.letters.recv()).await;
        match answer {
            Ok(Some(Body::Joined { text, .. })) => Ok((remote, text)),
            Ok(Some(Body::Update { update })) => {
                remote.ended = true;
                Err(JoinFailure::Refused(update))
            }
            _ => Err(JoinFailure::Unavailable),
        }
    }

    pub(crate) fn owner(&self) -> &NodeId {
        &self.owner
    }

    /// Relays a client message (already parsed and checked here).
    pub(crate) async fn send(&mut self, text: &str) {
        let _ = self
            .post(Body::Client {
                text: text.to_owned(),
            })
            .await;
    }

    /// Tells the owner the client left; the session ends.
    pub(crate) async fn leave(mut self) {
        self.ended = true;
        let _ = self.post(Body::Leave).await;
    }

    /// The next update from the owner.
    pub(crate) async fn next(&mut self) -> Option<Update> {
        loop {
            let body = self.letters.recv().await?;
            self.last_heard = Instant::now();
            self.unread_pings = 0;
            match body {
                Body::Update { update } => {
                    if matches!(update, Update::Left { .. }) {
                        self.ended = true;
                    }
                    return Some(update);
                }
                Body::Gone => {
                    self.ended = true;
                    return Some(Update::Left {
                        reason: roomcast_sfu::LeaveReason::PeerFailed,
                    });
                }
                _ => {}
            }
        }
    }

    /// Pings the owner when it is time; says [`Update::NodeLost`] once the owner is judged gone.
    pub(crate) async fn tick(&mut self, now: Instant) -> Option<Update> {
        if now >= self.next_ping {
            self.next_ping = now + PING_EVERY;
            match self.post(Body::Ping).await {
                Ok(true) => self.unread_pings = 0,
                Ok(false) => self.unread_pings += 1,
                Err(()) => {}
            }
        }
        let silent = now.saturating_duration_since(self.last_heard);
        let lost = self.unread_pings >= UNREAD_PINGS
            || (silent > SILENCE && self.relay.up_for(now) > SILENCE);
        if lost {
            tracing::warn!(owner = %self.owner, silent_ms = silent.as_millis() as u64, "the node holding this participant's room is gone");
            self.ended = true;
            return Some(Update::NodeLost);
        }
        None
    }

    async fn post(&self, body: Body) -> Result<bool, ()> {
        self.relay
            .post(&self.owner, &self.session, body)
            .await
            .map_err(|error| tracing::debug!(%error, "could not relay to the owner"))
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.relay.unroute(&self.session);
        if !self.ended {
            let (relay, owner, session) =
                (self.relay.clone(), self.owner.clone(), self.session.clone());
            tokio::spawn(async move {
                let _ = relay.post(&owner, &session, Body::Leave).await;
            });
        }
    }
}
