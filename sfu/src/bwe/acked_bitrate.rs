//! Acknowledged bitrate: what the subscriber actually received, measured on its arrival
//! clock over fixed windows and smoothed by a Bayesian filter that trusts samples less the
//! further they jump (libwebrtc `BitrateEstimator`). It anchors both the over-use cut and
//! the increase cap.
//!
//! Times are microseconds, rates bits per second.

/// The first window is longer so start-up noise does not set the estimate
/// (libwebrtc `kInitialRateWindowMs`, `kRateWindowMs`).
const INITIAL_WINDOW_US: i64 = 500_000;
const WINDOW_US: i64 = 150_000;
/// Sample uncertainty per relative jump, and the variance added per sample to model a
/// changing rate (libwebrtc `uncertainty_scale` = 10, `+ 5.f`).
const UNCERTAINTY_SCALE: f64 = 10.0;
const PROCESS_VARIANCE: f64 = 5.0;
const INITIAL_VARIANCE: f64 = 50.0;
/// Before the first window completes, a partial window at least this long stands in
/// (libwebrtc `PeekRate`), so an early over-use can be cut against a measured rate
/// instead of blindly halving.
const MIN_PEEK_US: i64 = 100_000;

#[derive(Debug)]
pub struct AckedBitrate {
    estimate_kbps: Option<f64>,
    variance: f64,
    window_bytes: u64,
    window_elapsed_us: i64,
    prev_arrival_us: Option<i64>,
}

impl Default for AckedBitrate {
    fn default() -> Self {
        AckedBitrate {
            estimate_kbps: None,
            variance: INITIAL_VARIANCE,
            window_bytes: 0,
            window_elapsed_us: 0,
            prev_arrival_us: None,
        }
    }
}

impl AckedBitrate {
    /// One received packet, in arrival order.
    pub fn update(&mut self, arrival_us: i64, bytes: u32) {
        if let Some(sample) = self.advance_window(arrival_us, bytes) {
            self.absorb(sample);
        }
    }

    pub fn bps(&self) -> Option<f64> {
        match self.estimate_kbps {
            Some(kbps) => Some(kbps * 1000.0),
            None if self.window_elapsed_us >= MIN_PEEK_US => {
                Some(self.window_bytes as f64 * 8.0 / (self.window_elapsed_us as f64 / 1e6))
            }
            None => None,
        }
    }

    fn window_us(&self) -> i64 {
        if self.estimate_kbps.is_some() {
            WINDOW_US
        } else {
            INITIAL_WINDOW_US
        }
    }

    /// Adds the packet to the window; returns the finished window's rate in kbit/s.
    fn advance_window(&mut self, arrival_us: i64, bytes: u32) -> Option<f64> {
        let window = self.window_us();
        match self.prev_arrival_us {
            // Arrival clock went backwards: nothing measured so far can be trusted.
            Some(prev) if arrival_us < prev => {
                self.window_bytes = 0;
                self.window_elapsed_us = 0;
            }
            Some(prev) => {
                let gap = arrival_us.saturating_sub(prev);
                self.window_elapsed_us = self.window_elapsed_us.saturating_add(gap);
                if gap > window {
                    // Silence longer than a window says nothing about capacity.
                    self.window_bytes = 0;
                    self.window_elapsed_us %= window;
                }
            }
            None => {}
        }
        self.prev_arrival_us = Some(arrival_us);
        let mut sample = None;
        if self.window_elapsed_us >= window {
            sample = Some(self.window_bytes as f64 * 8.0 / (window as f64 / 1000.0));
            self.window_elapsed_us -= window;
            self.window_bytes = 0;
        }
        self.window_bytes = self.window_bytes.saturating_add(u64::from(bytes));
        sample
    }

    fn absorb(&mut self, sample_kbps: f64) {
        let Some(estimate) = self.estimate_kbps else {
            self.estimate_kbps = Some(sample_kbps);
            return;
        };
        let uncertainty = UNCERTAINTY_SCALE * (estimate - sample_kbps).abs() / estimate.max(1e-3);
        let sample_var = uncertainty * uncertainty;
        let predicted_var = self.variance + PROCESS_VARIANCE;
        let next =
            (sample_var * estimate + predicted_var * sample_kbps) / (sample_var + predicted_var);
        if next.is_finite() {
            self.estimate_kbps = Some(next.max(0.0));
            self.variance = sample_var * predicted_var / (sample_var + predicted_var);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steady(bps: f64, seconds: f64) -> AckedBitrate {
        let mut a = AckedBitrate::default();
        let gap_us = 9_600.0 / bps * 1e6;
        let n = (seconds * 1e6 / gap_us) as i64;
        for i in 0..n {
            a.update((i as f64 * gap_us) as i64, 1200);
        }
        a
    }

    #[test]
    fn a_steady_stream_is_measured_at_its_rate() {
        let r = steady(800_000.0, 3.0).bps().unwrap();
        assert!((r - 800_000.0).abs() < 40_000.0, "{r}");
    }

    #[test]
    fn a_partial_first_window_already_gives_a_rate() {
        let r = steady(500_000.0, 0.3).bps().unwrap();
        assert!((r - 500_000.0).abs() < 50_000.0, "{r}");
        assert!(steady(500_000.0, 0.05).bps().is_none());
    }
}
