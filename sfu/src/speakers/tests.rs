//! The speaker detection's specification: a room of microphones, 20 ms packets, a tick every
//! 100 ms.

use super::level::LevelMeter;
use super::*;

/// RFC 6464 levels: speech, and a quiet room.
const SPEECH: u8 = 25;
const SILENCE: u8 = 127;

struct Room {
    start: Instant,
    ms: u64,
    people: Vec<(ParticipantId, LevelMeter, bool)>,
    detector: SpeakerDetector,
    /// Every list sent, with when.
    sent: Vec<(u64, Vec<ParticipantId>)>,
    dominant: Vec<Option<ParticipantId>>,
}

impl Room {
    fn new(people: usize) -> Self {
        Self {
            start: Instant::now(),
            ms: 0,
            people: (0..people)
                .map(|_| (ParticipantId::random(), LevelMeter::new(48_000), false))
                .collect(),
            detector: SpeakerDetector::default(),
            sent: Vec::new(),
            dominant: Vec::new(),
        }
    }

    fn id(&self, who: usize) -> ParticipantId {
        self.people[who].0.clone()
    }

    fn mute(&mut self, who: usize, muted: bool) {
        self.people[who].2 = muted;
    }

    /// `ms` milliseconds in which person `i` speaks at `levels[i]`, one packet per 20 ms.
    fn run(&mut self, ms: u64, levels: &[u8]) {
        self.run_with(ms, |_| levels.to_vec());
    }

    /// Like [`Room::run`], with the levels of each packet time (ms since the start).
    fn run_with(&mut self, ms: u64, levels: impl Fn(u64) -> Vec<u8>) {
        for _ in 0..ms / 20 {
            self.ms += 20;
            let now = self.start + Duration::from_millis(self.ms);
            for ((_, meter, _), level) in self.people.iter_mut().zip(levels(self.ms)) {
                meter.on_packet((self.ms * 48) as u32, level);
            }
            if self.ms.is_multiple_of(100) {
                self.tick(now);
            }
        }
    }

    fn tick(&mut self, now: Instant) {
        let samples: Vec<Sample> = self
            .people
            .iter()
            .map(|(id, meter, muted)| Sample {
                participant: id.clone(),
                activity: meter.activity(),
                loudness: meter.loudness(),
                muted: *muted,
            })
            .collect();
        if let Some(list) = self.detector.tick(now, &samples) {
            self.sent
                .push((self.ms, list.into_iter().map(|s| s.id).collect()));
        }
        self.dominant.push(self.detector.dominant().cloned());
    }

    fn last_sent(&self) -> Vec<ParticipantId> {
        self.sent.last().map(|(_, l)| l.clone()).unwrap_or_default()
    }

    /// How many times the floor passed from one speaker to another.
    fn floor_changes(&self) -> usize {
        self.dominant
            .windows(2)
            .filter(|w| w[0].is_some() && w[0] != w[1])
            .count()
    }
}

#[test]
fn a_silent_room_sends_nothing() {
    let mut room = Room::new(3);
    room.run(5000, &[SILENCE; 3]);
    assert!(room.sent.is_empty());
    assert_eq!(room.detector.dominant(), None);
}

#[test]
fn whoever_speaks_is_listed_within_half_a_second_and_an_empty_list_follows_the_silence() {
    let mut room = Room::new(3);
    room.run(1000, &[SILENCE; 3]);
    room.run(500, &[SILENCE, SPEECH, SILENCE]);
    assert_eq!(room.last_sent(), [room.id(1)]);
    assert!(room.sent[0].0 <= 1500);
    room.run(1500, &[SILENCE; 3]);
    assert_eq!(room.sent.len(), 2);
    assert!(room.last_sent().is_empty());
}

/// Chromium's fake microphone, as its RFC 6464 levels arrive: a beep every half second that
/// fades out (measured).
const BEEP: [u8; 25] = [
    9, 25, 33, 37, 40, 44, 47, 50, 56, 58, 61, 71, 75, 87, 103, 127, 127, 127, 127, 127, 127, 127,
    127, 127, 127,
];

#[test]
fn the_test_browsers_beeping_microphone_is_one_steady_speaker() {
    let mut room = Room::new(2);
    room.run_with(10_000, |ms| vec![BEEP[(ms / 20 % 25) as usize], SILENCE]);
    assert_eq!(room.sent.len(), 1, "{:?}", room.sent);
    assert_eq!(room.last_sent(), [room.id(0)]);
    assert!(room.sent[0].0 <= 1000, "listed after {} ms", room.sent[0].0);
}

#[test]
fn a_pause_between_words_does_not_end_speaking() {
    let mut room = Room::new(2);
    room.run(2000, &[SPEECH, SILENCE]);
    for _ in 0..10 {
        room.run(600, &[SPEECH, SILENCE]);
        room.run(200, &[SILENCE, SILENCE]);
    }
    assert_eq!(room.sent.len(), 1, "one list: {:?}", room.sent);
}

#[test]
fn a_cough_never_takes_the_floor_from_someone_speaking() {
    let mut room = Room::new(3);
    room.run(3000, &[SPEECH, SILENCE, SILENCE]);
    assert_eq!(room.detector.dominant(), Some(&room.id(0)));
    for _ in 0..5 {
        room.run(300, &[SPEECH, SPEECH, SILENCE]);
        room.run(1700, &[SPEECH, SILENCE, SILENCE]);
    }
    // Louder, too: loudness does not buy the floor.
    room.run(400, &[SPEECH, 5, SILENCE]);
    room.run(2000, &[SPEECH, SILENCE, SILENCE]);
    assert_eq!(room.floor_changes(), 0, "the floor never moved");
    assert_eq!(room.detector.dominant(), Some(&room.id(0)));
}

#[test]
fn the_floor_passes_to_whoever_goes_on_speaking_once_the_holder_stops() {
    let mut room = Room::new(2);
    room.run(3000, &[SPEECH, SILENCE]);
    room.run(3000, &[SILENCE, SPEECH]);
    assert_eq!(room.detector.dominant(), Some(&room.id(1)));
    assert_eq!(room.floor_changes(), 1);
    let changed_at = room.dominant.iter().position(|d| d == &Some(room.id(1)));
    let seconds = changed_at.unwrap() as f64 / 10.0 - 3.0;
    assert!(
        seconds <= 2.0,
        "the floor moved {seconds} s after the holder stopped"
    );
}

#[test]
fn a_challenger_who_out_talks_a_murmuring_holder_takes_the_floor_after_a_second() {
    let mut room = Room::new(2);
    room.run(3000, &[SPEECH, SILENCE]);
    // The holder keeps murmuring now and then (speaking, by hysteresis); the other talks on.
    for _ in 0..10 {
        room.run(300, &[SPEECH, SPEECH]);
        room.run(700, &[SILENCE, SPEECH]);
    }
    assert_eq!(room.detector.dominant(), Some(&room.id(1)));
    assert_eq!(room.floor_changes(), 1, "and it does not come back");
}

#[test]
fn the_dominant_speaker_comes_first_then_the_loudest() {
    let mut room = Room::new(3);
    room.run(3000, &[30, SILENCE, SILENCE]);
    room.run(1000, &[30, 10, 20]);
    assert_eq!(room.last_sent(), [room.id(0), room.id(1), room.id(2)]);
}

#[test]
fn a_muted_participant_is_never_a_speaker() {
    let mut room = Room::new(2);
    room.mute(1, true);
    room.run(3000, &[SILENCE, SPEECH]);
    assert!(room.sent.is_empty());
    room.run(3000, &[SPEECH, SPEECH]);
    assert_eq!(room.last_sent(), [room.id(0)]);
    room.mute(0, true);
    room.run(500, &[SPEECH, SPEECH]);
    assert!(room.last_sent().is_empty(), "muting ends speaking at once");
}

#[test]
fn lists_go_out_at_most_three_times_a_second() {
    let mut room = Room::new(4);
    // Everyone flickering in and out of speech, out of step.
    for n in 0..100 {
        let levels: Vec<u8> = (0..4)
            .map(|i| if (n + i) % 3 == 0 { SPEECH } else { SILENCE })
            .collect();
        room.run(200, &levels);
    }
    let gaps: Vec<u64> = room.sent.windows(2).map(|w| w[1].0 - w[0].0).collect();
    assert!(!gaps.is_empty());
    assert!(gaps.iter().all(|&g| g >= 330), "{gaps:?}");
}

#[test]
fn someone_who_leaves_is_forgotten() {
    let mut room = Room::new(2);
    room.run(3000, &[SPEECH, SILENCE]);
    room.people.remove(0);
    room.run(1000, &[SILENCE]);
    assert_eq!(room.detector.dominant(), None);
    assert!(room.last_sent().is_empty());
}
