//! The client's `data` channel as the rest of the crate sees it: messages in through a bounded
//! queue, text out with the channel's own buffer kept short.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, Notify};
use webrtc::data_channel::data_channel_message::DataChannelMessage;
use webrtc::data_channel::RTCDataChannel;

use crate::SfuError;

/// The only label roomcast relays; a channel with another label is left unread.
pub(crate) const DATA_LABEL: &str = "data";

/// Messages a client may have waiting for its relay before more are dropped: the relay takes
/// them in microseconds, so only a flood fills this.
const INBOUND_QUEUE: usize = 64;

/// Bytes the SCTP association may hold unsent for one receiver before the relay stops writing
/// to it: past this, messages wait in (and overflow from) the receiver's bounded outbox, where
/// they are counted, instead of piling up inside webrtc-rs.
const SEND_BUFFER_HIGH: usize = 256 * 1024;

/// A message as it came off the channel.
pub(crate) struct DataMessage {
    pub(crate) data: Bytes,
    pub(crate) is_string: bool,
}

/// One client's `data` channel. Holds the channel but never the connection.
pub(crate) struct DataChannel {
    dc: Arc<RTCDataChannel>,
    drained: Arc<Notify>,
}

/// A `data` channel the client opened, with what arrives on it.
pub(crate) struct OpenedChannel {
    pub(crate) channel: DataChannel,
    pub(crate) inbound: mpsc::Receiver<DataMessage>,
    /// Messages that found the inbound queue full, counted when the relay next looks.
    pub(crate) overflow: Arc<std::sync::atomic::AtomicU64>,
}

impl DataChannel {
    /// Takes over a channel the client opened: its messages go to the returned queue from the
    /// first one on (webrtc-rs starts reading only after this returns).
    pub(crate) async fn accept(dc: Arc<RTCDataChannel>) -> OpenedChannel {
        use std::sync::atomic::{AtomicU64, Ordering};
        let (tx, inbound) = mpsc::channel(INBOUND_QUEUE);
        let overflow = Arc::new(AtomicU64::new(0));
        let overflowed = Arc::clone(&overflow);
        dc.on_message(Box::new(move |message: DataChannelMessage| {
            let message = DataMessage {
                data: message.data,
                is_string: message.is_string,
            };
            if tx.try_send(message).is_err() {
                overflowed.fetch_add(1, Ordering::Relaxed);
            }
            Box::pin(async {})
        }));
        let drained = Arc::new(Notify::new());
        let notify = Arc::clone(&drained);
        dc.set_buffered_amount_low_threshold(SEND_BUFFER_HIGH / 2)
            .await;
        dc.on_buffered_amount_low(Box::new(move || {
            notify.notify_one();
            Box::pin(async {})
        }))
        .await;
        OpenedChannel {
            channel: DataChannel { dc, drained },
            inbound,
            overflow,
        }
    }

    /// Sends one text message, first waiting while the channel holds more than it should unsent.
    pub(crate) async fn send_text(&self, text: &str) -> Result<(), SfuError> {
        while self.dc.buffered_amount().await > SEND_BUFFER_HIGH {
            // The notification is the fast path; the timeout covers one that fired between the
            // check and the wait.
            let _ = tokio::time::timeout(Duration::from_millis(100), self.drained.notified()).await;
        }
        self.dc
            .send_text(text.to_owned())
            .await
            .map(|_| ())
            .map_err(|e| SfuError::WebRtc(e.to_string()))
    }
}
