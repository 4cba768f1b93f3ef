//! The codecs roomcast negotiates: what it routes, at the payload types Chromium gives them,
//! each video codec with its RTX stream.
//!
//! An SFU offers what it forwards, not every codec its WebRTC stack knows: every codec listed
//! is copied into each PeerConnection and written into every offer and answer (webrtc-rs's
//! defaults are 20 codecs, ≈ 5 KB per video media section). Like LiveKit's and mediasoup's
//! usual configurations: Opus; VP8, VP9 profile 0, H.264 constrained baseline and baseline in
//! packetization mode 1 (what browsers send), AV1.

use webrtc::api::media_engine::{
    MediaEngine, MIME_TYPE_AV1, MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8, MIME_TYPE_VP9,
};
use webrtc::rtp_transceiver::rtp_codec::{
    RTCRtpCodecCapability, RTCRtpCodecParameters, RTPCodecType,
};
use webrtc::rtp_transceiver::RTCPFeedback;

use super::webrtc_error;
use crate::SfuError;

/// Video codecs: MIME type, format parameters, payload type, and a free payload type for its
/// RTX stream (RFC 4588), as Chromium pairs them.
const VIDEO: [(&str, &str, u8, u8); 5] = [
    (MIME_TYPE_VP8, "", 96, 97),
    (MIME_TYPE_VP9, "profile-id=0", 98, 99),
    (
        MIME_TYPE_H264,
        "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
        102,
        103,
    ),
    (
        MIME_TYPE_H264,
        "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
        125,
        105,
    ),
    (MIME_TYPE_AV1, "profile-id=0", 41, 42),
];

/// Registers the codecs. RTX goes with every video codec: retransmissions to subscribers go on
/// a stream of their own (see `OutboundStream::resend`). Publishers are answered without it
/// ([`super::Peer::answer`]): webrtc-rs 0.17 reads an incoming RTX stream only to drop it.
pub(super) fn register(media: &mut MediaEngine) -> Result<(), SfuError> {
    let opus = codec(MIME_TYPE_OPUS, 48_000, 2, "minptime=10;useinbandfec=1", 111);
    media
        .register_codec(opus, RTPCodecType::Audio)
        .map_err(webrtc_error)?;
    for (mime_type, fmtp, payload_type, rtx) in VIDEO {
        let mut video = codec(mime_type, 90_000, 0, fmtp, payload_type);
        video.capability.rtcp_feedback = video_feedback();
        let rtx = codec("video/rtx", 90_000, 0, &format!("apt={payload_type}"), rtx);
        for c in [video, rtx] {
            media
                .register_codec(c, RTPCodecType::Video)
                .map_err(webrtc_error)?;
        }
    }
    Ok(())
}

fn codec(
    mime_type: &str,
    clock_rate: u32,
    channels: u16,
    fmtp: &str,
    payload_type: u8,
) -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        capability: RTCRtpCodecCapability {
            mime_type: mime_type.to_owned(),
            clock_rate,
            channels,
            sdp_fmtp_line: fmtp.to_owned(),
            rtcp_feedback: Vec::new(),
        },
        payload_type,
        ..Default::default()
    }
}

/// What a subscriber may ask of a video stream (transport-cc is added with the interceptor).
fn video_feedback() -> Vec<RTCPFeedback> {
    [
        ("goog-remb", ""),
        ("ccm", "fir"),
        ("nack", ""),
        ("nack", "pli"),
    ]
    .into_iter()
    .map(|(typ, parameter)| RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    })
    .collect()
}
