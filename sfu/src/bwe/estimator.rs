//! The per-subscriber facade: feeds transport-wide feedback and receiver reports into the
//! delay-based and loss-based controllers and reports the lower of the two, mirroring
//! libwebrtc's `GoogCcNetworkController` wiring of `DelayBasedBwe` and
//! `SendSideBandwidthEstimation`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::bwe::acked_bitrate::AckedBitrate;
use crate::bwe::aimd::AimdRateControl;
use crate::bwe::backoff::Backoff;
use crate::bwe::bound;
use crate::bwe::inter_arrival::InterArrival;
use crate::bwe::loss::LossBasedControl;
use crate::bwe::overuse::{OveruseDetector, Usage};
use crate::bwe::probe::ProbeTracker;
use crate::bwe::trendline::Trendline;

/// Feedback gaps longer than this mean the delay history belongs to another era of the
/// path (libwebrtc `kStreamTimeOut`).
const STREAM_TIMEOUT_US: i64 = 2_000_000;
/// RTT is the mean over this many feedbacks of the oldest packet's feedback delay
/// (libwebrtc `kMaxFeedbackRttWindow`).
const RTT_WINDOW: usize = 32;
/// Feedback delays beyond this are stalls, not round trips.
const MAX_RTT_US: i64 = 2_000_000;

/// One packet the server sent to this subscriber, as the subscriber's transport-wide feedback reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketResult {
    /// When the server sent it (server clock).
    pub sent_at: Instant,
    /// Bytes on the wire (RTP header + payload).
    pub size: u32,
    /// When it arrived, on the subscriber's clock expressed relative to an arbitrary origin
    /// (only differences matter); None = reported lost.
    pub arrived_at: Option<Duration>,
}

/// Bounds and starting point of the estimate, in bits per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EstimatorConfig {
    pub initial_bps: u64,
    pub min_bps: u64,
    pub max_bps: u64,
}

impl Default for EstimatorConfig {
    fn default() -> Self {
        EstimatorConfig {
            initial_bps: 1_000_000,
            min_bps: 50_000,
            max_bps: 20_000_000,
        }
    }
}

/// Downlink bandwidth estimate for one subscriber. Feed it every transport-wide feedback
/// and receiver report; read [`BandwidthEstimator::estimate_bps`] when allocating layers.
#[derive(Debug)]
pub struct BandwidthEstimator {
    min_bps: f64,
    max_bps: f64,
    estimate_bps: f64,
    /// Server-clock instants become signed microseconds from the first one seen.
    origin: Option<Instant>,
    inter_arrival: InterArrival,
    trendline: Trendline,
    detector: OveruseDetector,
    aimd: AimdRateControl,
    loss: LossBasedControl,
    acked: AckedBitrate,
    probe: ProbeTracker,
    rtts: VecDeque<i64>,
    last_feedback_us: Option<i64>,
    delay_based: bool,
    /// Over-use blocks [`BandwidthEstimator::try_rate`] for a while; the delay-based
    /// controller's own growth near the link's capacity is slow enough without a ceiling.
    delay_backoff: Backoff,
}

impl BandwidthEstimator {
    pub fn new(config: EstimatorConfig) -> Self {
        let min = config.min_bps as f64;
        let max = (config.max_bps as f64).max(min);
        let initial = bound(config.initial_bps as f64, min, max);
        BandwidthEstimator {
            min_bps: min,
            max_bps: max,
            estimate_bps: initial,
            origin: None,
            inter_arrival: InterArrival::default(),
            trendline: Trendline::default(),
            detector: OveruseDetector::default(),
            aimd: AimdRateControl::new(initial, min, max),
            loss: LossBasedControl::new(initial, min, max),
            acked: AckedBitrate::default(),
            probe: ProbeTracker::default(),
            rtts: VecDeque::new(),
            last_feedback_us: None,
            delay_based: false,
            delay_backoff: Backoff::default(),
        }
    }

    /// A transport-wide congestion-control feedback: results in transport sequence order.
    pub fn on_transport_feedback(&mut self, now: Instant, results: &[PacketResult]) {
        let now_us = self.micros(now);
        if results.is_empty() {
            return;
        }
        let mut received: Vec<(i64, i64, u32)> = results
            .iter()
            .filter_map(|r| Some((self.micros(r.sent_at), micros(r.arrived_at?), r.size)))
            .collect();
        let lost = results.len() - received.len();
        self.loss
            .on_packets(now_us, lost as u64, results.len() as u64);
        if !received.is_empty() {
            self.update_rtt(now_us, &received);
            received.sort_by_key(|p| p.1);
            self.on_received(now_us, &received);
            self.update_delay_based(now_us);
        }
        self.combine(now_us);
    }

    /// A receiver report's fraction lost (0..=255 as in RTCP), for subscribers that send no
    /// transport-wide feedback: then the estimate follows the loss-based controller alone.
    pub fn on_receiver_report(&mut self, now: Instant, fraction_lost: u8) {
        let now_us = self.micros(now);
        self.loss.on_fraction_lost(now_us, fraction_lost);
        self.combine(now_us);
    }

    /// Current estimate in bits per second (always within [min_bps, max_bps]).
    pub fn estimate_bps(&self) -> u64 {
        self.estimate_bps as u64
    }

    // Probing (the next step of issue #10) reads and drives these.
    #[allow(dead_code)]
    /// What the delay detector last concluded.
    pub fn usage(&self) -> Usage {
        self.detector.usage()
    }

    // Probing (the next step of issue #10) reads and drives these.
    #[allow(dead_code)]
    /// The acknowledged (received) bitrate over the last window, if known.
    pub fn acked_bps(&self) -> Option<u64> {
        self.acked.bps().map(|b| b as u64)
    }

    // Probing (the next step of issue #10) reads and drives these.
    #[allow(dead_code)]
    /// The sender tells the estimator it is deliberately sending above what media needs
    /// (probing with padding): call with the probe's total send rate (media + padding) when
    /// the probe starts and at least every 100 ms while it runs; calls further apart start a
    /// new probe.
    ///
    /// Normally the estimate may not grow beyond 1.5 × the acknowledged bitrate + 10 kbit/s,
    /// so an application-limited sender never inflates it. While a probe runs, and for one
    /// second after the last call, that cap is at least `probe_bps`. In addition, the packets
    /// sent during the probe are measured once their feedback arrives: if they were delivered
    /// faster than the current estimate and the delay detector does not see over-use, the
    /// estimate jumps to the delivered rate (never above `probe_bps` by much, since the
    /// measured rate is the lower of send and receive rate). A probe never lowers the
    /// estimate; a probe that overloads the path is caught by the delay detector as usual.
    pub fn on_probe(&mut self, now: Instant, probe_bps: u64) {
        let now_us = self.micros(now);
        self.probe.on_probe(now_us, probe_bps as f64);
    }

    /// The allocator could use `needed_bps` in all. If that is more than the estimate and no
    /// congestion was seen lately (heavy loss or over-use: 5 s after the first, doubling up to
    /// 60 s while attempts keep failing, see `backoff`), the estimate becomes that at
    /// once and the media the allocator then sends tests it: a probe made of media, since
    /// padding probes on a video SSRC break some receivers (issue #10: aiortc takes an empty
    /// frame for end of stream) and webrtc-rs offers no other stream to send them on. A failed
    /// attempt costs the subscriber the loss until the next feedback cuts the estimate and
    /// the allocator moves back down.
    pub fn try_rate(&mut self, now: Instant, needed_bps: u64) {
        let now_us = self.micros(now);
        let needed = bound(needed_bps as f64, self.min_bps, self.max_bps);
        let congested = self.detector.usage() == Usage::Overusing
            || self.delay_backoff.waiting(now_us)
            || !self.loss.may_try(now_us);
        if needed <= self.estimate_bps || congested {
            return;
        }
        if needed > self.aimd.bitrate() {
            self.aimd.set_estimate(needed, now_us);
        }
        self.loss.start_trial(now_us, needed);
        self.combine(now_us);
    }

    fn micros(&mut self, t: Instant) -> i64 {
        let origin = *self.origin.get_or_insert(t);
        match t.checked_duration_since(origin) {
            Some(d) => micros(d),
            None => micros(origin.duration_since(t)).saturating_neg(),
        }
    }

    fn on_received(&mut self, now_us: i64, received: &[(i64, i64, u32)]) {
        let timed_out = self
            .last_feedback_us
            .is_some_and(|t| now_us.saturating_sub(t) > STREAM_TIMEOUT_US);
        if timed_out {
            self.inter_arrival = InterArrival::default();
            self.trendline = Trendline::default();
            self.detector = OveruseDetector::default();
        }
        self.last_feedback_us = Some(now_us);
        self.delay_based = true;
        for &(send, arrival, size) in received {
            self.acked.update(arrival, size);
            self.probe.on_packet(send, arrival, size);
            if let Some(d) = self.inter_arrival.push(send, arrival, now_us) {
                let (arrival_ms, send_ms) = (d.arrival_us as f64 / 1e3, d.send_us as f64 / 1e3);
                let sample = self
                    .trendline
                    .update(arrival_ms, send_ms, arrival as f64 / 1e3);
                self.detector.update(sample, send_ms, arrival as f64 / 1e3);
            }
        }
    }

    fn update_delay_based(&mut self, now_us: i64) {
        let acked = self.acked.bps();
        if let Some(a) = acked {
            self.loss.set_acked(a);
        }
        let probed = self.probe.take_result();
        let usage = self.detector.usage();
        let bitrate = self.aimd.bitrate();
        match (usage, acked) {
            (Usage::Overusing, Some(a)) => {
                if self.aimd.time_to_reduce_further(now_us, a) {
                    self.aimd.update(now_us, usage, acked, 0.0);
                    self.delay_backoff.on_congestion(now_us);
                }
            }
            // Over-use before anything was measured: halve, at most once per RTT
            // (libwebrtc `InitialTimeToReduceFurther`).
            (Usage::Overusing, None) => {
                if self.aimd.time_to_reduce_further(now_us, bitrate) {
                    self.aimd.set_estimate(bitrate / 2.0, now_us);
                }
            }
            _ => match probed.filter(|&p| p > bitrate) {
                Some(p) => {
                    self.aimd.set_estimate(p, now_us);
                    self.loss.raise_to(now_us, p);
                }
                None => {
                    let floor = self.probe.cap_floor(now_us);
                    self.aimd.update(now_us, usage, acked, floor);
                }
            },
        }
    }

    fn update_rtt(&mut self, now_us: i64, received: &[(i64, i64, u32)]) {
        let Some(oldest) = received.iter().map(|p| p.0).min() else {
            return;
        };
        let rtt = now_us.saturating_sub(oldest);
        if !(0..=MAX_RTT_US).contains(&rtt) {
            return;
        }
        self.rtts.push_back(rtt);
        if self.rtts.len() > RTT_WINDOW {
            self.rtts.pop_front();
        }
        let mean = self.rtts.iter().sum::<i64>() / self.rtts.len() as i64;
        self.aimd.set_rtt(mean);
        self.loss.set_rtt(mean);
    }

    fn combine(&mut self, now_us: i64) {
        if self.delay_based {
            self.loss.set_upper_limit(now_us, self.aimd.bitrate());
        }
        self.estimate_bps = bound(self.loss.target(), self.min_bps, self.max_bps);
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}
