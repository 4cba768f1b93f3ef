//! One subscriber's copy of one publication: a forwarded track fed from its own bounded queue by
//! its own task, which runs the track's [`Forwarder`] (so a slow subscriber never holds up the
//! others), and the RTCP reader that turns the subscriber's PLI/FIR into keyframe requests for the
//! layer it receives and records its reports.
//!
//! A stopped subscription leaves a [`Parked`] track: its transceiver and its forwarder. The next
//! subscription of the same kind continues on both, so the subscriber sees one RTP stream whose
//! sequence numbers and timestamps run on across the change of publication, as across a layer
//! switch.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::forwarder::{Forwarder, Verdict};
use crate::peer::{wire_size, Feedback, ForwardTrack, MediaKind, OutboundStream, Peer};
use crate::publication::{
    Delivery, Ingress, Publication, Subscriber, SubscriptionControl, SubscriptionId, PAUSED,
};
use crate::stats::{add, rtt_from_report, Counters, MeterWindow, OutboundStats, TrackReport};
use crate::{SfuError, TrackSettings};

/// Packets a subscription may hold before it drops: about a second of 1.5 Mbit/s video.
const QUEUE_PACKETS: usize = 256;

/// How long a stopping subscription waits for its writer to finish the packet in hand.
const WRITER_FINISH: Duration = Duration::from_millis(500);

/// How often a forwarded track's sender report goes out, at most (webrtc-rs's interceptor sent
/// one a second).
const SENDER_REPORT_INTERVAL: Duration = Duration::from_secs(1);

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
    queue: mpsc::Sender<Delivery>,
    pub(crate) stats: Arc<OutboundStats>,
    /// How the subscriber shows the track.
    pub(crate) settings: TrackSettings,
    writer: Option<WriterTask>,
    feedback: JoinHandle<()>,
}

/// The writer's task, and how to ask it to stop and hand its forwarder back.
struct WriterTask {
    task: JoinHandle<Forwarder>,
    finish: oneshot::Sender<()>,
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
        let (queue, packets) = mpsc::channel(QUEUE_PACKETS);
        let (finish, finished) = oneshot::channel();
        let clock_rate = publication.codec.clock_rate();
        let writer = tokio::spawn(
            Writer {
                stream: OutboundStream::new(Arc::clone(&track), clock_rate),
                publication: Arc::clone(&publication),
                control: Arc::clone(&control),
                forwarder,
                stats: Arc::clone(&stats),
            }
            .run(packets, finished, counters.clone()),
        );
        let feedback = tokio::spawn(relay_feedback(
            Arc::clone(&track),
            Arc::clone(&publication),
            Arc::clone(&control),
            Arc::clone(&stats),
            counters,
            queue.clone(),
        ));
        publication.add_subscriber(Subscriber::new(id, queue.clone(), Arc::clone(&control)));
        Ok(Self {
            id,
            publication,
            track,
            control,
            queue,
            stats,
            settings: TrackSettings::default(),
            writer: Some(WriterTask {
                task: writer,
                finish,
            }),
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
        let layer = layer.unwrap_or(PAUSED);
        if self.control.target.swap(layer, Ordering::Relaxed) != layer {
            // A paused forwarder receives no packets; this wakes it to look.
            let _ = self.queue.try_send(Delivery::Retarget);
        }
    }

    /// Stops forwarding and parks the track: the subscriber's next offer shows it inactive.
    pub(crate) async fn stop(mut self, peer: &Peer) -> Parked {
        self.publication.remove_subscriber(self.id);
        self.feedback.abort();
        let forwarder = match self.writer.take() {
            Some(WriterTask { mut task, finish }) => {
                let _ = finish.send(());
                match tokio::time::timeout(WRITER_FINISH, &mut task).await {
                    Ok(forwarder) => forwarder.ok(),
                    Err(_) => {
                        task.abort();
                        None
                    }
                }
            }
            None => None,
        };
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
        if let Some(writer) = &self.writer {
            writer.task.abort();
        }
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

/// Flushes the subscription's counts into the server totals when the task ends, however it ends
/// (including abort).
struct FlushOnDrop {
    window: MeterWindow,
    counters: Arc<Counters>,
}

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        self.window.flush(&self.counters.forwarded);
    }
}

/// The write side of a subscription: the one owner of its forwarder and its outgoing stream.
struct Writer {
    stream: OutboundStream,
    publication: Arc<Publication>,
    control: Arc<SubscriptionControl>,
    forwarder: Forwarder,
    stats: Arc<OutboundStats>,
}

impl Writer {
    /// Forwards until the queue closes or `finish` fires, and hands back the forwarder.
    async fn run(
        mut self,
        mut deliveries: mpsc::Receiver<Delivery>,
        mut finish: oneshot::Receiver<()>,
        counters: Arc<Counters>,
    ) -> Forwarder {
        let mut meter = FlushOnDrop {
            window: MeterWindow::new(),
            counters,
        };
        // Sender reports go out with the media, checked per delivery: a timer in the select
        // would be polled (and re-armed) for every packet, and a stream that sends nothing has
        // nothing to report.
        let mut next_report = Instant::now();
        loop {
            let delivery = tokio::select! {
                biased;
                _ = &mut finish => break,
                delivery = deliveries.recv() => match delivery {
                    Some(delivery) => delivery,
                    None => break,
                },
            };
            let now = Instant::now();
            self.retarget();
            match delivery {
                Delivery::Packet(ingress) => self.write(now, &ingress, &mut meter).await,
                Delivery::Retarget => self.publish_state(),
                Delivery::Resend(lost) => {
                    self.stream.resend(&lost, now).await;
                }
            }
            if let Some(layer) = self.forwarder.keyframe_request(now) {
                self.publication.request_keyframe(layer);
            }
            if now >= next_report {
                self.stream.send_report(now).await;
                next_report = now + SENDER_REPORT_INTERVAL;
            }
        }
        self.forwarder
    }

    /// Takes up the target the allocator set.
    fn retarget(&mut self) {
        let target = self.control.target.load(Ordering::Relaxed);
        self.forwarder
            .set_target((target != PAUSED).then_some(target));
    }

    /// Tells the fan-out which layers to send, and the reports and the feedback task which layer
    /// is forwarded; once per delivery, after the forwarder has seen it.
    fn publish_state(&self) {
        let wanted = self.forwarder.wanted_layers();
        if self.control.wanted.load(Ordering::Relaxed) != wanted {
            self.control.wanted.store(wanted, Ordering::Relaxed);
        }
        let current = self.forwarder.current().unwrap_or(PAUSED);
        if self.stats.layer.load(Ordering::Relaxed) != current {
            self.stats.layer.store(current, Ordering::Relaxed);
        }
    }

    async fn write(&mut self, now: Instant, ingress: &Arc<Ingress>, meter: &mut FlushOnDrop) {
        if !self.stream.is_ready() {
            return;
        }
        let header = &ingress.packet.header;
        let verdict =
            self.forwarder
                .on_packet(now, &ingress.info, header.sequence_number, header.timestamp);
        self.publish_state();
        let Verdict::Forward(rewrite) = verdict else {
            return;
        };
        let size = wire_size(&ingress.packet);
        if self.stream.send(ingress, &rewrite, now).await {
            let flow = &meter.counters.forwarded;
            self.stats.meter.record(&mut meter.window, size, now, flow);
        }
    }
}

async fn relay_feedback(
    track: Arc<ForwardTrack>,
    publication: Arc<Publication>,
    control: Arc<SubscriptionControl>,
    stats: Arc<OutboundStats>,
    counters: Arc<Counters>,
    writer: mpsc::Sender<Delivery>,
) {
    let clock_rate = f64::from(publication.codec.clock_rate().max(1));
    while let Some(mut feedback) = track.read_feedback().await {
        if !feedback.lost.is_empty() {
            // A full queue is a writer that is behind: a retransmission would come too late.
            let _ = writer.try_send(Delivery::Resend(std::mem::take(&mut feedback.lost)));
        }
        if feedback.wants_keyframe() {
            let current = stats.layer.load(Ordering::Relaxed);
            let layer = if current == PAUSED {
                control.target.load(Ordering::Relaxed)
            } else {
                current
            };
            if layer != PAUSED {
                publication.request_keyframe(layer);
            }
        }
        record_feedback(&feedback, &stats, &counters, clock_rate);
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
