//! One forwarded track's RTP stream as roomcast puts it on the wire: numbered for the subscriber
//! (SSRC, payload type, MID, transport-wide sequence number), written and protected with SRTP in
//! place in the fan-out's [`Batch`] (or handed to the connection's relay, see [`Route`]); kept
//! for a while to answer NACKs; summed up in the sender reports the subscriber needs for lip sync
//! and round trips.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use webrtc::rtcp::sender_report::SenderReport;

use super::forward_track::{Binding, ForwardTrack};
use super::outbound::Route;
use super::protect::Protector;
use super::twcc::Stamp;
use super::wire::OutHeader;
use crate::fanout::Batch;
use crate::forwarder::Rewrite;
use crate::publication::Ingress;
use crate::stats::ntp;

/// Packets kept for retransmission, as a power of two: 512 is about three seconds of
/// 1.5 Mbit/s video, longer than a retransmission stays useful (a subscriber's jitter buffer
/// waits a few round trips at most).
const HISTORY_SLOTS: usize = 512;

pub(crate) struct OutboundStream {
    track: Arc<ForwardTrack>,
    clock_rate: u32,
    srtp: Option<Protector>,
    /// The track's binding as of [`ForwardTrack::binding_generation`] `seen`.
    binding: Option<Arc<Binding>>,
    seen: u32,
    /// What was sent, by sequence number modulo the size (the publisher's packet and how it
    /// was numbered); empty until the first packet of a stream the subscriber may NACK.
    history: Vec<Option<(Arc<Ingress>, Rewrite)>>,
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
            binding: None,
            seen: u32::MAX,
            history: Vec::new(),
            report: Sent::default(),
        }
    }

    /// Whether packets can leave: negotiation has bound the track and DTLS has given the keys.
    /// Until then the forwarder should not see packets, so that the subscriber's stream starts
    /// with a keyframe that it actually receives.
    pub(crate) fn is_ready(&mut self) -> bool {
        if self.srtp.is_none() {
            self.srtp = self.track.outbound().protector(self.track.ssrc());
        }
        self.srtp.is_some() && self.binding().is_some()
    }

    /// The binding now, looked up again only when it has changed.
    fn binding(&mut self) -> Option<Arc<Binding>> {
        let generation = self.track.binding_generation();
        if generation != self.seen {
            self.binding = self.track.binding();
            self.seen = generation;
        }
        self.binding.clone()
    }

    /// Puts the publisher's packet `ingress`, as the forwarder numbered it, into `batch` under
    /// `tag` (or hands it to the relay); true if it is on its way. Nothing leaves before
    /// [`is_ready`](Self::is_ready).
    pub(crate) fn send(
        &mut self,
        ingress: &Arc<Ingress>,
        rewrite: &Rewrite,
        now: Instant,
        batch: &mut Batch,
        tag: u32,
    ) -> bool {
        let Some(binding) = self.binding() else {
            return false;
        };
        if !self.put_on_wire(&binding, ingress, rewrite, now, batch, tag) {
            return false;
        }
        let payload = ingress.packet.payload.len() as u32;
        self.report.packets = self.report.packets.wrapping_add(1);
        self.report.octets = self.report.octets.wrapping_add(payload);
        self.report.last = Some((rewrite.timestamp, now));
        if binding.nack {
            self.keep(Arc::clone(ingress), *rewrite);
        }
        true
    }

    /// Sends again those of `lost` still held, each with a transport-wide number of its own (as
    /// webrtc-rs's NACK responder and libwebrtc without RTX do): the estimator must see the
    /// retransmissions as the traffic they are. Returns how many are on their way.
    pub(crate) fn resend(
        &mut self,
        lost: &[u16],
        now: Instant,
        batch: &mut Batch,
        tag: u32,
    ) -> u32 {
        let Some(binding) = self.binding() else {
            return 0;
        };
        let mut resent = 0;
        for &seq in lost {
            let Some(Some((ingress, rewrite))) = self.history.get(slot(seq)) else {
                continue;
            };
            if rewrite.sequence_number != seq {
                continue;
            }
            let (ingress, rewrite) = (Arc::clone(ingress), *rewrite);
            if self.put_on_wire(&binding, &ingress, &rewrite, now, batch, tag) {
                resent += 1;
            }
        }
        resent
    }

    /// Writes the packet into the batch's next buffer with a fresh transport-wide number,
    /// protects it there and queues it (or hands it to the relay).
    fn put_on_wire(
        &mut self,
        binding: &Binding,
        ingress: &Ingress,
        rewrite: &Rewrite,
        now: Instant,
        batch: &mut Batch,
        tag: u32,
    ) -> bool {
        let Some(srtp) = self.srtp.as_mut() else {
            return false;
        };
        let outbound = self.track.outbound();
        let route = outbound.route();
        if matches!(route, Route::Nowhere) {
            return false;
        }
        let packet = &ingress.packet;
        let mut extensions: [(u8, &[u8]); 2] = [(0, &[]); 2];
        let mut count = 0;
        if let Some((id, mid)) = &binding.mid {
            extensions[count] = (*id, mid);
            count += 1;
        }
        // Written once the header's size is known, which the number's record needs.
        const PLACEHOLDER: [u8; 2] = [0, 0];
        if let Some(id) = binding.transport_cc {
            extensions[count] = (id, &PLACEHOLDER);
            count += 1;
        }
        let header = OutHeader {
            marker: packet.header.marker,
            payload_type: binding.payload_type,
            sequence_number: rewrite.sequence_number,
            timestamp: rewrite.timestamp,
            ssrc: binding.ssrc,
            csrc: &packet.header.csrc,
            extensions: &extensions[..count],
        };
        let size = header.len() + packet.payload.len();
        let stamp = binding
            .transport_cc
            .map(|_| outbound.transport().take(size, now));
        let wire = batch.buffer();
        let header_len = header.write(wire, &packet.payload);
        if let Some(stamp) = stamp {
            let at = header.value_offset(count - 1);
            wire[at..at + 2].copy_from_slice(&stamp.seq().to_be_bytes());
        }
        if let Some(vp8) = rewrite.vp8 {
            vp8.apply(&mut wire[header_len..]);
        }
        let sent = srtp.protect(wire, (binding.ssrc, rewrite.sequence_number), header_len)
            && match route {
                Route::Direct(socket, to) => {
                    batch.commit(socket, to, tag, stamp);
                    true
                }
                Route::Relayed => outbound.send_relayed(batch.take()),
                Route::Nowhere => false,
            };
        if !sent {
            if let Some(stamp) = stamp {
                outbound.transport().forget(stamp);
            }
        }
        sent
    }

    /// Takes back the transport-wide number of a packet that did not leave after all.
    pub(crate) fn forget(&self, stamp: Stamp) {
        self.track.outbound().transport().forget(stamp);
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

    fn keep(&mut self, ingress: Arc<Ingress>, rewrite: Rewrite) {
        if self.history.is_empty() {
            self.history.resize_with(HISTORY_SLOTS, || None);
        }
        self.history[slot(rewrite.sequence_number)] = Some((ingress, rewrite));
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
