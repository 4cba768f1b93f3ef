//! Groups packets into pacer bursts and yields the send and arrival spacing between
//! consecutive groups, the raw input of the delay-gradient filter
//! (draft-ietf-rmcat-gcc-02 §5.2, libwebrtc `InterArrivalDelta`).
//!
//! All times are microseconds; send times are on the server clock, arrival times on the
//! subscriber's, and only differences within one clock are ever taken.

/// A pacer emits bursts; packets sent within 5 ms of a group's first one belong to it
/// (draft §5.2, libwebrtc `kTimestampGroupLengthTicks`).
const GROUP_SPAN_US: i64 = 5_000;
/// Packets arriving this close together with shrinking spacing were queued behind each
/// other on the path, so they still describe one burst (libwebrtc `kBurstDeltaThreshold`).
const BURST_DELTA_US: i64 = 5_000;
/// ...but no burst is allowed to swallow more than this (libwebrtc `kMaxBurstDuration`).
const MAX_BURST_US: i64 = 100_000;
/// A larger disagreement between the remote and local clocks means the remote clock
/// jumped, so history is worthless (libwebrtc `kArrivalTimeOffsetThreshold`).
const CLOCK_JUMP_US: i64 = 3_000_000;
/// Consecutive reordered groups after which the state is rebuilt from scratch.
const REORDER_RESET: u32 = 3;

#[derive(Clone, Copy, Debug)]
struct Group {
    first_send: i64,
    last_send: i64,
    first_arrival: i64,
    last_arrival: i64,
    /// Local time the feedback carrying the group's last packet was handled.
    local: i64,
}

impl Group {
    fn start(send: i64, arrival: i64, local: i64) -> Self {
        Group {
            first_send: send,
            last_send: send,
            first_arrival: arrival,
            last_arrival: arrival,
            local,
        }
    }
}

/// Spacing between two consecutive groups.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Deltas {
    pub send_us: i64,
    pub arrival_us: i64,
}

#[derive(Debug, Default)]
pub struct InterArrival {
    current: Option<Group>,
    prev: Option<Group>,
    reordered: u32,
}

impl InterArrival {
    /// Feeds one received packet (in arrival order); returns the deltas once a group closes.
    pub fn push(&mut self, send: i64, arrival: i64, local: i64) -> Option<Deltas> {
        let Some(cur) = self.current else {
            self.current = Some(Group::start(send, arrival, local));
            return None;
        };
        if send < cur.first_send {
            // Sent before the group being built: a reordered packet adds no information.
            return None;
        }
        if !starts_new_group(&cur, send, arrival) {
            self.current = Some(Group {
                last_send: cur.last_send.max(send),
                last_arrival: arrival,
                local,
                ..cur
            });
            return None;
        }
        let deltas = match self.prev {
            // A rejected comparison drops the packet and keeps the groups as they were.
            Some(prev) => Some(self.compare(&prev, &cur)?),
            None => None,
        };
        self.prev = Some(cur);
        self.current = Some(Group::start(send, arrival, local));
        deltas
    }

    fn compare(&mut self, prev: &Group, cur: &Group) -> Option<Deltas> {
        let arrival_us = cur.last_arrival.saturating_sub(prev.last_arrival);
        let local_us = cur.local.saturating_sub(prev.local);
        if arrival_us.saturating_sub(local_us) >= CLOCK_JUMP_US {
            *self = Self::default();
            return None;
        }
        if arrival_us < 0 {
            self.reordered += 1;
            if self.reordered >= REORDER_RESET {
                *self = Self::default();
            }
            return None;
        }
        self.reordered = 0;
        Some(Deltas {
            send_us: cur.last_send.saturating_sub(prev.last_send),
            arrival_us,
        })
    }
}

fn starts_new_group(cur: &Group, send: i64, arrival: i64) -> bool {
    !belongs_to_burst(cur, send, arrival) && send.saturating_sub(cur.first_send) > GROUP_SPAN_US
}

fn belongs_to_burst(cur: &Group, send: i64, arrival: i64) -> bool {
    let send_delta = send.saturating_sub(cur.last_send);
    if send_delta == 0 {
        return true;
    }
    let arrival_delta = arrival.saturating_sub(cur.last_arrival);
    let propagation_delta = arrival_delta.saturating_sub(send_delta);
    propagation_delta < 0
        && arrival_delta <= BURST_DELTA_US
        && arrival.saturating_sub(cur.first_arrival) < MAX_BURST_US
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_sent_within_5ms_form_one_group() {
        let mut ia = InterArrival::default();
        // Two bursts of three packets, 1 ms apart inside a burst, 20 ms between bursts.
        let mut out = Vec::new();
        for burst in 0..3 {
            for i in 0..3 {
                let send = burst * 20_000 + i * 1_000;
                out.push(ia.push(send, send + 40_000, send));
            }
        }
        let closed: Vec<_> = out.into_iter().flatten().collect();
        // The first burst only becomes `prev`; the second closes against it.
        assert_eq!(
            closed,
            vec![Deltas {
                send_us: 20_000,
                arrival_us: 20_000
            }]
        );
    }

    #[test]
    fn packets_compressed_by_the_path_stay_in_their_burst() {
        let mut ia = InterArrival::default();
        assert_eq!(ia.push(0, 100_000, 0), None);
        // Sent 6 ms later but arrived only 1 ms later: queued behind the first.
        assert_eq!(ia.push(6_000, 101_000, 0), None);
        assert_eq!(ia.current.map(|g| g.last_send), Some(6_000));
    }

    #[test]
    fn absurd_timestamps_do_not_panic() {
        let mut ia = InterArrival::default();
        for &(s, a) in &[
            (i64::MAX, i64::MIN),
            (i64::MIN, i64::MAX),
            (0, 0),
            (i64::MAX, 0),
        ] {
            let _ = ia.push(s, a, s);
        }
    }
}
