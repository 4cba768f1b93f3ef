//! Delay-based rate control: additive/multiplicative increase while the path is calm, a
//! cut to a fraction of the acknowledged bitrate on over-use (draft-ietf-rmcat-gcc-02
//! §5.5, libwebrtc `AimdRateControl` and `LinkCapacityEstimator`).
//!
//! Times are microseconds on the server clock, rates bits per second.

use crate::bwe::bound;
use crate::bwe::overuse::Usage;

/// Cut to this fraction of the acknowledged bitrate so the queue can drain (draft §5.5 beta).
const BETA: f64 = 0.85;
/// Far from the known capacity the rate grows 8 % per second (draft §5.5 eta).
const MULTIPLICATIVE_PER_S: f64 = 1.08;
const MIN_MULTIPLICATIVE_STEP_BPS: f64 = 1_000.0;
/// Near it, roughly half a packet per response time (draft §5.5, libwebrtc
/// `GetNearMaxIncreaseRateBpsPerSecond`): 30 fps frames cut into 1200-byte packets.
const FRAMES_PER_S: f64 = 30.0;
const PACKET_BITS: f64 = 1200.0 * 8.0;
const DETECTOR_DELAY_US: i64 = 100_000;
const MIN_ADDITIVE_BPS_PER_S: f64 = 4_000.0;
/// Never increase beyond 1.5 × acknowledged + 10 kbit/s: an application-limited sender
/// never tests the path, so its estimate must not drift away (draft §5.5, libwebrtc).
const ACKED_CAP_FACTOR: f64 = 1.5;
const ACKED_CAP_SLACK_BPS: f64 = 10_000.0;
/// Until the caller tells us better, assume this round-trip time (libwebrtc `kDefaultRtt`).
const DEFAULT_RTT_US: i64 = 200_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Hold,
    Increase,
    Decrease,
}

/// Where over-use was last seen, averaged; near it the increase turns additive.
#[derive(Debug)]
struct LinkCapacity {
    estimate_kbps: Option<f64>,
    /// Variance normalised by the estimate (libwebrtc keeps it within [0.4, 2.5]).
    deviation: f64,
}

impl LinkCapacity {
    fn deviation_kbps(&self, estimate: f64) -> f64 {
        (self.deviation * estimate).sqrt()
    }

    fn upper_bound_bps(&self) -> f64 {
        self.estimate_kbps.map_or(f64::INFINITY, |e| {
            (e + 3.0 * self.deviation_kbps(e)) * 1000.0
        })
    }

    fn lower_bound_bps(&self) -> f64 {
        self.estimate_kbps
            .map_or(0.0, |e| (e - 3.0 * self.deviation_kbps(e)) * 1000.0)
    }

    fn on_overuse(&mut self, acked_bps: f64) {
        const ALPHA: f64 = 0.05;
        let sample = acked_bps / 1000.0;
        let estimate = self
            .estimate_kbps
            .map_or(sample, |e| (1.0 - ALPHA) * e + ALPHA * sample);
        let error = estimate - sample;
        let deviation = (1.0 - ALPHA) * self.deviation + ALPHA * error * error / estimate.max(1.0);
        self.deviation = bound(deviation, 0.4, 2.5);
        self.estimate_kbps = Some(estimate);
    }
}

#[derive(Debug)]
pub struct AimdRateControl {
    bitrate: f64,
    min_bps: f64,
    max_bps: f64,
    state: State,
    last_change_us: Option<i64>,
    latest_acked: Option<f64>,
    link: LinkCapacity,
    rtt_us: i64,
}

impl AimdRateControl {
    pub fn new(initial_bps: f64, min_bps: f64, max_bps: f64) -> Self {
        AimdRateControl {
            bitrate: bound(initial_bps, min_bps, max_bps),
            min_bps,
            max_bps,
            state: State::Hold,
            last_change_us: None,
            latest_acked: None,
            link: LinkCapacity {
                estimate_kbps: None,
                deviation: 0.4,
            },
            rtt_us: DEFAULT_RTT_US,
        }
    }

    pub fn bitrate(&self) -> f64 {
        self.bitrate
    }

    pub fn set_rtt(&mut self, rtt_us: i64) {
        self.rtt_us = rtt_us.max(0);
    }

    /// Jumps to a rate measured elsewhere (a probe, or a blind cut without throughput).
    pub fn set_estimate(&mut self, bps: f64, now_us: i64) {
        self.bitrate = bound(bps, self.min_bps, self.max_bps);
        self.last_change_us = Some(now_us);
    }

    /// Whether another cut is due: once per RTT (10–200 ms), or at once if the receiver
    /// gets less than half of what we believe (libwebrtc `TimeToReduceFurther`).
    pub fn time_to_reduce_further(&self, now_us: i64, acked_bps: f64) -> bool {
        let interval = self.rtt_us.clamp(10_000, 200_000);
        let due = self
            .last_change_us
            .is_none_or(|t| now_us.saturating_sub(t) >= interval);
        due || acked_bps < 0.5 * self.bitrate
    }

    /// `cap_floor_bps` lets a running probe lift the acknowledged-bitrate cap.
    pub fn update(
        &mut self,
        now_us: i64,
        usage: Usage,
        acked_bps: Option<f64>,
        cap_floor_bps: f64,
    ) {
        if acked_bps.is_some() {
            self.latest_acked = acked_bps;
        }
        let throughput = self.latest_acked.unwrap_or(self.bitrate);
        self.change_state(usage, now_us);
        match self.state {
            State::Hold => {}
            State::Increase => self.increase(now_us, throughput, cap_floor_bps),
            State::Decrease => self.decrease(now_us, throughput),
        }
    }

    fn change_state(&mut self, usage: Usage, now_us: i64) {
        self.state = match (usage, self.state) {
            (Usage::Normal, State::Hold) => {
                self.last_change_us = Some(now_us);
                State::Increase
            }
            (Usage::Normal, s) => s,
            (Usage::Overusing, _) => State::Decrease,
            (Usage::Underusing, _) => State::Hold,
        };
    }

    fn increase(&mut self, now_us: i64, throughput: f64, cap_floor_bps: f64) {
        if throughput > self.link.upper_bound_bps() {
            // Far above where the link used to saturate: it changed, ramp up fast again.
            self.link.estimate_kbps = None;
        }
        let limit = (ACKED_CAP_FACTOR * throughput + ACKED_CAP_SLACK_BPS).max(cap_floor_bps);
        if self.bitrate < limit {
            let dt_s = self.seconds_since_change(now_us);
            let step = if self.link.estimate_kbps.is_some() {
                self.additive_step(dt_s)
            } else {
                self.multiplicative_step(dt_s)
            };
            self.bitrate = bound((self.bitrate + step).min(limit), self.min_bps, self.max_bps);
        }
        self.last_change_us = Some(now_us);
    }

    fn decrease(&mut self, now_us: i64, throughput: f64) {
        let mut target = BETA * throughput;
        if target > self.bitrate {
            if let Some(capacity_kbps) = self.link.estimate_kbps {
                target = BETA * capacity_kbps * 1000.0;
            }
        }
        // Over-use must never raise the rate.
        if target < self.bitrate {
            self.bitrate = bound(target, self.min_bps, self.max_bps);
        }
        if throughput < self.link.lower_bound_bps() {
            // Far below the remembered capacity: start that average afresh.
            self.link.estimate_kbps = None;
        }
        self.link.on_overuse(throughput);
        // Hold until the detector sees the queue drained.
        self.state = State::Hold;
        self.last_change_us = Some(now_us);
    }

    fn seconds_since_change(&self, now_us: i64) -> f64 {
        let us = self
            .last_change_us
            .map_or(0, |t| now_us.saturating_sub(t).max(0));
        us as f64 / 1e6
    }

    fn multiplicative_step(&self, dt_s: f64) -> f64 {
        let alpha = MULTIPLICATIVE_PER_S.powf(dt_s.min(1.0));
        (self.bitrate * (alpha - 1.0)).max(MIN_MULTIPLICATIVE_STEP_BPS)
    }

    fn additive_step(&self, dt_s: f64) -> f64 {
        let frame_bits = self.bitrate / FRAMES_PER_S;
        let packets = (frame_bits / PACKET_BITS).ceil().max(1.0);
        let response_s = self.rtt_us.saturating_add(DETECTOR_DELAY_US) as f64 / 1e6;
        let per_s = (frame_bits / packets / response_s).max(MIN_ADDITIVE_BPS_PER_S);
        per_s * dt_s
    }
}
