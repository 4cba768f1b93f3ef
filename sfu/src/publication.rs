//! A track a participant publishes, and the task that fans its RTP out to every subscription.
//!
//! The fan-out task owns the list of subscriber queues and learns of changes by message, so the
//! per-packet path takes no lock: it reads a packet, wraps it in one `Arc`, and offers it to each
//! subscriber's bounded queue. A full queue drops for that subscriber only.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::Instrument;

use crate::ids::ParticipantId;
use crate::peer::{wire_size, Codec, KeyframeRequester, MediaKind, RemoteTrack, RtpPacket};
use crate::stats::{add, Counters, InboundStats, MeterWindow, ReceptionTracker, TrackReport};

/// A subscriber's queue of packets to forward.
pub(crate) type PacketQueue = mpsc::Sender<Arc<RtpPacket>>;

/// At most one keyframe request reaches a publisher per interval, however many subscribers ask.
const KEYFRAME_INTERVAL: Duration = Duration::from_millis(500);

pub(crate) type SubscriptionId = u64;

enum FanoutChange {
    Add(SubscriptionId, PacketQueue),
    Remove(SubscriptionId),
}

pub(crate) struct Publication {
    /// Unique on the server; the forwarded tracks' track id.
    pub(crate) id: String,
    pub(crate) publisher: ParticipantId,
    pub(crate) kind: MediaKind,
    pub(crate) codec: Codec,
    pub(crate) stats: Arc<InboundStats>,
    changes: mpsc::UnboundedSender<FanoutChange>,
    keyframes: mpsc::Sender<()>,
}

impl Publication {
    /// Starts forwarding `track`. The tasks end when the track ends.
    pub(crate) fn start(
        id: String,
        publisher: ParticipantId,
        track: RemoteTrack,
        keyframe: KeyframeRequester,
        counters: Arc<Counters>,
    ) -> Arc<Self> {
        let (changes, changes_rx) = mpsc::unbounded_channel();
        let (keyframes, keyframes_rx) = mpsc::channel(1);
        let stats = Arc::new(InboundStats::default());
        let publication = Arc::new(Self {
            id,
            publisher,
            kind: track.kind(),
            codec: track.codec(),
            stats: Arc::clone(&stats),
            changes,
            keyframes,
        });
        let span = tracing::info_span!("publication", id = %publication.id, kind = publication.kind.as_str());
        let fan_out = FanOut {
            track,
            stats,
            counters,
        };
        tokio::spawn(fan_out.run(changes_rx).instrument(span.clone()));
        tokio::spawn(throttle_keyframes(keyframe, keyframes_rx).instrument(span));
        publication
    }

    pub(crate) fn add_subscriber(&self, id: SubscriptionId, queue: PacketQueue) {
        let _ = self.changes.send(FanoutChange::Add(id, queue));
    }

    pub(crate) fn remove_subscriber(&self, id: SubscriptionId) {
        let _ = self.changes.send(FanoutChange::Remove(id));
    }

    /// Asks the publisher for a keyframe; requests within one interval collapse into one.
    pub(crate) fn request_keyframe(&self) {
        if self.kind == MediaKind::Video {
            let _ = self.keyframes.try_send(());
        }
    }

    pub(crate) fn report(&self) -> TrackReport {
        let s = &self.stats;
        TrackReport {
            id: self.id.clone(),
            publisher: self.publisher.clone(),
            kind: self.kind.as_str(),
            codec: self.codec.mime_type().to_owned(),
            packets: s.meter.packets(),
            bytes: s.meter.bytes(),
            bitrate_bps: s.meter.bitrate(),
            packets_lost: s.lost.load(Ordering::Relaxed),
            fraction_lost: None,
            jitter_ms: s.jitter_micros.load(Ordering::Relaxed) as f64 / 1000.0,
            rtt_ms: None,
            keyframe_requests: 0,
            nacks: 0,
        }
    }
}

/// The reader side of a publication: owns the remote track and the subscriber list.
struct FanOut {
    track: RemoteTrack,
    stats: Arc<InboundStats>,
    counters: Arc<Counters>,
}

impl FanOut {
    async fn run(self, mut changes: mpsc::UnboundedReceiver<FanoutChange>) {
        let track = Arc::new(self.track);
        let rtcp = tokio::spawn({
            let track = Arc::clone(&track);
            async move { track.drain_rtcp().await }
        });
        let mut subscribers: Vec<(SubscriptionId, PacketQueue)> = Vec::new();
        let mut window = MeterWindow::new();
        let mut reception = ReceptionTracker::new(track.codec().clock_rate());
        let mut changes_open = true;
        loop {
            tokio::select! {
                biased;
                change = changes.recv(), if changes_open => match change {
                    Some(FanoutChange::Add(id, queue)) => subscribers.push((id, queue)),
                    Some(FanoutChange::Remove(id)) => subscribers.retain(|(s, _)| *s != id),
                    None => changes_open = false,
                },
                packet = track.read() => {
                    let Some(packet) = packet else { break };
                    let now = Instant::now();
                    let size = wire_size(&packet);
                    self.stats.meter.record(&mut window, size, now, &self.counters.received);
                    reception.on_packet(packet.header.sequence_number, packet.header.timestamp, now);
                    self.stats.lost.store(reception.lost(), Ordering::Relaxed);
                    self.stats.jitter_micros.store(reception.jitter_micros(), Ordering::Relaxed);
                    let dropped = forward(Arc::new(packet), &mut subscribers);
                    if dropped > 0 {
                        add(&self.stats.dropped, dropped);
                        add(&self.counters.dropped, dropped);
                    }
                }
            }
        }
        window.flush(&self.counters.received);
        rtcp.abort();
        tracing::debug!("publication ended");
    }
}

/// Offers the packet to every subscriber; returns how many queues were full and dropped it.
/// Closed queues are removed from the list. Public (hidden) only for the microbenchmarks in
/// `benches/`; the SFU itself calls it from a publication's reader task.
pub fn forward(
    packet: Arc<RtpPacket>,
    subscribers: &mut Vec<(SubscriptionId, PacketQueue)>,
) -> u64 {
    let mut dropped = 0;
    subscribers.retain(|(_, queue)| match queue.try_send(Arc::clone(&packet)) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            dropped += 1;
            true
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    });
    dropped
}

async fn throttle_keyframes(requester: KeyframeRequester, mut requests: mpsc::Receiver<()>) {
    while requests.recv().await.is_some() {
        if !requester.request().await {
            break;
        }
        tokio::time::sleep(KEYFRAME_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u16) -> Arc<RtpPacket> {
        let mut p = RtpPacket::default();
        p.header.sequence_number = seq;
        Arc::new(p)
    }

    #[test]
    fn forward_offers_each_packet_to_every_subscriber() {
        let (a, mut a_rx) = mpsc::channel(4);
        let (b, mut b_rx) = mpsc::channel(4);
        let mut subs = vec![(1, a), (2, b)];
        assert_eq!(forward(packet(7), &mut subs), 0);
        assert_eq!(a_rx.try_recv().unwrap().header.sequence_number, 7);
        assert_eq!(b_rx.try_recv().unwrap().header.sequence_number, 7);
    }

    #[test]
    fn a_full_queue_drops_for_that_subscriber_only() {
        let (slow, _slow_rx) = mpsc::channel(1);
        let (fast, mut fast_rx) = mpsc::channel(4);
        let mut subs = vec![(1, slow), (2, fast)];
        assert_eq!(forward(packet(1), &mut subs), 0);
        assert_eq!(forward(packet(2), &mut subs), 1);
        assert_eq!(fast_rx.try_recv().unwrap().header.sequence_number, 1);
        assert_eq!(fast_rx.try_recv().unwrap().header.sequence_number, 2);
        assert_eq!(subs.len(), 2);
    }

    #[test]
    fn a_closed_queue_is_forgotten() {
        let (gone, gone_rx) = mpsc::channel(4);
        drop(gone_rx);
        let mut subs = vec![(1, gone)];
        forward(packet(1), &mut subs);
        assert!(subs.is_empty());
    }
}
