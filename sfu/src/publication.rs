//! A track a participant publishes, and the task that fans its RTP out to every subscription.
//!
//! The fan-out task owns the list of subscriber queues and learns of changes by message, so the
//! per-packet path takes no lock: it reads a packet, wraps it in one `Arc`, and offers it to each
//! subscriber's bounded queue. A full queue drops for that subscriber only.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::Instrument;

use crate::ids::ParticipantId;
use crate::peer::{Codec, KeyframeRequester, MediaKind, RemoteTrack, RtpPacket};

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
    changes: mpsc::UnboundedSender<FanoutChange>,
    keyframes: mpsc::Sender<()>,
    dropped: Arc<AtomicU64>,
}

impl Publication {
    /// Starts forwarding `track`. The tasks end when the track ends.
    pub(crate) fn start(
        id: String,
        publisher: ParticipantId,
        track: RemoteTrack,
        keyframe: KeyframeRequester,
    ) -> Arc<Self> {
        let (changes, changes_rx) = mpsc::unbounded_channel();
        let (keyframes, keyframes_rx) = mpsc::channel(1);
        let dropped = Arc::new(AtomicU64::new(0));
        let publication = Arc::new(Self {
            id,
            publisher,
            kind: track.kind(),
            codec: track.codec(),
            changes,
            keyframes,
            dropped: Arc::clone(&dropped),
        });
        let span = tracing::info_span!("publication", id = %publication.id, kind = publication.kind.as_str());
        tokio::spawn(fan_out(track, changes_rx, dropped).instrument(span.clone()));
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

    /// Packets dropped because a subscriber's queue was full.
    #[allow(dead_code)]
    pub(crate) fn dropped_packets(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

async fn fan_out(
    track: RemoteTrack,
    mut changes: mpsc::UnboundedReceiver<FanoutChange>,
    dropped: Arc<AtomicU64>,
) {
    let track = Arc::new(track);
    let rtcp = tokio::spawn({
        let track = Arc::clone(&track);
        async move { track.drain_rtcp().await }
    });
    let mut subscribers: Vec<(SubscriptionId, PacketQueue)> = Vec::new();
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
                forward(Arc::new(packet), &mut subscribers, &dropped);
            }
        }
    }
    rtcp.abort();
    tracing::debug!("publication ended");
}

fn forward(
    packet: Arc<RtpPacket>,
    subscribers: &mut Vec<(SubscriptionId, PacketQueue)>,
    dropped: &AtomicU64,
) {
    subscribers.retain(|(_, queue)| match queue.try_send(Arc::clone(&packet)) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            dropped.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    });
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
        let dropped = AtomicU64::new(0);
        forward(packet(7), &mut subs, &dropped);
        assert_eq!(a_rx.try_recv().unwrap().header.sequence_number, 7);
        assert_eq!(b_rx.try_recv().unwrap().header.sequence_number, 7);
        assert_eq!(dropped.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_full_queue_drops_for_that_subscriber_only() {
        let (slow, _slow_rx) = mpsc::channel(1);
        let (fast, mut fast_rx) = mpsc::channel(4);
        let mut subs = vec![(1, slow), (2, fast)];
        let dropped = AtomicU64::new(0);
        forward(packet(1), &mut subs, &dropped);
        forward(packet(2), &mut subs, &dropped);
        assert_eq!(dropped.load(Ordering::Relaxed), 1);
        assert_eq!(fast_rx.try_recv().unwrap().header.sequence_number, 1);
        assert_eq!(fast_rx.try_recv().unwrap().header.sequence_number, 2);
        assert_eq!(subs.len(), 2);
    }

    #[test]
    fn a_closed_queue_is_forgotten() {
        let (gone, gone_rx) = mpsc::channel(4);
        drop(gone_rx);
        let mut subs = vec![(1, gone)];
        forward(packet(1), &mut subs, &AtomicU64::new(0));
        assert!(subs.is_empty());
    }
}
