//! One subscriber's copy of one publication: a forwarded track whose [`Writer`] runs in the
//! publication's fan-out (which owns it from start to stop), and the RTCP task that turns the
//! subscriber's PLI/FIR into keyframe requests for the layer it receives, its NACKs into
//! retransmissions and records its reports. The track's sender reports go out with its media,
//! from the fan-out.
//!
//! A stopped subscription leaves a [`Parked`] track: its transceiver and its forwarder. The next
//! subscription of the same kind continues on both, so the subscriber sees one RTP stream whose
//! sequence numbers and timestamps run on across the change of publication, as across a layer
//! switch.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;

use crate::fanout::{Writer, WriterParts};
use crate::forwarder::Forwarder;
use crate::peer::{Feedback, ForwardTrack, MediaKind, OutboundStream, Peer};
use crate::publication::{Publication, SubscriptionControl, SubscriptionId, PAUSED};
use crate::stats::{add, rtt_from_report, Counters, OutboundStats, TrackReport};
use crate::{SfuError, TrackSettings};

/// How long a stopping subscription waits for the fan-out to hand its forwarder back.
const WRITER_FINISH: Duration = Duration::from_millis(500);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh id for whatever subscribes to a publication's fan-out (the recorder taps it too).
pub(crate) fn next_subscription_id() -> SubscriptionId {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

pub(crate) struct Subscription {
    id: SubscriptionId,
    publication: Arc<Publication>,
    track: Arc<ForwardTrack>,
    control: Arc<SubscriptionControl>,
    pub(crate) stats: Arc<OutboundStats>,
    /// How the subscriber shows the track.
    pub(crate) settings: TrackSettings,
    feedback: JoinHandle<()>,
}

/// What a stopped subscription leaves for the next one: a transceiver the subscriber still has
/// (inactive after the next negotiation), and the numbering that was sent on it.
pub(crate) struct Parked {
    track: Arc<ForwardTrack>,
    kind: MediaKind,
    clock_rate: u32,
    forwarder: Option<Forwarder>,
}

impl Parked {
    pub(crate) fn kind(&self) -> MediaKind {
        self.kind
    }
}

impl Subscription {
    /// Starts forwarding `publication`, on the `parked` track if there is one (falling back to a
    /// new one if the parked track cannot carry it).
    pub(crate) async fn start(
        peer: &Peer,
        publication: Arc<Publication>,
        counters: Arc<Counters>,
        parked: Option<Parked>,
    ) -> Result<Self, SfuError> {
        let target = publication.top_usable_layer().or(Some(0));
        let (track, forwarder) = place(peer, &publication, parked, target).await?;
        let track = Arc::new(track);
        let id = next_subscription_id();
        let stats = Arc::new(OutboundStats::default());
        stats.layer.store(PAUSED, Ordering::Relaxed);
        let control = Arc::new(SubscriptionControl::new(target));
        let stream = OutboundStream::new(Arc::clone(&track), publication.codec.clock_rate());
        let parts = WriterParts {
            id,
            control: Arc::clone(&control),
            stats: Arc::clone(&stats),
            counters: Arc::clone(&counters),
        };
        publication.attach(Writer::new(stream, forwarder, parts));
        let feedback = tokio::spawn(
            Rtcp {
                id,
                track: Arc::clone(&track),
                publication: Arc::clone(&publication),
                control: Arc::clone(&control),
                stats: Arc::clone(&stats),
                counters,
            }
            .run(),
        );
        Ok(Self {
            id,
            publication,
            track,
            control,
            stats,
            settings: TrackSettings::default(),
            feedback,
        })
    }

    pub(crate) fn publication(&self) -> &Arc<Publication> {
        &self.publication
    }

    /// The media section that carries it at the subscriber, once negotiated.
    pub(crate) fn mid(&self) -> Option<String> {
        self.track.mid()
    }

    /// Unique on the server.
    pub(crate) fn id(&self) -> SubscriptionId {
        self.id
    }

    /// Asks for another layer (`None` pauses); the forwarder takes it up at the next keyframe.
    pub(crate) fn set_target(&self, layer: Option<u8>) {
        self.control
            .target
            .store(layer.unwrap_or(PAUSED), Ordering::Relaxed);
    }

    /// Stops forwarding and parks the track: the subscriber's next offer shows it inactive.
    pub(crate) async fn stop(self, peer: &Peer) -> Parked {
        self.feedback.abort();
        let back = self.publication.detach(self.id);
        let forwarder = tokio::time::timeout(WRITER_FINISH, back)
            .await
            .ok()
            .and_then(Result::ok);
        peer.park_forward_track(&self.track).await;
        Parked {
            track: Arc::clone(&self.track),
            kind: self.publication.kind,
            clock_rate: self.publication.codec.clock_rate(),
            forwarder,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.feedback.abort();
        // After `stop` the writer is gone already, and this changes nothing.
        self.publication.drop_writer(self.id);
    }
}

/// The track a new subscription sends on, and its forwarder: the parked ones continued where
/// possible, new ones otherwise.
async fn place(
    peer: &Peer,
    publication: &Publication,
    parked: Option<Parked>,
    target: Option<u8>,
) -> Result<(ForwardTrack, Forwarder), SfuError> {
    let codec = &publication.codec;
    let (track_id, stream_id) = (&publication.id, publication.publisher.as_str());
    let fresh = || Forwarder::new(codec.clock_rate(), rand::random(), target);
    if let Some(p) = parked {
        match peer
            .reuse_forward_track(&p.track, codec, track_id, stream_id)
            .await
        {
            Ok(track) => {
                let forwarder = p
                    .forwarder
                    .filter(|_| p.clock_rate == codec.clock_rate())
                    .map_or_else(fresh, |f| f.restart(target));
                return Ok((track, forwarder));
            }
            Err(error) => tracing::debug!(%error, "parked track not reusable"),
        }
    }
    let track = peer.add_forward_track(codec, track_id, stream_id).await?;
    Ok((track, fresh()))
}

/// A forwarded track's figures: what was sent, and what the subscriber reported about it.
pub(crate) fn report(publication: &Publication, s: &OutboundStats) -> TrackReport {
    let rtt = s.rtt_micros.load(Ordering::Relaxed);
    let layer = s.layer.load(Ordering::Relaxed);
    TrackReport {
        id: publication.id.clone(),
        publisher: publication.publisher.clone(),
        kind: publication.kind.as_str(),
        codec: publication.codec.mime_type().to_owned(),
        packets: s.meter.packets(),
        bytes: s.meter.bytes(),
        bitrate_bps: s.meter.bitrate(),
        packets_lost: s.lost.load(Ordering::Relaxed),
        fraction_lost: Some(s.fraction_lost.load(Ordering::Relaxed) as f64 / 256.0),
        jitter_ms: s.jitter_micros.load(Ordering::Relaxed) as f64 / 1000.0,
        rtt_ms: (rtt > 0).then(|| rtt as f64 / 1000.0),
        keyframe_requests: s.pli.load(Ordering::Relaxed) + s.fir.load(Ordering::Relaxed),
        nacks: s.nack.load(Ordering::Relaxed),
        layers: Vec::new(),
        layer: (layer != PAUSED).then_some(layer),
    }
}

/// A subscription's RTCP: the subscriber's feedback.
struct Rtcp {
    id: SubscriptionId,
    track: Arc<ForwardTrack>,
    publication: Arc<Publication>,
    control: Arc<SubscriptionControl>,
    stats: Arc<OutboundStats>,
    counters: Arc<Counters>,
}

impl Rtcp {
    async fn run(self) {
        let clock_rate = f64::from(self.publication.codec.clock_rate().max(1));
        while let Some(feedback) = self.track.read_feedback().await {
            self.on_feedback(feedback, clock_rate);
        }
    }

    fn on_feedback(&self, mut feedback: Feedback, clock_rate: f64) {
        if !feedback.lost.is_empty() {
            let lost = std::mem::take(&mut feedback.lost);
            self.publication.resend(self.id, lost);
        }
        if feedback.wants_keyframe() {
            let current = self.stats.layer.load(Ordering::Relaxed);
            let layer = if current == PAUSED {
                self.control.target.load(Ordering::Relaxed)
            } else {
                current
            };
            if layer != PAUSED {
                self.publication.request_keyframe(layer);
            }
        }
        record_feedback(&feedback, &self.stats, &self.counters, clock_rate);
    }
}

fn record_feedback(f: &Feedback, stats: &OutboundStats, counters: &Counters, clock_rate: f64) {
    for (n, mine, total) in [
        (f.pli, &stats.pli, &counters.pli),
        (f.fir, &stats.fir, &counters.fir),
        (f.nack, &stats.nack, &counters.nack),
    ] {
        if n > 0 {
            add(mine, u64::from(n));
            add(total, u64::from(n));
        }
    }
    if let Some(r) = f.report {
        stats.lost.store(u64::from(r.total_lost), Ordering::Relaxed);
        stats
            .fraction_lost
            .store(u64::from(r.fraction_lost), Ordering::Relaxed);
        let jitter = f64::from(r.jitter) / clock_rate * 1e6;
        stats.jitter_micros.store(jitter as u64, Ordering::Relaxed);
        if let Some(rtt) = rtt_from_report(r.last_sender_report, r.delay, SystemTime::now()) {
            stats.rtt_micros.store(rtt, Ordering::Relaxed);
        }
    }
}
