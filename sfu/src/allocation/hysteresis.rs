//! The memory that keeps layer decisions from flapping: the budget a subscriber has had
//! without a break.
//!
//! Going down is always immediate (congestion hurts every track at once), so only the way up
//! needs memory. A step up is judged against the lowest budget of the last `up_after`, not the
//! current one: a budget that merely touches a layer now and then never pulls a track up, while
//! a budget that has covered the top layer for that long lets a track go there in one move — a
//! viewer who enlarges a tile on a good link gets the sharp picture at the next keyframe, not
//! one layer per period.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Default)]
pub(crate) struct SustainedBudget {
    first: Option<Instant>,
    /// The budgets that can still be the minimum, strictly increasing from front to back, each
    /// with when the budget after it took over (`None` for the newest): a later budget that is
    /// lower makes every earlier higher one irrelevant, so this stays short.
    window: VecDeque<Entry>,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    budget: u64,
    until: Option<Instant>,
}

impl SustainedBudget {
    /// Records the budget in effect from `now` on and returns the lowest budget in effect at
    /// any moment of the last `period`; `None` while the record is shorter than `period`.
    pub(crate) fn observe(&mut self, now: Instant, budget: u64, period: Duration) -> Option<u64> {
        let first = *self.first.get_or_insert(now);
        if let Some(newest) = self.window.back_mut() {
            newest.until = Some(now);
        }
        while self.window.back().is_some_and(|e| e.budget >= budget) {
            self.window.pop_back();
        }
        self.window.push_back(Entry {
            budget,
            until: None,
        });
        // `checked_sub` is None near the clock's origin: then everything is in the window.
        if let Some(opened) = now.checked_sub(period) {
            while self
                .window
                .front()
                .is_some_and(|e| e.until.is_some_and(|u| u <= opened))
            {
                self.window.pop_front();
            }
        }
        // Saturating: a caller whose instants go backwards waits longer, never panics.
        let recorded = now.saturating_duration_since(first);
        (recorded >= period).then(|| self.window.front().map_or(budget, |e| e.budget))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERIOD: Duration = Duration::from_secs(3);

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn nothing_is_sustained_before_a_whole_period_was_seen() {
        let (mut s, base) = (SustainedBudget::default(), Instant::now());
        assert_eq!(s.observe(base, 1_000, PERIOD), None);
        assert_eq!(s.observe(at(base, 2_999), 1_000, PERIOD), None);
        assert_eq!(s.observe(at(base, 3_000), 1_000, PERIOD), Some(1_000));
    }

    #[test]
    fn a_dip_counts_until_a_whole_period_has_passed_after_it_ended() {
        let (mut s, base) = (SustainedBudget::default(), Instant::now());
        s.observe(base, 5_000, PERIOD);
        s.observe(at(base, 1_000), 200, PERIOD);
        s.observe(at(base, 1_500), 5_000, PERIOD);
        assert_eq!(s.observe(at(base, 4_499), 5_000, PERIOD), Some(200));
        assert_eq!(s.observe(at(base, 4_500), 5_000, PERIOD), Some(5_000));
    }

    #[test]
    fn a_lower_budget_counts_at_once() {
        let (mut s, base) = (SustainedBudget::default(), Instant::now());
        s.observe(base, 5_000, PERIOD);
        assert_eq!(s.observe(at(base, 3_000), 5_000, PERIOD), Some(5_000));
        assert_eq!(s.observe(at(base, 3_100), 700, PERIOD), Some(700));
    }

    #[test]
    fn a_budget_that_flips_every_half_second_is_worth_its_low_side() {
        let (mut s, base) = (SustainedBudget::default(), Instant::now());
        let seen: Vec<_> = (0..40u64)
            .map(|i| s.observe(at(base, i * 500), [1_100, 1_500][i as usize % 2], PERIOD))
            .collect();
        assert!(seen[6..].iter().all(|&b| b == Some(1_100)));
    }

    #[test]
    fn instants_going_backwards_do_not_panic() {
        let (mut s, base) = (SustainedBudget::default(), Instant::now());
        s.observe(at(base, 5_000), 100, PERIOD);
        assert_eq!(s.observe(base, 100, PERIOD), None);
        assert_eq!(s.observe(at(base, 9_000), 100, Duration::MAX), None);
    }
}
