//! Send-side transport-wide congestion control for the media the server sends to a subscriber.
//!
//! One [`TransportFeedback`] interceptor per PeerConnection:
//!
//! * every outgoing RTP packet of a stream that negotiated the transport-wide-cc header extension
//!   gets the next transport sequence number (one 16-bit counter for all of the connection's
//!   streams) from the connection's [`TransportSequence`], which roomcast's own send path
//!   ([`super::OutboundStream`]) stamps it with, and its send time and size go into a lock-free
//!   [`SendHistory`] (sized by the rate the connection sends at);
//! * every transport-wide feedback the subscriber sends back is decoded, matched against that
//!   history and delivered as [`TransportEvent::Feedback`] (results in transport sequence order);
//! * receiver reports about the connection's own streams are delivered as
//!   [`TransportEvent::LossReport`], for subscribers that send no transport-wide feedback.
//!
//! webrtc-rs hands one compound RTCP packet to the reader of every stream it names, so the same
//! feedback or report can pass through several of this interceptor's readers; each is delivered
//! once.

use std::iter::repeat_n;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use super::send_history::SendHistory;
use crate::bwe::PacketResult;
use webrtc::interceptor::stream_info::StreamInfo;
use webrtc::interceptor::{
    Attributes, Error, Interceptor, InterceptorBuilder, RTCPReader, RTCPWriter, RTPReader,
    RTPWriter,
};
use webrtc::rtcp::packet::Packet as RtcpPacket;
use webrtc::rtcp::receiver_report::ReceiverReport;
use webrtc::rtcp::reception_report::ReceptionReport;
use webrtc::rtcp::sender_report::SenderReport;
use webrtc::rtcp::transport_feedbacks::transport_layer_cc::{
    PacketStatusChunk, SymbolTypeTcc, TransportLayerCc,
};

type Result<T> = std::result::Result<T, Error>;
type RtcpBatch = Vec<Box<dyn RtcpPacket + Send + Sync>>;

/// TWCC reference time unit.
const REFERENCE_TIME_UNIT_US: i64 = 64_000;
/// The reference time is a 24-bit field.
const REFERENCE_TIME_RANGE: i64 = 1 << 24;

/// What a subscriber's RTCP tells the owner of its PeerConnection about the downlink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TransportEvent {
    /// One transport-wide feedback, in transport sequence order; packets the history no longer
    /// (or never) held are left out. Never empty.
    Feedback(Vec<PacketResult>),
    /// Fraction lost (0..=255, as in RTCP) of one RTCP batch's reception reports about the
    /// connection's own media streams, combined weighted by packets expected when known.
    LossReport(u8),
}

/// The sender handed in for the next build, and what that build made.
#[derive(Default)]
struct Slot {
    events: Option<UnboundedSender<TransportEvent>>,
    built: Option<TransportSequence>,
}

type EventSlot = Arc<Mutex<Slot>>;

/// Builds one [`TransportFeedback`] interceptor per PeerConnection.
///
/// webrtc-rs builds every registered interceptor once per `API::new_peer_connection`, from a
/// registry the API owns, so the channel of the connection being created cannot be passed in:
/// it goes through a slot this builder shares with its clones. Contract:
///
/// * register a clone **first** in the `Registry` (before the NACK responder): webrtc-rs chains
///   local-stream writers so that the first registered is closest to the socket, and only there
///   do retransmissions the responder sends get a fresh transport sequence number;
/// * to create a connection, under a `tokio::sync::Mutex` held across the whole step so that
///   creations never interleave: [`arm`](Self::arm) the slot with the new connection's sender,
///   `api.new_peer_connection(..).await` (which builds the interceptor, taking the sender), then
///   [`disarm`](Self::disarm), which hands back the connection's [`TransportSequence`] (and
///   empties the slot in case creation failed before building);
/// * a build that finds the slot empty makes an interceptor that still numbers packets but drops
///   its events.
///
/// The owner's receiver ends once the connection is closed (the interceptor drops its sender).
#[derive(Clone, Default)]
pub(crate) struct TransportFeedbackBuilder {
    slot: EventSlot,
}

impl TransportFeedbackBuilder {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Hands `events` to the next interceptor built.
    pub(crate) fn arm(&self, events: UnboundedSender<TransportEvent>) {
        *lock(&self.slot) = Slot {
            events: Some(events),
            built: None,
        };
    }

    /// Empties the slot; returns the numbering of the interceptor built since `arm`, if one was.
    pub(crate) fn disarm(&self) -> Option<TransportSequence> {
        std::mem::take(&mut *lock(&self.slot)).built
    }
}

impl InterceptorBuilder for TransportFeedbackBuilder {
    fn build(&self, _id: &str) -> Result<Arc<dyn Interceptor + Send + Sync>> {
        let mut slot = lock(&self.slot);
        let interceptor = TransportFeedback::new(slot.events.take(), 0);
        slot.built = Some(interceptor.sequence());
        Ok(Arc::new(interceptor))
    }
}

/// The interceptor of one PeerConnection; see the module documentation.
pub(crate) struct TransportFeedback {
    shared: Arc<Shared>,
}

/// A connection's transport-wide numbering of the packets it sends, shared by its streams.
#[derive(Clone)]
pub(crate) struct TransportSequence(Arc<Shared>);

/// A transport-wide sequence number taken for a packet, and what
/// [`TransportSequence::forget`] needs to take it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    seq: u16,
    recorded: u64,
}

impl Stamp {
    pub(crate) fn seq(self) -> u16 {
        self.seq
    }
}

impl TransportSequence {
    /// Starts loading the counter and the history's header (see `fanout::prefetch`).
    pub(crate) fn prefetch(&self) {
        crate::fanout::prefetch::line(&self.0.next_seq);
        self.0.history.prefetch();
    }

    /// Starts loading the history slot the next number goes to. Reads what
    /// [`Self::prefetch`] fetched.
    pub(crate) fn prefetch_slot(&self) {
        let next = self.0.next_seq.load(Ordering::Relaxed);
        self.0.history.prefetch_slot(next);
    }

    /// The next transport-wide sequence number, for a packet of `size` bytes sent at `at`.
    pub(crate) fn take(&self, size: usize, at: Instant) -> Stamp {
        let shared = &self.0;
        // Streams of one connection are numbered from several tasks: one atomic step.
        let seq = shared.next_seq.fetch_add(1, Ordering::Relaxed);
        let recorded = shared.history.record(seq, size, at);
        Stamp { seq, recorded }
    }

    /// Sequence number `seq` again, for a retransmission sent at `at` as the very same packet.
    pub(crate) fn retake(&self, seq: u16, size: usize, at: Instant) -> Stamp {
        let recorded = self.0.history.record(seq, size, at);
        Stamp { seq, recorded }
    }

    /// Takes back a stamp whose packet never left: its feedback must not count it as lost.
    pub(crate) fn forget(&self, stamp: Stamp) {
        self.0.history.forget(stamp.seq, stamp.recorded);
    }
}

/// State shared by the interceptor, the readers it wrapped and the connection's streams.
struct Shared {
    /// The next transport-wide sequence number.
    next_seq: AtomicU16,
    history: SendHistory,
    /// Everything the RTCP path needs, locked once per RTCP batch (never per RTP packet).
    rtcp: Mutex<RtcpState>,
}

struct RtcpState {
    events: Option<UnboundedSender<TransportEvent>>,
    /// Per `fb_pkt_count`: the last feedback seen with it (base sequence number, status count,
    /// reference time), to drop the copies of one feedback handed to several readers.
    seen: [Option<u64>; 256],
    /// The last reference time, unwrapped from 24 bits.
    reference: Option<i64>,
    /// The connection's own media streams (RTX and other associated streams excluded) and the
    /// last reception report about each.
    locals: Vec<LocalStream>,
}

struct LocalStream {
    ssrc: u32,
    last: Option<ReportKey>,
}

/// The parts of a reception report that tell one report from the next.
#[derive(Clone, Copy, PartialEq, Eq)]
struct ReportKey {
    highest_seq: u32,
    total_lost: u32,
    last_sender_report: u32,
    delay: u32,
}

impl ReportKey {
    fn of(r: &ReceptionReport) -> Self {
        Self {
            highest_seq: r.last_sequence_number,
            total_lost: r.total_lost,
            last_sender_report: r.last_sender_report,
            delay: r.delay,
        }
    }
}

impl TransportFeedback {
    fn new(events: Option<UnboundedSender<TransportEvent>>, first_seq: u16) -> Self {
        Self {
            shared: Arc::new(Shared {
                next_seq: AtomicU16::new(first_seq),
                history: SendHistory::new(Instant::now()),
                rtcp: Mutex::new(RtcpState {
                    events,
                    seen: [None; 256],
                    reference: None,
                    locals: Vec::new(),
                }),
            }),
        }
    }
}

impl TransportFeedback {
    fn sequence(&self) -> TransportSequence {
        TransportSequence(Arc::clone(&self.shared))
    }
}

#[async_trait::async_trait]
impl Interceptor for TransportFeedback {
    async fn bind_rtcp_reader(
        &self,
        reader: Arc<dyn RTCPReader + Send + Sync>,
    ) -> Arc<dyn RTCPReader + Send + Sync> {
        Arc::new(FeedbackReader {
            inner: reader,
            shared: Arc::clone(&self.shared),
        })
    }

    async fn bind_rtcp_writer(
        &self,
        writer: Arc<dyn RTCPWriter + Send + Sync>,
    ) -> Arc<dyn RTCPWriter + Send + Sync> {
        writer
    }

    async fn bind_local_stream(
        &self,
        info: &StreamInfo,
        writer: Arc<dyn RTPWriter + Send + Sync>,
    ) -> Arc<dyn RTPWriter + Send + Sync> {
        if info.associated_stream.is_none() {
            let mut rtcp = lock(&self.shared.rtcp);
            if !rtcp.locals.iter().any(|l| l.ssrc == info.ssrc) {
                rtcp.locals.push(LocalStream {
                    ssrc: info.ssrc,
                    last: None,
                });
            }
        }
        // roomcast's send path writes the stream's packets, not webrtc-rs (see `OutboundStream`).
        writer
    }

    async fn unbind_local_stream(&self, info: &StreamInfo) {
        lock(&self.shared.rtcp)
            .locals
            .retain(|l| l.ssrc != info.ssrc);
    }

    async fn bind_remote_stream(
        &self,
        _info: &StreamInfo,
        reader: Arc<dyn RTPReader + Send + Sync>,
    ) -> Arc<dyn RTPReader + Send + Sync> {
        reader
    }

    async fn unbind_remote_stream(&self, _info: &StreamInfo) {}

    /// Drops the events sender, so the owner's receiver ends.
    async fn close(&self) -> Result<()> {
        lock(&self.shared.rtcp).events = None;
        Ok(())
    }
}

/// Surfaces the transport feedback and loss in each RTCP batch a reader returns.
struct FeedbackReader {
    inner: Arc<dyn RTCPReader + Send + Sync>,
    shared: Arc<Shared>,
}

#[async_trait::async_trait]
impl RTCPReader for FeedbackReader {
    async fn read(
        &self,
        buf: &mut [u8],
        attributes: &Attributes,
    ) -> Result<(RtcpBatch, Attributes)> {
        let (packets, attributes) = self.inner.read(buf, attributes).await?;
        self.shared.observe(&packets, Instant::now());
        Ok((packets, attributes))
    }
}

impl Shared {
    /// Delivers what one RTCP batch says about the downlink, unless another reader already did.
    fn observe(&self, packets: &[Box<dyn RtcpPacket + Send + Sync>], now: Instant) {
        let mut guard = lock(&self.rtcp);
        let state = &mut *guard;
        let Some(events) = &state.events else {
            return;
        };
        let mut loss = LossAccumulator::default();
        for packet in packets {
            let any = packet.as_any();
            if let Some(cc) = any.downcast_ref::<TransportLayerCc>() {
                let key = u64::from(cc.base_sequence_number) << 40
                    | u64::from(cc.packet_status_count) << 24
                    | u64::from(cc.reference_time & 0xFF_FFFF);
                let seen = &mut state.seen[usize::from(cc.fb_pkt_count)];
                if *seen == Some(key) {
                    continue;
                }
                *seen = Some(key);
                let reference = unwrap_reference(&mut state.reference, cc.reference_time);
                let results = decode(cc, reference * REFERENCE_TIME_UNIT_US, |seq| {
                    self.history.lookup(seq, now)
                });
                if !results.is_empty() {
                    let _ = events.send(TransportEvent::Feedback(results));
                }
            } else if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
                loss.add(&mut state.locals, &rr.reports);
            } else if let Some(sr) = any.downcast_ref::<SenderReport>() {
                // A subscriber that also publishes sends its reports in sender reports.
                loss.add(&mut state.locals, &sr.reports);
            }
        }
        if let Some(fraction) = loss.fraction_lost() {
            let _ = events.send(TransportEvent::LossReport(fraction));
        }
    }
}

/// Combines the fresh reception reports of one batch about the connection's own streams.
#[derive(Default)]
struct LossAccumulator {
    /// Σ fraction_lost × packets expected since the previous report, over reports with a
    /// previous one.
    weighted: u64,
    expected: u64,
    /// The largest fraction lost, for when no report says how many packets it covers.
    max: Option<u8>,
}

impl LossAccumulator {
    fn add(&mut self, locals: &mut [LocalStream], reports: &[ReceptionReport]) {
        for report in reports {
            let Some(local) = locals.iter_mut().find(|l| l.ssrc == report.ssrc) else {
                continue;
            };
            let key = ReportKey::of(report);
            if local.last == Some(key) {
                continue; // another reader's copy of the same report
            }
            if let Some(last) = local.last {
                let expected = key.highest_seq.wrapping_sub(last.highest_seq);
                // Backwards or absurd jumps (a reordered report, a restarted stream) say nothing
                // about how many packets this fraction covers.
                if expected < 1 << 16 {
                    self.weighted += u64::from(report.fraction_lost) * u64::from(expected);
                    self.expected += u64::from(expected);
                }
            }
            local.last = Some(key);
            self.max = self.max.max(Some(report.fraction_lost));
        }
    }

    fn fraction_lost(&self) -> Option<u8> {
        let max = self.max?;
        if self.expected == 0 {
            return Some(max);
        }
        Some(((self.weighted + self.expected / 2) / self.expected).min(255) as u8)
    }
}

/// Unwraps a 24-bit reference time against the previous one. The first is offset by one full
/// range so that arrival times (which negative deltas may take below the reference) stay positive.
fn unwrap_reference(last: &mut Option<i64>, raw: u32) -> i64 {
    let raw = i64::from(raw) & (REFERENCE_TIME_RANGE - 1);
    let full = match *last {
        None => REFERENCE_TIME_RANGE + raw,
        Some(last) => {
            let mut diff = (raw - last).rem_euclid(REFERENCE_TIME_RANGE);
            if diff >= REFERENCE_TIME_RANGE / 2 {
                diff -= REFERENCE_TIME_RANGE;
            }
            last + diff
        }
    };
    *last = Some(full);
    full
}

/// The packet status symbols of a feedback, one per reported sequence number from its base.
/// webrtc-rs already maps 1-bit status-vector symbols onto the 2-bit ones (1 = received, small
/// delta) and keeps a status vector's unused tail symbols, hence the cut at the status count.
fn symbols(cc: &TransportLayerCc) -> impl Iterator<Item = SymbolTypeTcc> + '_ {
    cc.packet_chunks
        .iter()
        .flat_map(|chunk| {
            let (run, vector) = match chunk {
                PacketStatusChunk::RunLengthChunk(c) => (
                    Some(repeat_n(c.packet_status_symbol, usize::from(c.run_length))),
                    None,
                ),
                PacketStatusChunk::StatusVectorChunk(c) => {
                    (None, Some(c.symbol_list.iter().copied()))
                }
            };
            run.into_iter()
                .flatten()
                .chain(vector.into_iter().flatten())
        })
        .take(usize::from(cc.packet_status_count))
}

/// The results of one feedback in transport sequence order. `reference_us` is its reference time
/// in microseconds; `lookup` gives a sequence number's send time and size, if still known.
fn decode(
    cc: &TransportLayerCc,
    reference_us: i64,
    lookup: impl Fn(u16) -> Option<(Instant, u16)>,
) -> Vec<PacketResult> {
    let mut results = Vec::with_capacity(usize::from(cc.packet_status_count));
    let mut deltas = cc.recv_deltas.iter();
    let mut arrival_us = reference_us;
    let mut seq = cc.base_sequence_number;
    for symbol in symbols(cc) {
        let this = seq;
        seq = seq.wrapping_add(1);
        let arrived_at = match symbol {
            SymbolTypeTcc::PacketNotReceived => None,
            SymbolTypeTcc::PacketReceivedSmallDelta | SymbolTypeTcc::PacketReceivedLargeDelta => {
                // webrtc-rs's deltas are already microseconds (its 250 µs ticks multiplied out).
                let Some(delta) = deltas.next() else {
                    break; // fewer deltas than received packets: malformed
                };
                arrival_us += delta.delta;
                Some(Duration::from_micros(arrival_us.max(0) as u64))
            }
            // The reserved symbol: received, but with no time to place it; neither arrived nor lost.
            SymbolTypeTcc::PacketReceivedWithoutDelta => continue,
        };
        if let Some((sent_at, size)) = lookup(this) {
            results.push(PacketResult {
                sent_at,
                size: u32::from(size),
                arrived_at,
            });
        }
    }
    results
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::send_history::PAGE_SLOTS;

    use bytes::Bytes;
    use tokio::sync::mpsc::{self, error::TryRecvError, UnboundedReceiver};
    use webrtc::interceptor::stream_info::{AssociatedStreamInfo, RTPHeaderExtension};
    use webrtc::rtcp::transport_feedbacks::transport_layer_cc::{
        RecvDelta, RunLengthChunk, StatusChunkTypeTcc, StatusVectorChunk, SymbolSizeTypeTcc,
    };
    use webrtc::rtp::extension::transport_cc_extension::TransportCcExtension;
    use webrtc::rtp::header::Header;
    use webrtc::rtp::packet::Packet as RtpPacket;
    use webrtc::sdp::extmap::TRANSPORT_CC_URI;
    use webrtc::util::marshal::Unmarshal;
    use webrtc::util::marshal::{Marshal, MarshalSize};

    use SymbolTypeTcc::{
        PacketNotReceived as Lost, PacketReceivedLargeDelta as Large,
        PacketReceivedSmallDelta as Small,
    };

    /// A stream writer for binding; nothing is written through webrtc-rs.
    struct NullWriter;

    #[async_trait::async_trait]
    impl RTPWriter for NullWriter {
        async fn write(&self, pkt: &RtpPacket, _attributes: &Attributes) -> Result<usize> {
            Ok(pkt.marshal_size())
        }
    }

    /// `packet` as the send path sends it: numbered in extension `ext_id`, recorded with its
    /// size on the wire.
    fn stamped(twcc: &TransportFeedback, ext_id: u8, mut packet: RtpPacket) -> RtpPacket {
        number(&twcc.sequence(), ext_id, &mut packet);
        packet
    }

    fn number(sequence: &TransportSequence, ext_id: u8, packet: &mut RtpPacket) -> Stamp {
        let placeholder = Bytes::from_static(&[0, 0]);
        packet.header.set_extension(ext_id, placeholder).unwrap();
        let stamp = sequence.take(packet.marshal_size(), Instant::now());
        let value = TransportCcExtension {
            transport_sequence: stamp.seq(),
        };
        packet
            .header
            .set_extension(ext_id, value.marshal().unwrap())
            .unwrap();
        stamp
    }

    /// Returns the same RTCP batch on every read.
    struct FixedReader(RtcpBatch);

    #[async_trait::async_trait]
    impl RTCPReader for FixedReader {
        async fn read(
            &self,
            _buf: &mut [u8],
            attributes: &Attributes,
        ) -> Result<(RtcpBatch, Attributes)> {
            let batch = self.0.iter().map(|p| p.cloned()).collect();
            Ok((batch, attributes.clone()))
        }
    }

    fn interceptor(first_seq: u16) -> (TransportFeedback, UnboundedReceiver<TransportEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (TransportFeedback::new(Some(tx), first_seq), rx)
    }

    fn stream(ssrc: u32, twcc_id: Option<isize>) -> StreamInfo {
        let mut rtp_header_extensions = vec![RTPHeaderExtension {
            uri: webrtc::sdp::extmap::SDES_MID_URI.to_owned(),
            id: 1,
        }];
        if let Some(id) = twcc_id {
            rtp_header_extensions.push(RTPHeaderExtension {
                uri: TRANSPORT_CC_URI.to_owned(),
                id,
            });
        }
        StreamInfo {
            ssrc,
            rtp_header_extensions,
            ..Default::default()
        }
    }

    fn rtp(ssrc: u32, sequence_number: u16, payload_len: usize) -> RtpPacket {
        let mut packet = RtpPacket {
            header: Header {
                version: 2,
                payload_type: 96,
                sequence_number,
                timestamp: 90_000,
                ssrc,
                ..Default::default()
            },
            payload: vec![0xAB; payload_len].into(),
        };
        // As the send path stamps it: with a MID extension already set.
        packet.header.set_extension(1, "0".into()).unwrap();
        packet
    }

    fn transport_seq(packet: &RtpPacket, id: u8) -> u16 {
        let mut payload = packet
            .header
            .get_extension(id)
            .expect("no transport-cc extension");
        TransportCcExtension::unmarshal(&mut payload)
            .unwrap()
            .transport_sequence
    }

    /// `cc` through webrtc-rs's own marshal and unmarshal, as it arrives off the wire.
    fn wire(cc: TransportLayerCc) -> TransportLayerCc {
        let bytes = cc.marshal().unwrap();
        TransportLayerCc::unmarshal(&mut bytes.clone()).unwrap()
    }

    fn run(symbol: SymbolTypeTcc, run_length: u16) -> PacketStatusChunk {
        PacketStatusChunk::RunLengthChunk(RunLengthChunk {
            type_tcc: StatusChunkTypeTcc::RunLengthChunk,
            packet_status_symbol: symbol,
            run_length,
        })
    }

    fn vector(symbol_size: SymbolSizeTypeTcc, symbols: &[SymbolTypeTcc]) -> PacketStatusChunk {
        let len = match symbol_size {
            SymbolSizeTypeTcc::OneBit => 14,
            SymbolSizeTypeTcc::TwoBit => 7,
        };
        let mut symbol_list = symbols.to_vec();
        symbol_list.resize(len, Lost);
        PacketStatusChunk::StatusVectorChunk(StatusVectorChunk {
            type_tcc: StatusChunkTypeTcc::StatusVectorChunk,
            symbol_size,
            symbol_list,
        })
    }

    fn delta(type_tcc_packet: SymbolTypeTcc, delta: i64) -> RecvDelta {
        RecvDelta {
            type_tcc_packet,
            delta,
        }
    }

    fn batch(packets: Vec<Box<dyn RtcpPacket + Send + Sync>>) -> RtcpBatch {
        packets
    }

    fn feedbacks(rx: &mut UnboundedReceiver<TransportEvent>) -> Vec<TransportEvent> {
        let mut out = Vec::new();
        while let Ok(event) = rx.try_recv() {
            out.push(event);
        }
        out
    }

    fn arrivals(results: &[PacketResult]) -> Vec<Option<Duration>> {
        results.iter().map(|r| r.arrived_at).collect()
    }

    fn diff(a: Option<Duration>, b: Option<Duration>) -> i64 {
        b.unwrap().as_micros() as i64 - a.unwrap().as_micros() as i64
    }

    #[test]
    fn a_twcc_feedback_through_webrtc_rs_marshal_and_unmarshal_decodes_into_the_right_results() {
        let (twcc, mut rx) = interceptor(0);
        let origin = twcc.shared.history.origin;
        let sent = |seq: u16| origin + Duration::from_millis(u64::from(seq) * 3);
        // 100..=107 sent; 107 is later overwritten by 107 + 256 (history no longer holds it);
        // 108 never sent.
        for seq in 100..=107u16 {
            twcc.shared
                .history
                .record(seq, 1_000 + usize::from(seq), sent(seq));
        }
        twcc.shared
            .history
            .record(107 + PAGE_SLOTS as u16, 50, sent(107));

        let cc = wire(TransportLayerCc {
            sender_ssrc: 1,
            media_ssrc: 2,
            base_sequence_number: 100,
            packet_status_count: 9,
            reference_time: 1_000,
            fb_pkt_count: 3,
            packet_chunks: vec![
                // 100, 101, 102 received
                run(Small, 3),
                // 103 large, 104 lost, 105 small, 106 large, 107 small, 108 small, then the
                // vector's tail beyond the status count
                vector(
                    SymbolSizeTypeTcc::TwoBit,
                    &[Large, Lost, Small, Large, Small, Small],
                ),
            ],
            recv_deltas: vec![
                delta(Small, 250),
                delta(Small, 1_000),
                delta(Small, 63_750),
                delta(Large, -2_000),
                delta(Small, 500),
                delta(Large, 100_000),
                delta(Small, 750),
                delta(Small, 250),
            ],
        });
        assert_eq!(cc.recv_deltas[3].delta, -2_000, "deltas come back in µs");

        twcc.shared.observe(
            &batch(vec![Box::new(cc)]),
            sent(107) + Duration::from_millis(50),
        );
        let events = feedbacks(&mut rx);
        let [TransportEvent::Feedback(results)] = events.as_slice() else {
            panic!("expected one feedback, got {events:?}");
        };
        // 100..=106 (107 and 108 unknown), in sequence order.
        assert_eq!(results.len(), 7);
        for (result, seq) in results.iter().zip(100u16..) {
            assert_eq!(result.sent_at, sent(seq), "send time of {seq}");
            assert_eq!(result.size, 1_000 + u32::from(seq), "size of {seq}");
        }
        let at = arrivals(results);
        assert_eq!(at[4], None, "104 was lost");
        assert!(at.iter().enumerate().all(|(i, a)| a.is_some() == (i != 4)));
        assert_eq!(diff(at[0], at[1]), 1_000);
        assert_eq!(diff(at[1], at[2]), 63_750);
        assert_eq!(diff(at[2], at[3]), -2_000);
        assert_eq!(diff(at[3], at[5]), 500);
        assert_eq!(diff(at[5], at[6]), 100_000);
        // The first delta is from the reference time (64 ms units, offset by one 24-bit range).
        assert_eq!(
            at[0].unwrap().as_micros() as i64,
            ((1 << 24) + 1_000) * 64_000 + 250
        );
    }

    #[tokio::test]
    async fn transport_sequence_numbers_and_feedback_wrap_around_at_65536() {
        let (twcc, mut rx) = interceptor(65_534);
        let sent: Vec<RtpPacket> = (0..4u16)
            .map(|i| stamped(&twcc, 4, rtp(10, i, 100 + usize::from(i))))
            .collect();
        let seqs: Vec<u16> = sent.iter().map(|p| transport_seq(p, 4)).collect();
        assert_eq!(seqs, [65_534, 65_535, 0, 1]);

        // 1-bit status vector: received, received, lost, received.
        let cc = wire(TransportLayerCc {
            media_ssrc: 10,
            base_sequence_number: 65_534,
            packet_status_count: 4,
            reference_time: 7,
            fb_pkt_count: 0,
            packet_chunks: vec![vector(
                SymbolSizeTypeTcc::OneBit,
                &[Small, Small, Lost, Small],
            )],
            recv_deltas: vec![
                delta(Small, 2_000),
                delta(Small, 1_250),
                delta(Small, 4_000),
            ],
            ..Default::default()
        });
        twcc.shared
            .observe(&batch(vec![Box::new(cc)]), Instant::now());
        let events = feedbacks(&mut rx);
        let [TransportEvent::Feedback(results)] = events.as_slice() else {
            panic!("expected one feedback, got {events:?}");
        };
        let sizes: Vec<u32> = results.iter().map(|r| r.size).collect();
        let expected: Vec<u32> = sent.iter().map(|p| p.marshal_size() as u32).collect();
        assert_eq!(sizes, expected);
        assert!(results.windows(2).all(|w| w[0].sent_at <= w[1].sent_at));
        let at = arrivals(results);
        assert_eq!(at[2], None);
        assert_eq!(diff(at[0], at[1]), 1_250);
        assert_eq!(diff(at[1], at[3]), 4_000);
    }

    #[tokio::test]
    async fn a_feedback_read_by_several_senders_with_the_same_fb_pkt_count_is_delivered_once() {
        let builder = TransportFeedbackBuilder::new();
        let (tx, mut rx) = mpsc::unbounded_channel();
        builder.arm(tx);
        let twcc = builder.build("").unwrap();
        let sequence = builder
            .disarm()
            .expect("the build made the connection's numbering");
        assert!(builder.disarm().is_none(), "the slot is empty again");
        for i in 0..3 {
            number(&sequence, 4, &mut rtp(10, i, 500));
        }
        let feedback = |fb_pkt_count: u8, base: u16| TransportLayerCc {
            media_ssrc: 10,
            base_sequence_number: base,
            packet_status_count: 1,
            reference_time: 1,
            fb_pkt_count,
            packet_chunks: vec![run(Small, 1)],
            recv_deltas: vec![delta(Small, 1_000)],
            ..Default::default()
        };
        let compound = batch(vec![Box::new(feedback(9, 0))]);
        // Two senders of the connection read the same compound.
        let a = twcc
            .bind_rtcp_reader(Arc::new(FixedReader(compound.clone())))
            .await;
        let b = twcc.bind_rtcp_reader(Arc::new(FixedReader(compound))).await;
        let mut buf = [0u8; 1500];
        let (packets, _) = a.read(&mut buf, &Attributes::new()).await.unwrap();
        assert_eq!(packets.len(), 1, "the batch passes through");
        b.read(&mut buf, &Attributes::new()).await.unwrap();
        a.read(&mut buf, &Attributes::new()).await.unwrap();
        assert_eq!(feedbacks(&mut rx).len(), 1);

        // The next feedback, and one reusing a count for other packets (after the 8-bit wrap),
        // both get through.
        let next = FixedReader(batch(vec![Box::new(feedback(10, 1))]));
        twcc.bind_rtcp_reader(Arc::new(next))
            .await
            .read(&mut buf, &Attributes::new())
            .await
            .unwrap();
        let reused = FixedReader(batch(vec![Box::new(feedback(9, 2))]));
        twcc.bind_rtcp_reader(Arc::new(reused))
            .await
            .read(&mut buf, &Attributes::new())
            .await
            .unwrap();
        assert_eq!(feedbacks(&mut rx).len(), 2);

        // Closing drops the sender: the owner's receiver ends.
        twcc.close().await.unwrap();
        drop((a, b, sequence, twcc));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }

    #[tokio::test]
    async fn packets_of_two_streams_are_numbered_consecutively_each_in_its_streams_extension() {
        let (twcc, _rx) = interceptor(0);
        let before = Instant::now();
        let video = vec![stamped(&twcc, 5, rtp(10, 1, 1_000))];
        let audio = vec![stamped(&twcc, 3, rtp(20, 1, 60))];
        let video = [video, vec![stamped(&twcc, 5, rtp(10, 2, 900))]].concat();
        let after = Instant::now();

        assert_eq!(
            video
                .iter()
                .map(|p| transport_seq(p, 5))
                .collect::<Vec<_>>(),
            [0, 2]
        );
        assert_eq!(
            audio
                .iter()
                .map(|p| transport_seq(p, 3))
                .collect::<Vec<_>>(),
            [1]
        );
        assert_eq!(audio[0].header.get_extension(5), None);
        let originals = [rtp(10, 1, 1_000), rtp(10, 2, 900), rtp(20, 1, 60)];
        for (packet, original) in video.iter().chain(&audio).zip(&originals) {
            // The rest of the packet is untouched, the MID extension included.
            let mut stripped = packet.clone();
            let id = if packet.header.ssrc == 10 { 5 } else { 3 };
            stripped.header.del_extension(id).unwrap();
            assert_eq!(stripped.header.extensions, original.header.extensions);
            assert_eq!(
                stripped.header.sequence_number,
                original.header.sequence_number
            );
            assert_eq!(stripped.payload, original.payload);
            // And it marshals to the size the history records.
            assert_eq!(packet.marshal().unwrap().len(), packet.marshal_size());
        }
        for (seq, packet) in [(0, &video[0]), (1, &audio[0]), (2, &video[1])] {
            let (sent_at, size) = twcc.shared.history.lookup(seq, Instant::now()).unwrap();
            assert_eq!(usize::from(size), packet.marshal_size(), "size of {seq}");
            // Microsecond resolution: allow the truncation below `before`.
            assert!(sent_at + Duration::from_micros(1) >= before && sent_at <= after);
        }
    }

    #[test]
    fn a_stamp_taken_back_leaves_no_record_and_the_next_packet_takes_the_next_number() {
        let (twcc, _rx) = interceptor(0);
        let sequence = twcc.sequence();
        let stamp = number(&sequence, 4, &mut rtp(10, 1, 300));
        sequence.forget(stamp);
        assert_eq!(twcc.shared.history.lookup(0, Instant::now()), None);
        let next = stamped(&twcc, 4, rtp(10, 2, 300));
        assert_eq!(transport_seq(&next, 4), 1);
    }

    #[test]
    fn a_retransmission_keeps_its_number_which_then_reads_as_sent_when_it_was_resent() {
        let (twcc, _rx) = interceptor(0);
        let sequence = twcc.sequence();
        let first = Instant::now();
        let stamp = sequence.take(300, first);
        let later = first + Duration::from_millis(40);
        let again = sequence.retake(stamp.seq(), 300, later);
        assert_eq!(again.seq(), stamp.seq());
        let (sent, size) = twcc.shared.history.lookup(stamp.seq(), later).unwrap();
        assert_eq!(size, 300);
        // Kept to the microsecond.
        assert!(
            later.duration_since(sent) < Duration::from_micros(1),
            "{sent:?}"
        );
        assert_eq!(
            sequence.take(300, later).seq(),
            stamp.seq() + 1,
            "no number used up"
        );
    }

    #[tokio::test]
    async fn receiver_reports_about_own_streams_give_one_loss_report_per_batch() {
        let (twcc, mut rx) = interceptor(0);
        for info in [stream(10, Some(4)), stream(20, None)] {
            twcc.bind_local_stream(&info, Arc::new(NullWriter)).await;
        }
        let mut rtx = stream(30, Some(4));
        rtx.associated_stream = Some(AssociatedStreamInfo {
            ssrc: 10,
            payload_type: 96,
        });
        twcc.bind_local_stream(&rtx, Arc::new(NullWriter)).await;

        let report = |ssrc: u32, fraction_lost: u8, highest: u32| ReceptionReport {
            ssrc,
            fraction_lost,
            last_sequence_number: highest,
            ..Default::default()
        };
        let rr = |reports: Vec<ReceptionReport>| -> Box<dyn RtcpPacket + Send + Sync> {
            Box::new(ReceiverReport {
                ssrc: 99,
                reports,
                ..Default::default()
            })
        };

        // First reports: no interval known yet, so the largest fraction. Unknown SSRCs (another
        // server's, the RTX stream's) do not count.
        let first = batch(vec![
            rr(vec![report(10, 10, 1_000), report(20, 40, 500)]),
            rr(vec![report(77, 200, 1), report(30, 250, 1)]),
        ]);
        twcc.shared.observe(&first, Instant::now());
        // A second reader's copy of the same batch says nothing new.
        twcc.shared.observe(&first, Instant::now());
        assert_eq!(feedbacks(&mut rx), [TransportEvent::LossReport(40)]);

        // Then weighted by packets expected: 300 video at 20, 100 audio at 0 -> 15.
        let second = batch(vec![rr(vec![report(10, 20, 1_300), report(20, 0, 600)])]);
        twcc.shared.observe(&second, Instant::now());
        assert_eq!(feedbacks(&mut rx), [TransportEvent::LossReport(15)]);

        // Unbound streams are no longer ours.
        twcc.unbind_local_stream(&stream(10, Some(4))).await;
        twcc.unbind_local_stream(&stream(20, None)).await;
        let third = batch(vec![rr(vec![report(10, 20, 1_600), report(20, 0, 700)])]);
        twcc.shared.observe(&third, Instant::now());
        assert_eq!(feedbacks(&mut rx), []);
    }

    #[test]
    fn the_24_bit_reference_time_unwraps_across_its_wrap() {
        let mut last = None;
        let top = REFERENCE_TIME_RANGE - 2;
        assert_eq!(
            unwrap_reference(&mut last, top as u32),
            REFERENCE_TIME_RANGE + top
        );
        assert_eq!(unwrap_reference(&mut last, 1), 2 * REFERENCE_TIME_RANGE + 1);
        // A late feedback from before the wrap.
        assert_eq!(
            unwrap_reference(&mut last, top as u32),
            REFERENCE_TIME_RANGE + top
        );
    }
}
