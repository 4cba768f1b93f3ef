//! The registry of rooms and the entry point for joining one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use tokio::sync::mpsc;

use crate::data::relay;
use crate::ids::{DisplayName, ParticipantId, RoomId};
use crate::limits::Seats;
use crate::participant::{Inboxes, Membership, Participant, ParticipantHandle};
use crate::peer::PeerFactory;
use crate::presence::Presence;
use crate::recording::{Catalog, DeleteError, RecordingError, RecordingFile};
use crate::room::{Admission, Names, Room};
use crate::stats::{Counters, RoomReport, Totals};
use crate::{
    Grants, IceServer, JoinError, LeaveReason, ParticipantInfo, ServerEvent, SfuConfig, SfuError,
};

/// The media plane: cheap to clone, shared by every connection.
#[derive(Clone)]
pub struct Sfu {
    inner: Arc<SfuInner>,
}

pub(crate) struct SfuInner {
    pub(crate) config: SfuConfig,
    factory: PeerFactory,
    rooms: DashMap<RoomId, Arc<Room>>,
    /// Rooms in the registry: counted apart so the `max_rooms` check and the insert are one step
    /// (`DashMap::len` would lock every shard, the entry's included).
    open_rooms: AtomicUsize,
    seats: Seats,
    pub(crate) counters: Arc<Counters>,
}

/// A successful join: the handle to signal through and what the client must be told.
pub struct Joined {
    pub handle: ParticipantHandle,
    pub room: RoomId,
    pub id: ParticipantId,
    pub participants: Vec<ParticipantInfo>,
    pub ice_servers: Vec<IceServer>,
}

impl Sfu {
    pub fn new(config: SfuConfig) -> Result<Self, SfuError> {
        let factory = PeerFactory::new(&config)?;
        let interrupted = Catalog::new(config.recordings_dir.clone()).recover();
        if interrupted > 0 {
            tracing::warn!(files = interrupted, dir = %config.recordings_dir.display(), "recordings interrupted by the server's last stop marked as such");
        }
        Ok(Self {
            inner: Arc::new(SfuInner {
                config,
                factory,
                rooms: DashMap::new(),
                open_rooms: AtomicUsize::new(0),
                seats: Seats::default(),
                counters: Arc::default(),
            }),
        })
    }

    pub fn config(&self) -> &SfuConfig {
        &self.inner.config
    }

    /// Joins (creating if need be) a room with every right. Events for the client arrive on
    /// `events` until a [`ServerEvent::Left`]; dropping the handle leaves the room.
    pub async fn join(
        &self,
        room: &str,
        name: Option<&str>,
        events: mpsc::Sender<ServerEvent>,
    ) -> Result<Joined, JoinError> {
        self.join_with(room, name, Grants::ALL, events).await
    }

    /// Joins a room with the given rights (see [`Sfu::join`]).
    pub async fn join_with(
        &self,
        room: &str,
        name: Option<&str>,
        grants: Grants,
        events: mpsc::Sender<ServerEvent>,
    ) -> Result<Joined, JoinError> {
        self.join_named(room, name, grants, Names::MayRepeat, events)
            .await
    }

    /// Joins a room under an identity that is the participant's alone (a room token's subject):
    /// whoever is in the room under it already is removed with [`LeaveReason::DuplicateIdentity`].
    pub async fn join_as(
        &self,
        room: &str,
        identity: &str,
        grants: Grants,
        events: mpsc::Sender<ServerEvent>,
    ) -> Result<Joined, JoinError> {
        self.join_named(room, Some(identity), grants, Names::Unique, events)
            .await
    }

    async fn join_named(
        &self,
        room: &str,
        name: Option<&str>,
        grants: Grants,
        names: Names,
        events: mpsc::Sender<ServerEvent>,
    ) -> Result<Joined, JoinError> {
        let room_id = RoomId::parse(room).ok_or(JoinError::InvalidRoom)?;
        let name = DisplayName::parse(name).ok_or(JoinError::InvalidName)?;
        let limits = &self.inner.config.limits;
        let seat = self
            .inner
            .seats
            .take(limits.max_participants)
            .ok_or(JoinError::ServerFull {
                max: limits.max_participants,
            })?;
        let info = ParticipantInfo::new(ParticipantId::random(), name);
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let presence = Arc::new(Presence::new());
        let (room, participants) = loop {
            let Some(room) = self.room_entry(&room_id) else {
                return Err(JoinError::TooManyRooms {
                    max: limits.max_rooms,
                });
            };
            match room.admit_as(info.clone(), commands.clone(), Arc::clone(&presence), names) {
                Admission::Admitted(others) => break (room, others),
                Admission::Full => {
                    return Err(JoinError::Full {
                        capacity: room.capacity(),
                    });
                }
                Admission::Closed => self.inner.forget_room(&room),
            }
        };
        let (outbox, data) = relay::outbox();
        room.open_data(&info.id, outbox);
        // The PeerConnection, the dear part of a join, is built only once the room has let the
        // participant in: a full room or server costs nothing. Until the participant's task runs,
        // what the room sends it waits in its command queue.
        let (peer_events, peer_events_rx) = mpsc::unbounded_channel();
        let (transport, transport_rx) = mpsc::unbounded_channel();
        let peer = match self.inner.factory.create(peer_events, transport).await {
            Ok(peer) => peer,
            Err(error) => {
                if room.remove(&info.id) {
                    self.inner.forget_room(&room);
                }
                return Err(error.into());
            }
        };
        let id = info.id.clone();
        let ice_servers = self
            .inner
            .config
            .ice_servers
            .for_participant(&id, std::time::SystemTime::now());
        let handle = Participant::spawn(
            info,
            Membership { room, grants, seat },
            Arc::clone(&self.inner),
            presence,
            peer,
            events,
            Inboxes {
                commands: commands_rx,
                peer_events: peer_events_rx,
                transport: transport_rx,
                data,
            },
        );
        Ok(Joined {
            handle,
            room: room_id,
            id,
            participants,
            ice_servers,
        })
    }

    /// Every room, in id order.
    pub fn rooms(&self) -> Vec<RoomReport> {
        let mut rooms: Vec<_> = self.rooms_now().iter().map(|r| r.report()).collect();
        rooms.sort_by(|a, b| a.id.cmp(&b.id));
        rooms
    }

    /// The ids of the rooms open now, without building their reports.
    pub fn room_ids(&self) -> Vec<RoomId> {
        self.rooms_now().iter().map(|r| r.id.clone()).collect()
    }

    pub fn room(&self, id: &str) -> Option<RoomReport> {
        self.find(id).map(|r| r.report())
    }

    /// Removes one participant, who is told it was kicked. False if no such room or participant.
    pub fn kick(&self, room: &str, participant: &str) -> bool {
        let Some(room) = self.find(room) else {
            return false;
        };
        room.participants()
            .into_iter()
            .find(|p| p.id.as_str() == participant)
            .is_some_and(|p| room.remove_member(&p.id, LeaveReason::Kicked))
    }

    /// Removes everyone from a room, telling them it was closed. False if no such room.
    pub fn close_room(&self, room: &str) -> bool {
        let Some(room) = self.find(room) else {
            return false;
        };
        room.remove_all(LeaveReason::RoomClosed);
        true
    }

    /// Gives a room up to another node of a cluster that claimed it meanwhile: everyone is told
    /// to join again (`LeaveReason::Moved`), which lands them in the room where it lives now.
    pub fn hand_over_room(&self, room: &str) -> bool {
        let Some(room) = self.find(room) else {
            return false;
        };
        room.remove_all(LeaveReason::Moved);
        true
    }

    /// Whether a room of that id is open here.
    pub fn has_room(&self, room: &str) -> bool {
        self.find(room).is_some()
    }

    pub fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        self.inner.counters.add_to(&mut totals);
        for room in self.rooms_now() {
            room.count_into(&mut totals);
        }
        totals
    }

    /// The rooms at this moment, without holding the registry's shards while reading them.
    fn rooms_now(&self) -> Vec<Arc<Room>> {
        self.inner
            .rooms
            .iter()
            .map(|r| Arc::clone(r.value()))
            .collect()
    }

    fn find(&self, id: &str) -> Option<Arc<Room>> {
        self.find_id(&RoomId::parse(id)?)
    }

    fn find_id(&self, id: &RoomId) -> Option<Arc<Room>> {
        self.inner.rooms.get(id).map(|r| Arc::clone(r.value()))
    }

    /// The room with this id, opened if need be; `None` when opening it would pass the limit.
    fn room_entry(&self, id: &RoomId) -> Option<Arc<Room>> {
        if let Some(room) = self.find_id(id) {
            return Some(room);
        }
        let max = self.inner.config.limits.max_rooms;
        match self.inner.rooms.entry(id.clone()) {
            Entry::Occupied(room) => Some(Arc::clone(room.get())),
            Entry::Vacant(vacant) => {
                self.inner
                    .open_rooms
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                        (n < max).then_some(n + 1)
                    })
                    .ok()?;
                let room = Room::open(id.clone(), self.inner.config.room_capacity);
                Some(Arc::clone(vacant.insert(room).value()))
            }
        }
    }

    /// Starts recording a room (see [`RecordingFile`] for what it writes).
    pub fn start_recording(&self, room: &str) -> Result<(), RecordingError> {
        let found = self
            .find(room)
            .ok_or_else(|| RecordingError::NoSuchRoom(room.to_owned()))?;
        // Said now rather than by the first file: a directory that cannot be made fails here.
        let dir = &self.inner.config.recordings_dir;
        std::fs::create_dir_all(dir)
            .map_err(|e| RecordingError::Unwritable(format!("{}: {e}", dir.display())))?;
        found.start_recording(Catalog::new(dir.clone()))
    }

    /// Stops a room's recording; each participant's file is closed.
    pub fn stop_recording(&self, room: &str) -> Result<(), RecordingError> {
        let found = self
            .find(room)
            .ok_or_else(|| RecordingError::NoSuchRoom(room.to_owned()))?;
        found.stop_recording()
    }

    /// Whether a room is being recorded.
    pub fn is_recording(&self, room: &str) -> bool {
        self.find(room).is_some_and(|r| r.is_recording())
    }

    /// Every recording file, newest first.
    pub fn recordings(&self) -> Vec<RecordingFile> {
        self.catalog().list()
    }

    /// One recording and where its file is, if `id` names one.
    pub fn recording(&self, id: &str) -> Option<(RecordingFile, std::path::PathBuf)> {
        let catalog = self.catalog();
        let file = catalog.read(id)?;
        let path = catalog.media_path(id);
        Some((file, path))
    }

    /// Deletes a recording that is no longer being written.
    pub fn delete_recording(&self, id: &str) -> Result<(), DeleteError> {
        self.catalog().delete(id)
    }

    fn catalog(&self) -> Catalog {
        Catalog::new(self.inner.config.recordings_dir.clone())
    }

    /// Participants on the server now.
    pub fn participant_count(&self) -> usize {
        self.inner.seats.taken()
    }

    /// Tells every participant the server is going away and removes them; resolves once every
    /// room is gone and every recording file closed, or `grace` has passed. Joins after this still work (the caller stops
    /// accepting connections first).
    pub async fn shutdown(&self, grace: std::time::Duration) {
        for room in self.rooms_now() {
            room.remove_all(LeaveReason::ServerShutdown);
        }
        let deadline = tokio::time::Instant::now() + grace;
        while self.inner.seats.taken() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // Recordings end with their rooms: let each file get its duration and cues.
        while crate::recording::open_recorders() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

impl SfuInner {
    /// Drops a closed room from the registry, unless a fresh room already took its id.
    pub(crate) fn forget_room(&self, room: &Arc<Room>) {
        if self
            .rooms
            .remove_if(&room.id, |_, r| Arc::ptr_eq(r, room))
            .is_some()
        {
            self.open_rooms.fetch_sub(1, Ordering::AcqRel);
        }
    }
}
