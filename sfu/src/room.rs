//! A room: who is in it and what each member publishes.
//!
//! The state sits behind one lock taken only on join, publish and leave, never per packet, and
//! never across an `.await`. Members are told of changes through their unbounded command
//! channels, so the room never waits on a member.

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;

use crate::data::DataCounters;
use crate::ids::{ParticipantId, RoomId};
use crate::peer::MediaKind;
use crate::presence::Presence;
use crate::publication::Publication;
use crate::recording::{Catalog, RecordingError, RoomRecorder};
use crate::speakers::{Sample, Speaker, SpeakerDetector};
use crate::stats::{ParticipantReport, RoomReport, Totals};
use crate::{LeaveReason, ParticipantInfo};

/// What a room tells one of its members.
pub(crate) enum RoomCommand {
    PeerJoined(ParticipantInfo),
    /// A member's state changed (sent to every member, the one it is about included).
    PeerUpdated(ParticipantInfo),
    PeerLeft(ParticipantId),
    Subscribe(Arc<Publication>),
    Unsubscribe(String),
    /// Who speaks now (dominant speaker first), and who holds the floor.
    Speakers {
        speakers: Vec<Speaker>,
        dominant: Option<ParticipantId>,
    },
    /// Leave now, for this reason.
    Remove(LeaveReason),
    /// The room is being recorded now, or no longer.
    Recording(bool),
}

/// How often a room looks at its participants' audio levels.
const SPEAKER_TICK: Duration = Duration::from_millis(100);

/// Whether a name may be in a room twice. With room tokens the name is the token's identity,
/// and a second join with it replaces the first (a reload, another device).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Names {
    MayRepeat,
    Unique,
}

pub(crate) enum Admission {
    /// In, with the members already there.
    Admitted(Vec<ParticipantInfo>),
    Full,
    /// The room emptied and is being dropped; join a fresh one.
    Closed,
}

pub(crate) struct Room {
    pub(crate) id: RoomId,
    pub(crate) created: SystemTime,
    capacity: usize,
    state: Mutex<RoomState>,
}

#[derive(Default)]
struct RoomState {
    closed: bool,
    members: Vec<Member>,
    /// The speaker list last sent, and who held the floor then: a newcomer gets it on arrival.
    speakers: Vec<Speaker>,
    dominant: Option<ParticipantId>,
    /// Set while the room is being recorded.
    recording: Option<RoomRecorder>,
}

struct Member {
    info: ParticipantInfo,
    commands: mpsc::UnboundedSender<RoomCommand>,
    /// Where data channel messages for this member go, once its channel is open.
    data: Option<mpsc::Sender<Arc<str>>>,
    presence: Arc<Presence>,
    publications: Vec<Arc<Publication>>,
}

impl Room {
    /// A room with its speaker detection running; the detection ends when the room goes.
    pub(crate) fn open(id: RoomId, capacity: usize) -> Arc<Self> {
        let room = Arc::new(Self::new(id, capacity));
        let span = tracing::info_span!("room", room = %room.id);
        tokio::spawn(tracing::Instrument::instrument(
            detect_speakers(Arc::downgrade(&room)),
            span,
        ));
        room
    }

    pub(crate) fn new(id: RoomId, capacity: usize) -> Self {
        Self {
            id,
            created: SystemTime::now(),
            capacity,
            state: Mutex::default(),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Lets a participant in, telling the others and subscribing the newcomer to what they publish.
    #[cfg(test)]
    pub(crate) fn admit(
        &self,
        info: ParticipantInfo,
        commands: mpsc::UnboundedSender<RoomCommand>,
        presence: Arc<Presence>,
    ) -> Admission {
        self.admit_as(info, commands, presence, Names::MayRepeat)
    }

    /// Lets a participant in, telling the others and subscribing the newcomer to what they
    /// publish. With [`Names::Unique`], members with the newcomer's name are asked to
    /// leave (and make no room full meanwhile).
    pub(crate) fn admit_as(
        &self,
        info: ParticipantInfo,
        commands: mpsc::UnboundedSender<RoomCommand>,
        presence: Arc<Presence>,
        names: Names,
    ) -> Admission {
        let mut state = self.lock();
        if state.closed {
            return Admission::Closed;
        }
        let replaced: Vec<&Member> = match names {
            Names::MayRepeat => Vec::new(),
            Names::Unique => state
                .members
                .iter()
                .filter(|m| m.info.name == info.name)
                .collect(),
        };
        if state.members.len() - replaced.len() >= self.capacity {
            return Admission::Full;
        }
        for member in replaced {
            let _ = member
                .commands
                .send(RoomCommand::Remove(LeaveReason::DuplicateIdentity));
        }
        for member in &state.members {
            let _ = member.commands.send(RoomCommand::PeerJoined(info.clone()));
            for publication in &member.publications {
                let _ = commands.send(RoomCommand::Subscribe(Arc::clone(publication)));
            }
        }
        let others = state.members.iter().map(|m| m.info.clone()).collect();
        if state.recording.is_some() {
            let _ = commands.send(RoomCommand::Recording(true));
        }
        if !state.speakers.is_empty() {
            // The list goes out only when it changes: a newcomer learns the current one now.
            let _ = commands.send(RoomCommand::Speakers {
                speakers: state.speakers.clone(),
                dominant: state.dominant.clone(),
            });
        }
        state.members.push(Member {
            info,
            commands,
            data: None,
            presence,
            publications: Vec::new(),
        });
        Admission::Admitted(others)
    }

    /// Records a member's new track and subscribes every other member to it.
    pub(crate) fn publish(&self, publisher: &ParticipantId, publication: Arc<Publication>) {
        let mut state = self.lock();
        let state = &mut *state;
        for member in &mut state.members {
            if &member.info.id == publisher {
                if let Some(recorder) = &state.recording {
                    recorder.publish(&member.info, &publication);
                }
                member.publications.push(Arc::clone(&publication));
            } else {
                let _ = member
                    .commands
                    .send(RoomCommand::Subscribe(Arc::clone(&publication)));
            }
        }
    }

    /// Records a member's new state and tells every member, that one included.
    pub(crate) fn update(&self, info: &ParticipantInfo) {
        let mut state = self.lock();
        for member in &mut state.members {
            if member.info.id == info.id {
                member.info = info.clone();
            }
            let _ = member.commands.send(RoomCommand::PeerUpdated(info.clone()));
        }
    }

    /// Forgets a member's track that ended and unsubscribes every other member from it, so late
    /// joiners are not subscribed to it either.
    pub(crate) fn unpublish(&self, publisher: &ParticipantId, publication_id: &str) {
        let mut state = self.lock();
        if let Some(recorder) = &state.recording {
            recorder.unpublish(publisher, publication_id);
        }
        for member in &mut state.members {
            if &member.info.id == publisher {
                member.publications.retain(|p| p.id != publication_id);
            } else {
                let _ = member
                    .commands
                    .send(RoomCommand::Unsubscribe(publication_id.to_owned()));
            }
        }
    }

    /// Takes a member out, unsubscribing the others from its tracks. Returns true when the room is
    /// now empty; it is then closed for good and must be dropped from the registry.
    pub(crate) fn remove(&self, id: &ParticipantId) -> bool {
        let mut state = self.lock();
        if let Some(pos) = state.members.iter().position(|m| &m.info.id == id) {
            let gone = state.members.remove(pos);
            if let Some(recorder) = &state.recording {
                recorder.left(id);
            }
            for member in &state.members {
                for publication in &gone.publications {
                    let _ = member
                        .commands
                        .send(RoomCommand::Unsubscribe(publication.id.clone()));
                }
                let _ = member.commands.send(RoomCommand::PeerLeft(id.clone()));
            }
        }
        state.closed = state.members.is_empty();
        if state.closed {
            // A recording ends with its room.
            state.recording = None;
        }
        state.closed
    }

    /// Gives a member its data outbox (at its join, and again for a channel it reopened).
    pub(crate) fn open_data(&self, id: &ParticipantId, outbox: mpsc::Sender<Arc<str>>) {
        let mut state = self.lock();
        if let Some(member) = state.members.iter_mut().find(|m| &m.info.id == id) {
            member.data = Some(outbox);
        }
    }

    /// Hands a data channel message to the outbox of each member it is for: `to` by id, or
    /// everyone else. Never back to its sender, and nothing from someone no longer a member. A
    /// full outbox drops that member's copy alone.
    pub(crate) fn relay_data(
        &self,
        from: &ParticipantId,
        to: Option<&[String]>,
        message: &Arc<str>,
        counters: &DataCounters,
    ) {
        let state = self.lock();
        if !state.members.iter().any(|m| &m.info.id == from) {
            return;
        }
        let recipients = state.members.iter().filter(|m| {
            &m.info.id != from && to.is_none_or(|to| to.iter().any(|id| id == m.info.id.as_str()))
        });
        for outbox in recipients.filter_map(|m| m.data.as_ref()) {
            let counter = match outbox.try_send(Arc::clone(message)) {
                Ok(()) => &counters.delivered,
                Err(mpsc::error::TrySendError::Full(_)) => &counters.dropped,
                Err(mpsc::error::TrySendError::Closed(_)) => continue,
            };
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Starts recording every member's camera and microphone into `catalog`'s directory, and
    /// tells the members.
    pub(crate) fn start_recording(
        self: &Arc<Self>,
        catalog: Catalog,
    ) -> Result<(), RecordingError> {
        let mut state = self.lock();
        if state.closed {
            return Err(RecordingError::NoSuchRoom(self.id.as_str().to_owned()));
        }
        if state.recording.is_some() {
            return Err(RecordingError::AlreadyRecording(
                self.id.as_str().to_owned(),
            ));
        }
        let recorder =
            RoomRecorder::start(catalog, Arc::downgrade(self), self.id.as_str().to_owned());
        for member in &state.members {
            for publication in &member.publications {
                recorder.publish(&member.info, publication);
            }
            let _ = member.commands.send(RoomCommand::Recording(true));
        }
        state.recording = Some(recorder);
        Ok(())
    }

    /// Stops the recording (each file is closed) and tells the members.
    pub(crate) fn stop_recording(&self) -> Result<(), RecordingError> {
        let mut state = self.lock();
        if state.recording.take().is_none() {
            return Err(RecordingError::NotRecording(self.id.as_str().to_owned()));
        }
        for member in &state.members {
            let _ = member.commands.send(RoomCommand::Recording(false));
        }
        Ok(())
    }

    /// The recording stopped itself on a write error: the members are told it is off.
    pub(crate) fn recording_failed(&self, _error: String) {
        let _ = self.stop_recording();
    }

    pub(crate) fn is_recording(&self) -> bool {
        self.lock().recording.is_some()
    }

    /// Every member's voice now: the loudest of its audio tracks.
    fn voices(&self, now: Instant) -> Vec<Sample> {
        let state = self.lock();
        state
            .members
            .iter()
            .map(|m| {
                let (activity, loudness) = m
                    .publications
                    .iter()
                    .filter(|p| p.kind == MediaKind::Audio)
                    .map(|p| p.voice(now))
                    .fold((0.0f32, 0.0f32), |a, v| (a.0.max(v.0), a.1.max(v.1)));
                Sample {
                    participant: m.info.id.clone(),
                    activity,
                    loudness,
                    muted: m.info.audio_muted,
                }
            })
            .collect()
    }

    fn tell_speakers(&self, speakers: &[Speaker], dominant: Option<&ParticipantId>) {
        let mut state = self.lock();
        state.speakers = speakers.to_vec();
        state.dominant = dominant.cloned();
        for member in &state.members {
            let _ = member.commands.send(RoomCommand::Speakers {
                speakers: speakers.to_vec(),
                dominant: dominant.cloned(),
            });
        }
    }

    fn is_closed(&self) -> bool {
        self.lock().closed
    }

    pub(crate) fn participants(&self) -> Vec<ParticipantInfo> {
        self.lock().members.iter().map(|m| m.info.clone()).collect()
    }

    /// Asks one member to leave; false if no such member.
    pub(crate) fn remove_member(&self, id: &ParticipantId, reason: LeaveReason) -> bool {
        let state = self.lock();
        let member = state.members.iter().find(|m| &m.info.id == id);
        member.is_some_and(|m| m.commands.send(RoomCommand::Remove(reason)).is_ok())
    }

    /// Asks every member to leave.
    pub(crate) fn remove_all(&self, reason: LeaveReason) {
        for member in &self.lock().members {
            let _ = member.commands.send(RoomCommand::Remove(reason));
        }
    }

    pub(crate) fn report(&self) -> RoomReport {
        let state = self.lock();
        let participants = state
            .members
            .iter()
            .map(|m| ParticipantReport {
                id: m.info.id.clone(),
                name: m.info.name.clone(),
                joined: m.presence.joined,
                connection: m.presence.connection(),
                candidate_pair: m.presence.candidate_pair(),
                downlink_bps: m.presence.downlink(),
                published: m.publications.iter().map(|p| p.report()).collect(),
                forwarded: m.presence.forwarded(),
            })
            .collect();
        RoomReport {
            id: self.id.clone(),
            created: self.created,
            participants,
            recording: state.recording.is_some(),
        }
    }

    pub(crate) fn count_into(&self, totals: &mut Totals) {
        let state = self.lock();
        totals.rooms += 1;
        for member in &state.members {
            totals.participants += 1;
            totals.published_tracks += member.publications.len() as u64;
            totals.forwarded_tracks += member.presence.forwarded_count() as u64;
        }
    }

    fn lock(&self) -> MutexGuard<'_, RoomState> {
        // No code path panics while holding the lock, but a poisoned room must still be leavable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The room's speaker detection: the one owner of its [`SpeakerDetector`], reading levels every
/// [`SPEAKER_TICK`] and telling everyone when the speakers change. Holds the room weakly, so a
/// room no one holds any more ends it.
async fn detect_speakers(room: Weak<Room>) {
    let mut detector = SpeakerDetector::default();
    let mut tick = tokio::time::interval(SPEAKER_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(room) = room.upgrade().filter(|r| !r.is_closed()) else {
            return;
        };
        let now = Instant::now();
        if let Some(speakers) = detector.tick(now, &room.voices(now)) {
            room.tell_speakers(&speakers, detector.dominant());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::DisplayName;

    fn person(name: &str) -> ParticipantInfo {
        ParticipantInfo::new(
            ParticipantId::random(),
            DisplayName::parse(Some(name)).unwrap(),
        )
    }

    fn room(capacity: usize) -> Room {
        Room::new(RoomId::parse("r").unwrap(), capacity)
    }

    fn admit(room: &Room, who: &ParticipantInfo) -> mpsc::UnboundedReceiver<RoomCommand> {
        let (tx, rx) = mpsc::unbounded_channel();
        match room.admit(who.clone(), tx, Arc::new(Presence::new())) {
            Admission::Admitted(_) => rx,
            _ => panic!("not admitted"),
        }
    }

    #[test]
    fn a_newcomer_learns_who_is_there_and_the_others_learn_of_the_newcomer() {
        let room = room(4);
        let (ada, bob) = (person("Ada"), person("Bob"));
        let mut ada_rx = admit(&room, &ada);
        let (tx, _rx) = mpsc::unbounded_channel();
        let Admission::Admitted(others) = room.admit(bob.clone(), tx, Arc::new(Presence::new()))
        else {
            panic!()
        };
        assert_eq!(others, vec![ada.clone()]);
        assert!(matches!(ada_rx.try_recv(), Ok(RoomCommand::PeerJoined(p)) if p == bob));
    }

    #[test]
    fn a_newcomer_is_told_who_is_speaking_without_waiting_for_a_change() {
        let room = room(4);
        let ada = person("Ada");
        let _ada_rx = admit(&room, &ada);
        let speaking = vec![Speaker {
            id: ada.id.clone(),
            level: 0.5,
        }];
        room.tell_speakers(&speaking, Some(&ada.id));
        let mut bob_rx = admit(&room, &person("Bob"));
        assert!(matches!(
            bob_rx.try_recv(),
            Ok(RoomCommand::Speakers { speakers, dominant })
                if speakers == speaking && dominant == Some(ada.id.clone())
        ));
    }

    #[test]
    fn a_unique_name_replaces_its_holder_even_in_a_full_room() {
        let room = room(2);
        let mut first = admit(&room, &person("Ada"));
        let _other = admit(&room, &person("Bob"));
        let (tx, _rx) = mpsc::unbounded_channel();
        let again = room.admit_as(person("Ada"), tx, Arc::new(Presence::new()), Names::Unique);
        assert!(matches!(again, Admission::Admitted(_)));
        let told = std::iter::from_fn(|| first.try_recv().ok())
            .any(|c| matches!(c, RoomCommand::Remove(LeaveReason::DuplicateIdentity)));
        assert!(told, "the first holder of the name is asked to leave");
        let (tx, _rx) = mpsc::unbounded_channel();
        assert!(matches!(
            room.admit_as(person("Cy"), tx, Arc::new(Presence::new()), Names::Unique),
            Admission::Full
        ));
    }

    #[test]
    fn one_past_capacity_is_full() {
        let room = room(2);
        let _a = admit(&room, &person("a"));
        let _b = admit(&room, &person("b"));
        let (tx, _rx) = mpsc::unbounded_channel();
        assert!(matches!(
            room.admit(person("c"), tx, Arc::new(Presence::new())),
            Admission::Full
        ));
    }

    #[test]
    fn leaving_tells_the_others_and_the_last_one_out_closes_the_room() {
        let room = room(4);
        let (ada, bob) = (person("Ada"), person("Bob"));
        let _ada_rx = admit(&room, &ada);
        let mut bob_rx = admit(&room, &bob);
        assert!(!room.remove(&ada.id));
        assert!(matches!(bob_rx.try_recv(), Ok(RoomCommand::PeerLeft(id)) if id == ada.id));
        assert!(room.remove(&bob.id));
        let (tx, _rx) = mpsc::unbounded_channel();
        assert!(matches!(
            room.admit(person("c"), tx, Arc::new(Presence::new())),
            Admission::Closed
        ));
    }

    #[test]
    fn an_operator_can_ask_one_member_or_all_to_leave() {
        let room = room(4);
        let (ada, bob) = (person("Ada"), person("Bob"));
        let mut ada_rx = admit(&room, &ada);
        let mut bob_rx = admit(&room, &bob);
        let _ = ada_rx.try_recv(); // Bob's arrival
        assert!(room.remove_member(&bob.id, LeaveReason::Kicked));
        assert!(matches!(
            bob_rx.try_recv(),
            Ok(RoomCommand::Remove(LeaveReason::Kicked))
        ));
        assert!(ada_rx.try_recv().is_err(), "only Bob is asked");
        assert!(!room.remove_member(&person("Nobody").id, LeaveReason::Kicked));
        room.remove_all(LeaveReason::RoomClosed);
        assert!(matches!(
            ada_rx.try_recv(),
            Ok(RoomCommand::Remove(LeaveReason::RoomClosed))
        ));
        assert!(matches!(
            bob_rx.try_recv(),
            Ok(RoomCommand::Remove(LeaveReason::RoomClosed))
        ));
    }

    #[test]
    fn reports_and_totals_list_every_member() {
        let room = room(4);
        let (ada, bob) = (person("Ada"), person("Bob"));
        let _a = admit(&room, &ada);
        let _b = admit(&room, &bob);
        let report = room.report();
        let names: Vec<_> = report
            .participants
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(names, ["Ada", "Bob"]);
        let mut totals = Totals::default();
        room.count_into(&mut totals);
        assert_eq!((totals.rooms, totals.participants), (1, 2));
    }

    #[test]
    fn removing_twice_is_harmless() {
        let room = room(4);
        let ada = person("Ada");
        let _rx = admit(&room, &ada);
        assert!(room.remove(&ada.id));
        assert!(room.remove(&ada.id));
        assert!(room.participants().is_empty());
    }
}
