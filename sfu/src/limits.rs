//! Bounds on what clients may make the media plane hold: rooms, participants, candidates and
//! session descriptions. Each one is configurable; hitting one is a clear error for that client
//! alone.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// How much the media plane takes on.
#[derive(Clone, Debug, PartialEq)]
pub struct SfuLimits {
    /// Rooms open at once; a join that would open one more gets `TooManyRooms`.
    pub max_rooms: usize,
    /// Participants on the server at once, across rooms; one more gets `ServerFull`.
    pub max_participants: usize,
    /// Remote ICE candidates one participant may send over its whole session.
    pub max_candidates: usize,
    /// Largest offer or answer SDP accepted, in bytes.
    pub max_sdp_bytes: usize,
    /// Messages per second one participant may write on its `data` channel (also its burst).
    pub data_messages_per_second: f64,
}

impl Default for SfuLimits {
    fn default() -> Self {
        Self {
            max_rooms: 1_000,
            max_participants: 2_000,
            max_candidates: 64,
            // Chromium writes ≈ 2.3 KB per m-section, and a forwarded track that goes away leaves
            // an inactive m-section behind (transceivers are not recycled yet), so a participant
            // who stays while others come and go sees its SDP grow by ≈ 4.6 KB per departure.
            // 512 KiB is ≈ 220 m-sections: a 16-person room plus ≈ 100 departures.
            max_sdp_bytes: 512 * 1024,
            // Chat, reactions and a shared cursor at 20 Hz fit; a flood of 16 KiB messages to 15
            // others (≈ 12 MB/s out) does not.
            data_messages_per_second: 50.0,
        }
    }
}

/// Counts participants on the server; each admitted one holds a [`Seat`] until it is gone.
#[derive(Debug, Default)]
pub(crate) struct Seats {
    taken: Arc<AtomicUsize>,
}

/// One participant's place in the server-wide count, given back when dropped, however the
/// participant ends.
#[derive(Debug)]
pub(crate) struct Seat {
    taken: Arc<AtomicUsize>,
}

impl Seats {
    /// A seat, unless `max` are taken.
    pub(crate) fn take(&self, max: usize) -> Option<Seat> {
        self.taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Seat {
                taken: Arc::clone(&self.taken),
            })
    }

    pub(crate) fn taken(&self) -> usize {
        self.taken.load(Ordering::Acquire)
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.taken.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seats_run_out_at_the_maximum_and_come_back_when_dropped() {
        let seats = Seats::default();
        let a = seats.take(2).unwrap();
        let _b = seats.take(2).unwrap();
        assert!(seats.take(2).is_none());
        drop(a);
        assert_eq!(seats.taken(), 1);
        assert!(seats.take(2).is_some());
    }
}
