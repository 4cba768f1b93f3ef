//! One participant's media clock: where each frame sits in time, from its RTP timestamp.
//!
//! Each track's RTP clock starts at a random value and runs at its own rate (48 kHz audio,
//! 90 kHz video), so only the publisher's sender reports, which pair an RTP timestamp with the
//! sender's wall clock (NTP), put audio and video on one timeline: lip sync as the sender captured
//! it, whatever each track's path through encoder, pacer and network. Every new report re-anchors
//! its track, so clock drift between a track's RTP clock and the sender's wall clock never
//! accumulates. A track without a report yet is placed by its first packet's arrival, on the
//! sender's clock through the offset measured at the first report of any track.
//!
//! Times are microseconds; "server time" is whatever monotonic clock the caller passes in.

/// Audio or video: the two tracks of a recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Track {
    Video = 0,
    Audio = 1,
}

impl Track {
    pub(crate) const BOTH: [Track; 2] = [Track::Video, Track::Audio];
}

/// Extends a wrapping 32-bit counter (RTP timestamps, compact NTP) to 64 bits around the last
/// value seen.
#[derive(Clone, Copy, Debug, Default)]
struct Unwrapper {
    last: Option<i64>,
}

impl Unwrapper {
    fn unwrap(&mut self, value: u32) -> i64 {
        let extended = match self.last {
            None => i64::from(value),
            Some(last) => last + i64::from(value.wrapping_sub(last as u32) as i32),
        };
        self.last = Some(extended);
        extended
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct TrackClock {
    rate: i64,
    rtp: Unwrapper,
    /// (extended RTP timestamp, sender time µs) of the latest sender report.
    report: Option<(i64, i64)>,
    /// (extended RTP timestamp, server time µs) of the first packet: the fallback.
    first: Option<(i64, i64)>,
}

impl TrackClock {
    fn ticks_to_micros(&self, ticks: i64) -> i64 {
        ticks * 1_000_000 / self.rate.max(1)
    }
}

#[derive(Debug, Default)]
pub(crate) struct AvClock {
    tracks: [TrackClock; 2],
    ntp: Unwrapper,
    /// Server time minus sender time, measured at the first sender report.
    offset: Option<i64>,
}

impl AvClock {
    pub(crate) fn new(video_rate: u32, audio_rate: u32) -> Self {
        let mut clock = Self::default();
        clock.tracks[Track::Video as usize].rate = i64::from(video_rate);
        clock.tracks[Track::Audio as usize].rate = i64::from(audio_rate);
        clock
    }

    /// A sender report for a track: its compact NTP time (16.16 seconds) and RTP timestamp,
    /// received at server time `now_us`.
    pub(crate) fn on_sender_report(
        &mut self,
        track: Track,
        compact_ntp: u32,
        rtp: u32,
        now_us: i64,
    ) {
        let sender_us = (self.ntp.unwrap(compact_ntp) * 1_000_000) >> 16;
        self.offset.get_or_insert(now_us - sender_us);
        let clock = &mut self.tracks[track as usize];
        let rtp = clock.rtp.unwrap(rtp);
        clock.report = Some((rtp, sender_us));
    }

    /// The track's RTP clock starts again at another value (another simulcast layer, whose
    /// reports come apart).
    pub(crate) fn restart(&mut self, track: Track) {
        let rate = self.tracks[track as usize].rate;
        self.tracks[track as usize] = TrackClock {
            rate,
            ..TrackClock::default()
        };
    }

    /// Whether the track's frames are placed by a sender report.
    pub(crate) fn has_report(&self, track: Track) -> bool {
        self.tracks[track as usize].report.is_some()
    }

    /// Where a frame with this RTP timestamp, which arrived at server time `arrived_us`, sits on
    /// the sender's clock (µs). Call it in arrival order per track.
    pub(crate) fn sender_time(&mut self, track: Track, rtp: u32, arrived_us: i64) -> i64 {
        let offset = self.offset.unwrap_or(0);
        let clock = &mut self.tracks[track as usize];
        let ext = clock.rtp.unwrap(rtp);
        let first = *clock.first.get_or_insert((ext, arrived_us - offset));
        let (anchor_rtp, anchor_us) = clock.report.unwrap_or(first);
        anchor_us + clock.ticks_to_micros(ext - anchor_rtp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The NTP compact form of a sender-clock time in µs.
    fn compact(us: i64) -> u32 {
        ((us << 16) / 1_000_000) as u32
    }

    #[test]
    fn audio_and_video_captured_together_land_together_whatever_their_rtp_bases() {
        let mut clock = AvClock::new(90_000, 48_000);
        // The sender's wall clock reads 1,000 s; video's RTP clock reads 12,345 then, audio's
        // 4,000,000,000 (about to wrap).
        clock.on_sender_report(Track::Video, compact(1_000_000_000), 12_345, 5_000);
        clock.on_sender_report(Track::Audio, compact(1_000_000_000), 4_000_000_000, 5_000);
        // Half a second later at the sender, both capture a frame; video arrives 80 ms after
        // audio (encoding, pacing).
        let video = clock.sender_time(Track::Video, 12_345 + 45_000, 600_000);
        let audio = clock.sender_time(Track::Audio, 4_000_000_000u32.wrapping_add(24_000), 520_000);
        assert!((video - audio).abs() <= 20, "{video} vs {audio}");
    }

    #[test]
    fn an_rtp_timestamp_that_wraps_keeps_counting() {
        let mut clock = AvClock::new(90_000, 48_000);
        clock.on_sender_report(Track::Audio, compact(2_000_000), u32::MAX - 960, 0);
        let before = clock.sender_time(Track::Audio, u32::MAX - 960, 0);
        let after = clock.sender_time(Track::Audio, 960 - 1, 40_000);
        assert_eq!(after - before, 40_000);
    }

    #[test]
    fn before_any_report_a_track_is_placed_by_its_arrival() {
        let mut clock = AvClock::new(90_000, 48_000);
        let a = clock.sender_time(Track::Audio, 100, 1_000_000);
        let b = clock.sender_time(Track::Audio, 100 + 48_000, 1_900_000);
        assert_eq!(a, 1_000_000);
        assert_eq!(
            b - a,
            1_000_000,
            "then by its RTP clock, not its jittery arrivals"
        );
        assert!(!clock.has_report(Track::Audio));
    }

    #[test]
    fn a_track_without_reports_is_placed_on_the_sender_clock_of_the_other() {
        let mut clock = AvClock::new(90_000, 48_000);
        // Sender time 50 s is server time 7 s.
        clock.on_sender_report(Track::Video, compact(50_000_000), 0, 7_000_000);
        let video = clock.sender_time(Track::Video, 90_000, 8_000_000);
        let audio = clock.sender_time(Track::Audio, 777, 8_000_000);
        assert!((video - 51_000_000).abs() <= 20);
        assert!((audio - video).abs() <= 20);
    }

    /// A sender whose RTP clocks run off its wall clock (audio 60 ppm fast, video 40 ppm slow)
    /// and that sends reports as browsers do (video every second, audio every five): after ten
    /// minutes audio and video captured together are still together.
    #[test]
    fn drift_stays_under_100_ms_over_ten_minutes() {
        let mut clock = AvClock::new(90_000, 48_000);
        let audio_rtp = |us: i64| (us as f64 * 0.048 * (1.0 + 60e-6)) as i64 as u32;
        let video_rtp = |us: i64| (us as f64 * 0.090 * (1.0 - 40e-6)) as i64 as u32;
        let sender_base = 3_000_000_000i64;
        let mut worst = 0;
        for ms in (0..600_000i64).step_by(20) {
            let us = ms * 1000;
            if ms % 1000 == 0 {
                clock.on_sender_report(Track::Video, compact(sender_base + us), video_rtp(us), us);
            }
            if ms % 5000 == 0 {
                clock.on_sender_report(Track::Audio, compact(sender_base + us), audio_rtp(us), us);
            }
            let a = clock.sender_time(Track::Audio, audio_rtp(us), us + 30_000);
            let v = clock.sender_time(Track::Video, video_rtp(us), us + 90_000);
            worst = worst.max((a - v).abs());
        }
        assert!(worst <= 1_000, "worst misalignment {worst} µs");
    }
}
