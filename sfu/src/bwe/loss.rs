//! Loss-based rate control: grow while loss is negligible, hold while it is moderate, cut
//! in proportion to it when heavy (draft-ietf-rmcat-gcc-02 §6, libwebrtc
//! `SendSideBandwidthEstimation`). Never above the delay-based estimate when there is one.
//!
//! Times are microseconds on the server clock, rates bits per second.

use std::collections::VecDeque;

use crate::bwe::backoff::Backoff;
use crate::bwe::bound;

/// Loss fractions in RTCP units (x/256): ≤ 2 % grows, > 10 % cuts (draft §6).
const LOW_LOSS: u8 = 5; // 0.02 × 256 = 5.12
const HIGH_LOSS: u8 = 25; // 0.10 × 256 = 25.6
/// Growth is 8 % over the lowest target of the last second, plus 1 kbit/s so very low
/// rates do not get stuck (draft §6, libwebrtc `kBweIncreaseInterval`).
const INCREASE_WINDOW_US: i64 = 1_000_000;
const INCREASE_FACTOR: f64 = 1.08;
const INCREASE_SLACK_BPS: f64 = 1_000.0;
/// Cuts are spaced by this plus one RTT so the effect of the last one can be seen first
/// (libwebrtc `kBweDecreaseInterval`).
const DECREASE_INTERVAL_US: i64 = 300_000;
/// Transport-feedback losses are only judged over at least this many packets
/// (libwebrtc `kLimitNumPackets`).
const MIN_PACKETS_FOR_FRACTION: u64 = 20;
/// A loss cut stops at this share of what the subscriber is acknowledging: what arrives is
/// what the link carries, and the delay-based controller backs off to the same share of it.
/// Cuts follow each other every 300 ms while the forwarders' move to lower layers waits for
/// keyframes and retransmissions of the lost packets add to the load: without a floor, a
/// subscriber policed to 400 kbit/s (acknowledging ≈ 370 kbit/s) was cut to 118 kbit/s in two
/// seconds (measured in Chromium), below any video layer.
const ACKED_FLOOR: f64 = 0.85;
/// Without a loss report this recent nothing is known about loss, so neither grow nor
/// cut (libwebrtc 1.2 × `kMaxRtcpFeedbackInterval`).
const REPORT_FRESH_US: i64 = 6_000_000;
/// A tried rate (see [`LossBasedControl::start_trial`]) is judged for this long: the allocator
/// takes it up after 3 s, and loss in the seconds after that is the answer.
const TRIAL_US: i64 = 6_000_000;
/// Growth never takes the target beyond this multiple of what the subscriber acknowledges
/// (plus the slack): an application-limited sender learns nothing about the path above what it
/// sends (libwebrtc caps its delay-based rate the same way). Only a trial goes further.
const ACKED_GROWTH_CAP: f64 = 1.5;
const ACKED_GROWTH_SLACK_BPS: f64 = 10_000.0;

/// Where the cuts of the last congestion stopped, and how long growth stays below it.
#[derive(Clone, Copy, Debug, Default)]
struct Ceiling {
    bps: f64,
    backoff: Backoff,
}

#[derive(Debug)]
pub struct LossBasedControl {
    target: f64,
    min_bps: f64,
    max_bps: f64,
    delay_limit: f64,
    /// (time, target) with increasing targets: the front is the minimum of the window.
    history: VecDeque<(i64, f64)>,
    fraction: u8,
    reported_at_us: Option<i64>,
    decreased_since_report: bool,
    last_decrease_us: Option<i64>,
    lost: u64,
    expected: u64,
    rtt_us: i64,
    /// The acknowledged bitrate, when known (transport-wide feedback only).
    acked_bps: Option<f64>,
    /// (judged until, started at, the target before it) of a rate being tried.
    trial: Option<(i64, i64, f64)>,
    ceiling: Ceiling,
}

impl LossBasedControl {
    pub fn new(initial_bps: f64, min_bps: f64, max_bps: f64) -> Self {
        LossBasedControl {
            target: bound(initial_bps, min_bps, max_bps),
            min_bps,
            max_bps,
            delay_limit: f64::INFINITY,
            history: VecDeque::new(),
            fraction: 0,
            reported_at_us: None,
            decreased_since_report: false,
            last_decrease_us: None,
            lost: 0,
            expected: 0,
            rtt_us: 0,
            acked_bps: None,
            trial: None,
            ceiling: Ceiling::default(),
        }
    }

    pub fn target(&self) -> f64 {
        self.target
    }

    /// What the subscriber acknowledges receiving now (transport-wide feedback only).
    pub fn set_acked(&mut self, acked_bps: f64) {
        self.acked_bps = Some(acked_bps.max(0.0));
    }

    pub fn set_rtt(&mut self, rtt_us: i64) {
        self.rtt_us = rtt_us.max(0);
    }

    /// Losses seen in transport-wide feedback; judged once enough packets accumulated.
    pub fn on_packets(&mut self, now_us: i64, lost: u64, expected: u64) {
        self.lost = self.lost.saturating_add(lost);
        self.expected = self.expected.saturating_add(expected);
        if self.expected < MIN_PACKETS_FOR_FRACTION {
            return self.update(now_us);
        }
        let fraction = (self.lost.saturating_mul(256) / self.expected).min(255);
        self.lost = 0;
        self.expected = 0;
        self.on_fraction_lost(now_us, fraction as u8);
    }

    /// A loss fraction in RTCP units (0..=255 ↔ 0..100 %).
    pub fn on_fraction_lost(&mut self, now_us: i64, fraction: u8) {
        self.fraction = fraction;
        self.reported_at_us = Some(now_us);
        self.decreased_since_report = false;
        self.update(now_us);
    }

    /// Re-evaluates the last loss fraction; called on every feedback, so growth follows
    /// time rather than how often enough packets accumulate for a new fraction.
    pub fn update(&mut self, now_us: i64) {
        self.update_history(now_us);
        let fresh = self
            .reported_at_us
            .is_some_and(|t| now_us.saturating_sub(t) < REPORT_FRESH_US);
        if !fresh || self.judge_trial(now_us) {
            return;
        }
        if self.fraction <= LOW_LOSS {
            let floor = self.history.front().map_or(self.target, |h| h.1);
            let grown = floor * INCREASE_FACTOR + INCREASE_SLACK_BPS;
            let app_limit = self.acked_bps.map_or(f64::INFINITY, |a| {
                (a * ACKED_GROWTH_CAP + ACKED_GROWTH_SLACK_BPS).max(self.target)
            });
            self.set(now_us, grown.min(self.ceiling_bps(now_us)).min(app_limit));
        } else if self.fraction > HIGH_LOSS && self.decrease_due(now_us) {
            self.last_decrease_us = Some(now_us);
            self.decreased_since_report = true;
            // rate × (1 − 0.5 × loss), with loss = fraction / 256. Not down to what arrives:
            // feedback after a move down reports the earlier losses against the new, lower
            // acknowledged rate, and that ratchet took the simulcast model's estimate below
            // the lowest layer.
            let cut = self.target * (512.0 - f64::from(self.fraction)) / 512.0;
            let floor = self.acked_bps.map_or(0.0, |a| ACKED_FLOOR * a);
            let cut = cut.max(floor.min(self.target));
            self.set(now_us, cut.min(self.ceiling_bps(now_us)));
            self.on_congestion(now_us, self.target);
        }
    }

    /// Tries `bps` at once: it becomes the target, and any loss above [`LOW_LOSS`] reported in
    /// the next [`TRIAL_US`] puts the target back where it was and counts as congestion.
    /// Cutting in proportion to the loss instead, as for ordinary loss, left a subscriber
    /// behind a 400 kbit/s policer on a tried 1.5 Mbit/s layer for 10 s: the losses the
    /// feedback reported hovered around the 10 % threshold.
    /// One trial at a time: a need that grows while it runs (a layer's measured bitrate
    /// moves with every keyframe) waits for its verdict.
    pub fn start_trial(&mut self, now_us: i64, bps: f64) {
        if self.trial.is_none() && bps > self.target {
            self.trial = Some((now_us.saturating_add(TRIAL_US), now_us, self.target));
            self.history.clear();
            self.set(now_us, bps);
        }
    }

    /// True if a trial failed now (the target is back where it was).
    fn judge_trial(&mut self, now_us: i64) -> bool {
        let Some((until, started, before)) = self.trial else {
            return false;
        };
        if now_us >= until {
            self.trial = None;
            return false;
        }
        let reported_since = self.reported_at_us.is_some_and(|t| t > started);
        if !reported_since || self.fraction <= LOW_LOSS {
            return false;
        }
        self.trial = None;
        self.last_decrease_us = Some(now_us);
        self.decreased_since_report = true;
        self.set(now_us, before.min(self.target));
        self.on_congestion(now_us, self.target);
        true
    }

    /// Congestion (heavy loss, or the delay detector's over-use) brought the rate down to
    /// `bps`: while the [`Backoff`] waits, the target stays at or below the lowest such rate
    /// of the episode. Measuring what got through instead fails twice over: a policer's burst
    /// lets a sudden rise through for a moment, and feedback arriving after a move down still
    /// reports the losses of before. Where the cuts stop is where the media fitted.
    pub fn on_congestion(&mut self, now_us: i64, bps: f64) {
        let episode = self.ceiling.backoff.waiting(now_us);
        self.ceiling.bps = if episode {
            self.ceiling.bps.min(bps)
        } else {
            bps
        };
        self.ceiling.backoff.on_congestion(now_us);
    }

    /// Whether the last congestion is long enough ago to try a higher rate.
    pub fn may_try(&self, now_us: i64) -> bool {
        !self.ceiling.backoff.waiting(now_us)
    }

    /// The most the target may be now.
    fn ceiling_bps(&self, now_us: i64) -> f64 {
        if self.ceiling.backoff.waiting(now_us) {
            self.ceiling.bps
        } else {
            f64::INFINITY
        }
    }

    /// The delay-based estimate caps this controller.
    pub fn set_upper_limit(&mut self, now_us: i64, limit_bps: f64) {
        self.delay_limit = limit_bps;
        self.set(now_us, self.target);
    }

    /// A probe measured more than we dared to assume: take it as the new base.
    pub fn raise_to(&mut self, now_us: i64, bps: f64) {
        if bps > self.target {
            self.history.clear();
            self.set(now_us, bps);
        }
    }

    fn decrease_due(&self, now_us: i64) -> bool {
        let interval = DECREASE_INTERVAL_US.saturating_add(self.rtt_us);
        !self.decreased_since_report
            && self
                .last_decrease_us
                .is_none_or(|t| now_us.saturating_sub(t) >= interval)
    }

    fn set(&mut self, now_us: i64, bps: f64) {
        self.target = bound(bps.min(self.delay_limit), self.min_bps, self.max_bps);
        self.update_history(now_us);
    }

    fn update_history(&mut self, now_us: i64) {
        while let Some(&(t, _)) = self.history.front() {
            if now_us.saturating_sub(t).saturating_add(1_000) <= INCREASE_WINDOW_US {
                break;
            }
            self.history.pop_front();
        }
        self.push_history(now_us);
    }

    fn push_history(&mut self, now_us: i64) {
        while self.history.back().is_some_and(|h| self.target <= h.1) {
            self.history.pop_back();
        }
        self.history.push_back((now_us, self.target));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_wait_for_the_decrease_interval_and_a_fresh_report() {
        let mut l = LossBasedControl::new(1e6, 1e4, 1e8);
        l.on_fraction_lost(0, 128);
        let once = l.target();
        l.on_fraction_lost(100_000, 128);
        assert_eq!(l.target(), once);
        l.on_fraction_lost(400_000, 128);
        let twice = l.target();
        assert!(twice < once);
        // Re-evaluating the same report later must not cut again.
        l.update(2_000_000);
        assert_eq!(l.target(), twice);
    }

    #[test]
    fn a_tried_rate_that_brings_any_loss_goes_back_to_where_it_was_and_waits() {
        let mut l = LossBasedControl::new(400_000.0, 1e4, 1e8);
        l.on_fraction_lost(0, 0);
        let before = l.target();
        l.start_trial(100_000, 1_700_000.0);
        assert_eq!(l.target(), 1_700_000.0);
        // 5 %: outside a trial that would only hold the rate.
        l.on_fraction_lost(3_500_000, 13);
        assert_eq!(l.target(), before);
        assert!(!l.may_try(3_600_000) && l.may_try(8_500_000));
    }

    #[test]
    fn a_tried_rate_without_loss_is_kept() {
        let mut l = LossBasedControl::new(400_000.0, 1e4, 1e8);
        l.on_fraction_lost(0, 0);
        l.start_trial(100_000, 1_700_000.0);
        l.set_acked(1_600_000.0);
        for step in 1..=10 {
            l.on_fraction_lost(step * 1_000_000, 0);
        }
        assert!(l.target() >= 1_700_000.0 && l.may_try(10_000_000));
    }

    #[test]
    fn an_application_limited_sender_does_not_grow_the_target_past_one_and_a_half_times_what_arrives(
    ) {
        let mut l = LossBasedControl::new(300_000.0, 1e4, 1e8);
        l.set_acked(200_000.0);
        for step in 0..60 {
            l.on_fraction_lost(step * 1_000_000, 0);
        }
        assert_eq!(l.target(), 310_000.0);
    }

    #[test]
    fn repeated_cuts_stop_short_of_what_the_subscriber_acknowledges() {
        let mut l = LossBasedControl::new(5e6, 1e5, 1e8);
        l.set_acked(400_000.0);
        for step in 0..20 {
            l.on_fraction_lost(step * 400_000, 150);
        }
        assert_eq!(l.target(), 340_000.0);
    }
}
