//! The two tasks between a participant's `data` channel and its room: one reads what the client
//! writes and relays it through the gate, one writes what the room hands the participant's
//! outbox. Both end when the room forgets the participant (dropping the outbox): the writer
//! first, letting go of the channel, then the reader.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

use tokio::sync::mpsc;
use tracing::Instrument;

use super::gate::DataGate;
use super::DataRejection;
use crate::peer::{DataChannel, DataMessage, OpenedChannel};
use crate::room::Room;
use crate::stats::Counters;
use crate::{ParticipantId, ServerEvent, SignalError};

/// Messages waiting for one receiver before more for it are dropped (and counted): at the
/// largest size that is 4 MiB, and a receiver that far behind is not reading.
pub(crate) const OUTBOX: usize = 256;

/// Who reads a channel, and where refusals and figures go.
pub(crate) struct Reader {
    pub(crate) id: ParticipantId,
    pub(crate) gate: DataGate,
    pub(crate) room: Weak<Room>,
    pub(crate) events: mpsc::Sender<ServerEvent>,
    pub(crate) counters: Arc<Counters>,
}

/// A participant's outbox in its room, made when it joins so that what is written to it before
/// its channel is up waits (up to [`OUTBOX`] messages) instead of being lost.
pub(crate) fn outbox() -> (mpsc::Sender<Arc<str>>, mpsc::Receiver<Arc<str>>) {
    mpsc::channel(OUTBOX)
}

/// Starts both tasks on a newly opened channel. `outgoing` is the participant's outbox from its
/// join; a channel opened again gets a new outbox in the room instead (the old one went with the
/// first channel's writer).
pub(crate) fn start(
    opened: OpenedChannel,
    outgoing: Option<mpsc::Receiver<Arc<str>>>,
    room: &Room,
    reader: Reader,
) {
    let OpenedChannel {
        channel,
        inbound,
        overflow,
    } = opened;
    let outgoing = outgoing.unwrap_or_else(|| {
        let (outbox, outgoing) = outbox();
        room.open_data(&reader.id, outbox);
        outgoing
    });
    tracing::debug!("data channel open");
    // The reader ends with the writer: webrtc-rs keeps the channel's message handler (and with
    // it the reader's queue) as long as anything holds the channel, which need not end when the
    // participant does.
    let (writing, written) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(read(reader, inbound, overflow, written).in_current_span());
    tokio::spawn(write(channel, outgoing, writing).in_current_span());
}

async fn read(
    mut reader: Reader,
    mut inbound: mpsc::Receiver<DataMessage>,
    overflow: Arc<AtomicU64>,
    mut written: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        let message = tokio::select! {
            message = inbound.recv() => message,
            _ = &mut written => None,
        };
        let Some(message) = message else { break };
        let missed = overflow.swap(0, Ordering::Relaxed);
        if missed > 0 {
            reader
                .counters
                .data
                .reject(&DataRejection::RateLimited, missed);
        }
        match reader
            .gate
            .admit(Instant::now(), &message.data, message.is_string)
        {
            Ok(relay) => {
                let Some(room) = reader.room.upgrade() else {
                    break;
                };
                room.relay_data(
                    &reader.id,
                    relay.to.as_deref(),
                    &relay.message,
                    &reader.counters.data,
                );
            }
            Err(refusal) => {
                reader.counters.data.reject(&refusal.rejection, 1);
                tracing::debug!(error = %refusal.rejection, "data message refused");
                if refusal.tell {
                    let error = SignalError::Data(refusal.rejection);
                    let _ = reader.events.try_send(ServerEvent::Error(error));
                }
            }
        }
    }
}

async fn write(
    channel: DataChannel,
    mut outgoing: mpsc::Receiver<Arc<str>>,
    _writing: tokio::sync::oneshot::Sender<()>,
) {
    while let Some(text) = outgoing.recv().await {
        if let Err(error) = channel.send_text(&text).await {
            tracing::debug!(%error, "data channel closed");
            break;
        }
    }
}
