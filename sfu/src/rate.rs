//! A token bucket, the one rate limit used wherever a client's messages are counted: signaling
//! messages at the edge, data channel messages in the room.

use std::time::Instant;

/// `burst` messages at once, refilled at `rate` per second.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    pub fn new(rate: f64, burst: f64, now: Instant) -> Self {
        Self {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Whether one more message may pass at `now`.
    pub fn allow(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_passes_then_the_rate_applies() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(10.0, 3.0, t0);
        assert!((0..3).all(|_| limiter.allow(t0)));
        assert!(!limiter.allow(t0), "the burst is spent");
        assert!(
            limiter.allow(t0 + Duration::from_millis(100)),
            "one token per 100 ms"
        );
        assert!(!limiter.allow(t0 + Duration::from_millis(150)));
    }

    #[test]
    fn an_idle_sender_regains_only_its_burst() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(10.0, 3.0, t0);
        let later = t0 + Duration::from_secs(60);
        assert!((0..3).all(|_| limiter.allow(later)));
        assert!(!limiter.allow(later));
    }
}
