//! Over-use detector: compares the trendline's scaled slope against a threshold that
//! adapts to the recent slopes (draft-ietf-rmcat-gcc-02 §5.4, libwebrtc
//! `TrendlineEstimator::Detect`/`UpdateThreshold`). A fixed threshold would either react
//! to noise or, next to loss-based flows such as TCP that keep queues full, never stop
//! signalling over-use and starve this flow; adapting makes it ignore a standing
//! elevated slope while still catching sudden ones.

use crate::bwe::bound;
use crate::bwe::trendline::TrendSample;

/// What the delay detector last concluded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Usage {
    #[default]
    Normal,
    Overusing,
    Underusing,
}

/// Starting threshold in ms (draft §5.4 `del_var_th` initial value 12.5 ms).
const INITIAL_THRESHOLD_MS: f64 = 12.5;
/// The draft bounds the threshold to [6, 600] ms (§5.4).
const MIN_THRESHOLD_MS: f64 = 6.0;
const MAX_THRESHOLD_MS: f64 = 600.0;
/// Threshold gains when the slope is above / below it (draft §5.4 K_u, K_d).
const K_UP: f64 = 0.0087;
const K_DOWN: f64 = 0.039;
/// Slopes further than this above the threshold are spikes (e.g. a capacity drop) and
/// must not drag the threshold up (draft §5.4, libwebrtc `kMaxAdaptOffsetMs`).
const MAX_ADAPT_OFFSET_MS: f64 = 15.0;
/// Longest time step one threshold update may integrate (libwebrtc `kMaxTimeDeltaMs`).
const MAX_ADAPT_STEP_MS: f64 = 100.0;
/// Over-use must persist this long before it is signalled (draft §5.4 `overuse_time_th`,
/// libwebrtc `kOverUsingTimeThreshold`).
const OVERUSE_TIME_MS: f64 = 10.0;

#[derive(Debug)]
pub struct OveruseDetector {
    threshold_ms: f64,
    last_adapt_ms: Option<f64>,
    /// Time spent above the threshold; `None` while below it.
    overusing_for_ms: Option<f64>,
    overuse_count: u32,
    prev_trend: f64,
    usage: Usage,
}

impl Default for OveruseDetector {
    fn default() -> Self {
        OveruseDetector {
            threshold_ms: INITIAL_THRESHOLD_MS,
            last_adapt_ms: None,
            overusing_for_ms: None,
            overuse_count: 0,
            prev_trend: 0.0,
            usage: Usage::Normal,
        }
    }
}

impl OveruseDetector {
    pub fn usage(&self) -> Usage {
        self.usage
    }

    #[cfg(test)]
    pub fn threshold_ms(&self) -> f64 {
        self.threshold_ms
    }

    /// `send_delta_ms` is the send spacing of the group just closed; `now_ms` any clock
    /// that advances with it (the arrival clock is fine).
    pub fn update(&mut self, sample: TrendSample, send_delta_ms: f64, now_ms: f64) -> Usage {
        if sample.num_deltas < 2 {
            self.usage = Usage::Normal;
            return self.usage;
        }
        if sample.modified > self.threshold_ms {
            self.on_above(sample.trend, send_delta_ms);
        } else {
            self.overusing_for_ms = None;
            self.overuse_count = 0;
            self.usage = if sample.modified < -self.threshold_ms {
                Usage::Underusing
            } else {
                Usage::Normal
            };
        }
        self.prev_trend = sample.trend;
        self.adapt_threshold(sample.modified, now_ms);
        self.usage
    }

    fn on_above(&mut self, trend: f64, send_delta_ms: f64) {
        // Assume half the time since the previous group was already spent over-using.
        let elapsed = match self.overusing_for_ms {
            None => send_delta_ms / 2.0,
            Some(t) => t + send_delta_ms,
        };
        self.overusing_for_ms = Some(elapsed);
        self.overuse_count = self.overuse_count.saturating_add(1);
        // A slope already falling means the queue is about to drain on its own.
        if elapsed > OVERUSE_TIME_MS && self.overuse_count > 1 && trend >= self.prev_trend {
            self.overusing_for_ms = Some(0.0);
            self.overuse_count = 0;
            self.usage = Usage::Overusing;
        }
    }

    fn adapt_threshold(&mut self, modified: f64, now_ms: f64) {
        let last = *self.last_adapt_ms.get_or_insert(now_ms);
        self.last_adapt_ms = Some(now_ms);
        let magnitude = modified.abs();
        if !magnitude.is_finite() || magnitude > self.threshold_ms + MAX_ADAPT_OFFSET_MS {
            return;
        }
        let k = if magnitude < self.threshold_ms {
            K_DOWN
        } else {
            K_UP
        };
        let dt = bound(now_ms - last, 0.0, MAX_ADAPT_STEP_MS);
        let next = self.threshold_ms + k * (magnitude - self.threshold_ms) * dt;
        self.threshold_ms = bound(next, MIN_THRESHOLD_MS, MAX_THRESHOLD_MS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(modified: f64) -> TrendSample {
        TrendSample {
            trend: modified / 240.0,
            modified,
            num_deltas: 60,
        }
    }

    #[test]
    fn the_threshold_never_leaves_6_to_600_ms() {
        let mut d = OveruseDetector::default();
        for i in 0..10_000 {
            d.update(sample(0.0), 5.0, f64::from(i) * 5.0);
        }
        assert_eq!(d.threshold_ms(), MIN_THRESHOLD_MS);
        // Creep up in steps small enough to count as adaptation, not spikes.
        for i in 0..100_000 {
            let m = d.threshold_ms() + 10.0;
            d.update(sample(m), 5.0, 50_000.0 + f64::from(i) * 5.0);
        }
        assert_eq!(d.threshold_ms(), MAX_THRESHOLD_MS);
    }

    #[test]
    fn a_standing_queue_raises_the_threshold_so_the_flow_is_not_starved() {
        // A competing loss-based flow keeps the slope elevated for a long time; the
        // threshold learns it as the new baseline instead of signalling forever.
        let mut d = OveruseDetector::default();
        for i in 0..2_000 {
            d.update(sample(20.0), 10.0, f64::from(i) * 10.0);
        }
        assert!(d.threshold_ms() > 19.5, "threshold {}", d.threshold_ms());
        // The initial 12.5 ms would call this over-use.
        assert_eq!(d.update(sample(19.0), 10.0, 20_010.0), Usage::Normal);
    }

    #[test]
    fn a_sudden_spike_is_detected_without_moving_the_threshold() {
        let mut d = OveruseDetector::default();
        let mut usage = Usage::Normal;
        for i in 0..4 {
            usage = d.update(sample(100.0 + f64::from(i)), 10.0, f64::from(i) * 10.0);
        }
        assert_eq!(usage, Usage::Overusing);
        assert_eq!(d.threshold_ms(), INITIAL_THRESHOLD_MS);
    }

    #[test]
    fn a_draining_queue_is_underuse() {
        let mut d = OveruseDetector::default();
        assert_eq!(d.update(sample(-50.0), 10.0, 0.0), Usage::Underusing);
    }
}
