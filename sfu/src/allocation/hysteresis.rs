//! Per-track memory that keeps layer decisions from flapping.
//!
//! Going down is always immediate (congestion hurts every track at once), so
//! only the way up needs memory: what the track got last time, and since when
//! its next step up has fitted without interruption.

use std::time::{Duration, Instant};

use crate::allocation::allocator::Decision;

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct History {
    last: Option<Decision>,
    fits_since: Option<Instant>,
}

impl History {
    /// What the track got on the previous call; `None` if it never had one.
    pub(crate) fn last(&self) -> Option<Decision> {
        self.last
    }

    /// Records whether a step up fits now; true once it has fitted for `up_after`.
    ///
    /// One call where it does not fit restarts the wait: a budget that merely
    /// touches a layer now and then must not pull the track up.
    pub(crate) fn observe(&mut self, now: Instant, step_fits: bool, up_after: Duration) -> bool {
        self.fits_since = step_fits.then(|| self.fits_since.unwrap_or(now));
        // Saturating: a caller whose instants go backwards gets a longer wait, not a panic.
        self.fits_since
            .is_some_and(|since| now.saturating_duration_since(since) >= up_after)
    }

    /// Stores this call's decision; `held` is what the track could keep going
    /// in, the level `observe` measured the step up from.
    ///
    /// Moving away from it restarts the wait, which is what limits a track to
    /// one layer up per `up_after`.
    pub(crate) fn commit(&mut self, decision: Decision, held: Decision) {
        if decision != held {
            self.fits_since = None;
        }
        self.last = Some(decision);
    }
}
