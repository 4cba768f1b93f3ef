//! How loud one audio track is, from the RFC 6464 audio level its publisher puts in each packet:
//! a plain struct fed per packet, time passed in, and the figures it keeps where the room's
//! speaker detection can read them without a lock.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::stats::millis_since_epoch;

/// A packet at this level or louder counts as voice: −50 dBov, below normal speech and above
/// what is left of a room's noise once the browser's noise suppression has run (RFC 6464 levels
/// are −dBov: 0 is the loudest, 127 silence).
const VOICE_LEVEL: u8 = 50;

/// Reported loudness runs from this level (0) to 0 dBov (1).
const QUIETEST_REPORTED: f32 = 60.0;

/// How fast the share of voice packets follows the voice: about a third of a second, so a
/// sentence shows within a few hundred milliseconds and a word's end does not flicker.
const ACTIVITY_TIME: Duration = Duration::from_millis(300);

/// The audio level of one track, smoothed over time.
#[derive(Debug, Default)]
pub(crate) struct LevelMeter {
    /// Share of recent packets that carried voice, 0 to 1.
    activity: f32,
    /// Loudness of the recent voice packets, 0 to 1.
    loudness: f32,
    last: Option<Instant>,
}

impl LevelMeter {
    /// One packet with RFC 6464 `level` (−dBov, 0–127) arrived at `now`.
    pub(crate) fn on_packet(&mut self, now: Instant, level: u8) {
        let elapsed = self.last.map_or(Duration::from_millis(20), |l| {
            now.saturating_duration_since(l)
        });
        self.last = Some(now);
        let keep = (-elapsed.as_secs_f32() / ACTIVITY_TIME.as_secs_f32()).exp();
        let voice = level <= VOICE_LEVEL;
        self.activity = self.activity * keep + if voice { 1.0 - keep } else { 0.0 };
        if voice {
            let loudness =
                ((QUIETEST_REPORTED - f32::from(level)) / QUIETEST_REPORTED).clamp(0.0, 1.0);
            self.loudness = self.loudness * keep + loudness * (1.0 - keep);
        }
    }

    pub(crate) fn activity(&self) -> f32 {
        self.activity
    }

    pub(crate) fn loudness(&self) -> f32 {
        self.loudness
    }
}

/// A track's level as the room reads it: written by the track's reader, read by the room's
/// speaker detection, no lock between them.
#[derive(Debug, Default)]
pub(crate) struct SharedLevel {
    activity: AtomicU32,
    loudness: AtomicU32,
    /// [`millis_since_epoch`] of the last packet; 0 before any.
    at: AtomicU64,
}

/// A track silent for longer than this (no packets: muted, stopped, or discontinuous
/// transmission) is not speaking, whatever its last packets said.
const STALE: Duration = Duration::from_millis(500);

impl SharedLevel {
    pub(crate) fn publish(&self, now: Instant, meter: &LevelMeter) {
        self.activity
            .store(meter.activity().to_bits(), Ordering::Relaxed);
        self.loudness
            .store(meter.loudness().to_bits(), Ordering::Relaxed);
        self.at
            .store(millis_since_epoch(now).max(1), Ordering::Relaxed);
    }

    /// (activity, loudness) at `now`; zeros once the track has gone quiet.
    pub(crate) fn read(&self, now: Instant) -> (f32, f32) {
        let at = self.at.load(Ordering::Relaxed);
        if at == 0 || millis_since_epoch(now).saturating_sub(at) > STALE.as_millis() as u64 {
            return (0.0, 0.0);
        }
        (
            f32::from_bits(self.activity.load(Ordering::Relaxed)),
            f32::from_bits(self.loudness.load(Ordering::Relaxed)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(meter: &mut LevelMeter, start: Instant, from_ms: u64, to_ms: u64, level: u8) {
        for ms in (from_ms..to_ms).step_by(20) {
            meter.on_packet(start + Duration::from_millis(ms), level);
        }
    }

    #[test]
    fn speech_shows_within_a_few_hundred_milliseconds_and_silence_fades_it() {
        let start = Instant::now();
        let mut meter = LevelMeter::default();
        feed(&mut meter, start, 0, 300, 20);
        assert!(meter.activity() > 0.6, "{}", meter.activity());
        assert!((meter.loudness() - 40.0 / 60.0).abs() < 0.25);
        feed(&mut meter, start, 300, 1300, 127);
        assert!(meter.activity() < 0.05, "{}", meter.activity());
    }

    #[test]
    fn background_noise_below_the_voice_level_is_not_activity() {
        let start = Instant::now();
        let mut meter = LevelMeter::default();
        feed(&mut meter, start, 0, 2000, 55);
        assert_eq!(meter.activity(), 0.0);
        assert_eq!(meter.loudness(), 0.0);
    }

    #[test]
    fn a_track_that_stops_sending_reads_as_silent() {
        let start = Instant::now();
        let mut meter = LevelMeter::default();
        feed(&mut meter, start, 0, 500, 10);
        let shared = SharedLevel::default();
        shared.publish(start + Duration::from_millis(500), &meter);
        assert!(shared.read(start + Duration::from_millis(600)).0 > 0.5);
        assert_eq!(shared.read(start + Duration::from_millis(1100)), (0.0, 0.0));
        assert_eq!(SharedLevel::default().read(start), (0.0, 0.0));
    }
}
