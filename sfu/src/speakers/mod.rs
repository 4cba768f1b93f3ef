//! Who is speaking in a room, and who holds the floor: a plain struct fed with every
//! participant's audio level at each tick, time passed in, answering with the speaker list to
//! send when it changed.
//!
//! *Speaking* follows the share of recent packets that carried voice ([`level::LevelMeter`]),
//! with hysteresis so a pause between words does not end it. The *dominant* speaker is the one
//! whose voice has filled the last few seconds most (a slow average of that share); a challenger
//! takes the floor only after out-speaking the holder by a clear margin for a full second, or
//! once the holder has been silent, so a cough, a laugh or a short "yes" never moves it — the
//! properties of dominant-speaker identification as published (Volfin and Cohen, 2013), with a
//! simpler score.

pub(crate) mod level;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::ids::ParticipantId;

/// Speaking starts at this share of voice packets and ends below [`STOP_SPEAKING`]: speech has
/// gaps between syllables and words (and Chromium's fake microphone, used in the tests, sends a
/// beep that is voice a third of the time).
const START_SPEAKING: f32 = 0.3;
const STOP_SPEAKING: f32 = 0.15;
/// How slowly the floor score follows a participant's voice.
const FLOOR_TIME: Duration = Duration::from_secs(2);
/// A challenger must out-score the holder by this factor…
const TAKEOVER_MARGIN: f32 = 1.5;
/// …for this long, to take the floor from a holder still speaking.
const TAKEOVER_AFTER: Duration = Duration::from_secs(1);
/// The speaker list is sent at most this often (about three times a second).
const MIN_INTERVAL: Duration = Duration::from_millis(330);

/// One participant's audio at a tick.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Sample {
    pub(crate) participant: ParticipantId,
    /// Share of recent packets carrying voice, 0 to 1.
    pub(crate) activity: f32,
    /// How loud the voice is, 0 to 1.
    pub(crate) loudness: f32,
    /// A muted participant is never a speaker.
    pub(crate) muted: bool,
}

/// One entry of the speaker list.
#[derive(Clone, Debug, PartialEq)]
pub struct Speaker {
    pub id: ParticipantId,
    /// How loud, 0 to 1.
    pub level: f32,
}

#[derive(Debug, Default)]
struct Voice {
    speaking: bool,
    /// Slow average of the voice share: how much of the last seconds this voice filled.
    floor: f32,
    loudness: f32,
}

#[derive(Debug, Default)]
pub(crate) struct SpeakerDetector {
    voices: HashMap<ParticipantId, Voice>,
    dominant: Option<ParticipantId>,
    /// The challenger out-scoring the dominant speaker, and since when.
    challenger: Option<(ParticipantId, Instant)>,
    last_tick: Option<Instant>,
    /// The list last sent (ids in order), and when.
    sent: Option<(Vec<ParticipantId>, Instant)>,
}

impl SpeakerDetector {
    /// Takes this tick's samples (one per participant in the room); returns the speaker list to
    /// send if it changed and the last one went out long enough ago. A list that is not sent now
    /// goes out at a later tick.
    pub(crate) fn tick(&mut self, now: Instant, samples: &[Sample]) -> Option<Vec<Speaker>> {
        let elapsed = self
            .last_tick
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        self.last_tick = Some(now);
        self.voices
            .retain(|id, _| samples.iter().any(|s| &s.participant == id));
        for sample in samples {
            self.hear(sample, elapsed);
        }
        self.choose_dominant(now);
        let speakers = self.speakers();
        let ids: Vec<_> = speakers.iter().map(|s| s.id.clone()).collect();
        let due = match &self.sent {
            Some((last, at)) => *last != ids && now.saturating_duration_since(*at) >= MIN_INTERVAL,
            None => !ids.is_empty(),
        };
        due.then(|| {
            self.sent = Some((ids, now));
            speakers
        })
    }

    /// Who holds the floor, if anyone has yet.
    pub(crate) fn dominant(&self) -> Option<&ParticipantId> {
        self.dominant.as_ref()
    }

    fn hear(&mut self, sample: &Sample, elapsed: Duration) {
        let voice = self.voices.entry(sample.participant.clone()).or_default();
        let activity = if sample.muted { 0.0 } else { sample.activity };
        voice.speaking = !sample.muted
            && if voice.speaking {
                activity >= STOP_SPEAKING
            } else {
                activity >= START_SPEAKING
            };
        let keep = (-elapsed.as_secs_f32() / FLOOR_TIME.as_secs_f32()).exp();
        voice.floor = voice.floor * keep + activity * (1.0 - keep);
        voice.loudness = sample.loudness;
    }

    fn choose_dominant(&mut self, now: Instant) {
        if let Some(gone) = self.dominant.take_if(|id| !self.voices.contains_key(id)) {
            tracing::trace!(participant = %gone, "the dominant speaker left");
        }
        let holder = self
            .dominant
            .as_ref()
            .and_then(|id| self.voices.get(id).map(|v| (id.clone(), v)));
        let Some(best) = self.loudest_floor() else {
            self.challenger = None;
            return;
        };
        let Some((holder_id, holder)) = holder else {
            // No one holds the floor (or the holder left): the first voice takes it.
            self.dominant = Some(best);
            self.challenger = None;
            return;
        };
        if best == holder_id {
            self.challenger = None;
            return;
        }
        let best_floor = self.voices[&best].floor;
        let outspoken = best_floor > holder.floor * TAKEOVER_MARGIN;
        if !holder.speaking && outspoken {
            self.dominant = Some(best);
            self.challenger = None;
            return;
        }
        if !outspoken {
            self.challenger = None;
            return;
        }
        match &self.challenger {
            Some((id, since)) if *id == best => {
                if now.saturating_duration_since(*since) >= TAKEOVER_AFTER {
                    self.dominant = Some(best);
                    self.challenger = None;
                }
            }
            _ => self.challenger = Some((best, now)),
        }
    }

    /// The speaking participant with the highest floor score.
    fn loudest_floor(&self) -> Option<ParticipantId> {
        self.voices
            .iter()
            .filter(|(_, v)| v.speaking)
            .max_by(|a, b| a.1.floor.total_cmp(&b.1.floor).then(b.0.cmp(a.0)))
            .map(|(id, _)| id.clone())
    }

    /// Everyone speaking: the dominant speaker first, then loudest first.
    fn speakers(&self) -> Vec<Speaker> {
        let mut speaking: Vec<(&ParticipantId, &Voice)> =
            self.voices.iter().filter(|(_, v)| v.speaking).collect();
        speaking.sort_by(|a, b| {
            let dominant = |id: &ParticipantId| Some(id) == self.dominant.as_ref();
            dominant(b.0)
                .cmp(&dominant(a.0))
                .then(b.1.loudness.total_cmp(&a.1.loudness))
                .then(a.0.cmp(b.0))
        });
        speaking
            .into_iter()
            .map(|(id, v)| Speaker {
                id: id.clone(),
                level: v.loudness.clamp(0.0, 1.0),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
