//! Each node's mailbox: a Redis pub/sub channel, `roomcast:mail:<node>`, that any node may post
//! a letter (a string) to, and that only its node reads. Signaling between an entry node and the
//! node that owns a room travels through these.
//!
//! Pub/sub delivers each letter at most once, in the order one connection posted them, and only
//! to a subscriber connected at the time: a letter posted while the addressee is cut off from
//! Redis is lost. Whoever relies on the mailbox watches [`Delivery::Down`] and [`Delivery::Up`],
//! and its own keepalives, to tell a lost peer from a lost Redis.

use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::mpsc;

use crate::{keys, ClusterError, NodeId};

/// How often the mailbox's own connection is checked; a Redis that comes back is noticed (and
/// the subscription renewed) within this.
const PROBE: Duration = Duration::from_secs(1);

/// What the mailbox hands its node.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// A letter posted to this node.
    Letter(String),
    /// The connection to Redis was lost: letters posted from now on are lost until `Up`.
    Down,
    /// Subscribed again after `Down`.
    Up,
}

/// Posts letters to nodes' mailboxes; cheap to clone.
#[derive(Clone)]
pub struct Postman {
    connection: ConnectionManager,
}

impl Postman {
    /// Posts `letter` to `node`'s mailbox. Returns whether the node was subscribed to read it:
    /// `false` means nobody will (the node is gone, or cut off from Redis).
    pub async fn post(&self, node: &NodeId, letter: &str) -> Result<bool, ClusterError> {
        let readers: u64 = redis::cmd("PUBLISH")
            .arg(keys::mailbox(node))
            .arg(letter)
            .query_async(&mut self.connection.clone())
            .await
            .map_err(ClusterError::from_redis)?;
        Ok(readers > 0)
    }
}

/// This node's mailbox: deliveries arrive on the receiver; dropping it unsubscribes.
pub struct Mailbox {
    deliveries: mpsc::Receiver<Delivery>,
    watch: tokio::task::JoinHandle<()>,
}

impl Mailbox {
    /// Subscribes to `node`'s mailbox on a connection of its own (RESP3, resubscribed by the
    /// connection manager after a reconnection) and returns it with a postman that shares it.
    pub async fn open(url: &str, node: &NodeId) -> Result<(Mailbox, Postman), ClusterError> {
        let info = url
            .into_connection_info()
            .map_err(ClusterError::from_redis)?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(settings))
            .map_err(ClusterError::from_redis)?;
        let (pushes_tx, pushes) = mpsc::unbounded_channel();
        let config = crate::manager_config()
            .set_push_sender(pushes_tx)
            .set_automatic_resubscription();
        let mut connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(ClusterError::from_redis)?;
        connection
            .subscribe(keys::mailbox(node))
            .await
            .map_err(ClusterError::from_redis)?;
        let (deliveries_tx, deliveries) = mpsc::channel(1024);
        let watch = tokio::spawn(watch(connection.clone(), pushes, deliveries_tx));
        Ok((Mailbox { deliveries, watch }, Postman { connection }))
    }

    /// The next delivery; `None` once the mailbox is closed.
    pub async fn recv(&mut self) -> Option<Delivery> {
        self.deliveries.recv().await
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        self.watch.abort();
    }
}

/// Turns the connection's pushes into deliveries, and probes the connection so that a lost one
/// is noticed and reconnected even when nothing is being posted.
async fn watch(
    mut connection: ConnectionManager,
    mut pushes: mpsc::UnboundedReceiver<PushInfo>,
    deliveries: mpsc::Sender<Delivery>,
) {
    let mut probe = tokio::time::interval(PROBE);
    probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut up = true;
    loop {
        let delivery = tokio::select! {
            push = pushes.recv() => match push {
                Some(push) => match delivery_of(push, &mut up) {
                    Some(delivery) => delivery,
                    None => continue,
                },
                None => return,
            },
            _ = probe.tick() => {
                let ping: Result<String, _> = redis::cmd("PING").query_async(&mut connection).await;
                match (ping.is_ok(), up) {
                    (false, true) => { up = false; Delivery::Down }
                    _ => continue,
                }
            }
        };
        // A full queue means the node is not reading its mail: drop rather than grow.
        if deliveries.try_send(delivery).is_err() && deliveries.is_closed() {
            return;
        }
    }
}

/// What a push from Redis means to the mailbox's reader, keeping track of whether the
/// subscription is up.
fn delivery_of(push: PushInfo, up: &mut bool) -> Option<Delivery> {
    match push.kind {
        PushKind::Message => {
            // [channel, payload]
            let payload = push.data.into_iter().nth(1)?;
            match payload {
                Value::BulkString(bytes) => String::from_utf8(bytes).ok().map(Delivery::Letter),
                Value::SimpleString(s) => Some(Delivery::Letter(s)),
                _ => None,
            }
        }
        PushKind::Disconnection if *up => {
            *up = false;
            Some(Delivery::Down)
        }
        PushKind::Subscribe if !*up => {
            *up = true;
            Some(Delivery::Up)
        }
        _ => None,
    }
}
