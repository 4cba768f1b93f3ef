//! One forwarded track's RTP stream as roomcast puts it on the wire: numbered for the subscriber
//! (SSRC, payload type, MID, transport-wide sequence number), protected with SRTP and written
//! through the connection's [`Outbound`]; kept for a while to answer NACKs; summed up in the
//! sender reports the subscriber needs for lip sync and round trips.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use webrtc::rtcp::sender_report::SenderReport;
use webrtc::util::marshal::{Marshal, MarshalSize};

use super::forward_track::ForwardTrack;
use super::protect::Protector;
use super::RtpPacket;
use crate::stats::ntp;

/// Packets kept for retransmission, as a power of two: 512 is about three seconds of
/// 1.5 Mbit/s video, longer than a retransmission stays useful (a subscriber's jitter buffer
/// waits a few round trips at most).
const HISTORY_SLOTS: usize = 512;

pub(crate) struct OutboundStream {
    track: Arc<ForwardTrack>,
    clock_rate: u32,
    srtp: Option<Protector>,
    /// The packet on the wire, marshalled and protected in place; reused from packet to packet.
    wire: Vec<u8>,
    /// Packets as sent, by sequence number modulo the size; empty until the first packet of a
    /// stream the subscriber may NACK.
    history: Vec<Option<RtpPacket>>,
    report: Sent,
}

/// What the sender reports sum up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Sent {
    packets: u32,
    octets: u32,
    /// The last packet's RTP timestamp and when it was sent.
    last: Option<(u32, Instant)>,
}

impl OutboundStream {
    pub(crate) fn new(track: Arc<ForwardTrack>, clock_rate: u32) -> Self {
        Self {
            track,
            clock_rate,
            srtp: None,
            wire: Vec::new(),
            history: Vec::new(),
            report: Sent::default(),
        }
    }

    pub(crate) fn track(&self) -> &Arc<ForwardTrack> {
        &self.track
    }

    /// Whether packets can leave: negotiation has bound the track and DTLS has given the keys.
    /// Until then the forwarder should not see packets, so that the subscriber's stream starts
    /// with a keyframe that it actually receives.
    pub(crate) fn is_ready(&mut self) -> bool {
        if self.srtp.is_none() {
            self.srtp = self.track.outbound().protector(self.track.ssrc());
        }
        self.srtp.is_some() && self.track.is_bound()
    }

    /// Sends `packet`, numbered by the forwarder; true if it left. Nothing leaves before
    /// [`is_ready`](Self::is_ready).
    pub(crate) async fn send(&mut self, mut packet: RtpPacket, now: Instant) -> bool {
        let Some(binding) = self.track.binding() else {
            return false;
        };
        let outbound = Arc::clone(self.track.outbound());
        let Some(srtp) = self.srtp.as_mut() else {
            return false;
        };
        packet.header.ssrc = binding.ssrc;
        packet.header.payload_type = binding.payload_type;
        if let Some((id, mid)) = &binding.mid {
            let _ = packet.header.set_extension(*id, mid.clone());
        }
        let stamp = binding
            .transport_cc
            .and_then(|id| outbound.transport().stamp(&mut packet, id, now));
        let sent = protect(srtp, &mut self.wire, &packet) && outbound.send(&self.wire).await;
        if !sent {
            if let Some(stamp) = stamp {
                outbound.transport().forget(stamp);
            }
            return false;
        }
        self.report.packets = self.report.packets.wrapping_add(1);
        self.report.octets = self.report.octets.wrapping_add(packet.payload.len() as u32);
        self.report.last = Some((packet.header.timestamp, now));
        if binding.nack {
            self.keep(packet);
        }
        true
    }

    /// Sends again those of `lost` still held, each with a transport-wide number of its own (as
    /// webrtc-rs's NACK responder and libwebrtc without RTX do): the estimator must see the
    /// retransmissions as the traffic they are. Returns how many left.
    pub(crate) async fn resend(&mut self, lost: &[u16], now: Instant) -> u32 {
        let Some(binding) = self.track.binding() else {
            return 0;
        };
        let outbound = Arc::clone(self.track.outbound());
        let mut resent = 0;
        for &seq in lost {
            let Some(srtp) = self.srtp.as_mut() else {
                return resent;
            };
            let Some(Some(packet)) = self.history.get_mut(slot(seq)) else {
                continue;
            };
            if packet.header.sequence_number != seq {
                continue;
            }
            let stamp = binding
                .transport_cc
                .and_then(|id| outbound.transport().stamp(packet, id, now));
            if protect(srtp, &mut self.wire, packet) && outbound.send(&self.wire).await {
                resent += 1;
            } else if let Some(stamp) = stamp {
                outbound.transport().forget(stamp);
            }
        }
        resent
    }

    /// The sender report for what was sent so far, as of `now` (`wall` on the wall clock):
    /// `None` before the first packet.
    pub(crate) fn sender_report(&self, now: Instant, wall: SystemTime) -> Option<SenderReport> {
        let (timestamp, at) = self.report.last?;
        let ssrc = self.track.binding()?.ssrc;
        let elapsed = now.saturating_duration_since(at).as_secs_f64();
        let ticks = (elapsed * f64::from(self.clock_rate)) as u32;
        Some(SenderReport {
            ssrc,
            ntp_time: ntp(wall),
            rtp_time: timestamp.wrapping_add(ticks),
            packet_count: self.report.packets,
            octet_count: self.report.octets,
            ..Default::default()
        })
    }

    fn keep(&mut self, packet: RtpPacket) {
        if self.history.is_empty() {
            self.history.resize_with(HISTORY_SLOTS, || None);
        }
        let index = slot(packet.header.sequence_number);
        self.history[index] = Some(packet);
    }
}

impl Drop for OutboundStream {
    fn drop(&mut self) {
        if let Some(protector) = self.srtp.take() {
            let ssrc = self.track.ssrc();
            self.track.outbound().park_protector(ssrc, protector);
        }
    }
}

fn slot(seq: u16) -> usize {
    usize::from(seq) % HISTORY_SLOTS
}

/// Marshals `packet` into `wire` and protects it there.
fn protect(srtp: &mut Protector, wire: &mut Vec<u8>, packet: &RtpPacket) -> bool {
    let header_len = packet.header.marshal_size();
    wire.clear();
    wire.resize(header_len, 0);
    if packet.header.marshal_to(wire).is_err() {
        return false;
    }
    wire.extend_from_slice(&packet.payload);
    srtp.protect(wire, &packet.header, header_len)
}
