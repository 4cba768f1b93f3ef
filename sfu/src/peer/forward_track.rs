//! A track the server sends to one subscriber, carrying one publication, on a transceiver that
//! outlives it: when the subscription ends the transceiver is parked (inactive) and a later
//! subscription of the same kind takes it over, so the subscriber's SDP grows with the tracks it
//! receives at once, not with every track it ever received.

use std::sync::Arc;

use webrtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::rtcp::receiver_report::ReceiverReport;
use webrtc::rtcp::sender_report::SenderReport;
use webrtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use webrtc::rtp_transceiver::rtp_sender::RTCRtpSender;
use webrtc::rtp_transceiver::RTCRtpTransceiver;
use webrtc::track::track_local::track_local_static_rtp::TrackLocalStaticRTP;
use webrtc::track::track_local::TrackLocalWriter;

use super::RtpPacket;

pub(crate) struct ForwardTrack {
    local: Arc<TrackLocalStaticRTP>,
    transceiver: Arc<RTCRtpTransceiver>,
    sender: Arc<RTCRtpSender>,
    ssrc: u32,
}

/// What one batch of a subscriber's RTCP said about this track.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Feedback {
    pub(crate) pli: u32,
    pub(crate) fir: u32,
    pub(crate) nack: u32,
    pub(crate) report: Option<ReceptionReport>,
}

/// The subscriber's reception report for this track.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReceptionReport {
    pub(crate) fraction_lost: u8,
    pub(crate) total_lost: u32,
    /// Interarrival jitter in RTP timestamp units.
    pub(crate) jitter: u32,
    pub(crate) last_sender_report: u32,
    pub(crate) delay: u32,
}

impl Feedback {
    pub(crate) fn wants_keyframe(&self) -> bool {
        self.pli + self.fir > 0
    }
}

impl ForwardTrack {
    pub(super) fn new(
        local: Arc<TrackLocalStaticRTP>,
        transceiver: Arc<RTCRtpTransceiver>,
        sender: Arc<RTCRtpSender>,
        ssrc: u32,
    ) -> Self {
        Self {
            local,
            transceiver,
            sender,
            ssrc,
        }
    }

    pub(super) fn transceiver(&self) -> &Arc<RTCRtpTransceiver> {
        &self.transceiver
    }

    pub(super) fn sender(&self) -> &Arc<RTCRtpSender> {
        &self.sender
    }

    /// The media section it rides on, once a description has placed it.
    pub(crate) fn mid(&self) -> Option<String> {
        self.transceiver.mid().map(|m| m.to_string())
    }

    pub(super) fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Sends one packet; the track rewrites SSRC and payload type to the subscriber's.
    pub(crate) async fn write(&self, packet: &RtpPacket) -> bool {
        self.local.write_rtp(packet).await.is_ok()
    }

    /// The subscriber's next RTCP batch. Reading also drives the NACK responder and the
    /// sender-report interceptors. `None` once the sender is gone.
    pub(crate) async fn read_feedback(&self) -> Option<Feedback> {
        let (packets, _) = self.sender.read_rtcp().await.ok()?;
        let mut feedback = Feedback::default();
        for packet in &packets {
            let any = packet.as_any();
            if any.is::<PictureLossIndication>() {
                feedback.pli += 1;
            } else if any.is::<FullIntraRequest>() {
                feedback.fir += 1;
            } else if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
                feedback.nack += nack.nacks.len() as u32;
            } else if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
                feedback.report = self.own_report(&rr.reports).or(feedback.report);
            } else if let Some(sr) = any.downcast_ref::<SenderReport>() {
                feedback.report = self.own_report(&sr.reports).or(feedback.report);
            }
        }
        Some(feedback)
    }

    fn own_report(
        &self,
        reports: &[webrtc::rtcp::reception_report::ReceptionReport],
    ) -> Option<ReceptionReport> {
        reports
            .iter()
            .find(|r| r.ssrc == self.ssrc)
            .map(|r| ReceptionReport {
                fraction_lost: r.fraction_lost,
                total_lost: r.total_lost,
                jitter: r.jitter,
                last_sender_report: r.last_sender_report,
                delay: r.delay,
            })
    }
}
