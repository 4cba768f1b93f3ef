//! A track the server sends to one subscriber, carrying one publication.

use std::sync::Arc;

use webrtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::rtp_transceiver::rtp_sender::RTCRtpSender;
use webrtc::track::track_local::track_local_static_rtp::TrackLocalStaticRTP;
use webrtc::track::track_local::TrackLocalWriter;

use super::RtpPacket;

pub(crate) struct ForwardTrack {
    local: Arc<TrackLocalStaticRTP>,
    sender: Arc<RTCRtpSender>,
}

/// What a subscriber's RTCP asked of the publication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Feedback {
    Keyframe,
    Other,
}

impl ForwardTrack {
    pub(super) fn new(local: Arc<TrackLocalStaticRTP>, sender: Arc<RTCRtpSender>) -> Self {
        Self { local, sender }
    }

    pub(super) fn sender(&self) -> &Arc<RTCRtpSender> {
        &self.sender
    }

    /// Sends one packet; the track rewrites SSRC and payload type to the subscriber's.
    pub(crate) async fn write(&self, packet: &RtpPacket) -> bool {
        self.local.write_rtp(packet).await.is_ok()
    }

    /// The subscriber's next RTCP batch. Reading also drives the NACK responder and the
    /// sender-report interceptors. `None` once the sender is gone.
    pub(crate) async fn read_feedback(&self) -> Option<Feedback> {
        let (packets, _) = self.sender.read_rtcp().await.ok()?;
        let keyframe = packets.iter().any(|p| {
            let any = p.as_any();
            any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
        });
        Some(if keyframe {
            Feedback::Keyframe
        } else {
            Feedback::Other
        })
    }
}
