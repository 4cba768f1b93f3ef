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

/// What a packet counts for when its timestamp says nothing sensible (the first, a reordered
/// one, one after a long gap): an Opus packet's usual duration.
const USUAL_PACKET: Duration = Duration::from_millis(20);

/// The audio level of one track, smoothed over media time.
#[derive(Debug)]
pub(crate) struct LevelMeter {
    clock_rate: u32,
    /// Share of recent packets that carried voice, 0 to 1.
    activity: f32,
    /// Loudness of the recent voice packets, 0 to 1.
    loudness: f32,
    last_timestamp: Option<u32>,
}

impl LevelMeter {
    pub(crate) fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate: clock_rate.max(1),
            activity: 0.0,
            loudness: 0.0,
            last_timestamp: None,
        }
    }

    /// One packet with RFC 6464 `level` (−dBov, 0–127) and RTP `timestamp`. Smoothing follows
    /// the media's own clock, not arrival: packets that arrive in a burst (network jitter, a
    /// busy server) weigh what they last, not nothing.
    pub(crate) fn on_packet(&mut self, timestamp: u32, level: u8) {
        let ticks = self
            .last_timestamp
            .map_or(0, |last| timestamp.wrapping_sub(last) as i32);
        self.last_timestamp = Some(timestamp);
        let seconds = f64::from(ticks.max(0)) / f64::from(self.clock_rate);
        let elapsed = match Duration::from_secs_f64(seconds) {
            d if d.is_zero() || d > Duration::from_secs(1) => USUAL_PACKET,
            d => d,
        };
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

    /// Opus at 48 kHz, one packet per 20 ms of media.
    fn feed(meter: &mut LevelMeter, from_ms: u64, to_ms: u64, level: u8) {
        for ms in (from_ms..to_ms).step_by(20) {
            meter.on_packet((ms * 48) as u32, level);
        }
    }

    #[test]
    fn speech_shows_within_a_few_hundred_milliseconds_and_silence_fades_it() {
        let mut meter = LevelMeter::new(48_000);
        feed(&mut meter, 0, 300, 20);
        assert!(meter.activity() > 0.6, "{}", meter.activity());
        assert!((meter.loudness() - 40.0 / 60.0).abs() < 0.25);
        feed(&mut meter, 300, 1300, 127);
        assert!(meter.activity() < 0.05, "{}", meter.activity());
    }

    #[test]
    fn packets_that_arrive_in_a_burst_count_for_the_media_they_carry() {
        let mut steady = LevelMeter::new(48_000);
        feed(&mut steady, 0, 400, 20);
        // The same packets, handed over in bursts of five: the timestamps still say 20 ms each.
        let mut bursty = LevelMeter::new(48_000);
        for burst in (0..400).step_by(100) {
            for ms in (burst..burst + 100).step_by(20) {
                bursty.on_packet((ms * 48) as u32, 20);
            }
        }
        assert_eq!(steady.activity(), bursty.activity());
        assert!(bursty.activity() > 0.7);
    }

    #[test]
    fn background_noise_below_the_voice_level_is_not_activity() {
        let mut meter = LevelMeter::new(48_000);
        feed(&mut meter, 0, 2000, 55);
        assert_eq!(meter.activity(), 0.0);
        assert_eq!(meter.loudness(), 0.0);
    }

    #[test]
    fn a_track_that_stops_sending_reads_as_silent() {
        let start = Instant::now();
        let mut meter = LevelMeter::new(48_000);
        feed(&mut meter, 0, 500, 10);
        let shared = SharedLevel::default();
        shared.publish(start + Duration::from_millis(500), &meter);
        assert!(shared.read(start + Duration::from_millis(600)).0 > 0.5);
        assert_eq!(shared.read(start + Duration::from_millis(1100)), (0.0, 0.0));
        assert_eq!(SharedLevel::default().read(start), (0.0, 0.0));
    }
}
