//! Builds PeerConnections with the server's media engine, interceptors and network settings.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use webrtc::api::interceptor_registry::configure_twcc_receiver_only;
use webrtc::api::media_engine::MediaEngine;
use webrtc::api::setting_engine::SettingEngine;
use webrtc::api::{APIBuilder, API};
use webrtc::data_channel::RTCDataChannel;
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice::network_type::NetworkType;
use webrtc::ice::udp_mux::{UDPMuxDefault, UDPMuxParams};
use webrtc::ice::udp_network::{EphemeralUDP, UDPNetwork};
use webrtc::ice_transport::ice_candidate::RTCIceCandidate;
use webrtc::ice_transport::ice_candidate_pair::RTCIceCandidatePair;
use webrtc::ice_transport::ice_candidate_type::RTCIceCandidateType;
use webrtc::interceptor::nack::generator::Generator;
use webrtc::interceptor::registry::Registry;
use webrtc::interceptor::report::receiver::ReceiverReport;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::rtp_transceiver::rtp_codec::{RTCRtpHeaderExtensionCapability, RTPCodecType};
use webrtc::rtp_transceiver::rtp_receiver::RTCRtpReceiver;
use webrtc::rtp_transceiver::RTCRtpTransceiver;
use webrtc::sdp;
use webrtc::track::track_remote::TrackRemote;

use super::codecs;
use super::data_channel::{DataChannel, DATA_LABEL};
use super::outbound::Outbound;
use super::twcc::TransportFeedbackBuilder;
use super::{webrtc_error, Peer, PeerEvent, RemoteTrack, TransportEvent};
use crate::stats::ConnectionState;
use crate::{IceCandidate, SfuConfig, SfuError};

/// Shared by every participant: one webrtc-rs API object configured once.
pub(crate) struct PeerFactory {
    api: API,
    twcc: TransportFeedbackBuilder,
    /// The shared media socket under the UDP mux, for sending forwarded media straight to it.
    socket: Option<Arc<std::net::UdpSocket>>,
    /// Creations take turns: each hands its transport-feedback channel to the interceptor that
    /// `new_peer_connection` builds.
    creating: tokio::sync::Mutex<()>,
}

impl PeerFactory {
    pub(crate) fn new(config: &SfuConfig) -> Result<Self, SfuError> {
        let mut media = MediaEngine::default();
        codecs::register(&mut media)?;
        register_simulcast_extensions(&mut media)?;
        register_audio_level(&mut media)?;
        let twcc = TransportFeedbackBuilder::new();
        let registry = interceptors(&mut media, &twcc)?;
        let (settings, socket) = settings(config)?;
        let api = APIBuilder::new()
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_setting_engine(settings)
            .build();
        Ok(Self {
            api,
            twcc,
            socket,
            creating: tokio::sync::Mutex::new(()),
        })
    }

    /// A new PeerConnection whose events go to `events`, and what its subscriber's RTCP says
    /// about the downlink to `transport`.
    pub(crate) async fn create(
        &self,
        events: mpsc::UnboundedSender<PeerEvent>,
        transport: mpsc::UnboundedSender<TransportEvent>,
    ) -> Result<Peer, SfuError> {
        let (pc, sequence) = {
            let _turn = self.creating.lock().await;
            self.twcc.arm(transport);
            let pc = self
                .api
                .new_peer_connection(RTCConfiguration::default())
                .await;
            let sequence = self.twcc.disarm();
            (pc.map_err(webrtc_error)?, sequence)
        };
        let sequence = sequence.ok_or_else(|| {
            SfuError::WebRtc("the transport-wide feedback interceptor was not built".into())
        })?;
        let pc = Arc::new(pc);
        let outbound = Arc::new(Outbound::new(self.socket.clone(), sequence));
        wire_events(&pc, events, &outbound);
        Ok(Peer {
            pc,
            outbound,
            ice_queued: AtomicBool::new(false),
        })
    }
}

/// The interceptors for what webrtc-rs still receives and reports: NACKs and receiver reports
/// to publishers, TWCC feedback to publishers, and roomcast's reader of subscribers' transport
/// feedback (which also numbers the connection's packets). What webrtc-rs's NACK responder and
/// sender-report interceptor did for forwarded media, roomcast's send path does itself
/// (`OutboundStream`): its packets never pass through webrtc-rs's writers.
fn interceptors(
    media: &mut MediaEngine,
    twcc: &TransportFeedbackBuilder,
) -> Result<Registry, SfuError> {
    // The default video codecs already advertise `nack` and `nack pli`.
    let mut registry = Registry::new();
    registry.add(Box::new(twcc.clone()));
    registry.add(Box::new(Generator::builder()));
    registry.add(Box::new(ReceiverReport::builder()));
    configure_twcc_receiver_only(registry, media).map_err(webrtc_error)
}

/// MID, RID and repaired RID: without the RID extension in the answer Chromium refuses a
/// simulcast offer ("negotiates simulcast but does not negotiate the RID RTP header extension"),
/// and webrtc-rs needs all three to tell an incoming layer's SSRC by its RID. Video only: audio is
/// never simulcast, and a MID on forwarded audio would only add bytes.
fn register_simulcast_extensions(media: &mut MediaEngine) -> Result<(), SfuError> {
    for uri in [
        sdp::extmap::SDES_MID_URI,
        sdp::extmap::SDES_RTP_STREAM_ID_URI,
        sdp::extmap::SDES_REPAIR_RTP_STREAM_ID_URI,
    ] {
        let extension = RTCRtpHeaderExtensionCapability {
            uri: uri.to_owned(),
        };
        media
            .register_header_extension(extension, RTPCodecType::Video, None)
            .map_err(webrtc_error)?;
    }
    Ok(())
}

/// RFC 6464 audio levels on published audio: the room's speaker detection reads them on ingest
/// instead of decoding anyone's audio.
fn register_audio_level(media: &mut MediaEngine) -> Result<(), SfuError> {
    let extension = RTCRtpHeaderExtensionCapability {
        uri: sdp::extmap::AUDIO_LEVEL_URI.to_owned(),
    };
    media
        .register_header_extension(extension, RTPCodecType::Audio, None)
        .map_err(webrtc_error)
}

/// The receive buffer asked for the shared media socket; the kernel caps it at
/// `net.core.rmem_max`.
const MEDIA_RECEIVE_BUFFER: usize = 4 << 20;

/// webrtc-rs's settings, and the UDP mux's socket if there is one.
fn settings(
    config: &SfuConfig,
) -> Result<(SettingEngine, Option<Arc<std::net::UdpSocket>>), SfuError> {
    let mut shared = None;
    let mut s = SettingEngine::default();
    // Host candidates carry real addresses: an SFU has nothing to hide and mDNS does not cross
    // networks (nor work on loopback).
    s.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
    s.set_include_loopback_candidate(config.include_loopback);
    // Each forwarded video track gets an RTX SSRC, announced in its `ssrc-group:FID`.
    s.enable_sender_rtx(true);
    // ICE declares a silent connection disconnected, then failed after as long again; the
    // keepalive must fire well inside the first half.
    let half = config.peer_timeout / 2;
    s.set_ice_timeouts(
        Some(half),
        Some(half),
        Some((half / 2).min(Duration::from_secs(2))),
    );
    if let Some(port) = config.udp_mux_port {
        let bind = |port| -> std::io::Result<_> {
            let socket = std::net::UdpSocket::bind(("0.0.0.0", port))?;
            socket.set_nonblocking(true)?;
            // Every publisher's packets queue here while the core is busy fanning out a burst
            // (a keyframe to hundreds of subscribers): the default (≈ 200 KB, 90 full packets)
            // overflows and drops media for everyone.
            let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(MEDIA_RECEIVE_BUFFER);
            // The send path writes forwarded media on a second handle to the same socket.
            let sender = socket.try_clone()?;
            Ok((tokio::net::UdpSocket::from_std(socket)?, sender))
        };
        let (socket, sender) = bind(port).map_err(|source| SfuError::Bind { port, source })?;
        shared = Some(Arc::new(sender));
        s.set_udp_network(UDPNetwork::Muxed(UDPMuxDefault::new(UDPMuxParams::new(
            socket,
        ))));
        // The shared socket is IPv4; IPv6 candidates would point at a port nobody listens on.
        s.set_network_types(vec![NetworkType::Udp4]);
    } else if let Some(range) = config.udp_ports {
        let udp = EphemeralUDP::new(range.min, range.max)
            .map_err(|e| SfuError::WebRtc(format!("udp port range: {e}")))?;
        s.set_udp_network(UDPNetwork::Ephemeral(udp));
    }
    if !config.media_ips.is_empty() {
        let allowed = config.media_ips.clone();
        s.set_ip_filter(Box::new(move |ip| allowed.contains(&ip)));
    }
    if let Some(ip) = config.public_ip {
        s.set_nat_1to1_ips(vec![ip.to_string()], RTCIceCandidateType::Host);
    }
    Ok((s, shared))
}

fn wire_events(
    pc: &RTCPeerConnection,
    events: mpsc::UnboundedSender<PeerEvent>,
    outbound: &Arc<Outbound>,
) {
    let tx = events.clone();
    pc.on_ice_candidate(Box::new(move |c: Option<RTCIceCandidate>| {
        let candidate = c.and_then(|c| c.to_json().ok()).map(|init| IceCandidate {
            candidate: init.candidate,
            sdp_mid: init.sdp_mid,
            sdp_mline_index: init.sdp_mline_index,
            username_fragment: init.username_fragment,
        });
        let _ = tx.send(PeerEvent::LocalCandidate(candidate));
        Box::pin(async {})
    }));

    let tx = events.clone();
    let route = Arc::clone(outbound);
    pc.dtls_transport()
        .ice_transport()
        .on_selected_candidate_pair_change(Box::new(move |pair: RTCIceCandidatePair| {
            route.on_selected_pair(&pair);
            let _ = tx.send(PeerEvent::SelectedPair(
                pair.local.typ.to_string(),
                pair.remote.typ.to_string(),
            ));
            Box::pin(async {})
        }));

    let tx = events.clone();
    let keys = Arc::clone(outbound);
    // Weak: the transport keeps this callback.
    let dtls = Arc::downgrade(&pc.dtls_transport());
    pc.on_peer_connection_state_change(Box::new(move |s: RTCPeerConnectionState| {
        if s == RTCPeerConnectionState::Connected {
            let (keys, dtls) = (Arc::clone(&keys), dtls.clone());
            tokio::spawn(async move {
                if let Some(dtls) = dtls.upgrade() {
                    keys.on_connected(&dtls).await;
                }
            });
        }
        let state = match s {
            RTCPeerConnectionState::Connected => Some(ConnectionState::Connected),
            RTCPeerConnectionState::Disconnected => Some(ConnectionState::Disconnected),
            RTCPeerConnectionState::Failed => Some(ConnectionState::Failed),
            RTCPeerConnectionState::Closed => Some(ConnectionState::Closed),
            RTCPeerConnectionState::Connecting => Some(ConnectionState::Connecting),
            _ => None,
        };
        if let Some(state) = state {
            let _ = tx.send(PeerEvent::Connection(state));
        }
        Box::pin(async {})
    }));

    let tx = events.clone();
    pc.on_data_channel(Box::new(move |dc: Arc<RTCDataChannel>| {
        let tx = tx.clone();
        Box::pin(async move {
            if dc.label() != DATA_LABEL {
                tracing::debug!(
                    label = dc.label(),
                    "data channel with another label: not read"
                );
                return;
            }
            let opened = DataChannel::accept(dc).await;
            let _ = tx.send(PeerEvent::DataChannel(opened));
        })
    }));

    pc.on_track(Box::new(
        move |track: Arc<TrackRemote>,
              receiver: Arc<RTCRtpReceiver>,
              transceiver: Arc<RTCRtpTransceiver>| {
            let events = events.clone();
            let mid = transceiver.mid().map(|m| m.to_string()).unwrap_or_default();
            Box::pin(async move {
                let track = RemoteTrack::new(track, receiver, mid).await;
                let _ = events.send(PeerEvent::Track(track));
            })
        },
    ));
}
