//! A webrtc-rs client peer that joins a room over the real signaling protocol, publishes one Opus
//! and one VP8 track of synthetic RTP (each payload tagged with the publisher's id), answers the
//! server's renegotiations, and counts the packets it receives from each publisher.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::{MediaEngine, MIME_TYPE_OPUS, MIME_TYPE_VP8};
use webrtc::api::setting_engine::SettingEngine;
use webrtc::api::APIBuilder;
use webrtc::ice::mdns::MulticastDnsMode;
pub use webrtc::ice::network_type::NetworkType;
use webrtc::ice_transport::ice_candidate::{RTCIceCandidate, RTCIceCandidateInit};
use webrtc::ice_transport::ice_connection_state::RTCIceConnectionState;
use webrtc::interceptor::registry::Registry;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::offer_answer_options::RTCOfferOptions;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};
use webrtc::rtp::header::Header;
use webrtc::rtp::packet::Packet;
use webrtc::rtp_transceiver::rtp_codec::{RTCRtpCodecCapability, RTPCodecType};
use webrtc::track::track_local::track_local_static_rtp::TrackLocalStaticRTP;
use webrtc::track::track_local::{TrackLocal, TrackLocalWriter};
use webrtc::track::track_remote::TrackRemote;

use super::client_data::ClientData;
use super::{TestServer, Ws};

/// Packets received from one publisher, by kind. Only packets whose payload carries that
/// publisher's tag count, so a misrouted packet is not mistaken for delivery.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Received {
    pub audio: u64,
    pub video: u64,
}

type Counts = Arc<Mutex<HashMap<String, Received>>>;
/// Per publisher: the SSRC its forwarded video arrives with, and how often each sequence number
/// arrived (a retransmission arrives twice).
/// Per publisher: the video SSRC, and each sequence number's arrivals (the RTP header as it
/// came, extensions and all).
type VideoSeqs = Arc<Mutex<HashMap<String, (u32, HashMap<u16, Vec<Header>>)>>>;
type Messages = Arc<Mutex<Vec<Value>>>;

pub struct ClientPeer {
    pub id: String,
    pc: Arc<RTCPeerConnection>,
    received: Counts,
    video_seqs: VideoSeqs,
    messages: Messages,
    /// The `data` channel every client opens, as the page does.
    pub data: ClientData,
    outgoing: mpsc::UnboundedSender<Value>,
    leave: mpsc::Sender<()>,
    tasks: Vec<JoinHandle<()>>,
}

impl ClientPeer {
    /// Joins over IPv4 loopback.
    pub async fn join(server: &TestServer, room: &str, name: &str) -> Self {
        Self::join_over(server, room, name, NetworkType::Udp4).await
    }

    /// Joins with media over loopback of one address family only.
    pub async fn join_over(
        server: &TestServer,
        room: &str,
        name: &str,
        network: NetworkType,
    ) -> Self {
        let join = json!({"type": "join", "room": room, "name": name});
        Self::join_with(server, join, network).await
    }

    /// Joins the server listening at `addr` (which may be in another process).
    pub async fn join_at(
        addr: std::net::SocketAddr,
        room: &str,
        name: &str,
        network: NetworkType,
    ) -> Self {
        let join = json!({"type": "join", "room": room, "name": name});
        Self::join_on(Ws::connect(addr).await, join, network).await
    }

    /// Joins with a room access token.
    pub async fn join_with_token(server: &TestServer, room: &str, token: &str) -> Self {
        let join = json!({"type": "join", "room": room, "token": token});
        Self::join_with(server, join, NetworkType::Udp4).await
    }

    /// Sends this `join` message, then publishes and receives media.
    pub async fn join_with(server: &TestServer, join: Value, network: NetworkType) -> Self {
        Self::join_on(server.ws().await, join, network).await
    }

    /// Joins over an already open signaling connection.
    pub async fn join_on(mut ws: Ws, join: Value, network: NetworkType) -> Self {
        ws.send(join).await;
        let joined = ws.recv_type("joined").await;
        let id = joined["id"].as_str().expect("joined.id").to_owned();
        let pc = Arc::new(new_peer_connection(network).await);
        let received = Counts::default();
        let video_seqs = VideoSeqs::default();
        let (outgoing, outgoing_rx) = mpsc::unbounded_channel::<Value>();
        wire_callbacks(&pc, &received, &video_seqs, outgoing.clone());
        let outgoing_signals = outgoing.clone();

        let audio = local_track(MIME_TYPE_OPUS, 48000, 2, "audio");
        let video = local_track(MIME_TYPE_VP8, 90000, 0, "video");
        for track in [&audio, &video] {
            pc.add_track(Arc::clone(track) as Arc<dyn TrackLocal + Send + Sync>)
                .await
                .expect("add_track");
        }
        let data = ClientData::open(&pc).await;
        let offer = pc.create_offer(None).await.expect("offer");
        pc.set_local_description(offer)
            .await
            .expect("set local offer");
        let sdp = pc.local_description().await.expect("local").sdp;
        ws.send(json!({"type": "offer", "sdp": sdp})).await;

        let messages = Messages::new(Mutex::new(vec![joined]));
        let (leave, leave_rx) = mpsc::channel(1);
        let signaling = tokio::spawn(signal_loop(
            ws,
            Arc::clone(&pc),
            outgoing_rx,
            leave_rx,
            Arc::clone(&messages),
        ));
        let media = tokio::spawn(send_media(audio, video, id.clone()));
        Self {
            id,
            pc,
            received,
            video_seqs,
            messages,
            data,
            outgoing: outgoing_signals,
            leave,
            tasks: vec![signaling, media],
        }
    }

    /// Removes the published track of `kind` ("audio" or "video") and offers the change, as a
    /// browser's `removeTrack` does.
    pub async fn stop_publishing(&self, kind: &str) {
        for sender in self.pc.get_senders().await {
            let Some(track) = sender.track().await else {
                continue;
            };
            if track.kind().to_string() == kind {
                self.pc.remove_track(&sender).await.expect("remove_track");
            }
        }
        self.offer(None).await;
    }

    /// Offers again with fresh ICE credentials, as a browser's `restartIce()` does.
    pub async fn restart_ice(&self) {
        let options = RTCOfferOptions {
            ice_restart: true,
            ..Default::default()
        };
        self.offer(Some(options)).await;
    }

    /// Makes an offer, applies it and sends it to the server.
    async fn offer(&self, options: Option<RTCOfferOptions>) {
        let offer = self.pc.create_offer(options).await.expect("offer");
        self.pc
            .set_local_description(offer)
            .await
            .expect("set local offer");
        let sdp = self.pc.local_description().await.expect("local").sdp;
        let _ = self.outgoing.send(json!({"type": "offer", "sdp": sdp}));
    }

    /// Waits until ICE and DTLS are up and the data channel is open (panics after
    /// [`super::TIMEOUT`]). The data channel too: a client that vanishes during the SCTP
    /// handshake leaves webrtc-rs's INIT retransmission timer running in the server for up to
    /// five minutes (docs/decisions.md), which a leak check must not mistake for a leak.
    pub async fn wait_connected(&self) {
        super::eventually("the client's media connection to connect", || async {
            self.pc.connection_state() == RTCPeerConnectionState::Connected && self.data.is_open()
        })
        .await;
    }

    pub fn received_from(&self, publisher: &str) -> Received {
        self.received
            .lock()
            .unwrap()
            .get(publisher)
            .copied()
            .unwrap_or_default()
    }

    /// How many times the video packet `seq` from `publisher` arrived.
    pub fn times_received(&self, publisher: &str, seq: u16) -> u32 {
        let seqs = self.video_seqs.lock().unwrap();
        seqs.get(publisher)
            .map_or(0, |(_, seen)| seen.get(&seq).map_or(0, |a| a.len() as u32))
    }

    /// The RTP headers video packet `seq` from `publisher` arrived with, once per arrival.
    pub fn arrivals(&self, publisher: &str, seq: u16) -> Vec<Header> {
        let seqs = self.video_seqs.lock().unwrap();
        seqs.get(publisher)
            .and_then(|(_, seen)| seen.get(&seq).cloned())
            .unwrap_or_default()
    }

    /// Reports a video packet from `publisher` that did arrive as lost (a NACK to the server),
    /// and returns its sequence number.
    pub async fn nack_video_of(&self, publisher: &str) -> u16 {
        let (ssrc, seq) = {
            let seqs = self.video_seqs.lock().unwrap();
            let (ssrc, seen) = seqs.get(publisher).expect("video from this publisher");
            let seq = seen
                .iter()
                .filter(|(_, arrivals)| arrivals.len() == 1)
                .map(|(seq, _)| *seq)
                .max()
                .expect("a packet received once");
            (*ssrc, seq)
        };
        let nack = TransportLayerNack {
            sender_ssrc: 0,
            media_ssrc: ssrc,
            nacks: vec![NackPair {
                packet_id: seq,
                lost_packets: 0,
            }],
        };
        self.pc.write_rtcp(&[Box::new(nack)]).await.expect("NACK");
        seq
    }

    /// Sends a signaling message as it is.
    pub fn send(&self, message: Value) {
        let _ = self.outgoing.send(message);
    }

    /// Every message of type `kind` the server sent this peer, oldest first.
    pub fn messages_of(&self, kind: &str) -> Vec<Value> {
        let messages = self.messages.lock().unwrap();
        messages
            .iter()
            .filter(|m| m["type"] == kind)
            .cloned()
            .collect()
    }

    pub fn saw_leave_of(&self, participant: &str) -> bool {
        self.messages
            .lock()
            .unwrap()
            .iter()
            .any(|m| m["type"] == "participant_left" && m["id"] == participant)
    }

    /// The ICE candidates the server trickled to this peer.
    pub fn server_candidates(&self) -> Vec<String> {
        let messages = self.messages.lock().unwrap();
        messages
            .iter()
            .filter(|m| m["type"] == "candidate")
            .filter_map(|m| m["candidate"]["candidate"].as_str().map(str::to_owned))
            .collect()
    }

    /// Every `error` the server sent this peer.
    pub fn errors(&self) -> Vec<Value> {
        let messages = self.messages.lock().unwrap();
        messages
            .iter()
            .filter(|m| m["type"] == "error")
            .cloned()
            .collect()
    }

    /// Kills the media connection but keeps signaling open; resolves to what the server said
    /// afterwards, up to and including `left`.
    pub async fn kill_media(self) -> impl std::future::Future<Output = Option<Vec<Value>>> {
        let from = self.messages.lock().unwrap().len();
        let _ = self.pc.close().await;
        async move {
            let deadline = tokio::time::Instant::now() + super::TIMEOUT;
            while tokio::time::Instant::now() < deadline {
                let after: Vec<Value> = self.messages.lock().unwrap()[from..].to_vec();
                if after.iter().any(|m| m["type"] == "left") {
                    self.close().await;
                    return Some(after);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            None
        }
    }

    /// The server's current description of this connection.
    pub async fn remote_sdp(&self) -> String {
        self.pc
            .remote_description()
            .await
            .map(|d| d.sdp)
            .unwrap_or_default()
    }

    /// Sends `leave` and closes the connection.
    pub async fn leave(self) {
        let _ = self.leave.send(()).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.close().await;
    }

    /// Vanishes without a word: the WebSocket and the PeerConnection just go away.
    pub async fn close(self) {
        for task in &self.tasks {
            task.abort();
        }
        let _ = self.pc.close().await;
    }
}

async fn new_peer_connection(network: NetworkType) -> RTCPeerConnection {
    let mut media = MediaEngine::default();
    media.register_default_codecs().unwrap();
    let registry = register_default_interceptors(Registry::new(), &mut media).unwrap();
    let mut settings = SettingEngine::default();
    settings.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
    settings.set_include_loopback_candidate(true);
    // Test media stays on loopback: no packet of a test leaves the machine.
    settings.set_ip_filter(Box::new(|ip| ip.is_loopback()));
    settings.set_network_types(vec![network]);
    // A retransmission of a packet that did arrive would be dropped as a replay; tests that ask
    // for one (by reporting an arrived packet lost) need to see it.
    settings.disable_srtp_replay_protection(true);
    let api = APIBuilder::new()
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_setting_engine(settings)
        .build();
    api.new_peer_connection(RTCConfiguration::default())
        .await
        .unwrap()
}

fn local_track(mime: &str, clock_rate: u32, channels: u16, id: &str) -> Arc<TrackLocalStaticRTP> {
    let codec = RTCRtpCodecCapability {
        mime_type: mime.to_owned(),
        clock_rate,
        channels,
        ..Default::default()
    };
    Arc::new(TrackLocalStaticRTP::new(
        codec,
        id.to_owned(),
        "client".to_owned(),
    ))
}

fn wire_callbacks(
    pc: &RTCPeerConnection,
    received: &Counts,
    video_seqs: &VideoSeqs,
    outgoing: mpsc::UnboundedSender<Value>,
) {
    pc.on_ice_candidate(Box::new(move |c: Option<RTCIceCandidate>| {
        let candidate = c
            .and_then(|c| c.to_json().ok())
            .map(|c| serde_json::to_value(c).unwrap());
        let _ = outgoing.send(json!({"type": "candidate", "candidate": candidate}));
        Box::pin(async {})
    }));
    let received = Arc::clone(received);
    let video_seqs = Arc::clone(video_seqs);
    pc.on_track(Box::new(move |track, receiver, _| {
        // As a browser does: webrtc-rs's receiver reports learn of the server's sender reports
        // only as RTCP is read.
        tokio::spawn(async move { while receiver.read_rtcp().await.is_ok() {} });
        tokio::spawn(count_packets(
            track,
            Arc::clone(&received),
            Arc::clone(&video_seqs),
        ));
        Box::pin(async {})
    }));
}

async fn count_packets(track: Arc<TrackRemote>, received: Counts, video_seqs: VideoSeqs) {
    while let Ok((packet, _)) = track.read_rtp().await {
        // Read per packet: the server may move the transceiver to another publisher's track.
        let publisher = track.stream_id();
        if !packet.payload.ends_with(publisher.as_bytes()) {
            continue;
        }
        let mut counts = received.lock().unwrap();
        let entry = counts.entry(publisher.clone()).or_default();
        match track.kind() {
            RTPCodecType::Audio => entry.audio += 1,
            _ => {
                entry.video += 1;
                let mut seqs = video_seqs.lock().unwrap();
                let (ssrc, seen) = seqs.entry(publisher.clone()).or_default();
                *ssrc = track.ssrc();
                let arrivals = seen.entry(packet.header.sequence_number).or_default();
                arrivals.push(packet.header);
            }
        }
    }
}

async fn signal_loop(
    mut ws: Ws,
    pc: Arc<RTCPeerConnection>,
    mut outgoing: mpsc::UnboundedReceiver<Value>,
    mut leave: mpsc::Receiver<()>,
    messages: Messages,
) {
    loop {
        tokio::select! {
            Some(message) = outgoing.recv() => ws.send(message).await,
            // `None`: the peer was dropped without leaving.
            asked = leave.recv() => {
                if asked.is_some() {
                    ws.send(json!({"type": "leave"})).await;
                    let _ = ws.recv_type("left").await;
                }
                return;
            }
            message = ws.recv() => {
                let Some(message) = message else { return };
                messages.lock().unwrap().push(message.clone());
                match handle(&pc, &message).await {
                    Ok(Some(reply)) => ws.send(reply).await,
                    Ok(None) => {}
                    Err(e) => eprintln!("client peer could not handle {}: {e}", message["type"]),
                }
            }
        }
    }
}

async fn handle(pc: &RTCPeerConnection, message: &Value) -> webrtc::error::Result<Option<Value>> {
    let sdp = || message["sdp"].as_str().unwrap_or_default().to_owned();
    match message["type"].as_str().unwrap_or_default() {
        "answer" => {
            pc.set_remote_description(RTCSessionDescription::answer(sdp())?)
                .await?;
        }
        "offer" => {
            wait_for_ice_start(pc).await;
            pc.set_remote_description(RTCSessionDescription::offer(sdp())?)
                .await?;
            let answer = pc.create_answer(None).await?;
            pc.set_local_description(answer).await?;
            let sdp = pc.local_description().await.map(|d| d.sdp);
            return Ok(Some(json!({"type": "answer", "sdp": sdp})));
        }
        "candidate" if !message["candidate"].is_null() => {
            let init: RTCIceCandidateInit =
                serde_json::from_value(message["candidate"].clone()).expect("candidate JSON");
            pc.add_ice_candidate(init).await?;
        }
        _ => {}
    }
    Ok(None)
}

/// 50 audio packets and 30 video packets a second, each payload ending with the publisher's id.
async fn send_media(audio: Arc<TrackLocalStaticRTP>, video: Arc<TrackLocalStaticRTP>, tag: String) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let tag = Bytes::from(tag.into_bytes());
    for n in 0u32.. {
        tick.tick().await;
        let _ = audio.write_rtp(&packet(n, 960, &[0xfc], &tag)).await;
        if n % 5 < 3 {
            // VP8 payload descriptor: start of partition 0.
            let _ = video
                .write_rtp(&packet(n, 3000, &[0x10, 0, 0, 0], &tag))
                .await;
        }
    }
}

fn packet(n: u32, ticks: u32, prefix: &[u8], tag: &Bytes) -> Packet {
    let mut payload = prefix.to_vec();
    payload.extend_from_slice(tag);
    Packet {
        header: Header {
            version: 2,
            sequence_number: n as u16,
            timestamp: n.wrapping_mul(ticks),
            marker: true,
            ..Default::default()
        },
        payload: Bytes::from(payload),
    }
}

/// webrtc-rs starts ICE in the background after the first remote description and compares a
/// later offer's ICE credentials with the ones ICE started with: a server offer applied before
/// ICE started looks like an ICE restart, and the peer restarts with credentials the server never
/// learns (the benchmark's client hit this on a busy machine; see benches/src/peer.rs). Browsers
/// do not do this, so the test client must not either.
async fn wait_for_ice_start(pc: &RTCPeerConnection) {
    if pc.remote_description().await.is_none() {
        return;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while pc.ice_connection_state() == RTCIceConnectionState::New
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
