//! A track a participant publishes: one media source sent as one to three simulcast layers, a
//! reader task per layer, and the publication's [`FanOut`], which puts every packet on the wire
//! for all its subscribers.
//!
//! A layer's reader reads a packet, reads what the forwarders need of it once (keyframe, VP8
//! descriptor), wraps it in one `Arc` and hands it to the fan-out's queue. A full queue (a
//! fan-out behind its publisher) drops the packet for everyone: the loss is spread, and the
//! reader keeps reading. Subscriptions and taps join and leave the fan-out by message, so the
//! per-packet path takes no lock.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use crate::allocation;
use crate::fanout::{Change, FanOut, Inputs, Resend, Writer};
use crate::forwarder::{Forwarder, FrameInfo, PayloadFormat};
use crate::ids::ParticipantId;
use crate::peer::{
    wire_size, Arrival, Codec, KeyframeRequester, MediaKind, RemoteTrack, RtpPacket,
    SenderReportCell,
};
use crate::signal::Source;
use crate::speakers::level::{LevelMeter, SharedLevel};
use crate::stats::{
    add, millis_since_epoch, Counters, InboundStats, LayerReport, MeterWindow, ReceptionTracker,
    TrackReport,
};

/// A packet as it arrived, with what the forwarders need to know of it.
#[derive(Debug)]
pub(crate) struct Ingress {
    pub(crate) packet: RtpPacket,
    pub(crate) info: FrameInfo,
    /// When its layer's reader read it.
    pub(crate) arrived: Instant,
}

/// A tap's queue (the recorder's).
pub(crate) type PacketQueue = mpsc::Sender<Arc<Ingress>>;

/// Packets a fan-out may have waiting before its layers' readers drop: a few keyframes.
const FANOUT_QUEUE: usize = 1024;

/// NACKs waiting for the fan-out, from all its subscribers.
const RESEND_QUEUE: usize = 256;

/// At most one keyframe request reaches a publisher's layer per interval, however many
/// subscribers ask.
const KEYFRAME_INTERVAL: Duration = Duration::from_millis(500);

pub(crate) type SubscriptionId = u64;

/// A layer silent for longer has been stopped by its publisher (browsers drop their top layers
/// when their uplink or CPU runs short), and subscribers move to another.
const LAYER_SILENCE: Duration = Duration::from_millis(600);

/// What a publication's fan-out, the allocator and a subscription's feedback task share about
/// that subscription.
#[derive(Debug)]
pub(crate) struct SubscriptionControl {
    /// Layers the forwarder takes packets of, one bit each (written by the fan-out).
    pub(crate) wanted: AtomicU8,
    /// The layer the subscription should receive, or [`PAUSED`] (written by the allocator).
    pub(crate) target: AtomicU8,
}

/// No layer: paused, or nothing forwarded yet.
pub(crate) const PAUSED: u8 = u8::MAX;

impl SubscriptionControl {
    pub(crate) fn new(target: Option<u8>) -> Self {
        let target = target.unwrap_or(PAUSED);
        Self {
            wanted: AtomicU8::new(1u8.checked_shl(u32::from(target)).unwrap_or(0)),
            target: AtomicU8::new(target),
        }
    }

    fn wants(&self, layer: u8) -> bool {
        self.wanted.load(Ordering::Relaxed) & (1 << layer) != 0
    }
}

/// A tap as a publication's fan-out sees it.
#[derive(Clone)]
pub(crate) struct Subscriber {
    id: SubscriptionId,
    queue: PacketQueue,
    control: Arc<SubscriptionControl>,
}

impl Subscriber {
    pub(crate) fn new(
        id: SubscriptionId,
        queue: PacketQueue,
        control: Arc<SubscriptionControl>,
    ) -> Self {
        Self { id, queue, control }
    }

    pub(crate) fn id(&self) -> SubscriptionId {
        self.id
    }
}

/// One simulcast layer (or the only stream of a track without simulcast).
struct Layer {
    index: u8,
    rid: String,
    stats: Arc<InboundStats>,
    /// Width and height from the layer's last keyframe (VP8 only), packed `w << 16 | h`.
    size: Arc<AtomicU32>,
    /// When its last packet arrived ([`millis_since_epoch`]).
    last_packet: Arc<AtomicU64>,
    keyframes: mpsc::Sender<()>,
    /// The publisher's latest sender report for this layer.
    reports: Arc<SenderReportCell>,
}

pub(crate) struct Publication {
    /// Unique on the server; the forwarded tracks' track id.
    pub(crate) id: String,
    pub(crate) publisher: ParticipantId,
    /// The publisher's transceiver: every layer of this track arrives on it.
    pub(crate) mid: String,
    pub(crate) kind: MediaKind,
    /// What the publisher says it is (its offer's `sources`), else what its kind suggests.
    pub(crate) source: Source,
    pub(crate) codec: Codec,
    pub(crate) format: PayloadFormat,
    /// Layers the publisher announced (1 without simulcast); index 0 is the lowest.
    pub(crate) layer_count: u8,
    counters: Arc<Counters>,
    /// Layers whose streams are still open; when the last one closes the track has ended.
    live_layers: Arc<AtomicUsize>,
    /// Where the publisher learns that the track ended (it sends the publication's id).
    ended: mpsc::UnboundedSender<String>,
    /// How loud it is (audio whose publisher sends RFC 6464 levels).
    level: Arc<SharedLevel>,
    /// Its publisher muted it: nothing of it is forwarded.
    muted: Arc<AtomicBool>,
    /// The fan-out's inputs.
    changes: mpsc::UnboundedSender<Change>,
    resends: mpsc::Sender<Resend>,
    packets: mpsc::Sender<Arc<Ingress>>,
    state: Mutex<State>,
}

/// Changed only when a layer arrives, never per packet.
#[derive(Default)]
struct State {
    layers: Vec<Layer>,
}

/// What a layer needs to start: its stream and how to ask it for a keyframe.
pub(crate) struct LayerSource {
    pub(crate) track: RemoteTrack,
    pub(crate) keyframes: KeyframeRequester,
}

impl Publication {
    /// A publication whose layers start as they arrive ([`Publication::add_layer`]). When the
    /// streams of all its layers have closed (the publisher removed the track, or left), its id
    /// goes to `ended`.
    pub(crate) fn new(
        id: String,
        publisher: ParticipantId,
        first: &RemoteTrack,
        source: Source,
        counters: Arc<Counters>,
        ended: mpsc::UnboundedSender<String>,
    ) -> Arc<Self> {
        let codec = first.codec();
        let (changes, changes_rx) = mpsc::unbounded_channel();
        let (resends, resends_rx) = mpsc::channel(RESEND_QUEUE);
        let (packets, packets_rx) = mpsc::channel(FANOUT_QUEUE);
        let inputs = Inputs {
            changes: changes_rx,
            resends: resends_rx,
            packets: packets_rx,
        };
        let span = tracing::info_span!("fanout", publication = %id);
        tokio::spawn(
            FanOut::new(Arc::clone(&counters))
                .run(inputs)
                .instrument(span),
        );
        Arc::new(Self {
            id,
            publisher,
            mid: first.mid().to_owned(),
            kind: first.kind(),
            source,
            format: PayloadFormat::from_mime_type(codec.mime_type()),
            codec,
            layer_count: first.layer().1,
            counters,
            live_layers: Arc::new(AtomicUsize::new(0)),
            ended,
            level: Arc::default(),
            muted: Arc::default(),
            changes,
            resends,
            packets,
            state: Mutex::default(),
        })
    }

    /// (share of recent packets with voice, loudness), both 0 to 1; zeros for video and for
    /// audio without levels or gone quiet.
    pub(crate) fn voice(&self, now: Instant) -> (f32, f32) {
        self.level.read(now)
    }

    /// Stops (or resumes) forwarding. Resumed video starts again at a keyframe, which the
    /// subscribers' forwarders ask for.
    pub(crate) fn set_muted(&self, muted: bool) {
        self.muted.store(muted, Ordering::Relaxed);
    }

    pub(crate) fn is_muted(&self) -> bool {
        self.muted.load(Ordering::Relaxed)
    }

    /// Whether some layer's stream is still open: a stream arriving on the publisher's
    /// transceiver after all closed belongs to a new track.
    pub(crate) fn is_live(&self) -> bool {
        self.live_layers.load(Ordering::Relaxed) > 0
    }

    /// Starts forwarding one layer. Its tasks end when the track ends.
    pub(crate) fn add_layer(&self, source: LayerSource) {
        let (index, _) = source.track.layer();
        let (keyframes, keyframes_rx) = mpsc::channel(1);
        let layer = Layer {
            index,
            rid: source.track.rid().to_owned(),
            stats: Arc::new(InboundStats::default()),
            size: Arc::new(AtomicU32::new(0)),
            last_packet: Arc::new(AtomicU64::new(0)),
            keyframes,
            reports: Arc::default(),
        };
        let span = tracing::info_span!("publication", id = %self.id, kind = self.kind.as_str(), rid = %layer.rid);
        if self.kind == MediaKind::Video {
            let _ = self
                .changes
                .send(Change::Layer(index, layer.keyframes.clone()));
        }
        let mut state = self.lock();
        let reader = LayerReader {
            track: source.track,
            layer: index,
            format: self.format,
            stats: Arc::clone(&layer.stats),
            size: Arc::clone(&layer.size),
            last_packet: Arc::clone(&layer.last_packet),
            counters: Arc::clone(&self.counters),
            fanout: self.packets.clone(),
            level: Arc::clone(&self.level),
            muted: Arc::clone(&self.muted),
            reports: Arc::clone(&layer.reports),
            _end: LayerEnd::new(&self.live_layers, &self.ended, &self.id),
        };
        tokio::spawn(reader.run().instrument(span.clone()));
        tokio::spawn(throttle_keyframes(source.keyframes, keyframes_rx).instrument(span));
        state.layers.retain(|l| l.index != index);
        state.layers.push(layer);
    }

    /// Starts a subscription's writer in the fan-out.
    pub(crate) fn attach(&self, writer: Writer) {
        let _ = self.changes.send(Change::Attach(Box::new(writer)));
    }

    /// Stops a subscription's writer; its forwarder comes back on the returned channel (closed
    /// if the fan-out has gone).
    pub(crate) fn detach(&self, id: SubscriptionId) -> oneshot::Receiver<Forwarder> {
        let (back, forwarder) = oneshot::channel();
        let _ = self.changes.send(Change::Detach(id, Some(back)));
        forwarder
    }

    /// Stops a subscription's writer, if it still runs, and drops it.
    pub(crate) fn drop_writer(&self, id: SubscriptionId) {
        let _ = self.changes.send(Change::Detach(id, None));
    }

    /// Asks the fan-out to send a subscriber's lost packets again. A full queue drops the
    /// request: a fan-out that far behind would resend too late.
    pub(crate) fn resend(&self, id: SubscriptionId, lost: Vec<u16>) {
        let _ = self.resends.try_send((id, lost));
    }

    /// Gives a tap every packet of the layers it wants, on its own queue.
    pub(crate) fn tap(&self, tap: Subscriber) {
        let _ = self.changes.send(Change::Tap(tap));
    }

    pub(crate) fn untap(&self, id: SubscriptionId) {
        let _ = self.changes.send(Change::Untap(id));
    }

    /// Asks the publisher for a keyframe of one layer; requests within one interval collapse into
    /// one.
    pub(crate) fn request_keyframe(&self, layer: u8) {
        if self.kind != MediaKind::Video {
            return;
        }
        if let Some(l) = self.lock().layers.iter().find(|l| l.index == layer) {
            let _ = l.keyframes.try_send(());
        }
    }

    /// Where the publisher's sender reports for one layer land, once that layer has arrived.
    pub(crate) fn sender_reports(&self, layer: u8) -> Option<Arc<SenderReportCell>> {
        let state = self.lock();
        let layer = state.layers.iter().find(|l| l.index == layer)?;
        Some(Arc::clone(&layer.reports))
    }

    /// The highest usable layer: what a subscriber gets until an allocator says otherwise.
    /// `None` while no layer is usable.
    pub(crate) fn top_usable_layer(&self) -> Option<u8> {
        let bitrates = self.usable_bitrates();
        (0..bitrates.len())
            .rev()
            .find(|&i| bitrates[i] > 0)
            .map(|i| i as u8)
    }

    /// The layers as the allocator weighs them, lowest first: measured bitrate (0 = not usable)
    /// and the size of the layer's last keyframe.
    pub(crate) fn allocation_layers(&self) -> Vec<allocation::Layer> {
        let bitrates = self.usable_bitrates();
        let state = self.lock();
        let size = |index: usize| {
            state
                .layers
                .iter()
                .find(|l| usize::from(l.index) == index)
                .map_or(0, |l| l.size.load(Ordering::Relaxed))
        };
        bitrates
            .iter()
            .enumerate()
            .map(|(i, &bitrate_bps)| allocation::Layer {
                bitrate_bps,
                width: size(i) >> 16,
                height: size(i) & 0xffff,
            })
            .collect()
    }

    /// What the track's layers together carry now.
    pub(crate) fn bitrate(&self) -> u64 {
        self.lock()
            .layers
            .iter()
            .map(|l| l.stats.meter.bitrate())
            .sum()
    }

    /// Each layer's bitrate, lowest layer first, or 0 where the layer is not worth switching to:
    /// silent for [`LAYER_SILENCE`], or starved — sending less than half of a layer below it,
    /// as a browser does with a top layer while its uplink estimate ramps up or its CPU runs
    /// short (a frame now and then, and keyframes seconds apart).
    pub(crate) fn usable_bitrates(&self) -> Vec<u64> {
        let now = millis_since_epoch(Instant::now());
        let state = self.lock();
        let mut bitrates = vec![0; usize::from(self.layer_count)];
        for l in &state.layers {
            let last = l.last_packet.load(Ordering::Relaxed);
            let live = last > 0 && now.saturating_sub(last) <= LAYER_SILENCE.as_millis() as u64;
            if let Some(b) = bitrates.get_mut(usize::from(l.index)).filter(|_| live) {
                *b = l.stats.meter.bitrate().max(1);
            }
        }
        starve(&mut bitrates);
        bitrates
    }

    pub(crate) fn report(&self) -> TrackReport {
        let state = self.lock();
        let mut layers: Vec<LayerReport> = state
            .layers
            .iter()
            .map(|l| {
                let size = l.size.load(Ordering::Relaxed);
                LayerReport {
                    index: l.index,
                    rid: l.rid.clone(),
                    bitrate_bps: l.stats.meter.bitrate(),
                    width: size >> 16,
                    height: size & 0xffff,
                }
            })
            .collect();
        layers.sort_by_key(|l| l.index);
        let sum = |f: &dyn Fn(&InboundStats) -> u64| state.layers.iter().map(|l| f(&l.stats)).sum();
        TrackReport {
            id: self.id.clone(),
            publisher: self.publisher.clone(),
            kind: self.kind.as_str(),
            codec: self.codec.mime_type().to_owned(),
            packets: sum(&|s| s.meter.packets()),
            bytes: sum(&|s| s.meter.bytes()),
            bitrate_bps: sum(&|s| s.meter.bitrate()),
            packets_lost: sum(&|s| s.lost.load(Ordering::Relaxed)),
            fraction_lost: None,
            jitter_ms: state
                .layers
                .iter()
                .map(|l| l.stats.jitter_micros.load(Ordering::Relaxed))
                .max()
                .unwrap_or(0) as f64
                / 1000.0,
            rtt_ms: None,
            keyframe_requests: 0,
            nacks: 0,
            layers: if self.layer_count > 1 {
                layers
            } else {
                Vec::new()
            },
            layer: None,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A layer sending less than this share of a layer below it is starved.
const STARVED: f64 = 0.5;

/// Zeroes every layer that sends less than half of some layer below it. Half, not all: a top
/// layer that is ramping up passes the one below it and falls back now and then (seen in
/// Chromium: 435, 0, 328 kbit/s against 410, 309, 262 below, a quarter-second apart), and each
/// flip restarted the allocator's climb towards it, which then never completed.
fn starve(bitrates: &mut [u64]) {
    let mut highest_below = 0;
    for b in bitrates.iter_mut() {
        let own = *b;
        if (own as f64) < highest_below as f64 * STARVED {
            *b = 0;
        }
        highest_below = highest_below.max(own);
    }
}

/// Counts a layer's stream as open for as long as it lives, and reports the publication ended
/// when the last one closes, however its task ends.
struct LayerEnd {
    live: Arc<AtomicUsize>,
    ended: mpsc::UnboundedSender<String>,
    id: String,
}

impl LayerEnd {
    fn new(live: &Arc<AtomicUsize>, ended: &mpsc::UnboundedSender<String>, id: &str) -> Self {
        live.fetch_add(1, Ordering::Relaxed);
        Self {
            live: Arc::clone(live),
            ended: ended.clone(),
            id: id.to_owned(),
        }
    }
}

impl Drop for LayerEnd {
    fn drop(&mut self) {
        if self.live.fetch_sub(1, Ordering::Relaxed) == 1 {
            let _ = self.ended.send(std::mem::take(&mut self.id));
        }
    }
}

/// The reader of one layer: owns the remote track, keeps the layer's figures and hands each
/// packet to the publication's fan-out.
struct LayerReader {
    track: RemoteTrack,
    layer: u8,
    format: PayloadFormat,
    stats: Arc<InboundStats>,
    size: Arc<AtomicU32>,
    last_packet: Arc<AtomicU64>,
    counters: Arc<Counters>,
    fanout: mpsc::Sender<Arc<Ingress>>,
    level: Arc<SharedLevel>,
    muted: Arc<AtomicBool>,
    reports: Arc<SenderReportCell>,
    _end: LayerEnd,
}

impl LayerReader {
    async fn run(self) {
        let track = Arc::new(self.track);
        let rtcp = tokio::spawn({
            let track = Arc::clone(&track);
            let reports = Arc::clone(&self.reports);
            async move { track.drain_rtcp(&reports).await }
        });
        let mut window = MeterWindow::new();
        let mut reception = ReceptionTracker::new(track.codec().clock_rate());
        let mut meter = LevelMeter::new(track.codec().clock_rate());
        // Set while muted: the first packet after it starts a new stream for the forwarders.
        let mut resync = false;
        while let Some(Arrival {
            packet,
            audio_level,
        }) = track.read().await
        {
            let now = Instant::now();
            if let Some(level) = audio_level {
                meter.on_packet(packet.header.timestamp, level);
                self.level.publish(now, &meter);
            }
            let size = wire_size(&packet);
            self.last_packet
                .store(millis_since_epoch(now), Ordering::Relaxed);
            self.stats
                .meter
                .record(&mut window, size, now, &self.counters.received);
            reception.on_packet(packet.header.sequence_number, packet.header.timestamp, now);
            self.stats.lost.store(reception.lost(), Ordering::Relaxed);
            self.stats
                .jitter_micros
                .store(reception.jitter_micros(), Ordering::Relaxed);
            let mut info = FrameInfo::read(self.format, self.layer, &packet.payload);
            if let Some((w, h)) = info.vp8.and_then(|d| d.keyframe_size(&packet.payload)) {
                self.size
                    .store(u32::from(w) << 16 | u32::from(h), Ordering::Relaxed);
            }
            if self.muted.load(Ordering::Relaxed) {
                resync = true;
                continue;
            }
            info.resync = std::mem::take(&mut resync);
            if let Err(mpsc::error::TrySendError::Full(_)) =
                self.fanout.try_send(Arc::new(Ingress {
                    packet,
                    info,
                    arrived: now,
                }))
            {
                add(&self.stats.dropped, 1);
                add(&self.counters.dropped, 1);
            }
        }
        window.flush(&self.counters.received);
        rtcp.abort();
        tracing::debug!("layer ended");
    }
}

/// Offers the packet to every tap that wants its layer; returns how many queues were full and
/// dropped it. Closed queues are removed from the list.
pub(crate) fn forward(packet: Arc<Ingress>, subscribers: &mut Vec<Subscriber>) -> u64 {
    let layer = packet.info.layer;
    let mut dropped = 0;
    subscribers.retain(|s| {
        if !s.control.wants(layer) {
            return !s.queue.is_closed();
        }
        match s.queue.try_send(Arc::clone(&packet)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                dropped += 1;
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
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

/// The fan-out step alone, for the microbenchmarks in `benches/`.
#[doc(hidden)]
pub struct FanOutBench {
    subscribers: Vec<Subscriber>,
    queues: Vec<mpsc::Receiver<Arc<Ingress>>>,
}

impl FanOutBench {
    /// `n` subscribers with queues of `capacity`, all wanting layer 0.
    pub fn new(n: usize, capacity: usize) -> Self {
        let (subscribers, queues) = (0..n)
            .map(|i| {
                let (tx, rx) = mpsc::channel(capacity);
                let control = Arc::new(SubscriptionControl::new(Some(0)));
                (Subscriber::new(i as u64, tx, control), rx)
            })
            .unzip();
        Self {
            subscribers,
            queues,
        }
    }

    /// Reads the packet as a VP8 layer-0 packet and offers it to every subscriber; returns the
    /// drops.
    pub fn forward(&mut self, packet: RtpPacket) -> u64 {
        let info = FrameInfo::read(PayloadFormat::Vp8, 0, &packet.payload);
        let arrived = Instant::now();
        let ingress = Ingress {
            packet,
            info,
            arrived,
        };
        forward(Arc::new(ingress), &mut self.subscribers)
    }

    /// Empties every queue.
    pub fn drain(&mut self) {
        for q in &mut self.queues {
            while q.try_recv().is_ok() {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(layer: u8, seq: u16) -> Arc<Ingress> {
        let mut packet = RtpPacket::default();
        packet.header.sequence_number = seq;
        packet.payload = vec![1, 2, 3].into();
        let info = FrameInfo::read(PayloadFormat::Opaque, layer, &packet.payload);
        Arc::new(Ingress {
            packet,
            info,
            arrived: Instant::now(),
        })
    }

    fn subscriber(
        id: u64,
        capacity: usize,
        layer: Option<u8>,
    ) -> (Subscriber, mpsc::Receiver<Arc<Ingress>>) {
        let (tx, rx) = mpsc::channel(capacity);
        (
            Subscriber::new(id, tx, Arc::new(SubscriptionControl::new(layer))),
            rx,
        )
    }

    fn seq_of(p: Arc<Ingress>) -> u16 {
        p.packet.header.sequence_number
    }

    #[test]
    fn a_layer_sending_less_than_half_of_one_below_it_is_not_usable() {
        let mut ramping = [150_000, 400_000, 20_000];
        starve(&mut ramping);
        assert_eq!(ramping, [150_000, 400_000, 0]);
        let mut healthy = [150_000, 400_000, 1_200_000];
        starve(&mut healthy);
        assert_eq!(healthy, [150_000, 400_000, 1_200_000]);
        let mut catching_up = [140_000, 330_000, 260_000];
        starve(&mut catching_up);
        assert_eq!(
            catching_up,
            [140_000, 330_000, 260_000],
            "a layer ramping up stays usable"
        );
        let mut gap = [0, 400_000, 500_000];
        starve(&mut gap);
        assert_eq!(
            gap,
            [0, 400_000, 500_000],
            "a silent low layer starves nothing"
        );
    }

    #[test]
    fn forward_offers_each_packet_to_every_subscriber() {
        let (a, mut a_rx) = subscriber(1, 4, Some(0));
        let (b, mut b_rx) = subscriber(2, 4, Some(0));
        let mut subs = vec![a, b];
        assert_eq!(forward(packet(0, 7), &mut subs), 0);
        assert_eq!(seq_of(a_rx.try_recv().unwrap()), 7);
        assert_eq!(seq_of(b_rx.try_recv().unwrap()), 7);
    }

    #[test]
    fn only_subscribers_that_want_the_layer_are_offered_it() {
        let (low, mut low_rx) = subscriber(1, 4, Some(0));
        let (high, mut high_rx) = subscriber(2, 4, Some(2));
        let (paused, mut paused_rx) = subscriber(3, 4, None);
        let mut subs = vec![low, high, paused];
        forward(packet(2, 9), &mut subs);
        assert!(low_rx.try_recv().is_err());
        assert_eq!(seq_of(high_rx.try_recv().unwrap()), 9);
        assert!(
            paused_rx.try_recv().is_err(),
            "a paused subscription costs nothing"
        );
        assert_eq!(subs.len(), 3);
    }

    #[test]
    fn a_full_queue_drops_for_that_subscriber_only() {
        let (slow, _slow_rx) = subscriber(1, 1, Some(0));
        let (fast, mut fast_rx) = subscriber(2, 4, Some(0));
        let mut subs = vec![slow, fast];
        assert_eq!(forward(packet(0, 1), &mut subs), 0);
        assert_eq!(forward(packet(0, 2), &mut subs), 1);
        assert_eq!(seq_of(fast_rx.try_recv().unwrap()), 1);
        assert_eq!(seq_of(fast_rx.try_recv().unwrap()), 2);
        assert_eq!(subs.len(), 2);
    }

    #[test]
    fn a_closed_queue_is_forgotten_whatever_layer_it_wants() {
        let (gone, gone_rx) = subscriber(1, 4, Some(0));
        let (gone_paused, gone_paused_rx) = subscriber(2, 4, None);
        drop((gone_rx, gone_paused_rx));
        let mut subs = vec![gone, gone_paused];
        forward(packet(0, 1), &mut subs);
        assert!(subs.is_empty());
    }
}
