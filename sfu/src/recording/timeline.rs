//! When a participant's file starts, and in what order its frames go in.
//!
//! The file waits (at most [`START_WAIT`]) until every track it records has a sender report, so
//! that its first frames are already placed by the sender's clock rather than by their arrival,
//! and until video has a keyframe, whose size the file's header needs. It then starts at the
//! first video keyframe (audio before it is left out, so both start together), or at the first
//! audio frame when there is no video. From there the muxer needs one timestamp order across
//! both tracks: frames wait until the other track has a later one, or for [`MAX_HOLD`] should
//! that track go quiet.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::assembler::{vp8_keyframe_size, Frame};
use super::clock::{AvClock, Track};

/// How long a file waits for sender reports and a keyframe before it starts with what it has.
pub(crate) const START_WAIT: Duration = Duration::from_secs(4);

/// How long a frame waits for the other track to catch up before it is written anyway.
pub(crate) const MAX_HOLD: Duration = Duration::from_millis(300);

const MILLI: u64 = 1_000_000;

/// Frames a track holds at most while the other is waited for.
const MAX_QUEUED: usize = 400;

/// What to do with the file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Create it with these tracks: video with its size, and audio.
    Open {
        video: Option<(u16, u16)>,
        audio: bool,
    },
    /// Add a frame at this time from the file's start.
    Write {
        track: Track,
        nanos: u64,
        keyframe: bool,
        data: Vec<u8>,
    },
}

struct Queued {
    frame: Frame,
    arrived: Instant,
    /// Its place on the sender's clock (µs), once known.
    at: Option<i64>,
}

pub(crate) struct Timeline {
    clock: AvClock,
    epoch: Instant,
    created: Instant,
    /// Tracks that feed the timeline now.
    tapped: [bool; 2],
    queues: [VecDeque<Queued>; 2],
    /// Once open: the tracks in the file and its first instant on the sender's clock (µs).
    open: Option<([bool; 2], i64)>,
    /// The last time written, in all and per track.
    last_nanos: u64,
    last_of: [Option<u64>; 2],
}

impl Timeline {
    pub(crate) fn new(video_rate: u32, audio_rate: u32, now: Instant) -> Self {
        Self {
            clock: AvClock::new(video_rate, audio_rate),
            epoch: now,
            created: now,
            tapped: [false; 2],
            queues: Default::default(),
            open: None,
            last_nanos: 0,
            last_of: [None; 2],
        }
    }

    /// Starts or stops waiting for a track's frames.
    pub(crate) fn set_tapped(&mut self, track: Track, tapped: bool) {
        self.tapped[track as usize] = tapped;
    }

    pub(crate) fn on_sender_report(&mut self, track: Track, ntp: u32, rtp: u32, now: Instant) {
        let now_us = self.micros(now);
        self.clock.on_sender_report(track, ntp, rtp, now_us);
    }

    /// A frame of a track, placed by the sender's clock now if the track has a report (later
    /// otherwise: a report may come before the file starts).
    pub(crate) fn push(&mut self, track: Track, frame: Frame, now: Instant) {
        let queue = &mut self.queues[track as usize];
        queue.push_back(Queued {
            frame,
            arrived: now,
            at: None,
        });
        if self.clock.has_report(track) {
            let last = self.queues[track as usize].len() - 1;
            self.stamp(track as usize, last);
        }
    }

    /// The track's stream starts again with another RTP clock (another simulcast layer): what is
    /// held of it is placed by the old clock first, or, before the file starts, dropped (the file
    /// will start at the new stream's keyframe).
    pub(crate) fn restart_track(&mut self, track: Track) {
        if self.open.is_none() {
            self.queues[track as usize].clear();
        }
        for i in 0..self.queues[track as usize].len() {
            self.stamp(track as usize, i);
        }
        self.clock.restart(track);
    }

    /// Whether the file has started.
    pub(crate) fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// What can be done by now.
    pub(crate) fn poll(&mut self, now: Instant) -> Vec<Step> {
        let mut steps = Vec::new();
        if self.open.is_none() && !self.try_open(now, &mut steps) {
            return steps;
        }
        self.release(now, false, &mut steps);
        steps
    }

    /// Everything still held, in order: the file ends.
    pub(crate) fn finish(&mut self, now: Instant) -> Vec<Step> {
        let mut steps = Vec::new();
        if self.open.is_none() && !self.try_open(now + START_WAIT, &mut steps) {
            return steps;
        }
        self.release(now, true, &mut steps);
        steps
    }

    fn try_open(&mut self, now: Instant, steps: &mut Vec<Step>) -> bool {
        let video = Track::Video as usize;
        let audio = Track::Audio as usize;
        let keyframe = self.queues[video].front().map(|q| &q.frame);
        let reports = Track::BOTH
            .iter()
            .all(|&t| !self.tapped[t as usize] || self.clock.has_report(t));
        let video_ready = !self.tapped[video] || keyframe.is_some();
        let anything = self.queues.iter().any(|q| !q.is_empty());
        let waited = now.saturating_duration_since(self.created) >= START_WAIT;
        if !anything || !(reports && video_ready || waited) {
            return false;
        }
        let size = keyframe.and_then(|f| vp8_keyframe_size(&f.data));
        if size.is_none() {
            self.queues[video].clear();
        }
        let has_audio = !self.queues[audio].is_empty();
        let tracks = [size.is_some(), has_audio];
        if !tracks.iter().any(|&t| t) {
            return false;
        }
        // With video, the file starts at its keyframe; audio before it is left out.
        let start = if size.is_some() { video } else { audio };
        let origin = self.stamp(start, 0);
        self.open = Some((tracks, origin));
        steps.push(Step::Open {
            video: size,
            audio: has_audio,
        });
        true
    }

    fn release(&mut self, now: Instant, all: bool, steps: &mut Vec<Step>) {
        let Some((tracks, origin)) = self.open else {
            return;
        };
        for (queue, _) in self.queues.iter_mut().zip(tracks).filter(|(_, t)| !t) {
            queue.clear();
        }
        loop {
            // The earliest head among the file's tracks.
            let heads: [Option<i64>; 2] =
                [0, 1].map(|t| (!self.queues[t].is_empty()).then(|| self.stamp(t, 0)));
            let Some(t) = (0..2)
                .filter(|&t| heads[t].is_some())
                .min_by_key(|&t| heads[t])
            else {
                return;
            };
            let other = 1 - t;
            let other_waits = tracks[other] && self.tapped[other] && heads[other].is_none();
            let head = &self.queues[t][0];
            let held = now.saturating_duration_since(head.arrived);
            if other_waits && !all && held < MAX_HOLD && self.queues[t].len() < MAX_QUEUED {
                return;
            }
            let at = heads[t].unwrap_or(origin);
            let Some(q) = self.queues[t].pop_front() else {
                return;
            };
            if at < origin && t == Track::Audio as usize {
                continue;
            }
            // The muxer wants time never to go back, and a player two frames of a track at
            // one instant (the file counts milliseconds) never.
            let after_last = self.last_of[t].map_or(0, |l| l + MILLI);
            let nanos = ((at - origin).max(0) as u64 * 1000)
                .max(self.last_nanos)
                .max(after_last);
            self.last_nanos = nanos;
            self.last_of[t] = Some(nanos);
            steps.push(Step::Write {
                track: if t == 0 { Track::Video } else { Track::Audio },
                nanos,
                keyframe: q.frame.keyframe,
                data: q.frame.data,
            });
        }
    }

    /// The sender-clock time of a queued frame (the queue's `index`th).
    fn stamp(&mut self, track: usize, index: usize) -> i64 {
        let q = &self.queues[track][index];
        if let Some(at) = q.at {
            return at;
        }
        let arrived = self.micros(q.arrived);
        let rtp = q.frame.timestamp;
        let at = self.clock.sender_time(Track::BOTH[track], rtp, arrived);
        self.queues[track][index].at = Some(at);
        at
    }

    /// Server time in µs from the timeline's start (negative before it: a sender report may be
    /// older than the timeline).
    fn micros(&self, at: Instant) -> i64 {
        match at.checked_duration_since(self.epoch) {
            Some(after) => after.as_micros() as i64,
            None => -(self.epoch.duration_since(at).as_micros() as i64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIDEO_RATE: u32 = 90_000;
    const AUDIO_RATE: u32 = 48_000;

    /// The NTP compact form of a sender-clock time in µs.
    fn compact(us: i64) -> u32 {
        ((us << 16) / 1_000_000) as u32
    }

    fn keyframe(ts: u32) -> Frame {
        let mut data = vec![0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a];
        data.extend_from_slice(&320u16.to_le_bytes());
        data.extend_from_slice(&180u16.to_le_bytes());
        Frame {
            timestamp: ts,
            data,
            keyframe: true,
        }
    }

    fn frame(ts: u32) -> Frame {
        Frame {
            timestamp: ts,
            data: vec![1],
            keyframe: false,
        }
    }

    struct Clock(Instant);

    impl Clock {
        fn at(&self, ms: u64) -> Instant {
            self.0 + Duration::from_millis(ms)
        }
    }

    /// (track, ms) of each written frame.
    fn writes(steps: &[Step]) -> Vec<(Track, u64)> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Write { track, nanos, .. } => Some((*track, nanos / 1_000_000)),
                Step::Open { .. } => None,
            })
            .collect()
    }

    /// A sender whose wall clock reads 1,000 s at t0, video RTP starting at 5,000 and audio at
    /// 900,000, both tracks tapped.
    fn both_tapped(c: &Clock) -> Timeline {
        let mut t = Timeline::new(VIDEO_RATE, AUDIO_RATE, c.at(0));
        t.set_tapped(Track::Video, true);
        t.set_tapped(Track::Audio, true);
        t
    }

    fn video_ts(ms: u32) -> u32 {
        5_000 + ms * 90
    }

    fn audio_ts(ms: u32) -> u32 {
        900_000 + ms * 48
    }

    fn reports(t: &mut Timeline, c: &Clock, ms: u64) {
        let sender = 1_000_000_000 + ms as i64 * 1000;
        t.on_sender_report(Track::Video, compact(sender), video_ts(ms as u32), c.at(ms));
        t.on_sender_report(Track::Audio, compact(sender), audio_ts(ms as u32), c.at(ms));
    }

    #[test]
    fn the_file_waits_for_sender_reports_and_a_keyframe_then_starts_at_the_keyframe() {
        let c = Clock(Instant::now());
        let mut t = both_tapped(&c);
        for ms in [0, 20, 40, 60] {
            t.push(Track::Audio, frame(audio_ts(ms)), c.at(u64::from(ms)));
        }
        t.push(Track::Video, keyframe(video_ts(40)), c.at(70));
        assert!(t.poll(c.at(70)).is_empty(), "no sender report yet");
        reports(&mut t, &c, 80);
        t.push(Track::Audio, frame(audio_ts(80)), c.at(90));
        t.push(Track::Video, frame(video_ts(90)), c.at(120));
        let steps = t.poll(c.at(120));
        assert_eq!(
            steps[0],
            Step::Open {
                video: Some((320, 180)),
                audio: true
            }
        );
        // Audio before the keyframe (0 and 20 ms) is left out; the rest is in time order.
        assert_eq!(
            writes(&steps),
            [
                (Track::Video, 0),
                (Track::Audio, 0),
                (Track::Audio, 20),
                (Track::Audio, 40),
            ],
            "the video frame at 90 ms waits for audio to pass it"
        );
    }

    #[test]
    fn without_reports_the_file_starts_after_the_wait_with_what_it_has() {
        let c = Clock(Instant::now());
        let mut t = both_tapped(&c);
        t.push(Track::Audio, frame(audio_ts(0)), c.at(0));
        assert!(t.poll(c.at(3_999)).is_empty());
        let steps = t.poll(c.at(4_000));
        assert_eq!(
            steps[0],
            Step::Open {
                video: None,
                audio: true
            },
            "no keyframe came: an audio-only file"
        );
        assert_eq!(writes(&steps), [(Track::Audio, 0)]);
    }

    #[test]
    fn a_quiet_track_holds_the_other_back_for_at_most_the_hold() {
        let c = Clock(Instant::now());
        let mut t = both_tapped(&c);
        reports(&mut t, &c, 0);
        t.push(Track::Video, keyframe(video_ts(0)), c.at(0));
        t.push(Track::Audio, frame(audio_ts(0)), c.at(0));
        assert_eq!(
            writes(&t.poll(c.at(0))),
            [(Track::Video, 0)],
            "audio waits: video might still bring an earlier frame"
        );
        // Video goes quiet; audio keeps coming.
        t.push(Track::Audio, frame(audio_ts(20)), c.at(20));
        assert!(writes(&t.poll(c.at(200))).is_empty());
        assert_eq!(writes(&t.poll(c.at(300))), [(Track::Audio, 0)]);
        assert_eq!(writes(&t.poll(c.at(320))), [(Track::Audio, 20)]);
    }

    #[test]
    fn time_never_goes_back_and_a_track_never_repeats_an_instant() {
        let c = Clock(Instant::now());
        let mut t = both_tapped(&c);
        reports(&mut t, &c, 0);
        t.push(Track::Video, keyframe(video_ts(100)), c.at(100));
        t.push(Track::Video, frame(video_ts(100)), c.at(110));
        t.push(Track::Video, frame(video_ts(90)), c.at(120));
        t.set_tapped(Track::Audio, false);
        let written = writes(&t.poll(c.at(120)));
        assert_eq!(
            written,
            [(Track::Video, 0), (Track::Video, 1), (Track::Video, 2)]
        );
    }

    #[test]
    fn finishing_writes_everything_held() {
        let c = Clock(Instant::now());
        let mut t = both_tapped(&c);
        reports(&mut t, &c, 0);
        t.push(Track::Video, keyframe(video_ts(0)), c.at(0));
        t.push(Track::Audio, frame(audio_ts(0)), c.at(0));
        t.push(Track::Audio, frame(audio_ts(20)), c.at(20));
        let steps = t.finish(c.at(25));
        assert_eq!(
            writes(&steps),
            [(Track::Video, 0), (Track::Audio, 0), (Track::Audio, 20)]
        );
    }
}
