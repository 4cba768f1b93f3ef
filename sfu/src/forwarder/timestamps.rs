//! Outgoing RTP timestamps: each simulcast layer starts its clock at a random value, so on a
//! switch the new layer is mapped to continue the subscriber's timeline where wall-clock time
//! says it should be.

use std::time::Instant;

#[derive(Debug)]
pub(crate) struct Timestamps {
    clock_rate: u32,
    /// Output = input − offset.
    offset: u32,
    last: Option<Sent>,
}

#[derive(Debug, Clone, Copy)]
struct Sent {
    timestamp: u32,
    at: Instant,
}

impl Timestamps {
    pub(crate) fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate,
            offset: 0,
            last: None,
        }
    }

    /// A new input stream starts with a packet stamped `first` at `now`: it continues from the
    /// last output by the wall-clock time between them (at least one tick, so it is never taken
    /// for the previous frame). The first stream ever keeps its own timestamps.
    pub(crate) fn switch(&mut self, now: Instant, first: u32) {
        let Some(last) = self.last else {
            return;
        };
        let elapsed = now.saturating_duration_since(last.at).as_secs_f64();
        let ticks = (elapsed * f64::from(self.clock_rate))
            .round()
            .clamp(1.0, f64::from(u32::MAX / 2)) as u32;
        let out = last.timestamp.wrapping_add(ticks);
        self.offset = first.wrapping_sub(out);
    }

    /// The output timestamp of a forwarded packet of the current stream.
    pub(crate) fn forward(&mut self, now: Instant, timestamp: u32) -> u32 {
        let out = timestamp.wrapping_sub(self.offset);
        let newer = self
            .last
            .is_none_or(|l| (out.wrapping_sub(l.timestamp) as i32) >= 0);
        if newer {
            self.last = Some(Sent {
                timestamp: out,
                at: now,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_first_stream_keeps_its_timestamps() {
        let mut t = Timestamps::new(90_000);
        let now = Instant::now();
        t.switch(now, 1234);
        assert_eq!(t.forward(now, 1234), 1234);
        assert_eq!(t.forward(now, 4234), 4234);
    }

    #[test]
    fn a_switch_continues_by_the_wall_clock_time_in_between() {
        let mut t = Timestamps::new(90_000);
        let start = Instant::now();
        t.switch(start, 1000);
        t.forward(start, 1000);
        let later = start + Duration::from_millis(100);
        t.switch(later, 3_000_000_000);
        assert_eq!(t.forward(later, 3_000_000_000), 1000 + 9000);
        assert_eq!(t.forward(later, 3_000_003_000), 1000 + 12_000);
    }

    #[test]
    fn a_switch_in_the_same_instant_still_moves_time_forward() {
        let mut t = Timestamps::new(48_000);
        let now = Instant::now();
        t.switch(now, 10);
        t.forward(now, 10);
        t.switch(now, 99);
        assert_eq!(t.forward(now, 99), 11);
    }

    #[test]
    fn timestamps_wrap_around() {
        let mut t = Timestamps::new(90_000);
        let start = Instant::now();
        t.switch(start, u32::MAX - 10);
        t.forward(start, u32::MAX - 10);
        t.switch(start + Duration::from_millis(1), 5);
        assert_eq!(t.forward(start + Duration::from_millis(1), 5), 79);
    }

    #[test]
    fn a_late_packet_does_not_wind_the_timeline_back() {
        let mut t = Timestamps::new(90_000);
        let start = Instant::now();
        t.switch(start, 0);
        t.forward(start, 9000);
        t.forward(start + Duration::from_millis(10), 6000);
        t.switch(start + Duration::from_millis(100), 777);
        assert_eq!(
            t.forward(start + Duration::from_millis(100), 777),
            9000 + 9000
        );
    }
}
