//! Live statistics: counters the per-packet path updates with plain relaxed stores (each counter
//! has a single writer, so nothing is contended), and the reports built from them on request.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use crate::data::DataCounters;
use crate::ids::{DisplayName, ParticipantId, RoomId};

/// A rate older than this is stale: the stream stopped.
const STALE_RATE: Duration = Duration::from_millis(2500);
const RATE_WINDOW: Duration = Duration::from_secs(1);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Milliseconds since the process's first reading: a timestamp that fits an atomic.
pub(crate) fn millis_since_epoch(at: Instant) -> u64 {
    at.saturating_duration_since(epoch()).as_millis() as u64
}

/// Packets, bytes and bitrate of one stream, written by one task.
#[derive(Default, Debug)]
pub(crate) struct Meter {
    packets: AtomicU64,
    bytes: AtomicU64,
    bitrate: AtomicU64,
    rate_updated_ms: AtomicU64,
}

/// Server-wide packet and byte counts of one direction.
#[derive(Default, Debug)]
pub(crate) struct Flow {
    packets: AtomicU64,
    bytes: AtomicU64,
}

/// Server-wide counters. Streams add to them once per rate window and when they end, so the
/// shared cache lines are touched about once a second per stream, not per packet.
#[derive(Default, Debug)]
pub(crate) struct Counters {
    pub(crate) received: Flow,
    pub(crate) forwarded: Flow,
    pub(crate) dropped: AtomicU64,
    pub(crate) pli: AtomicU64,
    pub(crate) fir: AtomicU64,
    pub(crate) nack: AtomicU64,
    pub(crate) data: DataCounters,
}

/// The writer's private bookkeeping for a [`Meter`].
pub(crate) struct MeterWindow {
    packets: u64,
    bytes: u64,
    window_start: Instant,
    window_bytes: u64,
    flushed_packets: u64,
    flushed_bytes: u64,
}

impl MeterWindow {
    pub(crate) fn new() -> Self {
        Self {
            packets: 0,
            bytes: 0,
            window_start: Instant::now(),
            window_bytes: 0,
            flushed_packets: 0,
            flushed_bytes: 0,
        }
    }

    /// Adds what was counted since the last flush to the server-wide flow.
    pub(crate) fn flush(&mut self, flow: &Flow) {
        add(&flow.packets, self.packets - self.flushed_packets);
        add(&flow.bytes, self.bytes - self.flushed_bytes);
        self.flushed_packets = self.packets;
        self.flushed_bytes = self.bytes;
    }
}

impl Meter {
    pub(crate) fn record(&self, window: &mut MeterWindow, bytes: usize, now: Instant, flow: &Flow) {
        window.packets += 1;
        window.bytes += bytes as u64;
        self.packets.store(window.packets, Ordering::Relaxed);
        self.bytes.store(window.bytes, Ordering::Relaxed);
        let elapsed = now.saturating_duration_since(window.window_start);
        if elapsed >= RATE_WINDOW {
            let bits = (window.bytes - window.window_bytes) * 8;
            let bps = (bits as f64 / elapsed.as_secs_f64()) as u64;
            self.bitrate.store(bps, Ordering::Relaxed);
            self.rate_updated_ms
                .store(millis_since_epoch(now), Ordering::Relaxed);
            window.window_start = now;
            window.window_bytes = window.bytes;
            window.flush(flow);
        }
    }

    pub(crate) fn packets(&self) -> u64 {
        self.packets.load(Ordering::Relaxed)
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Bits per second over the last window; zero once the stream has gone quiet.
    pub(crate) fn bitrate(&self) -> u64 {
        self.bitrate_at(Instant::now())
    }

    /// [`Meter::bitrate`] as seen at `now`.
    fn bitrate_at(&self, now: Instant) -> u64 {
        let updated = self.rate_updated_ms.load(Ordering::Relaxed);
        let now = millis_since_epoch(now);
        if now.saturating_sub(updated) > STALE_RATE.as_millis() as u64 {
            0
        } else {
            self.bitrate.load(Ordering::Relaxed)
        }
    }
}

/// Loss and interarrival jitter of a received RTP stream (RFC 3550, appendix A.1 and A.8).
pub(crate) struct ReceptionTracker {
    clock_rate: f64,
    started: Instant,
    base_seq: Option<u32>,
    max_seq: u32,
    cycles: u32,
    received: u64,
    last_transit: Option<f64>,
    jitter: f64,
}

impl ReceptionTracker {
    pub(crate) fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate: f64::from(clock_rate.max(1)),
            started: Instant::now(),
            base_seq: None,
            max_seq: 0,
            cycles: 0,
            received: 0,
            last_transit: None,
            jitter: 0.0,
        }
    }

    pub(crate) fn on_packet(&mut self, seq: u16, rtp_timestamp: u32, arrival: Instant) {
        let seq = u32::from(seq);
        self.received += 1;
        match self.base_seq {
            None => {
                self.base_seq = Some(seq);
                self.max_seq = seq;
            }
            Some(_) => {
                let delta = seq.wrapping_sub(self.max_seq) & 0xffff;
                if delta != 0 && delta < 0x8000 {
                    if seq < self.max_seq {
                        self.cycles += 1 << 16;
                    }
                    self.max_seq = seq;
                }
            }
        }
        let arrival_units = arrival
            .saturating_duration_since(self.started)
            .as_secs_f64()
            * self.clock_rate;
        let transit = arrival_units - f64::from(rtp_timestamp);
        if let Some(last) = self.last_transit {
            let d = (transit - last).abs();
            // Transit differences over a minute are timestamp jumps, not jitter.
            if d < 60.0 * self.clock_rate {
                self.jitter += (d - self.jitter) / 16.0;
            }
        }
        self.last_transit = Some(transit);
    }

    /// Packets expected from sequence numbers but never received.
    pub(crate) fn lost(&self) -> u64 {
        let Some(base) = self.base_seq else { return 0 };
        let expected = u64::from(self.cycles + self.max_seq) - u64::from(base) + 1;
        expected.saturating_sub(self.received)
    }

    pub(crate) fn jitter_micros(&self) -> u64 {
        (self.jitter / self.clock_rate * 1e6) as u64
    }
}

/// What a publication's reader records.
#[derive(Default, Debug)]
pub(crate) struct InboundStats {
    pub(crate) meter: Meter,
    pub(crate) lost: AtomicU64,
    pub(crate) jitter_micros: AtomicU64,
    pub(crate) dropped: AtomicU64,
}

/// What a subscription records: its sends, and the subscriber's RTCP about them.
#[derive(Default, Debug)]
pub(crate) struct OutboundStats {
    pub(crate) meter: Meter,
    pub(crate) lost: AtomicU64,
    pub(crate) fraction_lost: AtomicU64,
    pub(crate) jitter_micros: AtomicU64,
    pub(crate) rtt_micros: AtomicU64,
    pub(crate) pli: AtomicU64,
    pub(crate) fir: AtomicU64,
    pub(crate) nack: AtomicU64,
    /// The layer forwarded now, or `PAUSED` (written by the forwarder's task).
    pub(crate) layer: AtomicU8,
}

/// The state of a participant's media connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ConnectionState {
    #[default]
    New,
    Connecting,
    Connected,
    Disconnected,
    Failed,
    Closed,
}

impl ConnectionState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionState::New => "new",
            ConnectionState::Connecting => "connecting",
            ConnectionState::Connected => "connected",
            ConnectionState::Disconnected => "disconnected",
            ConnectionState::Failed => "failed",
            ConnectionState::Closed => "closed",
        }
    }
}

/// A room as an operator sees it.
#[derive(Clone, Debug)]
pub struct RoomReport {
    pub id: RoomId,
    pub created: SystemTime,
    pub participants: Vec<ParticipantReport>,
    /// Whether the room is being recorded.
    pub recording: bool,
}

#[derive(Clone, Debug)]
pub struct ParticipantReport {
    pub id: ParticipantId,
    pub name: DisplayName,
    pub joined: SystemTime,
    pub connection: ConnectionState,
    /// Candidate types of the selected pair (server side, client side): host, srflx, prflx, relay.
    pub candidate_pair: Option<(String, String)>,
    /// What the server estimates the participant's downlink carries, bits/s (once it
    /// receives something).
    pub downlink_bps: Option<u64>,
    pub published: Vec<TrackReport>,
    pub forwarded: Vec<TrackReport>,
}

/// One track: published (received by the server) or forwarded (sent to a subscriber).
#[derive(Clone, Debug)]
pub struct TrackReport {
    pub id: String,
    pub publisher: ParticipantId,
    pub kind: &'static str,
    pub codec: String,
    pub packets: u64,
    pub bytes: u64,
    pub bitrate_bps: u64,
    pub packets_lost: u64,
    /// Fraction of packets lost in the last report interval, 0.0 to 1.0 (forwarded tracks only).
    pub fraction_lost: Option<f64>,
    pub jitter_ms: f64,
    pub rtt_ms: Option<f64>,
    pub keyframe_requests: u64,
    pub nacks: u64,
    /// A simulcast publication's layers, lowest first (empty without simulcast).
    pub layers: Vec<LayerReport>,
    /// The layer a forwarded track carries now; `None` while paused or waiting for a keyframe.
    pub layer: Option<u8>,
}

/// One simulcast layer of a published track.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerReport {
    pub index: u8,
    pub rid: String,
    pub bitrate_bps: u64,
    /// From the layer's last keyframe (VP8); 0 when not known.
    pub width: u32,
    pub height: u32,
}

/// Server-wide figures for metrics. Counters cover every stream since start (live ones lag by up to
/// a second); the rest are current.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub rooms: u64,
    pub participants: u64,
    pub published_tracks: u64,
    pub forwarded_tracks: u64,
    pub received_packets: u64,
    pub received_bytes: u64,
    pub forwarded_packets: u64,
    pub forwarded_bytes: u64,
    pub dropped_packets: u64,
    pub pli: u64,
    pub fir: u64,
    pub nack: u64,
    /// Data channel messages handed to a recipient (one per recipient).
    pub data_relayed: u64,
    /// Data channel messages dropped for a recipient too slow to take them.
    pub data_dropped: u64,
    /// Data channel messages refused, by reason ([`crate::DataRejection::REASONS`]).
    pub data_rejected: Vec<(&'static str, u64)>,
}

impl Counters {
    pub(crate) fn add_to(&self, t: &mut Totals) {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        t.received_packets = load(&self.received.packets);
        t.received_bytes = load(&self.received.bytes);
        t.forwarded_packets = load(&self.forwarded.packets);
        t.forwarded_bytes = load(&self.forwarded.bytes);
        t.dropped_packets = load(&self.dropped);
        t.pli = load(&self.pli);
        t.fir = load(&self.fir);
        t.nack = load(&self.nack);
        t.data_relayed = load(&self.data.delivered);
        t.data_dropped = load(&self.data.dropped);
        t.data_rejected = self.data.rejected();
    }
}

pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// Round-trip time from a receiver report's LSR and DLSR (RFC 3550, 6.4.1), in microseconds.
pub(crate) fn rtt_from_report(lsr: u32, dlsr: u32, now: SystemTime) -> Option<u64> {
    if lsr == 0 {
        return None;
    }
    let rtt = compact_ntp(now).wrapping_sub(lsr).wrapping_sub(dlsr);
    // More than a minute is a clock step or garbage, not a round trip.
    (rtt < 60 << 16).then(|| u64::from(rtt) * 1_000_000 / 65536)
}

/// The middle 32 bits of the NTP timestamp for `t`.
pub(crate) fn compact_ntp(t: SystemTime) -> u32 {
    (ntp(t) >> 16) as u32
}

/// The 64-bit NTP timestamp for `t` (seconds since 1900 and a binary fraction).
pub(crate) fn ntp(t: SystemTime) -> u64 {
    const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
    let since_unix = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = since_unix.as_secs() + NTP_UNIX_OFFSET;
    let frac = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
    secs << 32 | frac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_meter_counts_and_measures_bitrate_per_window() {
        let meter = Meter::default();
        let flow = Flow::default();
        let mut window = MeterWindow::new();
        let start = window.window_start;
        for i in 0..100 {
            meter.record(
                &mut window,
                1000,
                start + Duration::from_millis(i * 10),
                &flow,
            );
        }
        assert_eq!(
            flow.packets.load(Ordering::Relaxed),
            0,
            "nothing shared within a window"
        );
        meter.record(
            &mut window,
            1000,
            start + Duration::from_millis(1000),
            &flow,
        );
        assert_eq!(meter.packets(), 101);
        assert_eq!(meter.bytes(), 101_000);
        assert_eq!(meter.bitrate(), 808_000, "101 kB in one second");
        assert_eq!(
            flow.bytes.load(Ordering::Relaxed),
            101_000,
            "shared once the window closed"
        );
        meter.record(&mut window, 500, start + Duration::from_millis(1010), &flow);
        window.flush(&flow);
        assert_eq!(
            flow.packets.load(Ordering::Relaxed),
            102,
            "the rest shared at the end"
        );
    }

    #[test]
    fn a_meter_reports_zero_once_quiet() {
        let meter = Meter::default();
        assert_eq!(meter.bitrate(), 0, "nothing yet");
        let flow = Flow::default();
        let mut window = MeterWindow::new();
        let start = window.window_start;
        meter.record(&mut window, 1000, start, &flow);
        let last = start + Duration::from_secs(1);
        meter.record(&mut window, 1000, last, &flow);
        assert_eq!(meter.bitrate_at(last), 16_000, "a live stream has its rate");
        assert_eq!(
            meter.bitrate_at(last + STALE_RATE),
            16_000,
            "a pause is not silence"
        );
        assert_eq!(
            meter.bitrate_at(last + STALE_RATE + Duration::from_millis(1)),
            0,
            "the last rate is not kept once the stream has gone quiet"
        );
    }

    #[test]
    fn loss_counts_sequence_gaps_across_wraparound() {
        let now = Instant::now();
        let mut t = ReceptionTracker::new(90000);
        for seq in [65533u16, 65534, 0, 1, 3] {
            t.on_packet(seq, 0, now);
        }
        assert_eq!(t.lost(), 2, "65535 and 2 never came");
    }

    #[test]
    fn reordered_and_duplicate_packets_are_not_loss() {
        let now = Instant::now();
        let mut t = ReceptionTracker::new(90000);
        for seq in [10u16, 12, 11, 13] {
            t.on_packet(seq, 0, now);
        }
        assert_eq!(t.lost(), 0);
    }

    #[test]
    fn steady_pacing_has_no_jitter_and_uneven_pacing_has_some() {
        let start = Instant::now();
        let mut steady = ReceptionTracker::new(1000);
        let mut uneven = ReceptionTracker::new(1000);
        for i in 0..50u32 {
            let ts = i * 20;
            steady.on_packet(
                i as u16,
                ts,
                steady.started + Duration::from_millis(u64::from(ts)),
            );
            let wobble = if i % 2 == 0 { 0 } else { 10 };
            uneven.on_packet(
                i as u16,
                ts,
                uneven.started + Duration::from_millis(u64::from(ts + wobble)),
            );
        }
        let _ = start;
        assert!(steady.jitter_micros() < 1000, "{}", steady.jitter_micros());
        assert!(uneven.jitter_micros() > 5000, "{}", uneven.jitter_micros());
    }

    #[test]
    fn rtt_comes_from_lsr_and_dlsr() {
        let sent = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let lsr = compact_ntp(sent);
        let dlsr = 65536 / 10; // the receiver held the report for 100 ms
        let now = sent + Duration::from_millis(130);
        let rtt = rtt_from_report(lsr, dlsr, now).unwrap();
        assert!((29_000..=31_000).contains(&rtt), "{rtt}");
        assert_eq!(
            rtt_from_report(0, dlsr, now),
            None,
            "no sender report seen yet"
        );
    }
}
