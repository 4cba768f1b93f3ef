//! One subscriber's copy of one publication: a forwarded track fed from its own bounded queue by
//! its own task (so a slow subscriber never holds up the others), and the RTCP reader that turns
//! the subscriber's PLI/FIR into keyframe requests for the publication.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::peer::{Feedback, ForwardTrack, Peer};
use crate::publication::{Publication, SubscriptionId};
use crate::SfuError;

/// Packets a subscription may hold before it drops: about a second of 1.5 Mbit/s video.
const QUEUE_PACKETS: usize = 256;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) struct Subscription {
    id: SubscriptionId,
    publication: Arc<Publication>,
    track: Arc<ForwardTrack>,
    tasks: [JoinHandle<()>; 2],
}

impl Subscription {
    pub(crate) async fn start(
        peer: &Peer,
        publication: Arc<Publication>,
    ) -> Result<Self, SfuError> {
        let track = Arc::new(
            peer.add_forward_track(
                &publication.codec,
                &publication.id,
                publication.publisher.as_str(),
            )
            .await?,
        );
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let (queue, packets) = mpsc::channel(QUEUE_PACKETS);
        let writer = tokio::spawn(write_packets(Arc::clone(&track), packets));
        let feedback = tokio::spawn(relay_feedback(Arc::clone(&track), Arc::clone(&publication)));
        publication.add_subscriber(id, queue);
        publication.request_keyframe();
        Ok(Self {
            id,
            publication,
            track,
            tasks: [writer, feedback],
        })
    }

    pub(crate) fn publication_id(&self) -> &str {
        &self.publication.id
    }

    /// Stops forwarding and removes the track from the subscriber's connection.
    pub(crate) async fn stop(self, peer: &Peer) {
        self.publication.remove_subscriber(self.id);
        for task in &self.tasks {
            task.abort();
        }
        peer.remove_forward_track(&self.track).await;
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn write_packets(
    track: Arc<ForwardTrack>,
    mut packets: mpsc::Receiver<Arc<crate::peer::RtpPacket>>,
) {
    while let Some(packet) = packets.recv().await {
        track.write(&packet).await;
    }
}

async fn relay_feedback(track: Arc<ForwardTrack>, publication: Arc<Publication>) {
    while let Some(feedback) = track.read_feedback().await {
        if feedback == Feedback::Keyframe {
            publication.request_keyframe();
        }
    }
}
