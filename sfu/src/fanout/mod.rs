//! A publication's fan-out: the one task that owns every subscriber's [`Writer`] of the
//! publication and puts each packet the publisher sends on the wire for all of them at once.
//!
//! The publication's layer readers hand it each packet (one queue per publication, not one per
//! subscriber). It takes what has arrived (a burst: a keyframe comes as dozens of packets at
//! once) and runs each writer in turn on the burst's packets — forwarder, renumbering, SRTP in
//! place — into one [`Batch`]; every few hundred datagrams the batch goes out with one
//! `sendmmsg`, each subscriber's datagrams of the burst together as one GSO message. No task, no
//! queue and no async lock per subscriber on the per-packet path.
//!
//! Writer by writer rather than packet by packet: a subscriber's copies of a burst are then
//! ready together (one GSO message), and the first subscribers' copies leave while the later
//! ones are still being made, so no subscriber waits for the whole burst's work to be done. Subscriptions come and go, and their NACKs
//! arrive, by message. Taps (the recorder) still get the packet on a queue of their own.

mod batch;
pub(crate) mod prefetch;
mod sendmmsg;
mod writer;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

pub(crate) use batch::Batch;
pub(crate) use writer::{Stage, Writer, WriterParts};

use crate::forwarder::Forwarder;
use crate::publication::{forward, Ingress, Subscriber, SubscriptionId};
use crate::stats::{add, Counters};

/// Changes to what the fan-out serves; rare next to packets.
pub(crate) enum Change {
    Attach(Box<Writer>),
    /// Stops a writer; its forwarder goes back on the channel, if one is given.
    Detach(SubscriptionId, Option<oneshot::Sender<Forwarder>>),
    Tap(Subscriber),
    Untap(SubscriptionId),
    /// Where keyframe requests for a layer go, once it has arrived.
    Layer(u8, mpsc::Sender<()>),
}

/// Lost packets a subscriber asked for again.
pub(crate) type Resend = (SubscriptionId, Vec<u16>);

/// The fan-out's inputs.
pub(crate) struct Inputs {
    pub(crate) changes: mpsc::UnboundedReceiver<Change>,
    pub(crate) resends: mpsc::Receiver<Resend>,
    pub(crate) packets: mpsc::Receiver<Arc<Ingress>>,
}

/// A packet that waited longer than this for the fan-out is dropped for every subscriber: the
/// server is past what its core can forward, and a late packet only delays the ones behind it
/// (without this, a full queue turned into seconds of delay for everyone). Longer than a
/// keyframe burst takes to fan out to a full core's worth of subscribers (≈ 180 ms for 600 here).
const STALE: Duration = Duration::from_millis(300);

/// Packets one step takes at most: a keyframe of a high layer, and what came with it.
const BURST_PACKETS: usize = 64;

/// Datagrams queued before the batch is sent: enough to spread a system call over many, few
/// enough that the first subscribers' packets do not wait for the last ones' to be made.
const FLUSH_DATAGRAMS: usize = 256;

pub(crate) struct FanOut {
    writers: Vec<Writer>,
    /// The packets of this step, reused.
    burst: Vec<Arc<Ingress>>,
    taps: Vec<Subscriber>,
    keyframes: Vec<(u8, mpsc::Sender<()>)>,
    batch: Batch,
    counters: Arc<Counters>,
}

impl FanOut {
    pub(crate) fn new(counters: Arc<Counters>) -> Self {
        Self {
            writers: Vec::new(),
            burst: Vec::new(),
            taps: Vec::new(),
            keyframes: Vec::new(),
            batch: Batch::default(),
            counters,
        }
    }

    /// Runs until the publication is gone (its change channel closes).
    pub(crate) async fn run(mut self, mut inputs: Inputs) {
        loop {
            tokio::select! {
                biased;
                change = inputs.changes.recv() => match change {
                    Some(change) => self.apply(change),
                    None => break,
                },
                Some((id, lost)) = inputs.resends.recv() => self.resend(id, &lost),
                Some(packet) = inputs.packets.recv() => {
                    let now = Instant::now();
                    self.take(packet, now);
                    while self.burst.len() < BURST_PACKETS {
                        match inputs.packets.try_recv() {
                            Ok(packet) => self.take(packet, now),
                            Err(_) => break,
                        }
                    }
                    if !self.burst.is_empty() {
                        self.forward_burst().await;
                    }
                }
            }
        }
    }

    fn apply(&mut self, change: Change) {
        match change {
            Change::Attach(writer) => self.writers.push(*writer),
            Change::Detach(id, back) => {
                if let Some(i) = self.writers.iter().position(|w| w.id == id) {
                    let forwarder = self.writers.swap_remove(i).into_forwarder();
                    if let Some(back) = back {
                        let _ = back.send(forwarder);
                    }
                }
            }
            Change::Tap(tap) => self.taps.push(tap),
            Change::Untap(id) => self.taps.retain(|t| t.id() != id),
            Change::Layer(layer, requests) => {
                self.keyframes.retain(|(l, _)| *l != layer);
                self.keyframes.push((layer, requests));
            }
        }
    }

    /// Adds a packet to this step's burst, unless it is [`STALE`].
    fn take(&mut self, packet: Arc<Ingress>, now: Instant) {
        if now.saturating_duration_since(packet.arrived) > STALE {
            add(&self.counters.dropped, 1);
            return;
        }
        self.burst.push(packet);
    }

    /// Puts the burst's packets on the wire for every writer that takes them, then offers them
    /// to the taps. Between sends it lets the runtime's other tasks run: a keyframe to hundreds
    /// of subscribers is a hundred milliseconds of work, and ingest (the publishers' packets,
    /// RTCP, ICE checks, other fan-outs) must not wait for all of it — the socket's receive
    /// buffer would overflow and drop for everyone, and packets would be timestamped late.
    async fn forward_burst(&mut self) {
        let now = Instant::now();
        for tag in 0..self.writers.len() {
            self.prefetch_ahead(tag);
            let writer = &mut self.writers[tag];
            for packet in &self.burst {
                if let Some(layer) = writer.on_packet(now, packet, &mut self.batch, tag as u32) {
                    request_keyframe(&self.keyframes, layer);
                }
            }
            if self.batch.len() >= FLUSH_DATAGRAMS {
                self.flush();
                tokio::task::yield_now().await;
            }
        }
        self.flush();
        for packet in self.burst.drain(..) {
            if !self.taps.is_empty() {
                let dropped = forward(packet, &mut self.taps);
                if dropped > 0 {
                    add(&self.counters.dropped, dropped);
                }
            }
        }
    }

    /// Starts loading the state of the next writers, one stage of pointers per writer closer
    /// (see [`prefetch`]), so that writer `tag + 1` finds its state in the cache.
    fn prefetch_ahead(&self, tag: usize) {
        const STAGES: [(usize, Stage); 5] = [
            (5, Stage::Own),
            (4, Stage::Pointees),
            (3, Stage::Connection),
            (2, Stage::Transport),
            (1, Stage::TransportSlot),
        ];
        for (ahead, stage) in STAGES {
            if let Some(writer) = self.writers.get(tag + ahead) {
                writer.prefetch(stage);
            }
        }
    }

    fn resend(&mut self, id: SubscriptionId, lost: &[u16]) {
        let now = Instant::now();
        if let Some((tag, writer)) = self
            .writers
            .iter_mut()
            .enumerate()
            .find(|(_, w)| w.id == id)
        {
            writer.resend(lost, now, &mut self.batch, tag as u32);
            self.flush();
        }
    }

    /// Sends the batch; a packet that did not leave is a drop, and its transport-wide number is
    /// taken back.
    fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let failed = self.batch.flush();
        if failed.is_empty() {
            return;
        }
        add(&self.counters.dropped, failed.len() as u64);
        for f in failed {
            if let Some(writer) = self.writers.get_mut(f.tag as usize) {
                writer.not_sent(f.stamp);
            }
        }
    }
}

/// At most one request waits per layer; the layer's task throttles what reaches the publisher.
fn request_keyframe(keyframes: &[(u8, mpsc::Sender<()>)], layer: u8) {
    if let Some((_, requests)) = keyframes.iter().find(|(l, _)| *l == layer) {
        let _ = requests.try_send(());
    }
}
