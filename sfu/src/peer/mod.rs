//! The one boundary to webrtc-rs: building PeerConnections and wrapping the few things the rest of
//! the crate does with them (negotiate, read published RTP, write forwarded RTP, read and send
//! RTCP). Nothing outside this module names a webrtc-rs type, so moving to another WebRTC stack is
//! this module's work alone.
//!
//! Callbacks never capture the PeerConnection (a closure kept by the connection that holds an `Arc`
//! of it is a cycle that never frees); they only push [`PeerEvent`]s into the owner's channel.

mod codecs;
mod data_channel;
mod factory;
mod forward_track;
mod outbound;
mod outbound_stream;
mod protect;
mod remote_track;
mod send_history;
mod twcc;
mod wire;

pub(crate) use data_channel::{DataChannel, DataMessage, OpenedChannel};
pub(crate) use factory::PeerFactory;
pub(crate) use forward_track::{Feedback, ForwardTrack};
pub(crate) use outbound_stream::OutboundStream;
pub use remote_track::MediaKind;
pub(crate) use remote_track::{
    wire_size, Arrival, Codec, RemoteTrack, RtpPacket, SenderReportCell,
};
pub(crate) use twcc::{Stamp, TransportEvent};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use webrtc::ice_transport::ice_candidate::RTCIceCandidateInit;
use webrtc::ice_transport::ice_connection_state::RTCIceConnectionState;
use webrtc::ice_transport::ice_gathering_state::RTCIceGatheringState;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::peer_connection::signaling_state::RTCSignalingState;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::rtp_transceiver::rtp_codec::RTPCodecType;
use webrtc::rtp_transceiver::rtp_transceiver_direction::RTCRtpTransceiverDirection;
use webrtc::rtp_transceiver::RTCRtpTransceiverInit;
use webrtc::track::track_local::track_local_static_rtp::TrackLocalStaticRTP;
use webrtc::track::track_local::TrackLocal;

use forward_track::{is_rtx, BoundTrack, Rtx};

use crate::stats::ConnectionState;
use crate::{IceCandidate, SfuError, SignalError};

/// How long a renegotiation offer waits for ICE to start (see `Peer::wait_for_ice_start`).
const ICE_START_GRACE: Duration = Duration::from_secs(2);
/// How long closing a connection waits for its ICE gathering to finish.
const GATHERING_GRACE: Duration = Duration::from_secs(1);
/// How long applying or making a description may take. webrtc-rs starts a data channel's SCTP
/// association while holding the local description's lock, and waits for the association
/// without end: when the client vanishes during that handshake, every later offer or answer
/// waits on the lock, and a participant waiting there never sees its connection fail (the soak
/// test's "media dies" cycle hung so). Bounded, the participant goes on, sees the failure and
/// closes the connection, which stops the SCTP transport and frees the lock.
const DESCRIPTION_LIMIT: Duration = Duration::from_secs(5);

/// What a PeerConnection reports to its owner.
pub(crate) enum PeerEvent {
    LocalCandidate(Option<IceCandidate>),
    Connection(ConnectionState),
    Track(RemoteTrack),
    /// ICE selected a candidate pair: (server side type, client side type).
    SelectedPair(String, String),
    /// The client opened its `data` channel.
    DataChannel(OpenedChannel),
}

/// One participant's PeerConnection to the server.
pub(crate) struct Peer {
    pc: Arc<RTCPeerConnection>,
    /// How forwarded media leaves for this participant.
    outbound: Arc<outbound::Outbound>,
    /// A remote description was applied, so webrtc-rs has queued the start of ICE.
    ice_queued: AtomicBool,
}

impl Peer {
    /// Applies the client's offer and returns the server's answer. Without `receive`, the
    /// client's sending sections are answered `inactive`, so its media never leaves its browser.
    pub(crate) async fn answer(&self, offer: String, receive: bool) -> Result<String, SignalError> {
        bounded(self.apply_offer(offer, receive)).await
    }

    async fn apply_offer(&self, offer: String, receive: bool) -> Result<String, SignalError> {
        let offer = RTCSessionDescription::offer(offer).map_err(bad_sdp)?;
        self.wait_for_ice_start().await;
        self.pc
            .set_remote_description(offer)
            .await
            .map_err(bad_sdp)?;
        self.ice_queued.store(true, Ordering::Relaxed);
        if !receive {
            self.receive_nothing().await;
        }
        self.receive_without_rtx().await;
        let answer = self.pc.create_answer(None).await.map_err(bad_sdp)?;
        self.pc
            .set_local_description(answer)
            .await
            .map_err(bad_sdp)?;
        self.local_sdp().await
    }

    /// Turns receiving off on every transceiver (webrtc-rs answers a client's sending section
    /// with a receiving transceiver of its own making).
    async fn receive_nothing(&self) {
        use RTCRtpTransceiverDirection::{Inactive, Recvonly, Sendonly, Sendrecv};
        for t in self.pc.get_transceivers().await {
            match t.direction() {
                Recvonly => t.set_direction(Inactive).await,
                Sendrecv => t.set_direction(Sendonly).await,
                _ => {}
            }
        }
    }

    /// Answers the client's sending video sections without RTX: webrtc-rs 0.17 reads an
    /// incoming RTX stream only to drop it, so a publisher that retransmitted on RTX would never
    /// repair what its uplink lost. Without RTX it resends on the media stream, which the
    /// forwarding path reads. The server's own sending sections keep RTX.
    async fn receive_without_rtx(&self) {
        for t in self.pc.get_transceivers().await {
            if t.kind() != RTPCodecType::Video || !t.direction().has_recv() {
                continue;
            }
            let codecs: Vec<_> = t
                .receiver()
                .await
                .get_parameters()
                .await
                .codecs
                .into_iter()
                .filter(|c| !is_rtx(&c.capability.mime_type))
                .collect();
            if let Err(error) = t.set_codec_preferences(codecs).await {
                tracing::debug!(%error, "could not leave RTX out of a receiving section");
            }
        }
    }

    /// webrtc-rs starts ICE in the background after the first remote description and compares a
    /// later offer's ICE credentials with the ones ICE started with; until ICE has started there
    /// are none, so a renegotiation offer in that window looks like an ICE restart and the agent
    /// restarts with credentials the client never learns. The benchmark's webrtc-rs clients hit
    /// exactly this on a busy machine; a server whose core is saturated could too.
    /// Only after a remote description was applied in full: a refused one starts nothing, and
    /// waiting on it would only delay the next offer.
    async fn wait_for_ice_start(&self) {
        if !self.ice_queued.load(Ordering::Relaxed) {
            return;
        }
        let deadline = tokio::time::Instant::now() + ICE_START_GRACE;
        while self.pc.ice_connection_state() == RTCIceConnectionState::New
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Creates and applies a server offer, returning its SDP.
    pub(crate) async fn offer(&self) -> Result<String, SignalError> {
        bounded(self.make_offer()).await
    }

    async fn make_offer(&self) -> Result<String, SignalError> {
        let offer = self.pc.create_offer(None).await.map_err(bad_sdp)?;
        self.pc
            .set_local_description(offer)
            .await
            .map_err(bad_sdp)?;
        self.local_sdp().await
    }

    /// Applies the client's answer to the server's last offer.
    pub(crate) async fn accept_answer(&self, answer: String) -> Result<(), SignalError> {
        let answer = RTCSessionDescription::answer(answer).map_err(bad_sdp)?;
        bounded(async {
            self.pc
                .set_remote_description(answer)
                .await
                .map_err(bad_sdp)
        })
        .await?;
        self.ice_queued.store(true, Ordering::Relaxed);
        Ok(())
    }

    pub(crate) async fn add_candidate(&self, c: IceCandidate) -> Result<(), SignalError> {
        bounded(self.apply_candidate(c)).await
    }

    async fn apply_candidate(&self, c: IceCandidate) -> Result<(), SignalError> {
        if self.pc.remote_description().await.is_none() {
            return Err(SignalError::WrongState(
                "candidate before any offer or answer",
            ));
        }
        let init = RTCIceCandidateInit {
            candidate: c.candidate,
            sdp_mid: c.sdp_mid,
            sdp_mline_index: c.sdp_mline_index,
            username_fragment: c.username_fragment,
        };
        self.pc
            .add_ice_candidate(init)
            .await
            .map_err(|e| SignalError::BadCandidate(e.to_string()))
    }

    /// The media sections on which the client sends, as last negotiated: a publication on any
    /// other was stopped by its client (`removeTrack`, or a direction turned off).
    pub(crate) async fn receiving_mids(&self) -> Vec<String> {
        let mut mids = Vec::new();
        for t in self.pc.get_transceivers().await {
            if t.current_direction().has_recv() {
                mids.extend(t.mid().map(|m| m.to_string()));
            }
        }
        mids
    }

    pub(crate) fn is_stable(&self) -> bool {
        self.pc.signaling_state() == RTCSignalingState::Stable
    }

    /// Adds a send-only track carrying a forwarded publication, on a new transceiver: a forwarded
    /// track never rides on the client's own publishing m-line.
    pub(crate) async fn add_forward_track(
        &self,
        codec: &Codec,
        track_id: &str,
        stream_id: &str,
    ) -> Result<ForwardTrack, SfuError> {
        let local = bound_track(codec, track_id, stream_id);
        let init = RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Sendonly,
            send_encodings: Vec::new(),
        };
        let transceiver = self
            .pc
            .add_transceiver_from_track(
                Arc::clone(&local) as Arc<dyn TrackLocal + Send + Sync>,
                Some(init),
            )
            .await
            .map_err(webrtc_error)?;
        let sender = transceiver.sender().await;
        let encoding = sender.get_parameters().await.encodings.first().cloned();
        let ssrc = encoding.as_ref().map(|e| e.ssrc).unwrap_or_default();
        let rtx = encoding
            .map(|e| e.rtx.ssrc)
            .filter(|&ssrc| ssrc != 0)
            .map(Rtx::new);
        let outbound = Arc::clone(&self.outbound);
        Ok(ForwardTrack::new(
            local,
            transceiver,
            sender,
            (ssrc, rtx),
            outbound,
        ))
    }

    /// Carries another publication on a parked track's transceiver and makes it send again. The
    /// SSRC stays; the subscriber learns the new track and stream ids from the next offer.
    pub(crate) async fn reuse_forward_track(
        &self,
        parked: &ForwardTrack,
        codec: &Codec,
        track_id: &str,
        stream_id: &str,
    ) -> Result<ForwardTrack, SfuError> {
        let local = bound_track(codec, track_id, stream_id);
        let sender = Arc::clone(parked.sender());
        sender
            .replace_track(Some(Arc::clone(&local) as Arc<dyn TrackLocal + Send + Sync>))
            .await
            .map_err(webrtc_error)?;
        let transceiver = Arc::clone(parked.transceiver());
        transceiver
            .set_direction(RTCRtpTransceiverDirection::Sendonly)
            .await;
        let outbound = Arc::clone(&self.outbound);
        Ok(ForwardTrack::new(
            local,
            transceiver,
            sender,
            (parked.ssrc(), parked.rtx().cloned()),
            outbound,
        ))
    }

    /// Stops offering a forwarded track: its m-section turns inactive at the next offer, and the
    /// transceiver waits for reuse. The sender stays bound (webrtc-rs cannot revive a sender whose
    /// track was removed), it only gets nothing to send.
    pub(crate) async fn park_forward_track(&self, track: &ForwardTrack) {
        track
            .transceiver()
            .set_direction(RTCRtpTransceiverDirection::Inactive)
            .await;
    }

    /// A handle that asks this peer for a keyframe of the track with `media_ssrc`; it does not keep
    /// the connection alive.
    pub(crate) fn keyframe_requester(&self, media_ssrc: u32) -> KeyframeRequester {
        KeyframeRequester {
            pc: Arc::downgrade(&self.pc),
            media_ssrc,
        }
    }

    /// Closes the connection, first letting an ICE gathering in progress finish: webrtc-ice 0.17
    /// adds a candidate gathered after its agent closed to the closed agent anyway, and that
    /// candidate's socket and read task then live forever (seen in the soak test as a UDP socket
    /// and a task leaked by about one in thirty offers abandoned right after the answer).
    pub(crate) async fn close(&self) {
        if self.pc.ice_gathering_state() == RTCIceGatheringState::Gathering {
            let mut gathered = self.pc.gathering_complete_promise().await;
            // Host candidates take milliseconds; the bound only keeps a wedged gatherer from
            // holding up the leave.
            let _ = tokio::time::timeout(GATHERING_GRACE, gathered.recv()).await;
        }
        // Bounded for the same reason as descriptions (DESCRIPTION_LIMIT): the participant must
        // get to telling its client it left.
        match tokio::time::timeout(DESCRIPTION_LIMIT, self.pc.close()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "closing peer connection"),
            Err(_) => tracing::warn!("closing the peer connection did not finish in time"),
        }
    }

    async fn local_sdp(&self) -> Result<String, SignalError> {
        self.pc
            .local_description()
            .await
            .map(|d| d.sdp)
            .ok_or_else(|| SignalError::BadSdp("no local description".into()))
    }
}

/// Sends PLI to a publisher. Holds the connection weakly: a publication must not keep its
/// publisher's connection alive.
pub(crate) struct KeyframeRequester {
    pc: Weak<RTCPeerConnection>,
    media_ssrc: u32,
}

impl KeyframeRequester {
    /// Returns false once the connection is gone.
    pub(crate) async fn request(&self) -> bool {
        let Some(pc) = self.pc.upgrade() else {
            return false;
        };
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc: self.media_ssrc,
        };
        pc.write_rtcp(&[Box::new(pli)]).await.is_ok()
    }
}

fn bound_track(codec: &Codec, track_id: &str, stream_id: &str) -> Arc<BoundTrack> {
    Arc::new(BoundTrack::new(TrackLocalStaticRTP::new(
        codec.capability().clone(),
        track_id.to_owned(),
        stream_id.to_owned(),
    )))
}

async fn bounded<T>(
    work: impl std::future::Future<Output = Result<T, SignalError>>,
) -> Result<T, SignalError> {
    tokio::time::timeout(DESCRIPTION_LIMIT, work)
        .await
        .unwrap_or(Err(SignalError::Unresponsive))
}

fn bad_sdp(e: webrtc::Error) -> SignalError {
    SignalError::BadSdp(e.to_string())
}

fn webrtc_error(e: webrtc::Error) -> SfuError {
    SfuError::WebRtc(e.to_string())
}
