//! A track the server sends to one subscriber, carrying one publication, on a transceiver that
//! outlives it: when the subscription ends the transceiver is parked (inactive) and a later
//! subscription of the same kind takes it over, so the subscriber's SDP grows with the tracks it
//! receives at once, not with every track it ever received.
//!
//! webrtc-rs negotiates the track and binds it to an SSRC and payload type; the packets go out
//! through roomcast's own send path ([`super::OutboundStream`]), which reads that [`Binding`].

use std::any::Any;
use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use bytes::Bytes;

use webrtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::rtcp::receiver_report::ReceiverReport;
use webrtc::rtcp::sender_report::SenderReport;
use webrtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use webrtc::rtp_transceiver::rtp_codec::{RTCRtpCodecParameters, RTPCodecType};
use webrtc::rtp_transceiver::rtp_sender::RTCRtpSender;
use webrtc::rtp_transceiver::RTCRtpTransceiver;
use webrtc::sdp::extmap::{SDES_MID_URI, TRANSPORT_CC_URI};
use webrtc::track::track_local::track_local_static_rtp::TrackLocalStaticRTP;
use webrtc::track::track_local::{TrackLocal, TrackLocalContext};

use super::outbound::Outbound;

pub(crate) struct ForwardTrack {
    local: Arc<BoundTrack>,
    transceiver: Arc<RTCRtpTransceiver>,
    sender: Arc<RTCRtpSender>,
    ssrc: u32,
    rtx: Option<Rtx>,
    outbound: Arc<Outbound>,
}

/// The RTX stream (RFC 4588) webrtc-rs announced with a forwarded video track: its SSRC and the
/// next sequence number on it. A track taken over from a parked one keeps both, so the
/// subscriber's SRTP context for that SSRC sees one continuous stream.
#[derive(Clone, Debug)]
pub(crate) struct Rtx {
    pub(crate) ssrc: u32,
    next: Arc<AtomicU16>,
}

impl Rtx {
    pub(super) fn new(ssrc: u32) -> Self {
        Self {
            ssrc,
            next: Arc::new(AtomicU16::new(rand::random())),
        }
    }

    /// The sequence number for the next retransmission.
    pub(crate) fn next_sequence_number(&self) -> u16 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }
}

/// Whether a codec is RTX (`video/rtx`, `audio/rtx`), whatever the case.
pub(super) fn is_rtx(mime_type: &str) -> bool {
    mime_type
        .split_once('/')
        .is_some_and(|(_, name)| name.eq_ignore_ascii_case("rtx"))
}

/// The payload type of the RTX codec negotiated for `payload_type` (`a=fmtp:<rtx> apt=<pt>`).
fn rtx_for(payload_type: u8, codecs: &[RTCRtpCodecParameters]) -> Option<u8> {
    codecs
        .iter()
        .filter(|c| is_rtx(&c.capability.mime_type))
        .find(|c| {
            c.capability.sdp_fmtp_line.split(';').any(|p| {
                p.trim()
                    .strip_prefix("apt=")
                    .and_then(|apt| apt.parse::<u8>().ok())
                    == Some(payload_type)
            })
        })
        .map(|c| c.payload_type)
}

/// What negotiation bound a forwarded track to: the numbers its packets carry at the subscriber.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Binding {
    pub(crate) ssrc: u32,
    pub(crate) payload_type: u8,
    /// The MID header extension (id, value), where negotiated.
    pub(crate) mid: Option<(u8, Bytes)>,
    /// The transport-wide sequence number's header extension id, where negotiated.
    pub(crate) transport_cc: Option<u8>,
    /// The subscriber asks for lost packets again (`a=rtcp-fb:<pt> nack`).
    pub(crate) nack: bool,
    /// The payload type of the RTX stream for retransmissions, where the subscriber takes one.
    pub(crate) rtx: Option<u8>,
}

/// The track webrtc-rs negotiates and binds. It delegates codec matching to webrtc-rs's static
/// RTP track (nothing is ever written to that) and keeps the binding for the send path: set on
/// bind, cleared on unbind, read per packet without a lock.
pub(crate) struct BoundTrack {
    inner: TrackLocalStaticRTP,
    binding: ArcSwapOption<Binding>,
    /// Counts changes of the binding: a stream keeps its own copy and looks again only when this
    /// moves (one relaxed load per packet instead of a load of the `ArcSwap`).
    generation: AtomicU32,
}

impl BoundTrack {
    pub(super) fn new(inner: TrackLocalStaticRTP) -> Self {
        Self {
            inner,
            binding: ArcSwapOption::empty(),
            generation: AtomicU32::new(0),
        }
    }
}

#[async_trait::async_trait]
impl TrackLocal for BoundTrack {
    async fn bind(&self, t: &TrackLocalContext) -> webrtc::error::Result<RTCRtpCodecParameters> {
        let codec = self.inner.bind(t).await?;
        let extension = |uri: &str| {
            t.header_extensions()
                .iter()
                .find(|e| e.uri == uri)
                .and_then(|e| u8::try_from(e.id).ok())
                .filter(|&id| id != 0)
        };
        let mid = t.mid().map(|mid| Bytes::copy_from_slice(mid.as_bytes()));
        let nack = codec
            .capability
            .rtcp_feedback
            .iter()
            .any(|f| f.typ == "nack" && f.parameter.is_empty());
        self.binding.store(Some(Arc::new(Binding {
            ssrc: t.ssrc(),
            payload_type: codec.payload_type,
            mid: extension(SDES_MID_URI).zip(mid),
            transport_cc: extension(TRANSPORT_CC_URI),
            nack,
            rtx: rtx_for(codec.payload_type, t.codec_parameters()),
        })));
        self.generation.fetch_add(1, Ordering::Release);
        Ok(codec)
    }

    async fn unbind(&self, t: &TrackLocalContext) -> webrtc::error::Result<()> {
        self.binding.store(None);
        self.generation.fetch_add(1, Ordering::Release);
        self.inner.unbind(t).await
    }

    fn id(&self) -> &str {
        self.inner.id()
    }

    fn rid(&self) -> Option<&str> {
        self.inner.rid()
    }

    fn stream_id(&self) -> &str {
        self.inner.stream_id()
    }

    fn kind(&self) -> RTPCodecType {
        self.inner.kind()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// What one batch of a subscriber's RTCP said about this track.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Feedback {
    pub(crate) pli: u32,
    pub(crate) fir: u32,
    pub(crate) nack: u32,
    /// The sequence numbers the NACKs name, to send again.
    pub(crate) lost: Vec<u16>,
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
        local: Arc<BoundTrack>,
        transceiver: Arc<RTCRtpTransceiver>,
        sender: Arc<RTCRtpSender>,
        (ssrc, rtx): (u32, Option<Rtx>),
        outbound: Arc<Outbound>,
    ) -> Self {
        Self {
            local,
            transceiver,
            sender,
            ssrc,
            rtx,
            outbound,
        }
    }

    /// What the track is bound to now; `None` before negotiation binds it.
    pub(crate) fn binding(&self) -> Option<Arc<Binding>> {
        self.local.binding.load_full()
    }

    /// Moves whenever the binding changes.
    pub(crate) fn binding_generation(&self) -> u32 {
        self.local.generation.load(Ordering::Acquire)
    }

    /// Starts loading the binding's generation and the connection's send state (see
    /// `fanout::prefetch`).
    pub(crate) fn prefetch(&self) {
        crate::fanout::prefetch::line(&self.local.generation);
        self.outbound.prefetch();
    }

    /// Starts loading the connection's transport-wide numbering. Reads the connection, which
    /// [`Self::prefetch`] fetched.
    pub(crate) fn prefetch_transport(&self) {
        self.outbound.transport().prefetch();
    }

    /// Starts loading the transport-wide history slot of the next packet. Reads what
    /// [`Self::prefetch_transport`] fetched.
    pub(crate) fn prefetch_transport_slot(&self) {
        self.outbound.transport().prefetch_slot();
    }

    pub(crate) fn outbound(&self) -> &Arc<Outbound> {
        &self.outbound
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

    /// The track's RTX stream, if webrtc-rs announced one (video).
    pub(crate) fn rtx(&self) -> Option<&Rtx> {
        self.rtx.as_ref()
    }

    /// The subscriber's next RTCP batch (reading it also feeds webrtc-rs's RTCP interceptors,
    /// roomcast's transport-feedback reader among them). `None` once the sender is gone.
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
                if nack.media_ssrc == self.ssrc {
                    feedback.nack += nack.nacks.len() as u32;
                    for pair in &nack.nacks {
                        feedback.lost.extend(*pair);
                    }
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    use webrtc::rtp_transceiver::rtp_codec::RTCRtpCodecCapability;

    fn codec(mime_type: &str, payload_type: u8, fmtp: &str) -> RTCRtpCodecParameters {
        RTCRtpCodecParameters {
            capability: RTCRtpCodecCapability {
                mime_type: mime_type.to_owned(),
                clock_rate: 90_000,
                sdp_fmtp_line: fmtp.to_owned(),
                ..Default::default()
            },
            payload_type,
            ..Default::default()
        }
    }

    #[test]
    fn a_track_retransmits_on_the_rtx_codec_whose_apt_names_its_own_payload_type() {
        let negotiated = [
            codec("video/VP8", 96, ""),
            codec("video/rtx", 97, "apt=96"),
            codec("video/H264", 102, "packetization-mode=1"),
            codec("video/RTX", 103, "rtx-time=3000; apt=102"),
        ];
        assert_eq!(rtx_for(96, &negotiated), Some(97));
        assert_eq!(rtx_for(102, &negotiated), Some(103), "any case, any place");
        assert_eq!(rtx_for(98, &negotiated), None, "no RTX negotiated for it");
        assert_eq!(
            rtx_for(96, &negotiated[..1]),
            None,
            "the subscriber took no RTX"
        );
    }

    #[test]
    fn rtx_is_told_by_its_mime_subtype() {
        assert!(is_rtx("video/rtx"));
        assert!(is_rtx("audio/RTX"));
        assert!(!is_rtx("video/VP8"));
        assert!(!is_rtx("rtx"));
    }

    #[test]
    fn an_rtx_stream_numbers_its_packets_one_after_another_and_its_copies_share_the_count() {
        let rtx = Rtx::new(1234);
        let taken_over = rtx.clone();
        let first = rtx.next_sequence_number();
        assert_eq!(taken_over.next_sequence_number(), first.wrapping_add(1));
        assert_eq!(rtx.next_sequence_number(), first.wrapping_add(2));
    }
}
