//! A load-generator participant: one webrtc-rs PeerConnection (ICE, DTLS, SRTP: the SFU's normal
//! path, nothing bypassed) joined over roomcast's signaling protocol.
//!
//! It is made cheaper than a browser-like client on purpose, so the generator is not what
//! saturates: no interceptors at all (no NACK generator, no receiver reports, no TWCC), a
//! subscriber offers two receive-only transceivers instead of publishing, and a receiver reads
//! raw RTP into one reused buffer and looks only at the 16-byte probe of each payload. A
//! factory made with [`FactoryOptions::sample`] goes further: its peers decrypt only a sample
//! and count the rest at their sockets ([`crate::sampling`]).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use webrtc::api::interceptor_registry::{configure_rtcp_reports, configure_twcc_receiver_only};
use webrtc::api::media_engine::{MediaEngine, MIME_TYPE_OPUS, MIME_TYPE_VP8};
use webrtc::api::setting_engine::SettingEngine;
use webrtc::api::{APIBuilder, API};
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice::network_type::NetworkType;
use webrtc::ice::udp_mux::{UDPMux, UDPMuxDefault, UDPMuxParams};
use webrtc::ice::udp_network::UDPNetwork;
use webrtc::ice_transport::ice_candidate::{RTCIceCandidate, RTCIceCandidateInit};
use webrtc::ice_transport::ice_connection_state::RTCIceConnectionState;
use webrtc::interceptor::registry::Registry;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::rtp::header::Header;
use webrtc::rtp::packet::Packet;
use webrtc::rtp_transceiver::rtp_codec::{
    RTCRtpCodecCapability, RTCRtpHeaderExtensionCapability, RTPCodecType,
};
use webrtc::rtp_transceiver::rtp_transceiver_direction::RTCRtpTransceiverDirection;
use webrtc::rtp_transceiver::RTCRtpTransceiverInit;
use webrtc::track::track_local::track_local_static_rtp::TrackLocalStaticRTP;
use webrtc::track::track_local::{TrackLocal, TrackLocalWriter};
use webrtc::track::track_remote::TrackRemote;

use crate::clock::now_micros;
use crate::media::{self, Probe};
use crate::sampling::{self, Arrivals, SampledSocket};
use crate::signaling::Signaling;
use crate::simulcast::start_simulcast;
use crate::socket_reader::SocketReader;
use crate::window::{Kind, Reception, SampledTrack, Sent, Window};

/// How long a renegotiation offer waits for ICE to start (see [`wait_for_ice_start`]).
const ICE_START_GRACE: Duration = Duration::from_secs(5);
/// A publisher stops sending after this long even if nobody stops it.
pub(crate) const MAX_SEND: Duration = Duration::from_secs(30 * 60);

/// What a participant does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Sends audio and video, and receives whatever the room forwards.
    Publisher,
    /// Receives only.
    Subscriber,
    /// Sends audio and simulcast video (three layers on one transceiver, see
    /// [`start_simulcast`]); needs a factory made with [`FactoryOptions::simulcast`].
    SimulcastPublisher,
}

/// What a [`PeerFactory`]'s peers negotiate beyond the lean default.
#[derive(Clone, Copy, Debug, Default)]
pub struct FactoryOptions {
    /// Negotiate the MID and RID header extensions on video, as a browser's simulcast offer does.
    pub simulcast: bool,
    /// Register receiver reports and the transport-wide congestion control feedback
    /// interceptor, so the server can estimate this peer's downlink as it does a browser's.
    pub feedback: bool,
    /// Decrypt one RTP packet in this many and count the rest at the socket (see
    /// [`crate::sampling`]); 0 and 1 decrypt every packet. Each connection then gets a socket
    /// and a webrtc-rs `API` of its own, and one thread of the factory's reads every socket
    /// ([`crate::socket_reader`]). Not with `feedback`: reports would call the skipped
    /// packets lost.
    pub sample: u32,
}

/// Shared by every participant of a step: the window and everything received.
#[derive(Default)]
pub struct Shared {
    pub window: Window,
    pub receptions: Mutex<Vec<Arc<Reception>>>,
    /// If set, publishers pace video at this many bytes per second, as a browser's pacer does,
    /// instead of sending each frame as one burst.
    pub pacing_bytes_per_sec: Option<f64>,
}

impl Shared {
    /// Receptions that have seen at least one packet.
    pub fn live_tracks(&self) -> usize {
        self.receptions
            .lock()
            .map(|r| r.iter().filter(|r| r.total() > 0).count())
            .unwrap_or(0)
    }
}

/// Builds PeerConnections: one webrtc-rs `API` for all of them, or one each when sampling.
pub struct PeerFactory {
    api: API,
    options: FactoryOptions,
    /// When sampling: the thread that reads every connection's socket.
    reader: Option<Arc<SocketReader>>,
}

/// A new PeerConnection, and its sampling socket's counts and mux when it samples.
pub(crate) struct Connection {
    pub pc: Arc<RTCPeerConnection>,
    pub sampling: Option<Sampling>,
}

/// What a sampling connection adds: the counts, and the mux, closed when this is dropped (its
/// read loop and socket would outlive the PeerConnection otherwise).
pub(crate) struct Sampling {
    pub arrivals: Arc<Arrivals>,
    mux: Arc<UDPMuxDefault>,
}

impl Drop for Sampling {
    fn drop(&mut self) {
        let mux = Arc::clone(&self.mux);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = mux.close().await;
            });
        }
    }
}

impl PeerFactory {
    pub fn new() -> Result<Self> {
        Self::with_options(FactoryOptions::default())
    }

    pub fn with_options(options: FactoryOptions) -> Result<Self> {
        anyhow::ensure!(
            options.sample <= 1 || !options.feedback,
            "a sampling peer cannot send feedback: its reports would count skipped packets lost"
        );
        anyhow::ensure!(
            options.sample <= sampling::MAX_EVERY,
            "sampling one packet in {} is more than the 1 in {} allowed",
            options.sample,
            sampling::MAX_EVERY
        );
        let api = build_api(options, None)?;
        let reader = if options.sample > 1 {
            Some(SocketReader::start().context("starting the sampling socket reader")?)
        } else {
            None
        };
        Ok(Self {
            api,
            options,
            reader,
        })
    }

    pub(crate) async fn peer_connection(&self) -> Result<Connection> {
        let Some(reader) = &self.reader else {
            let pc = self
                .api
                .new_peer_connection(RTCConfiguration::default())
                .await?;
            return Ok(Connection {
                pc: Arc::new(pc),
                sampling: None,
            });
        };
        // One socket per connection, so the server sees each subscriber's own address as before.
        let socket = std::net::UdpSocket::bind("127.0.0.1:0")
            .context("binding a sampling subscriber's socket")?;
        let salt = u64::from(socket.local_addr()?.port()) << 32 | now_micros();
        let arrivals = Arc::new(Arrivals::new(self.options.sample, salt));
        // Read from now on, before ICE gives the address out, so no datagram goes uncounted.
        let conn = SampledSocket::new(socket, Arc::clone(&arrivals), reader)
            .context("registering a sampling subscriber's socket")?;
        let mux = UDPMuxDefault::new(UDPMuxParams::new(conn));
        let sampling = Sampling {
            arrivals,
            mux: Arc::clone(&mux),
        };
        let api = build_api(self.options, Some(mux))?;
        let pc = api.new_peer_connection(RTCConfiguration::default()).await?;
        Ok(Connection {
            pc: Arc::new(pc),
            sampling: Some(sampling),
        })
    }
}

/// A webrtc-rs `API` with the bench's media engine, interceptors and settings; with `mux`, ICE
/// uses that (one socket) instead of a socket per candidate.
fn build_api(options: FactoryOptions, mux: Option<Arc<UDPMuxDefault>>) -> Result<API> {
    let mut media = MediaEngine::default();
    media.register_default_codecs()?;
    // Browsers negotiate transport-wide sequence numbers, so the server stamps every packet
    // it forwards them and keeps its send time: the generator negotiates them too, so that
    // cost is in the figures. It sends no feedback (it registers no interceptors), so the
    // server's estimate stays where it starts and no forwarded track is paused.
    for kind in [RTPCodecType::Audio, RTPCodecType::Video] {
        let extension = RTCRtpHeaderExtensionCapability {
            uri: webrtc::sdp::extmap::TRANSPORT_CC_URI.to_owned(),
        };
        media.register_header_extension(extension, kind, None)?;
    }
    if options.simulcast {
        for uri in [
            webrtc::sdp::extmap::SDES_MID_URI,
            webrtc::sdp::extmap::SDES_RTP_STREAM_ID_URI,
        ] {
            let extension = RTCRtpHeaderExtensionCapability {
                uri: uri.to_owned(),
            };
            media.register_header_extension(extension, RTPCodecType::Video, None)?;
        }
    }
    let registry = if options.feedback {
        let registry = configure_rtcp_reports(Registry::new());
        configure_twcc_receiver_only(registry, &mut media)?
    } else {
        Registry::new()
    };
    let mut settings = SettingEngine::default();
    settings.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
    settings.set_include_loopback_candidate(true);
    // The benchmark's media never leaves loopback.
    settings.set_ip_filter(Box::new(|ip| ip.is_loopback()));
    settings.set_network_types(vec![NetworkType::Udp4]);
    // The server's first connectivity check often arrives before its candidate does, so the
    // generator (the controlling agent) first knows the server as peer-reflexive, and
    // webrtc-rs waits a full second before nominating such a pair. Browsers do not wait:
    // left in, that second would be the generator's, not roomcast's join time.
    settings.set_prflx_acceptance_min_wait(Some(Duration::ZERO));
    if let Some(mux) = mux {
        settings.set_udp_network(UDPNetwork::Muxed(mux as Arc<dyn UDPMux + Send + Sync>));
    }
    Ok(APIBuilder::new()
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_setting_engine(settings)
        .build())
}

/// A joined participant. Dropping it stops its tasks; [`Participant::close`] also closes the
/// connection.
pub struct Participant {
    pub id: String,
    pub sent: Option<Arc<Sent>>,
    pc: Arc<RTCPeerConnection>,
    tasks: Vec<JoinHandle<()>>,
    /// The connection's state, where the participant was joined by [`Participant::join`].
    state: Option<watch::Receiver<RTCPeerConnectionState>>,
    /// Signaling messages to send, where the participant was joined by [`Participant::join`].
    outgoing: Option<mpsc::UnboundedSender<Value>>,
    /// The tracks this participant receives.
    pub receptions: Receptions,
    /// Set when its connection samples (see [`FactoryOptions::sample`]).
    sampling: Option<Sampling>,
}

/// One participant's receptions, in the order its tracks arrived.
pub type Receptions = Arc<Mutex<Vec<Arc<Reception>>>>;

impl Participant {
    /// A participant assembled by another signaling front end (e.g. Janus's API).
    pub(crate) fn from_parts(
        id: String,
        sent: Option<Arc<Sent>>,
        connection: Connection,
        tasks: Vec<JoinHandle<()>>,
    ) -> Self {
        Self {
            id,
            sent,
            pc: connection.pc,
            tasks,
            state: None,
            outgoing: None,
            receptions: Receptions::default(),
            sampling: connection.sampling,
        }
    }

    /// Joins `room` on the server at `addr`, offers, and starts sending (a publisher).
    pub async fn join(
        factory: &PeerFactory,
        addr: SocketAddr,
        room: &str,
        role: Role,
        shared: &Arc<Shared>,
    ) -> Result<Self> {
        let mut ws = Signaling::connect(addr).await?;
        let name = match role {
            Role::Publisher => "publisher",
            Role::Subscriber => "subscriber",
            Role::SimulcastPublisher => "simulcast publisher",
        };
        let joined = ws.join(room, name).await?;
        let Connection { pc, sampling } = factory.peer_connection().await?;
        let (outgoing, outgoing_rx) = mpsc::unbounded_channel::<Value>();
        let receptions = Receptions::default();
        wire_callbacks(
            &pc,
            outgoing.clone(),
            shared,
            None,
            Some(Arc::clone(&receptions)),
            sampling.as_ref().map(|s| Arc::clone(&s.arrivals)),
        );
        let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
        pc.on_peer_connection_state_change(Box::new(move |s| {
            let _ = state_tx.send(s);
            Box::pin(async {})
        }));

        let mut tasks = Vec::new();
        let mut sent = None;
        match role {
            Role::Publisher => {
                let (senders, counts) = start_publishing(&pc, shared).await?;
                tasks.extend(senders);
                sent = Some(counts);
            }
            Role::SimulcastPublisher => {
                let (senders, counts) = start_simulcast(&pc, shared).await?;
                tasks.extend(senders);
                sent = Some(counts);
            }
            Role::Subscriber => add_receive_only(&pc).await?,
        }
        let offer = pc.create_offer(None).await?;
        pc.set_local_description(offer).await?;
        let sdp = pc
            .local_description()
            .await
            .context("no local description")?
            .sdp;
        ws.send(json!({"type": "offer", "sdp": sdp})).await?;
        tasks.push(tokio::spawn(signal_loop(ws, Arc::clone(&pc), outgoing_rx)));
        Ok(Self {
            id: joined.id,
            sent,
            pc,
            tasks,
            state: Some(state),
            outgoing: Some(outgoing),
            receptions,
            sampling,
        })
    }

    /// The counts at this participant's socket, if its connection samples.
    pub fn arrivals(&self) -> Option<&Arc<Arrivals>> {
        self.sampling.as_ref().map(|s| &s.arrivals)
    }

    /// Sends a signaling message to the server (e.g. `track_settings`).
    pub fn signal(&self, message: Value) -> Result<()> {
        self.outgoing
            .as_ref()
            .context("this participant has no signaling connection")?
            .send(message)
            .map_err(|_| anyhow::anyhow!("the signaling connection is closed"))
    }

    /// This participant's received video tracks.
    pub fn video_receptions(&self) -> Vec<Arc<Reception>> {
        self.receptions
            .lock()
            .map(|r| {
                r.iter()
                    .filter(|r| r.kind == Kind::Video)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The local UDP port of the selected ICE pair: where the server sends this peer's media.
    pub async fn media_port(&self) -> Option<u16> {
        self.pc
            .dtls_transport()
            .ice_transport()
            .get_selected_candidate_pair()
            .await
            .map(|pair| pair.local.port)
    }

    /// Waits until ICE and DTLS are up; an error if the connection fails or `timeout` passes.
    pub async fn connected(&self, timeout: Duration) -> Result<()> {
        let mut state = self
            .state
            .clone()
            .context("this participant's connection state is not watched")?;
        let settled = tokio::time::timeout(
            timeout,
            state.wait_for(|s| {
                matches!(
                    s,
                    RTCPeerConnectionState::Connected
                        | RTCPeerConnectionState::Failed
                        | RTCPeerConnectionState::Closed
                )
            }),
        )
        .await
        .map_err(|_| anyhow::anyhow!("not connected within {timeout:?}"))?
        .map(|s| *s)
        .context("connection state no longer reported")?;
        anyhow::ensure!(
            settled == RTCPeerConnectionState::Connected,
            "connection {settled}"
        );
        Ok(())
    }

    /// Stops sending and closes the connection.
    pub async fn close(mut self) {
        for task in &self.tasks {
            task.abort();
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), self.pc.close()).await;
        // Its mux closes now, after the connection.
        self.sampling.take();
    }
}

impl Drop for Participant {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Adds the audio and video tracks and starts the send loops.
pub(crate) async fn start_publishing(
    pc: &RTCPeerConnection,
    shared: &Arc<Shared>,
) -> Result<(Vec<JoinHandle<()>>, Arc<Sent>)> {
    let audio = local_track(MIME_TYPE_OPUS, media::AUDIO_CLOCK, 2, "audio");
    let video = local_track(MIME_TYPE_VP8, media::VIDEO_CLOCK, 0, "video");
    for track in [&audio, &video] {
        pc.add_track(Arc::clone(track) as Arc<dyn TrackLocal + Send + Sync>)
            .await?;
    }
    let counts = Arc::new(Sent::default());
    let tasks = vec![
        tokio::spawn(send_audio(audio, Arc::clone(shared), Arc::clone(&counts))),
        tokio::spawn(send_video(video, Arc::clone(shared), Arc::clone(&counts))),
    ];
    Ok((tasks, counts))
}

/// Two receive-only transceivers, so a subscriber's first offer has media sections.
pub(crate) async fn add_receive_only(pc: &RTCPeerConnection) -> Result<()> {
    for kind in [RTPCodecType::Audio, RTPCodecType::Video] {
        let init = RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Recvonly,
            send_encodings: Vec::new(),
        };
        pc.add_transceiver_from_kind(kind, Some(init)).await?;
    }
    Ok(())
}

pub(crate) fn local_track(
    mime: &str,
    clock_rate: u32,
    channels: u16,
    id: &str,
) -> Arc<TrackLocalStaticRTP> {
    let codec = RTCRtpCodecCapability {
        mime_type: mime.to_owned(),
        clock_rate,
        channels,
        ..Default::default()
    };
    Arc::new(TrackLocalStaticRTP::new(
        codec,
        id.to_owned(),
        "bench".to_owned(),
    ))
}

/// Sends local candidates into `outgoing` (`null` at the end) and starts a reader per track.
/// Received packets are attributed to `publisher` if given, else to the track's stream id
/// (roomcast names it after the publishing participant).
pub(crate) fn wire_callbacks(
    pc: &RTCPeerConnection,
    outgoing: mpsc::UnboundedSender<Value>,
    shared: &Arc<Shared>,
    publisher: Option<String>,
    own: Option<Receptions>,
    arrivals: Option<Arc<Arrivals>>,
) {
    pc.on_ice_candidate(Box::new(move |c: Option<RTCIceCandidate>| {
        let candidate = c
            .and_then(|c| c.to_json().ok())
            .and_then(|c| serde_json::to_value(c).ok())
            .unwrap_or(Value::Null);
        let _ = outgoing.send(json!({"type": "candidate", "candidate": candidate}));
        Box::pin(async {})
    }));
    // The callback holds the shared counters, never the connection (no reference cycle).
    let shared = Arc::clone(shared);
    pc.on_track(Box::new(move |track, _, _| {
        tokio::spawn(receive(
            track,
            Arc::clone(&shared),
            publisher.clone(),
            own.clone(),
            arrivals.clone(),
        ));
        Box::pin(async {})
    }));
}

/// Reads one forwarded track until it ends, recording each packet's probe (each one that gets
/// here: the sample, when `arrivals` counts them all).
async fn receive(
    track: Arc<TrackRemote>,
    shared: Arc<Shared>,
    publisher: Option<String>,
    own: Option<Receptions>,
    arrivals: Option<Arc<Arrivals>>,
) {
    let kind = match track.kind() {
        RTPCodecType::Audio => Kind::Audio,
        _ => Kind::Video,
    };
    let publisher = publisher.unwrap_or_else(|| track.stream_id());
    let reception = Arc::new(match arrivals {
        Some(arrivals) => {
            let counted = SampledTrack {
                arrivals,
                ssrc: track.ssrc(),
            };
            Reception::sampled(publisher, kind, track.id(), counted)
        }
        None => Reception::for_track(publisher, kind, track.id()),
    });
    let sampled = reception.is_sampled();
    if let Ok(mut all) = shared.receptions.lock() {
        all.push(Arc::clone(&reception));
    }
    if let Some(own) = own {
        if let Ok(mut mine) = own.lock() {
            mine.push(Arc::clone(&reception));
        }
    }
    let mut buf = vec![0u8; 1_500];
    while let Ok((packet, _)) = track.read(&mut buf).await {
        let now = now_micros();
        if kind == Kind::Video {
            if let Some((probe, size)) = media::read_video_probe(&packet.payload) {
                reception.record_video(probe, size, now, &shared.window);
                if sampled {
                    reception.locate(probe.counter, packet.header.sequence_number);
                }
                continue;
            }
        }
        if let Some(probe) = media::read_probe(&packet.payload) {
            reception.record(probe, now, &shared.window);
            if sampled {
                reception.locate(probe.counter, packet.header.sequence_number);
            }
        }
    }
}

async fn signal_loop(
    mut ws: Signaling,
    pc: Arc<RTCPeerConnection>,
    mut outgoing: mpsc::UnboundedReceiver<Value>,
) {
    loop {
        tokio::select! {
            Some(message) = outgoing.recv() => {
                if ws.send(message).await.is_err() {
                    return;
                }
            }
            message = ws.recv() => {
                let Ok(Some(message)) = message else { return };
                match handle(&pc, &message).await {
                    Ok(Some(reply)) => {
                        if ws.send(reply).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => eprintln!("bench peer could not handle {}: {e}", message["type"]),
                }
            }
        }
    }
}

async fn handle(pc: &RTCPeerConnection, message: &Value) -> Result<Option<Value>> {
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
            let init: RTCIceCandidateInit = serde_json::from_value(message["candidate"].clone())?;
            pc.add_ice_candidate(init).await?;
        }
        "error" => eprintln!("server error: {message}"),
        _ => {}
    }
    Ok(None)
}

/// webrtc-rs starts ICE in the background after the first remote description, and compares a
/// later offer's ICE credentials with the ones ICE started with. A renegotiation offer that
/// arrives before ICE started (the server offers its forwarded tracks right after its answer,
/// and a busy generator may not have started ICE yet) therefore looks like an ICE restart: the
/// peer restarts ICE with credentials the server never learns, and the join never connects
/// (the server logs `ErrMismatchUsername`, then `peer_failed`). Browsers do not do this.
async fn wait_for_ice_start(pc: &RTCPeerConnection) {
    if pc.remote_description().await.is_none() {
        return;
    }
    let deadline = tokio::time::Instant::now() + ICE_START_GRACE;
    while pc.ice_connection_state() == RTCIceConnectionState::New
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub(crate) fn rtp(seq: u16, timestamp: u32, marker: bool, payload: bytes::Bytes) -> Packet {
    Packet {
        header: Header {
            version: 2,
            sequence_number: seq,
            timestamp,
            marker,
            ..Default::default()
        },
        payload,
    }
}

/// Opus-sized audio: one packet every 20 ms.
pub(crate) async fn send_audio(
    track: Arc<TrackLocalStaticRTP>,
    shared: Arc<Shared>,
    sent: Arc<Sent>,
) {
    let period = Duration::from_secs(1) / media::AUDIO_PPS;
    let mut tick = tokio::time::interval(period);
    let ticks = media::AUDIO_CLOCK / media::AUDIO_PPS;
    let max = MAX_SEND.as_millis() as u32 / period.as_millis() as u32;
    for n in 0..max {
        tick.tick().await;
        let stamp = now_micros();
        let probe = Probe {
            counter: n,
            sent_micros: stamp,
        };
        // 0x78: an Opus TOC byte (CELT, 20 ms, mono).
        let payload = media::payload(0x78, probe, media::AUDIO_PAYLOAD);
        let packet = rtp(n as u16, n.wrapping_mul(ticks), true, payload);
        if track.write_rtp(&packet).await.is_ok() && shared.window.contains(stamp) {
            sent.count(Kind::Audio, n);
        }
    }
}

/// VP8-sized video: a frame every 1/30 s, split into packets of at most 1,200 bytes and sent in
/// one burst, as an encoder without a pacer would.
async fn send_video(track: Arc<TrackLocalStaticRTP>, shared: Arc<Shared>, sent: Arc<Sent>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1) / media::VIDEO_FPS);
    let ticks = media::VIDEO_CLOCK / media::VIDEO_FPS;
    let max = MAX_SEND.as_secs() as u32 * media::VIDEO_FPS;
    let mut seq = 0u16;
    let mut counter = 0u32;
    for frame in 0..max {
        tick.tick().await;
        let parts = media::split_frame(media::video_frame_bytes(frame));
        let last = parts.len() - 1;
        for (i, len) in parts.into_iter().enumerate() {
            let stamp = now_micros();
            let probe = Probe {
                counter,
                sent_micros: stamp,
            };
            // VP8 payload descriptor: the start-of-partition bit on a frame's first packet.
            let first = if i == 0 { 0x10 } else { 0x00 };
            let packet = rtp(
                seq,
                frame.wrapping_mul(ticks),
                i == last,
                media::payload(first, probe, len),
            );
            seq = seq.wrapping_add(1);
            counter = counter.wrapping_add(1);
            if track.write_rtp(&packet).await.is_ok() && shared.window.contains(stamp) {
                sent.count(Kind::Video, probe.counter);
            }
            match shared.pacing_bytes_per_sec {
                Some(rate) if i != last => {
                    tokio::time::sleep(Duration::from_secs_f64(len as f64 / rate)).await
                }
                // The generator runs on one thread: let receivers run between the packets of
                // a burst, so a keyframe's send loop does not show up as SFU latency.
                _ => tokio::task::yield_now().await,
            }
        }
    }
}
