//! Whole frames out of one track's RTP packets, for the recorder: packets put back in sequence
//! order, a frame given up when a packet of it is still missing after [`REORDER_WAIT`], and
//! after such a loss nothing more of a video track until its next keyframe (a decoder cannot
//! use the frames that refer to a lost one). The caller passes the time in and asks for a
//! keyframe when [`FrameAssembler::take_keyframe_request`] says so.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::forwarder::vp8;

/// How long a missing packet is waited for (reordered, or retransmitted after a NACK) before
/// the frame it belongs to is given up.
pub(crate) const REORDER_WAIT: Duration = Duration::from_millis(200);

/// Packets held at most; past it the oldest gap is given up at once (a stalled stream must not
/// grow without bound).
const MAX_PENDING: usize = 1024;

/// How a track's payload is split into frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Depacketizer {
    /// VP8 (RFC 7741): a frame is the packets of one timestamp from the one that starts it to the
    /// marker bit, each without its payload descriptor.
    Vp8,
    /// One frame per packet (Opus).
    Whole,
}

/// One reassembled frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) timestamp: u32,
    pub(crate) data: Vec<u8>,
    pub(crate) keyframe: bool,
}

#[derive(Debug)]
struct Pending {
    timestamp: u32,
    marker: bool,
    payload: Bytes,
    arrived: Instant,
}

#[derive(Debug)]
pub(crate) struct FrameAssembler {
    depacketizer: Depacketizer,
    pending: BTreeMap<u64, Pending>,
    /// The extended sequence number the next frame starts at.
    next: Option<u64>,
    highest: Option<u64>,
    /// Nothing is output until a keyframe (video, at the start and after a loss).
    need_keyframe: bool,
    keyframe_request: bool,
    lost_frames: u64,
    /// A frame has been output: from then on `next` only moves forward.
    started: bool,
    /// The last thing seen was a hole, already counted as a loss.
    after_hole: bool,
}

impl FrameAssembler {
    /// A video track starts by asking for a keyframe.
    pub(crate) fn new(depacketizer: Depacketizer) -> Self {
        let video = depacketizer == Depacketizer::Vp8;
        Self {
            depacketizer,
            pending: BTreeMap::new(),
            next: None,
            highest: None,
            need_keyframe: video,
            keyframe_request: video,
            lost_frames: 0,
            started: false,
            after_hole: false,
        }
    }

    /// Takes one packet in. Duplicates and packets of frames already given up are ignored; a
    /// padding-only packet (a sender's bandwidth probe, empty once its padding is removed) takes
    /// its place in the sequence and carries nothing.
    pub(crate) fn push(
        &mut self,
        sequence: u16,
        timestamp: u32,
        marker: bool,
        payload: Bytes,
        now: Instant,
    ) {
        let ext = self.extend(sequence);
        if self.started && self.next.is_some_and(|n| ext < n) {
            return;
        }
        if self.next.is_none() || !self.started && self.next.is_some_and(|n| ext < n) {
            // Until the first frame, the stream starts at the earliest packet seen.
            self.next = Some(ext);
        }
        self.pending.entry(ext).or_insert(Pending {
            timestamp,
            marker,
            payload,
            arrived: now,
        });
    }

    /// The next whole frame in order, if there is one by now.
    pub(crate) fn pop(&mut self, now: Instant) -> Option<Frame> {
        loop {
            let next = self.next?;
            if self
                .pending
                .get(&next)
                .is_some_and(|p| p.payload.is_empty())
            {
                self.pending.remove(&next);
                self.next = Some(next + 1);
                continue;
            }
            let Some(first) = self.pending.get(&next) else {
                let (&oldest, waiting) = self.pending.iter().next()?;
                if !self.overdue(waiting, now) {
                    return None;
                }
                // `next` never came: what follows starts after a hole.
                self.next = Some(oldest);
                self.lost();
                self.after_hole = true;
                continue;
            };
            let end = match self.depacketizer {
                Depacketizer::Whole => Some(next),
                Depacketizer::Vp8 => self.frame_end(next, first.timestamp),
            };
            let Some(end) = end else {
                if self.overdue(first, now) || self.pending.len() > MAX_PENDING {
                    self.drop_through_timestamp(next);
                    self.lost();
                    continue;
                }
                return None;
            };
            let packets: Vec<Pending> = (next..=end)
                .filter_map(|s| self.pending.remove(&s))
                .collect();
            self.next = Some(end + 1);
            let after_hole = std::mem::take(&mut self.after_hole);
            match self.assemble(&packets) {
                Some(frame) if !self.need_keyframe || frame.keyframe => {
                    self.need_keyframe = false;
                    self.started = true;
                    return Some(frame);
                }
                Some(_) => continue,
                None => {
                    // The rest of a frame whose start was lost: the same loss as the hole before
                    // it, or (at the very start) no loss at all.
                    if !after_hole && self.started {
                        self.lost();
                    }
                    continue;
                }
            }
        }
    }

    /// Whether a keyframe should be asked for now (once per loss, and at the start of video).
    pub(crate) fn take_keyframe_request(&mut self) -> bool {
        std::mem::take(&mut self.keyframe_request)
    }

    /// Frames given up so far.
    pub(crate) fn lost_frames(&self) -> u64 {
        self.lost_frames
    }

    fn overdue(&self, packet: &Pending, now: Instant) -> bool {
        now.saturating_duration_since(packet.arrived) >= REORDER_WAIT
            || self.pending.len() > MAX_PENDING
    }

    fn lost(&mut self) {
        self.lost_frames += 1;
        if self.depacketizer == Depacketizer::Vp8 {
            if !self.need_keyframe {
                self.keyframe_request = true;
            }
            self.need_keyframe = true;
        }
    }

    /// The last packet of the frame starting at `start`, if all of it is here: consecutive
    /// packets of one timestamp up to the marker bit (or up to the next timestamp, should the
    /// marker be missing).
    fn frame_end(&self, start: u64, timestamp: u32) -> Option<u64> {
        let mut at = start;
        loop {
            let packet = self.pending.get(&at)?;
            if packet.timestamp != timestamp {
                return Some(at - 1);
            }
            if packet.marker {
                return Some(at);
            }
            at += 1;
        }
    }

    /// Gives up the packets from `start` that share its timestamp, and moves past them.
    fn drop_through_timestamp(&mut self, start: u64) {
        let timestamp = self.pending.get(&start).map(|p| p.timestamp);
        let mut at = start;
        while let Some(p) = self.pending.get(&at) {
            if Some(p.timestamp) != timestamp {
                break;
            }
            self.pending.remove(&at);
            at += 1;
        }
        // Past a hole, the next frame starts at the next packet held.
        self.next = self.pending.keys().next().copied().or(Some(at));
    }

    fn assemble(&self, packets: &[Pending]) -> Option<Frame> {
        let first = packets.first()?;
        match self.depacketizer {
            Depacketizer::Whole => Some(Frame {
                timestamp: first.timestamp,
                data: first.payload.to_vec(),
                keyframe: true,
            }),
            Depacketizer::Vp8 => {
                let head = vp8::parse(&first.payload)?;
                if !head.frame_start {
                    return None;
                }
                let mut data = Vec::with_capacity(packets.iter().map(|p| p.payload.len()).sum());
                for p in packets {
                    let d = vp8::parse(&p.payload)?;
                    data.extend_from_slice(p.payload.get(d.header_offset..)?);
                }
                Some(Frame {
                    timestamp: first.timestamp,
                    data,
                    keyframe: head.keyframe,
                })
            }
        }
    }

    fn extend(&mut self, sequence: u16) -> u64 {
        let ext = match self.highest {
            None => (1 << 16) + u64::from(sequence),
            Some(h) => {
                let base = h & !0xffff;
                let candidates = [base.wrapping_sub(1 << 16), base, base + (1 << 16)];
                candidates
                    .into_iter()
                    .map(|b| b + u64::from(sequence))
                    .min_by_key(|&c| c.abs_diff(h))
                    .unwrap_or(h)
            }
        };
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        ext
    }
}

/// Width and height from a VP8 keyframe's header (RFC 6386 §9.1), once depacketized.
pub(crate) fn vp8_keyframe_size(frame: &[u8]) -> Option<(u16, u16)> {
    let header = frame.get(..10)?;
    if header[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u16::from_le_bytes([header[6], header[7]]) & 0x3fff;
    let height = u16::from_le_bytes([header[8], header[9]]) & 0x3fff;
    (width > 0 && height > 0).then_some((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VP8 packet: a one-byte descriptor (S bit on the frame's first packet) and a payload
    /// whose first byte marks a keyframe (P bit clear) or not.
    fn vp8(start: bool, key: bool, body: u8) -> Bytes {
        let descriptor = if start { 0x10 } else { 0x00 };
        let header = if key { 0x00 } else { 0x01 };
        if start {
            Bytes::from(vec![descriptor, header, body])
        } else {
            Bytes::from(vec![descriptor, body])
        }
    }

    struct Feed {
        a: FrameAssembler,
        t0: Instant,
    }

    impl Feed {
        fn video() -> Self {
            Self {
                a: FrameAssembler::new(Depacketizer::Vp8),
                t0: Instant::now(),
            }
        }
        fn audio() -> Self {
            Self {
                a: FrameAssembler::new(Depacketizer::Whole),
                t0: Instant::now(),
            }
        }
        fn at(&self, ms: u64) -> Instant {
            self.t0 + Duration::from_millis(ms)
        }
        /// Frame `n` (timestamp n*3000) as packets seq..seq+count.
        fn frame(&mut self, seq: u16, n: u32, count: u16, key: bool, ms: u64) {
            for i in 0..count {
                let payload = vp8(i == 0, key, n as u8);
                self.a.push(
                    seq.wrapping_add(i),
                    n * 3000,
                    i + 1 == count,
                    payload,
                    self.at(ms),
                );
            }
        }
        fn frames(&mut self, ms: u64) -> Vec<(u32, bool)> {
            let now = self.at(ms);
            std::iter::from_fn(|| self.a.pop(now))
                .map(|f| (f.timestamp / 3000, f.keyframe))
                .collect()
        }
    }

    #[test]
    fn a_frame_is_its_packets_in_order_without_their_descriptors() {
        let mut f = Feed::video();
        f.frame(100, 0, 3, true, 0);
        let frame = f.a.pop(f.at(0)).unwrap();
        // Keyframe header byte, then the body of each of the three packets.
        assert_eq!(frame.data, vec![0x00, 0, 0, 0]);
        assert!(frame.keyframe);
    }

    #[test]
    fn video_waits_for_a_keyframe_and_asks_for_one_at_the_start() {
        let mut f = Feed::video();
        assert!(f.a.take_keyframe_request());
        f.frame(1, 1, 2, false, 0);
        f.frame(3, 2, 2, false, 0);
        f.frame(5, 3, 2, true, 0);
        f.frame(7, 4, 2, false, 0);
        assert_eq!(f.frames(0), [(3, true), (4, false)]);
        assert!(!f.a.take_keyframe_request(), "asked once");
    }

    #[test]
    fn reordered_packets_are_put_back_in_order() {
        let mut f = Feed::video();
        let ts = |n: u32| n * 3000;
        f.a.push(11, ts(1), true, vp8(false, false, 1), f.at(0));
        f.a.push(10, ts(1), false, vp8(true, true, 1), f.at(0));
        f.a.push(13, ts(2), true, vp8(false, false, 2), f.at(0));
        assert_eq!(f.frames(0), [(1, true)], "frame 2 still misses a packet");
        f.a.push(12, ts(2), false, vp8(true, false, 2), f.at(30));
        assert_eq!(f.frames(30), [(2, false)]);
    }

    #[test]
    fn a_missing_packet_is_waited_for_then_its_frame_given_up_and_a_keyframe_asked_for() {
        let mut f = Feed::video();
        f.a.take_keyframe_request();
        f.frame(1, 1, 2, true, 0);
        // Frame 2 loses its second packet (seq 4); frame 3 arrives whole.
        f.a.push(3, 2 * 3000, false, vp8(true, false, 2), f.at(10));
        f.frame(5, 3, 2, false, 20);
        assert_eq!(f.frames(20), [(1, true)]);
        assert_eq!(
            f.frames(20 + 199),
            [],
            "still waiting for the retransmission"
        );
        assert_eq!(f.frames(10 + 200), [], "frame 3 refers to the lost frame 2");
        assert!(f.a.take_keyframe_request());
        assert_eq!(f.a.lost_frames(), 1);
        f.frame(7, 4, 2, false, 300);
        f.frame(9, 5, 2, true, 310);
        f.frame(11, 6, 2, false, 320);
        assert_eq!(f.frames(320), [(5, true), (6, false)]);
    }

    #[test]
    fn a_retransmission_within_the_wait_saves_the_frame() {
        let mut f = Feed::video();
        f.frame(1, 1, 2, true, 0);
        f.a.push(3, 2 * 3000, false, vp8(true, false, 2), f.at(10));
        f.frame(5, 3, 2, false, 20);
        f.a.push(4, 2 * 3000, true, vp8(false, false, 2), f.at(150));
        assert_eq!(f.frames(150), [(1, true), (2, false), (3, false)]);
        assert_eq!(f.a.lost_frames(), 0);
    }

    #[test]
    fn a_lost_first_packet_loses_the_frame() {
        let mut f = Feed::video();
        f.frame(1, 1, 1, true, 0);
        // Seq 2 (frame 2's start) never comes.
        f.a.push(3, 2 * 3000, true, vp8(false, false, 2), f.at(0));
        f.frame(4, 3, 1, true, 0);
        assert_eq!(f.frames(0), [(1, true)]);
        assert_eq!(f.frames(250), [(3, true)]);
        assert_eq!(f.a.lost_frames(), 1);
    }

    #[test]
    fn padding_between_frames_is_no_loss() {
        let mut f = Feed::video();
        f.frame(1, 1, 2, true, 0);
        for seq in 3..6 {
            f.a.push(seq, 3000, false, Bytes::new(), f.at(0));
        }
        f.frame(6, 2, 1, false, 0);
        assert_eq!(f.frames(0), [(1, true), (2, false)]);
        assert_eq!(f.a.lost_frames(), 0);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut f = Feed::video();
        f.frame(65534, 1, 3, true, 0);
        f.frame(1, 2, 2, false, 0);
        assert_eq!(f.frames(0), [(1, true), (2, false)]);
    }

    #[test]
    fn duplicates_and_late_packets_are_ignored() {
        let mut f = Feed::video();
        f.frame(1, 1, 2, true, 0);
        assert_eq!(f.frames(0), [(1, true)]);
        f.frame(1, 1, 2, true, 5);
        f.frame(3, 2, 1, false, 5);
        f.frame(3, 2, 1, false, 5);
        assert_eq!(f.frames(5), [(2, false)]);
    }

    #[test]
    fn audio_is_a_frame_per_packet_and_a_loss_only_skips() {
        let mut f = Feed::audio();
        assert!(!f.a.take_keyframe_request());
        let t0 = f.at(0);
        f.a.push(1, 0, false, Bytes::from_static(b"a"), t0);
        f.a.push(3, 1920, false, Bytes::from_static(b"c"), t0);
        assert_eq!(f.a.pop(t0).unwrap().data, b"a");
        assert!(f.a.pop(t0).is_none());
        assert_eq!(f.a.pop(f.at(200)).unwrap().data, b"c");
        assert!(!f.a.take_keyframe_request());
    }

    #[test]
    fn a_keyframe_tells_its_size() {
        let mut frame = vec![0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a];
        frame.extend_from_slice(&640u16.to_le_bytes());
        frame.extend_from_slice(&480u16.to_le_bytes());
        assert_eq!(vp8_keyframe_size(&frame), Some((640, 480)));
        assert_eq!(vp8_keyframe_size(&frame[..8]), None);
    }
}
