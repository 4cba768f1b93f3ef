//! Delay-gradient filter: fits a line through the smoothed accumulated one-way delay
//! variation of the last groups. Its slope, in queueing delay gained per unit of arrival
//! time, is about (send rate − capacity) / send rate: positive while a queue builds,
//! negative while it drains (libwebrtc `TrendlineEstimator`, the successor of the
//! Kalman filter in draft-ietf-rmcat-gcc-02 §5.3).

use std::collections::VecDeque;

/// Groups in the regression (libwebrtc `kDefaultTrendlineWindowSize`).
const WINDOW: usize = 20;
/// Exponential smoothing of the accumulated delay (libwebrtc `kDefaultTrendlineSmoothingCoeff`).
const SMOOTHING: f64 = 0.9;
/// Scales the slope into the detector's millisecond threshold units
/// (libwebrtc `kDefaultTrendlineThresholdGain`).
const THRESHOLD_GAIN: f64 = 4.0;
/// The slope is multiplied by the sample count up to this many, so a young filter with
/// few samples needs a steeper slope to alarm (libwebrtc `kMinNumDeltas`).
const MIN_NUM_DELTAS: u32 = 60;

/// What the filter concluded from the latest group.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrendSample {
    /// Raw slope (dimensionless).
    pub trend: f64,
    /// Slope scaled to be compared with the detector threshold (ms).
    pub modified: f64,
    /// Deltas seen so far (saturating at 1000).
    pub num_deltas: u32,
}

#[derive(Debug, Default)]
pub struct Trendline {
    /// (arrival ms since first, smoothed accumulated delay ms)
    history: VecDeque<(f64, f64)>,
    first_arrival_ms: Option<f64>,
    accumulated_ms: f64,
    smoothed_ms: f64,
    num_deltas: u32,
    trend: f64,
}

impl Trendline {
    pub fn update(
        &mut self,
        arrival_delta_ms: f64,
        send_delta_ms: f64,
        arrival_ms: f64,
    ) -> TrendSample {
        self.num_deltas = self.num_deltas.saturating_add(1).min(1000);
        let first = *self.first_arrival_ms.get_or_insert(arrival_ms);
        self.accumulated_ms += arrival_delta_ms - send_delta_ms;
        self.smoothed_ms = SMOOTHING * self.smoothed_ms + (1.0 - SMOOTHING) * self.accumulated_ms;
        self.history
            .push_back((arrival_ms - first, self.smoothed_ms));
        if self.history.len() > WINDOW {
            self.history.pop_front();
        }
        if self.history.len() == WINDOW {
            // Keep the previous slope when the points are degenerate.
            self.trend = linear_fit_slope(&self.history).unwrap_or(self.trend);
        }
        TrendSample {
            trend: self.trend,
            modified: f64::from(self.num_deltas.min(MIN_NUM_DELTAS)) * self.trend * THRESHOLD_GAIN,
            num_deltas: self.num_deltas,
        }
    }
}

fn linear_fit_slope(points: &VecDeque<(f64, f64)>) -> Option<f64> {
    let n = points.len() as f64;
    let x_avg = points.iter().map(|p| p.0).sum::<f64>() / n;
    let y_avg = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), &(x, y)| {
        (
            num + (x - x_avg) * (y - y_avg),
            den + (x - x_avg) * (x - x_avg),
        )
    });
    let slope = num / den;
    (den != 0.0 && slope.is_finite()).then_some(slope)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(arrival_step_ms: f64, send_step_ms: f64) -> TrendSample {
        let mut t = Trendline::default();
        let mut last = None;
        for i in 1..=100 {
            last = Some(t.update(
                arrival_step_ms,
                send_step_ms,
                f64::from(i) * arrival_step_ms,
            ));
        }
        last.unwrap()
    }

    #[test]
    fn arrivals_spaced_like_sends_have_no_trend() {
        assert!(feed(10.0, 10.0).trend.abs() < 1e-9);
    }

    #[test]
    fn a_link_at_half_the_send_rate_shows_a_slope_of_one_half() {
        // Sending every 10 ms, arriving every 20 ms: each group adds 10 ms of queue per
        // 20 ms of arrival time, i.e. (send − capacity) / send = 0.5.
        let s = feed(20.0, 10.0);
        assert!((s.trend - 0.5).abs() < 0.05, "trend {}", s.trend);
        assert!(s.modified > 100.0);
    }
}
