//! Signaling relayed between the nodes of a cluster. A client's WebSocket may reach any node (its
//! entry node); when its room lives on another node (the owner), the entry node keeps the
//! client's side of the session (parsing, limits, tokens, strikes) and relays the session's
//! messages through the owner's mailbox in Redis, and the owner runs the participant, exactly as
//! for a local client, sending what the SFU says back through the entry node's mailbox. Media
//! never passes the entry node: the SDP names the owner's candidates.
//!
//! Each side pings the other: an entry node whose owner stopped answering tells its client
//! `node_lost` (the client joins again, and the room is re-created on a surviving node); an owner
//! whose entry node went silent removes the participant. Silence counts only while this node's
//! own mailbox has been up for as long: a Redis outage is not a lost node.

mod entry;
mod owner;
mod wire;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dashmap::DashMap;
use roomcast_cluster::{ClusterError, Delivery, Mailbox, NodeId, Postman, RoomClaims};
use roomcast_sfu::Sfu;
use tokio::sync::mpsc;
use tokio::time::Instant;

pub(crate) use entry::{JoinFailure, Remote};
pub(crate) use wire::Body;
use wire::Letter;

/// How often each side of a relayed session says it is still there.
const PING_EVERY: Duration = Duration::from_secs(2);

/// How long a side may stay silent, while Redis works, before the other gives the session up.
const SILENCE: Duration = Duration::from_secs(10);

/// Letters queued for one session before more are dropped.
const SESSION_QUEUE: usize = 256;

/// This node's end of the relay: it reads the node's mailbox and hands each letter to the
/// session it is about. Cheap to clone.
#[derive(Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

struct Inner {
    node: NodeId,
    postman: Postman,
    /// Each relayed session on this node, entry side or owner side, by session id.
    routes: DashMap<String, mpsc::Sender<Body>>,
    /// Owner-side sessions still running: a shutdown waits for their last letters.
    owned: AtomicUsize,
    /// Since when the mailbox has been subscribed; `None` while Redis is out of reach.
    up_since: Mutex<Option<Instant>>,
    next_session: AtomicU64,
    sfu: Sfu,
    claims: RoomClaims,
    max_message_bytes: usize,
}

impl Relay {
    /// Starts reading `mailbox` (this node's) for as long as the process runs.
    pub fn start(
        mailbox: Mailbox,
        postman: Postman,
        claims: RoomClaims,
        sfu: Sfu,
        max_message_bytes: usize,
    ) -> Relay {
        let relay = Relay {
            inner: Arc::new(Inner {
                node: claims.node().clone(),
                postman,
                routes: DashMap::new(),
                owned: AtomicUsize::new(0),
                up_since: Mutex::new(Some(Instant::now())),
                next_session: AtomicU64::new(1),
                sfu,
                claims,
                max_message_bytes,
            }),
        };
        tokio::spawn(read_mailbox(mailbox, relay.clone()));
        relay
    }

    /// How long the mailbox has been up without a break (zero while it is down).
    pub(crate) fn up_for(&self, now: Instant) -> Duration {
        let since = *self
            .inner
            .up_since
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        since.map_or(Duration::ZERO, |since| now.saturating_duration_since(since))
    }

    /// Resolves once every participant this node runs for another node's client has sent its
    /// last letter (a shutdown's `kicked` must reach the entry node before the process exits),
    /// or at `deadline`.
    pub async fn settle(&self, deadline: Instant) {
        while self.inner.owned.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Posts `body` about `session` to `node`; `Ok(false)` when the node is not reading.
    async fn post(&self, node: &NodeId, session: &str, body: Body) -> Result<bool, ClusterError> {
        let letter = Letter {
            session: session.to_owned(),
            from: self.inner.node.clone(),
            body,
        };
        self.inner.postman.post(node, &letter.to_json()).await
    }

    fn new_session(&self) -> (String, mpsc::Receiver<Body>) {
        let n = self.inner.next_session.fetch_add(1, Ordering::Relaxed);
        let session = format!("{}-{n}", self.inner.node);
        let letters = self.route(&session);
        (session, letters)
    }

    fn route(&self, session: &str) -> mpsc::Receiver<Body> {
        let (tx, rx) = mpsc::channel(SESSION_QUEUE);
        self.inner.routes.insert(session.to_owned(), tx);
        rx
    }

    fn unroute(&self, session: &str) {
        self.inner.routes.remove(session);
    }

    async fn deliver(&self, text: &str) {
        let Some(letter) = Letter::parse(text) else {
            tracing::debug!(letter = %crate::log_limit::clip(text), "unreadable letter in the mailbox");
            return;
        };
        if let Body::Join { .. } = letter.body {
            if !self.inner.routes.contains_key(&letter.session) {
                let letters = self.route(&letter.session);
                self.inner.owned.fetch_add(1, Ordering::AcqRel);
                let relay = self.clone();
                tokio::spawn(async move {
                    owner::serve(relay.clone(), letter, letters).await;
                    relay.inner.owned.fetch_sub(1, Ordering::AcqRel);
                });
            }
            return;
        }
        let route = self.inner.routes.get(&letter.session).map(|r| r.clone());
        match route {
            Some(route) => {
                // A session that does not read its queue loses letters, not the node's memory.
                let _ = route.try_send(letter.body);
            }
            None if letter.body == Body::Ping => {
                let _ = self.post(&letter.from, &letter.session, Body::Gone).await;
            }
            None => {}
        }
    }

    fn set_up(&self, up: bool) {
        let mut since = self
            .inner
            .up_since
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *since = up.then(Instant::now);
    }
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("node", &self.inner.node)
            .field("sessions", &self.inner.routes.len())
            .finish()
    }
}

async fn read_mailbox(mut mailbox: Mailbox, relay: Relay) {
    while let Some(delivery) = mailbox.recv().await {
        match delivery {
            Delivery::Letter(text) => relay.deliver(&text).await,
            Delivery::Down => {
                tracing::warn!(
                    "lost the cluster's Redis: relayed signaling waits until it is back"
                );
                relay.set_up(false);
            }
            Delivery::Up => {
                tracing::info!("the cluster's Redis is back: relayed signaling flows again");
                relay.set_up(true);
            }
        }
    }
}
