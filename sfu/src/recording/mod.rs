//! Recording a room: one WebM file (VP8 + Opus) per participant, written as packets arrive.
//!
//! A room being recorded holds a [`RoomRecorder`]: the handle to the task that owns one
//! participant recorder per member (`participant.rs`), told by the room of every track published
//! or ended and of every member who leaves. A participant recorder taps its tracks like one more
//! subscription, so recording adds nothing to the per-packet path. The first write error (a full
//! disk) ends the whole room's recording; the room's media goes on.

mod assembler;
mod catalog;
mod clock;
mod participant;
mod timeline;
mod webm_file;

pub(crate) use catalog::Catalog;
pub use catalog::{DeleteError, RecordingFile};
pub(crate) use participant::open_recorders;

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use tokio::sync::mpsc;

use crate::ids::ParticipantId;
use crate::publication::Publication;
use crate::room::Room;
use crate::ParticipantInfo;

/// Why a recording could not go on.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{0}")]
    Io(std::io::Error),
    #[error("the WebM muxer refused: {0}")]
    Mux(String),
}

/// Why a room's recording could not be started or stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordingError {
    #[error("no room {0:?}")]
    NoSuchRoom(String),
    #[error("room {0:?} is already being recorded")]
    AlreadyRecording(String),
    #[error("room {0:?} is not being recorded")]
    NotRecording(String),
    #[error("the recordings directory cannot be written: {0}")]
    Unwritable(String),
}

enum Order {
    Publish(ParticipantInfo, Arc<Publication>),
    Unpublish(ParticipantId, String),
    Left(ParticipantId),
}

/// A room's recording in progress; dropping it stops the recording (each file is closed).
pub(crate) struct RoomRecorder {
    commands: mpsc::UnboundedSender<Order>,
}

impl RoomRecorder {
    pub(crate) fn start(catalog: Catalog, room: Weak<Room>, room_id: String) -> Self {
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let span = tracing::info_span!("recording", room = %room_id);
        tracing::info!(parent: &span, dir = %catalog.dir().display(), "recording started");
        tokio::spawn(tracing::Instrument::instrument(
            run(catalog, room, room_id, commands_rx),
            span,
        ));
        Self { commands }
    }

    pub(crate) fn publish(&self, info: &ParticipantInfo, publication: &Arc<Publication>) {
        let _ = self
            .commands
            .send(Order::Publish(info.clone(), Arc::clone(publication)));
    }

    pub(crate) fn unpublish(&self, publisher: &ParticipantId, publication_id: &str) {
        let _ = self.commands.send(Order::Unpublish(
            publisher.clone(),
            publication_id.to_owned(),
        ));
    }

    pub(crate) fn left(&self, participant: &ParticipantId) {
        let _ = self.commands.send(Order::Left(participant.clone()));
    }
}

/// The owner of a room's participant recorders.
async fn run(
    catalog: Catalog,
    room: Weak<Room>,
    room_id: String,
    mut commands: mpsc::UnboundedReceiver<Order>,
) {
    let mut recorders: HashMap<ParticipantId, mpsc::UnboundedSender<participant::Command>> =
        HashMap::new();
    let (failures, mut failed) = mpsc::unbounded_channel();
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(Order::Publish(info, publication)) => {
                    let recorder = recorders.entry(info.id.clone()).or_insert_with(|| {
                        participant::spawn(
                            participant::Settings {
                                catalog: catalog.clone(),
                                room: room_id.clone(),
                                info,
                            },
                            failures.clone(),
                        )
                    });
                    let _ = recorder.send(participant::Command::Publish(publication));
                }
                Some(Order::Unpublish(publisher, id)) => {
                    if let Some(recorder) = recorders.get(&publisher) {
                        let _ = recorder.send(participant::Command::Unpublish(id));
                    }
                }
                Some(Order::Left(id)) => {
                    // Dropping its command channel ends the participant's file.
                    recorders.remove(&id);
                }
                None => break,
            },
            Some((participant, error)) = failed.recv() => {
                tracing::error!(participant, %error, dir = %catalog.dir().display(), "recording stopped: could not write a recording file; the room goes on unrecorded");
                recorders.clear();
                if let Some(room) = room.upgrade() {
                    room.recording_failed(error.to_string());
                }
                break;
            }
        }
    }
    recorders.clear();
    tracing::info!("recording stopped");
}
