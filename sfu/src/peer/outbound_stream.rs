//! One forwarded track's RTP stream as roomcast puts it on the wire: numbered for the subscriber
//! (SSRC, payload type, MID, transport-wide sequence number), written and protected with SRTP in
//! place in the fan-out's [`Batch`] (or handed to the connection's relay, see [`Route`]); kept
//! for a while to answer NACKs; summed up in the sender reports the subscriber needs for lip sync
//! and round trips, which go out the same way.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use webrtc::rtcp::sender_report::SenderReport;
use webrtc::util::marshal::{Marshal, MarshalSize};

use super::forward_track::{Binding, ForwardTrack, Rtx};
use super::outbound::{Outbound, Route};
use super::protect::Protector;
use super::twcc::Stamp;
use super::wire::OutHeader;
use crate::fanout::{prefetch, Batch};
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
    /// The RTX stream's SRTP state, from its first retransmission on.
    rtx_srtp: Option<Protector>,
    /// The track's binding as of [`ForwardTrack::binding_generation`] `seen`.
    binding: Option<Arc<Binding>>,
    seen: u32,
    /// What was sent, by sequence number modulo the size; empty until the first packet of a
    /// stream the subscriber may NACK.
    history: Vec<Option<Sent>>,
    /// The slot after the last one written: where the next packet most likely goes.
    next_slot: usize,
    report: Totals,
}

/// A packet as it went out: the publisher's packet, how it was numbered for this subscriber,
/// and its transport-wide number, so that a retransmission is the very same SRTP packet.
struct Sent {
    ingress: Arc<Ingress>,
    rewrite: Rewrite,
    transport_seq: Option<u16>,
}

/// Which copy of a packet goes out.
#[derive(Clone, Copy, Debug)]
enum Transmission {
    /// The first: a fresh transport-wide number.
    First,
    /// A retransmission on the media stream, the very bytes of the first (its transport-wide
    /// number, if it had one).
    Again(Option<u16>),
    /// A retransmission on the RTX stream.
    Repair {
        ssrc: u32,
        payload_type: u8,
        sequence_number: u16,
    },
}

/// One copy of a forwarded packet: the publisher's packet, how the forwarder numbered it, and
/// which copy it is.
#[derive(Clone, Copy)]
struct Outgoing<'a> {
    ingress: &'a Ingress,
    rewrite: &'a Rewrite,
    transmission: Transmission,
}

/// What the sender reports sum up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Totals {
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
            rtx_srtp: None,
            binding: None,
            seen: u32::MAX,
            history: Vec::new(),
            next_slot: 0,
            report: Totals::default(),
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

    /// Starts loading what the stream's fields point at: the track, the binding, the SRTP key
    /// (see `fanout::prefetch`).
    pub(crate) fn prefetch_pointees(&self) {
        prefetch::line(Arc::as_ptr(&self.track));
        if let Some(binding) = &self.binding {
            prefetch::line(Arc::as_ptr(binding));
        }
        if let Some(srtp) = &self.srtp {
            srtp.prefetch();
        }
        if let Some(next) = self.history.get(self.next_slot) {
            prefetch::line(next);
        }
    }

    /// Starts loading what the track points at: the binding's generation and the connection.
    /// Reads the track, which [`Self::prefetch_pointees`] fetched.
    pub(crate) fn prefetch_connection(&self) {
        self.track.prefetch();
    }

    /// Starts loading the connection's transport-wide numbering. Reads the connection, which
    /// [`Self::prefetch_connection`] fetched.
    pub(crate) fn prefetch_transport(&self) {
        self.track.prefetch_transport();
    }

    /// Starts loading the history slot of the next transport-wide number. Reads what
    /// [`Self::prefetch_transport`] fetched.
    pub(crate) fn prefetch_transport_slot(&self) {
        self.track.prefetch_transport_slot();
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
        let copy = Outgoing {
            ingress,
            rewrite,
            transmission: Transmission::First,
        };
        let Some(transport_seq) = self.put_on_wire(&binding, copy, now, batch, tag) else {
            return false;
        };
        let payload = ingress.packet.payload.len() as u32;
        self.report.packets = self.report.packets.wrapping_add(1);
        self.report.octets = self.report.octets.wrapping_add(payload);
        self.report.last = Some((rewrite.timestamp, now));
        if binding.nack {
            self.keep(Sent {
                ingress: Arc::clone(ingress),
                rewrite: *rewrite,
                transport_seq,
            });
        }
        true
    }

    /// Sends again those of `lost` still held. Where the subscriber takes RTX (browsers do), on
    /// the RTX stream (RFC 4588: its own SSRC and sequence numbers, the original number ahead of
    /// the payload) with a transport-wide number of its own, so the estimator sees the
    /// retransmission as the traffic it is. Otherwise byte for byte as the first time, its
    /// transport-wide number included (recorded again as sent now): SRTP's AES-GCM nonce is
    /// made of SSRC and sequence number, which a retransmission on the media stream keeps, and
    /// one nonce must never seal two different headers. Returns how many are on their way.
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
        let rtx = self.rtx_stream(&binding);
        let mut resent = 0;
        for &seq in lost {
            let Some(Some(sent)) = self.history.get(slot(seq)) else {
                continue;
            };
            if sent.rewrite.sequence_number != seq {
                continue;
            }
            let transmission = match &rtx {
                Some((stream, payload_type)) => Transmission::Repair {
                    ssrc: stream.ssrc,
                    payload_type: *payload_type,
                    sequence_number: stream.next_sequence_number(),
                },
                // A renegotiation that added or removed the extension changed the header.
                None if sent.transport_seq.is_some() != binding.transport_cc.is_some() => continue,
                None => Transmission::Again(sent.transport_seq),
            };
            let (ingress, rewrite) = (Arc::clone(&sent.ingress), sent.rewrite);
            let copy = Outgoing {
                ingress: &ingress,
                rewrite: &rewrite,
                transmission,
            };
            if self.put_on_wire(&binding, copy, now, batch, tag).is_some() {
                resent += 1;
            }
        }
        resent
    }

    /// The RTX stream and its payload type, if the subscriber took RTX for this track and its
    /// SRTP state is ready.
    fn rtx_stream(&mut self, binding: &Binding) -> Option<(Rtx, u8)> {
        let payload_type = binding.rtx?;
        let stream = self.track.rtx()?.clone();
        if self.rtx_srtp.is_none() {
            self.rtx_srtp = self.track.outbound().protector(stream.ssrc);
        }
        self.rtx_srtp.as_ref().map(|_| (stream, payload_type))
    }

    /// Writes one copy of the packet into the batch's next buffer, protects it there and queues
    /// it (or hands it to the relay). Returns the transport-wide number it went with, if it went.
    fn put_on_wire(
        &mut self,
        binding: &Binding,
        copy: Outgoing<'_>,
        now: Instant,
        batch: &mut Batch,
        tag: u32,
    ) -> Option<Option<u16>> {
        let Outgoing {
            ingress,
            rewrite,
            transmission,
        } = copy;
        let (srtp, ssrc, payload_type, sequence_number) = match transmission {
            Transmission::Repair {
                ssrc,
                payload_type,
                sequence_number,
            } => (self.rtx_srtp.as_mut()?, ssrc, payload_type, sequence_number),
            Transmission::First | Transmission::Again(_) => (
                self.srtp.as_mut()?,
                binding.ssrc,
                binding.payload_type,
                rewrite.sequence_number,
            ),
        };
        let outbound = self.track.outbound();
        let route = outbound.route();
        if matches!(route, Route::Nowhere) {
            return None;
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
            payload_type,
            sequence_number,
            timestamp: rewrite.timestamp,
            ssrc,
            csrc: &packet.header.csrc,
            extensions: &extensions[..count],
        };
        // A repair packet's payload starts with the original sequence number.
        let original =
            matches!(transmission, Transmission::Repair { .. }).then_some(rewrite.sequence_number);
        let prefix = if original.is_some() { 2 } else { 0 };
        let size = header.len() + prefix + packet.payload.len();
        let transport = outbound.transport();
        let stamp = binding.transport_cc.map(|_| match transmission {
            Transmission::Again(Some(seq)) => transport.retake(seq, size, now),
            _ => transport.take(size, now),
        });
        let wire = batch.buffer();
        let header_len = header.write(wire, &packet.payload);
        if let Some(stamp) = stamp {
            let at = header.value_offset(count - 1);
            wire[at..at + 2].copy_from_slice(&stamp.seq().to_be_bytes());
        }
        if let Some(original) = original {
            wire.splice(header_len..header_len, original.to_be_bytes());
        }
        if let Some(vp8) = rewrite.vp8 {
            vp8.apply(&mut wire[header_len + prefix..]);
        }
        let sent = srtp.protect(wire, (ssrc, sequence_number), header_len)
            && dispatch(outbound, route, batch, tag, stamp);
        if !sent {
            if let Some(stamp) = stamp {
                transport.forget(stamp);
            }
            return None;
        }
        Some(stamp.map(Stamp::seq))
    }

    /// Takes back the transport-wide number of a packet that did not leave after all.
    pub(crate) fn forget(&self, stamp: Stamp) {
        self.track.outbound().transport().forget(stamp);
    }

    /// Puts the sender report for what was sent so far into `batch` under `tag`, protected
    /// with SRTCP in place, behind the stream's packets of this step: where the subscriber's
    /// last message of the step has room, it rides along in it (a GSO message may end with a
    /// shorter datagram), and no task wakes to send it through webrtc-rs. True if it is on its
    /// way; nothing is reported before the first packet.
    pub(crate) fn send_report(
        &mut self,
        now: Instant,
        wall: SystemTime,
        batch: &mut Batch,
        tag: u32,
    ) -> bool {
        let Some(report) = self.sender_report(now, wall) else {
            return false;
        };
        let Some(srtp) = self.srtp.as_mut() else {
            return false;
        };
        let outbound = self.track.outbound();
        let route = outbound.route();
        if matches!(route, Route::Nowhere) {
            return false;
        }
        let wire = batch.buffer();
        wire.resize(report.marshal_size(), 0);
        report.marshal_to(wire).is_ok()
            && srtp.protect_rtcp(wire)
            && dispatch(outbound, route, batch, tag, None)
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

    fn keep(&mut self, sent: Sent) {
        if self.history.is_empty() {
            self.history.resize_with(HISTORY_SLOTS, || None);
        }
        let at = slot(sent.rewrite.sequence_number);
        self.history[at] = Some(sent);
        self.next_slot = (at + 1) % HISTORY_SLOTS;
    }
}

impl Drop for OutboundStream {
    fn drop(&mut self) {
        let outbound = self.track.outbound();
        if let Some(protector) = self.srtp.take() {
            outbound.park_protector(self.track.ssrc(), protector);
        }
        if let (Some(protector), Some(rtx)) = (self.rtx_srtp.take(), self.track.rtx()) {
            outbound.park_protector(rtx.ssrc, protector);
        }
    }
}

/// Sends the protected datagram last written into `batch` on `route`: queued in the batch for
/// the shared socket, or handed to the relay. False if it is not on its way.
fn dispatch(
    outbound: &Outbound,
    route: Route<'_>,
    batch: &mut Batch,
    tag: u32,
    stamp: Option<Stamp>,
) -> bool {
    match route {
        Route::Direct(socket, to) => {
            batch.commit(socket, to, tag, stamp);
            true
        }
        Route::Relayed => outbound.send_relayed(batch.take()),
        Route::Nowhere => false,
    }
}

fn slot(seq: u16) -> usize {
    usize::from(seq) % HISTORY_SLOTS
}
