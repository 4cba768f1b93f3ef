//! How long to wait after congestion before trying a higher rate again: 5 s after the first,
//! doubling up to 60 s while attempts keep failing, back to 5 s once the path has been calm
//! for twice the last wait. Times are microseconds on the server clock.
//!
//! The SFU's senders are simulcast layers that jump by 2-3×, so going past what the path
//! carries is a whole layer's worth of loss or queueing, not a gentle probe: how often that
//! may happen needs a memory (measured against a 400 kbit/s `hashlimit` policer in the
//! simulcast bench: without one the next layer was tried every ≈ 5 s, each time losing a
//! fifth of its packets).

const FIRST_WAIT_US: i64 = 5_000_000;
const MAX_WAIT_US: i64 = 60_000_000;

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Backoff {
    /// (until when to wait, how long the wait was).
    wait: Option<(i64, i64)>,
}

impl Backoff {
    /// Congestion now: the wait restarts from now. It doubles when this congestion came
    /// soon after an earlier wait ran out (going higher failed again); a congestion while
    /// waiting (one episode's feedback arriving over a few hundred milliseconds) keeps it.
    pub(crate) fn on_congestion(&mut self, now_us: i64) {
        let hold_us = match self.wait {
            Some((until, hold)) if now_us < until => hold,
            Some((until, hold)) if now_us < until.saturating_add(hold * 2) => {
                (hold * 2).min(MAX_WAIT_US)
            }
            _ => FIRST_WAIT_US,
        };
        self.wait = Some((now_us.saturating_add(hold_us), hold_us));
    }

    pub(crate) fn waiting(&self, now_us: i64) -> bool {
        self.wait.is_some_and(|(until, _)| now_us < until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    #[test]
    fn the_first_congestion_waits_5_s() {
        let mut b = Backoff::default();
        assert!(!b.waiting(0));
        b.on_congestion(0);
        assert!(b.waiting(5 * S - 1) && !b.waiting(5 * S));
    }

    #[test]
    fn congestion_soon_after_a_wait_doubles_the_next_up_to_60_s() {
        let mut b = Backoff::default();
        let mut t = 0;
        let mut waits = Vec::new();
        for _ in 0..6 {
            b.on_congestion(t);
            let wait = (1..)
                .map(|k| k * S / 10)
                .find(|&d| !b.waiting(t + d))
                .unwrap();
            waits.push(wait / S);
            t += wait + S;
        }
        assert_eq!(waits, [5, 10, 20, 40, 60, 60]);
    }

    #[test]
    fn congestion_while_waiting_restarts_the_same_wait() {
        let mut b = Backoff::default();
        b.on_congestion(0);
        b.on_congestion(3 * S);
        assert!(b.waiting(8 * S - 1) && !b.waiting(8 * S));
    }

    #[test]
    fn a_calm_path_for_twice_the_last_wait_starts_over_at_5_s() {
        let mut b = Backoff::default();
        b.on_congestion(0);
        b.on_congestion(6 * S); // failed again: 10 s
        b.on_congestion(16 * S + 20 * S); // calm for twice 10 s
        assert!(!b.waiting(36 * S + 5 * S));
    }
}
