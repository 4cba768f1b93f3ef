//! When each transport-wide sequence number of one PeerConnection was sent, and how large it
//! was: what a TWCC feedback is matched against. Written by every task that sends on the
//! connection, read by its RTCP reader, lock-free.
//!
//! It reaches back [`SPAN`] at the rate the connection sends: it starts with one page of slots
//! and doubles (up to [`MAX_SLOTS`]) when a packet lands on a slot whose entry is younger than
//! that. A subscriber of one audio and one video stream keeps 2 KiB; one receiving 20 Mbit/s,
//! 32 KiB — where a fixed table sized for the fast connection cost every connection 32 KiB.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Slots of one page; a history starts with one.
pub(super) const PAGE_SLOTS: usize = 256;
/// At most this many slots (a power of two, dividing 65,536): 1.4 s of 20 Mbit/s (the
/// estimator's ceiling) in 1,200-byte packets.
pub(super) const MAX_SLOTS: usize = 4096;
/// How far back the history should reach: a feedback comes back within a round trip and a
/// feedback interval, and the estimator takes round trips of up to 2 s.
pub(super) const SPAN: Duration = Duration::from_secs(2);

/// Each slot packs sequence number (16 bits), size (16 bits, 0 = empty) and the low 32 bits of
/// the microseconds since `origin` (which wrap every 71 minutes: a slot is read back as the
/// latest such time not after the lookup, so entries up to 71 minutes old read right).
pub(super) struct SendHistory {
    pub(super) origin: Instant,
    /// Slots in use: a power of two from [`PAGE_SLOTS`] to [`MAX_SLOTS`]. Every page below it
    /// is allocated before it is raised.
    capacity: AtomicUsize,
    pages: [OnceLock<Box<[AtomicU64]>>; MAX_SLOTS / PAGE_SLOTS],
}

impl SendHistory {
    pub(super) fn new(origin: Instant) -> Self {
        let history = Self {
            origin,
            capacity: AtomicUsize::new(PAGE_SLOTS),
            pages: std::array::from_fn(|_| OnceLock::new()),
        };
        history.pages[0].get_or_init(page);
        history
    }

    /// How many packets it holds now.
    pub(super) fn capacity(&self) -> usize {
        self.capacity.load(Ordering::Acquire)
    }

    fn slot(&self, seq: u16, capacity: usize) -> Option<&AtomicU64> {
        let at = usize::from(seq) % capacity;
        self.pages[at / PAGE_SLOTS]
            .get()
            .map(|p| &p[at % PAGE_SLOTS])
    }

    /// Starts loading what [`Self::record`] reads before it gets to the slot: the size and the
    /// first pages' addresses (see `fanout::prefetch`).
    pub(super) fn prefetch(&self) {
        crate::fanout::prefetch::line(&self.capacity);
        crate::fanout::prefetch::line(&self.pages[0]);
    }

    /// Starts loading the slot `seq` will go to. Reads what [`Self::prefetch`] fetched.
    pub(super) fn prefetch_slot(&self, seq: u16) {
        if let Some(slot) = self.slot(seq, self.capacity.load(Ordering::Relaxed)) {
            crate::fanout::prefetch::line(slot);
        }
    }

    /// Records `seq`, replacing whatever its slot held; returns the stored value for `forget`.
    pub(super) fn record(&self, seq: u16, size: usize, at: Instant) -> u64 {
        let size = size.clamp(1, usize::from(u16::MAX)) as u64;
        let micros = at.saturating_duration_since(self.origin).as_micros() as u32;
        let packed = u64::from(seq) << 48 | size << 32 | u64::from(micros);
        let capacity = self.capacity();
        if let Some(slot) = self.slot(seq, capacity) {
            let replaced = slot.swap(packed, Ordering::Relaxed);
            if too_recent(replaced, seq, micros, capacity) {
                self.grow(capacity);
            }
        }
        packed
    }

    /// Empties `seq`'s slot if it still holds what `record` returned.
    pub(super) fn forget(&self, seq: u16, recorded: u64) {
        if let Some(slot) = self.slot(seq, self.capacity()) {
            let _ = slot.compare_exchange(recorded, 0, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// Send time and size of `seq`, unless its slot is empty or holds another sequence number.
    pub(super) fn lookup(&self, seq: u16, now: Instant) -> Option<(Instant, u16)> {
        let packed = self.slot(seq, self.capacity())?.load(Ordering::Relaxed);
        let size = (packed >> 32) as u16;
        if size == 0 || (packed >> 48) as u16 != seq {
            return None;
        }
        let now_us = now.saturating_duration_since(self.origin).as_micros() as u64;
        let age_us = u64::from((now_us as u32).wrapping_sub(packed as u32));
        let sent_us = now_us.checked_sub(age_us)?;
        Some((self.origin + Duration::from_micros(sent_us), size))
    }

    /// Doubles the slots in use from `from`, moving each entry to where the new size looks for
    /// it. Senders racing with the move may lose an entry or two to it, once per doubling.
    fn grow(&self, from: usize) {
        let to = (from * 2).min(MAX_SLOTS);
        if to == from {
            return;
        }
        for p in &self.pages[from / PAGE_SLOTS..to / PAGE_SLOTS] {
            p.get_or_init(page);
        }
        for at in 0..from {
            let Some(packed) = self
                .slot(at as u16, from)
                .map(|s| s.load(Ordering::Relaxed))
            else {
                continue;
            };
            let seq = (packed >> 48) as u16;
            if packed != 0 && usize::from(seq) % to != at {
                if let Some(slot) = self.slot(seq, to) {
                    slot.store(packed, Ordering::Relaxed);
                }
            }
        }
        let _ = self
            .capacity
            .compare_exchange(from, to, Ordering::Release, Ordering::Relaxed);
    }
}

fn page() -> Box<[AtomicU64]> {
    (0..PAGE_SLOTS).map(|_| AtomicU64::new(0)).collect()
}

/// Whether the entry `replaced` by `seq` (sent at `micros`) was another packet of this slot
/// sent less than [`SPAN`] before. (A doubling leaves stale copies of the entries it moved;
/// they belong to other slots now.)
fn too_recent(replaced: u64, seq: u16, micros: u32, capacity: usize) -> bool {
    let span_us = SPAN.as_micros() as u32;
    let replaced_seq = (replaced >> 48) as u16;
    (replaced >> 32) & 0xffff != 0
        && replaced_seq != seq
        && usize::from(replaced_seq) % capacity == usize::from(seq) % capacity
        && micros.wrapping_sub(replaced as u32) < span_us
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_packs_and_finds_entries_and_reports_an_overwritten_slot_as_unknown() {
        let origin = Instant::now();
        let history = SendHistory::new(origin);
        let sent = origin + Duration::from_micros(1_234_567);
        let now = sent + Duration::from_millis(80);

        assert_eq!(history.lookup(7, now), None, "empty slot");
        history.record(7, 1_200, sent);
        assert_eq!(history.lookup(7, now), Some((sent, 1_200)));
        // Same slot, other sequence number: not 7's entry.
        let other = 7 + PAGE_SLOTS as u16;
        assert_eq!(history.lookup(other, now), None);

        let later = sent + SPAN + Duration::from_millis(5);
        history.record(other, 80, later);
        let now = later + Duration::from_millis(80);
        assert_eq!(history.lookup(7, now), None, "overwritten");
        assert_eq!(history.lookup(other, now), Some((later, 80)));
        assert_eq!(history.capacity(), PAGE_SLOTS, "7 was older than the span");

        // Sizes beyond 16 bits saturate; zero-size packets still count as recorded.
        history.record(8, 100_000, sent);
        assert_eq!(history.lookup(8, now), Some((sent, u16::MAX)));
        history.record(9, 0, sent);
        assert_eq!(history.lookup(9, now), Some((sent, 1)));

        // A forgotten entry is unknown; forgetting an outdated one leaves the newer in place.
        let recorded = history.record(10, 500, sent);
        history.forget(10, recorded);
        assert_eq!(history.lookup(10, now), None);
        let old = history.record(11, 500, sent);
        history.record(11, 600, later);
        history.forget(11, old);
        assert_eq!(history.lookup(11, now), Some((later, 600)));
    }

    #[test]
    fn it_reads_times_right_across_the_32_bit_microsecond_wrap() {
        let origin = Instant::now();
        let history = SendHistory::new(origin);
        let sent = origin + Duration::from_micros(u64::from(u32::MAX) - 1_000);
        history.record(1, 100, sent);
        let now = sent + Duration::from_millis(3);
        assert_eq!(history.lookup(1, now), Some((sent, 100)));
    }

    /// Sends `count` packets from `first`, one every `gap`, starting at `start`; returns when
    /// the last went.
    fn send(
        history: &SendHistory,
        first: u16,
        count: u16,
        start: Instant,
        gap: Duration,
    ) -> Instant {
        let mut at = start;
        for i in 0..count {
            at = start + gap * u32::from(i);
            history.record(first.wrapping_add(i), 1_000, at);
        }
        at
    }

    #[test]
    fn a_connection_sending_little_keeps_one_page() {
        let origin = Instant::now();
        let history = SendHistory::new(origin);
        // 100 packets a second (audio and a low video layer) for a minute.
        let last = send(&history, 0, 6_000, origin, Duration::from_millis(10));
        assert_eq!(history.capacity(), PAGE_SLOTS);
        assert!(history.lookup(5_999, last).is_some());
    }

    #[test]
    fn a_connection_sending_more_grows_until_it_holds_the_span_and_loses_nothing_on_the_way() {
        let origin = Instant::now();
        let history = SendHistory::new(origin);
        // 1,000 packets a second: the span is 2,000 packets, so 2,048 slots.
        let last = send(&history, 65_000, 5_000, origin, Duration::from_millis(1));
        assert_eq!(history.capacity(), 2_048);
        let held = (0..2_048u16)
            .filter(|back| {
                history
                    .lookup(65_000u16.wrapping_add(4_999 - back), last)
                    .is_some()
            })
            .count();
        assert_eq!(
            held, 2_048,
            "the last 2,048 packets, across the sequence-number wrap"
        );
    }

    #[test]
    fn growth_stops_at_the_maximum() {
        let origin = Instant::now();
        let history = SendHistory::new(origin);
        let last = send(&history, 0, 20_000, origin, Duration::from_micros(100));
        assert_eq!(history.capacity(), MAX_SLOTS);
        assert!(history.lookup(19_999, last).is_some());
        assert!(history.lookup(19_999 - MAX_SLOTS as u16, last).is_none());
    }

    #[test]
    fn entries_recorded_before_a_doubling_are_found_after_it() {
        let origin = Instant::now();
        let history = SendHistory::new(origin);
        let gap = Duration::from_millis(1);
        send(&history, 0, PAGE_SLOTS as u16, origin, gap);
        assert_eq!(history.capacity(), PAGE_SLOTS);
        // The next packet lands on packet 0's slot, 256 ms after it: too soon.
        let at = origin + gap * PAGE_SLOTS as u32;
        history.record(PAGE_SLOTS as u16, 1_000, at);
        assert_eq!(history.capacity(), 2 * PAGE_SLOTS);
        for seq in 1..=PAGE_SLOTS as u16 {
            assert!(history.lookup(seq, at).is_some(), "{seq}");
        }
    }
}
