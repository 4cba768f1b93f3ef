//! The test client's `data` channel: opened before the first offer, as the page does; what
//! arrives on it is kept, and reading can be stalled to play a receiver that cannot keep up.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use webrtc::data_channel::data_channel_message::DataChannelMessage;
use webrtc::data_channel::data_channel_state::RTCDataChannelState;
use webrtc::data_channel::RTCDataChannel;
use webrtc::peer_connection::RTCPeerConnection;

pub struct ClientData {
    channel: Arc<RTCDataChannel>,
    received: Arc<Mutex<Vec<Value>>>,
    stalled: Arc<AtomicBool>,
}

impl ClientData {
    pub async fn open(pc: &RTCPeerConnection) -> Self {
        let channel = pc
            .create_data_channel("data", None)
            .await
            .expect("data channel");
        let received = Arc::new(Mutex::new(Vec::new()));
        let stalled = Arc::new(AtomicBool::new(false));
        let (into, stall) = (Arc::clone(&received), Arc::clone(&stalled));
        channel.on_message(Box::new(move |message: DataChannelMessage| {
            let text = String::from_utf8_lossy(&message.data).into_owned();
            let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            into.lock().unwrap().push(value);
            let stall = Arc::clone(&stall);
            // webrtc-rs waits for this future before it reads the next message, so a stalled
            // handler stops the reading and the association's receive window fills.
            Box::pin(async move {
                while stall.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        }));
        Self {
            channel,
            received,
            stalled,
        }
    }

    /// Writes `text` on the channel once it is open (panics if it never opens).
    pub async fn send(&self, text: &str) {
        super::eventually("the data channel to open", || async {
            self.channel.ready_state() == RTCDataChannelState::Open
        })
        .await;
        self.channel
            .send_text(text.to_owned())
            .await
            .expect("data channel send");
    }

    pub fn is_open(&self) -> bool {
        self.channel.ready_state() == RTCDataChannelState::Open
    }

    pub fn received(&self) -> Vec<Value> {
        self.received.lock().unwrap().clone()
    }

    /// Stops (or resumes) reading what arrives.
    pub fn stall(&self, stalled: bool) {
        self.stalled.store(stalled, Ordering::Relaxed);
    }
}
