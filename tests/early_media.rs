//! webrtc-rs as patched in `patches/webrtc` (docs/decisions.md, "webrtc-rs with a few lines
//! changed"): media that arrives on a declared SSRC before the receiver has started must reach the
//! receiver's track. Unpatched, webrtc-rs took such a stream for an unknown simulcast layer,
//! probed it (eating its first packets) and closed it under the receiver: the publisher's track
//! stayed silent for good. In roomcast this happened to ≈ 1 in 20 browser joins.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::{MediaEngine, MIME_TYPE_OPUS};
use webrtc::api::setting_engine::SettingEngine;
use webrtc::api::APIBuilder;
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice::network_type::NetworkType;
use webrtc::interceptor::registry::Registry;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::rtp::header::Header;
use webrtc::rtp::packet::Packet;
use webrtc::rtp_transceiver::rtp_codec::{
    RTCRtpCodecCapability, RTCRtpHeaderExtensionCapability, RTPCodecType,
};
use webrtc::sdp;
use webrtc::track::track_local::track_local_static_rtp::TrackLocalStaticRTP;
use webrtc::track::track_local::{TrackLocal, TrackLocalWriter};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packets_that_arrive_before_the_receiver_starts_reach_its_track() {
    let sender = peer().await;
    let receiver = peer().await;
    connect_with_data_only(&sender, &receiver).await;

    // The sender adds a track; the receiver takes the offer and answers, but applies its answer
    // only after the sender has been sending on the new SSRC for a while.
    let track = Arc::new(TrackLocalStaticRTP::new(
        RTCRtpCodecCapability {
            mime_type: MIME_TYPE_OPUS.to_owned(),
            clock_rate: 48000,
            channels: 2,
            ..Default::default()
        },
        "audio".to_owned(),
        "sender".to_owned(),
    ));
    sender
        .add_track(Arc::clone(&track) as Arc<dyn TrackLocal + Send + Sync>)
        .await
        .unwrap();
    let (tracks, mut arrived) = mpsc::unbounded_channel();
    receiver.on_track(Box::new(move |remote, _, _| {
        let _ = tracks.send(remote);
        Box::pin(async {})
    }));
    let offer = sender.create_offer(None).await.unwrap();
    sender.set_local_description(offer.clone()).await.unwrap();
    receiver.set_remote_description(offer).await.unwrap();
    let answer = receiver.create_answer(None).await.unwrap();
    sender.set_remote_description(answer.clone()).await.unwrap();

    let early = 20u16;
    for seq in 0..early {
        track.write_rtp(&packet(seq)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    receiver.set_local_description(answer).await.unwrap();
    let remote = tokio::time::timeout(WAIT, arrived.recv())
        .await
        .expect("the receiver's track to start")
        .unwrap();

    let total = 60u16;
    let writer = tokio::spawn(async move {
        for seq in early..total {
            track.write_rtp(&packet(seq)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let mut first_read = None;
    let mut last = 0;
    while last + 1 < total {
        let (p, _) = tokio::time::timeout(WAIT, remote.read_rtp())
            .await
            .expect("packets to keep arriving")
            .expect("the track to stay readable");
        first_read.get_or_insert(p.header.sequence_number);
        last = p.header.sequence_number;
    }
    writer.await.unwrap();
    // The packets that came early were kept for the track, not consumed by a probe.
    assert!(
        first_read.unwrap() < 11,
        "first packet read: {first_read:?}"
    );
    sender.close().await.unwrap();
    receiver.close().await.unwrap();
}

fn packet(seq: u16) -> Packet {
    Packet {
        header: Header {
            version: 2,
            sequence_number: seq,
            timestamp: u32::from(seq) * 960,
            ..Default::default()
        },
        payload: Bytes::from_static(&[0xfc, 0xff, 0xfe]),
    }
}

async fn peer() -> RTCPeerConnection {
    let mut media = MediaEngine::default();
    media.register_default_codecs().unwrap();
    // As roomcast's server does for simulcast, and on audio too as a browser offers them: with
    // these, webrtc-rs probes an SSRC it does not know for a RID.
    for uri in [
        sdp::extmap::SDES_MID_URI,
        sdp::extmap::SDES_RTP_STREAM_ID_URI,
    ] {
        for kind in [RTPCodecType::Audio, RTPCodecType::Video] {
            let extension = RTCRtpHeaderExtensionCapability {
                uri: uri.to_owned(),
            };
            media
                .register_header_extension(extension, kind, None)
                .unwrap();
        }
    }
    let registry = register_default_interceptors(Registry::new(), &mut media).unwrap();
    let mut settings = SettingEngine::default();
    settings.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
    settings.set_include_loopback_candidate(true);
    settings.set_ip_filter(Box::new(|ip| ip.is_loopback()));
    settings.set_network_types(vec![NetworkType::Udp4]);
    APIBuilder::new()
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_setting_engine(settings)
        .build()
        .new_peer_connection(RTCConfiguration::default())
        .await
        .unwrap()
}

/// Connects the two over loopback with a data channel only, so DTLS and SRTP are up before any
/// track is negotiated.
async fn connect_with_data_only(a: &RTCPeerConnection, b: &RTCPeerConnection) {
    a.create_data_channel("data", None).await.unwrap();
    let offer = a.create_offer(None).await.unwrap();
    let mut gathered = a.gathering_complete_promise().await;
    a.set_local_description(offer).await.unwrap();
    let _ = gathered.recv().await;
    b.set_remote_description(a.local_description().await.unwrap())
        .await
        .unwrap();
    let answer = b.create_answer(None).await.unwrap();
    let mut gathered = b.gathering_complete_promise().await;
    b.set_local_description(answer).await.unwrap();
    let _ = gathered.recv().await;
    a.set_remote_description(b.local_description().await.unwrap())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while [a, b]
        .iter()
        .any(|pc| pc.connection_state() != RTCPeerConnectionState::Connected)
    {
        assert!(tokio::time::Instant::now() < deadline, "peers to connect");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
