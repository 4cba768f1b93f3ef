//! A track a client publishes to the server: read its RTP, keep its RTCP flowing.

use std::sync::Arc;

use webrtc::rtp_transceiver::rtp_codec::{RTCRtpCodecCapability, RTPCodecType};
use webrtc::rtp_transceiver::rtp_receiver::RTCRtpReceiver;
use webrtc::track::track_remote::TrackRemote;

/// An RTP packet as it travels through the server.
pub(crate) type RtpPacket = webrtc::rtp::packet::Packet;

/// Bytes of a forwarded packet on the wire before SRTP: fixed header, CSRCs and payload (the
/// publisher's extensions are stripped on read).
pub(crate) fn wire_size(packet: &RtpPacket) -> usize {
    12 + 4 * packet.header.csrc.len() + packet.payload.len()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MediaKind {
    Audio,
    Video,
}

impl MediaKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        }
    }
}

/// The codec of a published track, as forwarded tracks must declare it.
#[derive(Clone, Debug)]
pub(crate) struct Codec(RTCRtpCodecCapability);

impl Codec {
    pub(super) fn capability(&self) -> &RTCRtpCodecCapability {
        &self.0
    }

    pub(crate) fn mime_type(&self) -> &str {
        &self.0.mime_type
    }

    pub(crate) fn clock_rate(&self) -> u32 {
        self.0.clock_rate
    }
}

pub(crate) struct RemoteTrack {
    track: Arc<TrackRemote>,
    receiver: Arc<RTCRtpReceiver>,
}

impl RemoteTrack {
    pub(super) fn new(track: Arc<TrackRemote>, receiver: Arc<RTCRtpReceiver>) -> Self {
        Self { track, receiver }
    }

    pub(crate) fn kind(&self) -> MediaKind {
        match self.track.kind() {
            RTPCodecType::Audio => MediaKind::Audio,
            _ => MediaKind::Video,
        }
    }

    pub(crate) fn codec(&self) -> Codec {
        Codec(self.track.codec().capability)
    }

    pub(crate) fn ssrc(&self) -> u32 {
        self.track.ssrc()
    }

    /// The next RTP packet, stripped of the publisher's header extensions: their ids belong to the
    /// publisher's negotiation, and a stale MID extension would route the packet to the wrong
    /// transceiver at the subscriber. `None` once the track has ended.
    pub(crate) async fn read(&self) -> Option<RtpPacket> {
        let (mut packet, _) = self.track.read_rtp().await.ok()?;
        packet.header.extension = false;
        packet.header.extension_profile = 0;
        packet.header.extensions.clear();
        Some(packet)
    }

    /// Drains the publisher's RTCP (sender reports) so the receiver-report interceptor can compute
    /// round-trip times. Returns when the track's connection is gone.
    pub(crate) async fn drain_rtcp(&self) {
        while self.receiver.read_rtcp().await.is_ok() {}
    }
}
