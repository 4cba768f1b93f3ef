//! The synthetic stream a publisher sends, shaped like a real camera and microphone:
//! VP8-sized video at 30 frames/s and about 1.5 Mbit/s, split into packets of at most 1,200
//! bytes, with a keyframe (about 8× a delta frame) every 2 s; and Opus-sized audio at 50
//! packets/s.
//!
//! Every payload starts with a 16-byte probe: one codec byte (a VP8 payload descriptor with the
//! start-of-partition bit on a frame's first packet, an Opus TOC byte for audio), three zero bytes,
//! the track's own packet counter (u32, big-endian) and the send time in microseconds of
//! [`crate::clock`] (u64, big-endian). Receivers read only those 16 bytes.

use bytes::{BufMut, Bytes, BytesMut};

pub const PROBE_LEN: usize = 16;
pub const MAX_PAYLOAD: usize = 1_200;
pub const VIDEO_FPS: u32 = 30;
pub const VIDEO_BITRATE: u32 = 1_500_000;
pub const KEYFRAME_EVERY: u32 = 2 * VIDEO_FPS;
/// A keyframe weighs this many delta frames.
pub const KEYFRAME_WEIGHT: u32 = 8;
pub const AUDIO_PPS: u32 = 50;
pub const AUDIO_PAYLOAD: usize = 100;
pub const VIDEO_CLOCK: u32 = 90_000;
pub const AUDIO_CLOCK: u32 = 48_000;

/// What a receiver learns from a payload's probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    pub counter: u32,
    pub sent_micros: u64,
}

/// Builds a payload of `len` bytes (at least [`PROBE_LEN`]) carrying the probe.
pub fn payload(first_byte: u8, probe: Probe, len: usize) -> Bytes {
    let len = len.max(PROBE_LEN);
    let mut b = BytesMut::with_capacity(len);
    b.put_u8(first_byte);
    b.put_bytes(0, 3);
    b.put_u32(probe.counter);
    b.put_u64(probe.sent_micros);
    b.put_bytes(0, len - PROBE_LEN);
    b.freeze()
}

/// Reads the probe back, or `None` if the payload is too short to carry one.
pub fn read_probe(payload: &[u8]) -> Option<Probe> {
    let head = payload.get(..PROBE_LEN)?;
    let counter = u32::from_be_bytes(head[4..8].try_into().ok()?);
    let sent_micros = u64::from_be_bytes(head[8..16].try_into().ok()?);
    Some(Probe {
        counter,
        sent_micros,
    })
}

/// Bytes of video frame number `n`: keyframes are [`KEYFRAME_WEIGHT`] delta frames, and a group
/// of pictures averages [`VIDEO_BITRATE`].
pub fn video_frame_bytes(n: u32) -> usize {
    let gop_bytes = u64::from(VIDEO_BITRATE) / 8 * u64::from(KEYFRAME_EVERY) / u64::from(VIDEO_FPS);
    let units = u64::from(KEYFRAME_EVERY - 1 + KEYFRAME_WEIGHT);
    let delta = gop_bytes / units;
    if n.is_multiple_of(KEYFRAME_EVERY) {
        (delta * u64::from(KEYFRAME_WEIGHT)) as usize
    } else {
        delta as usize
    }
}

/// Splits a frame into packet payload sizes of nearly equal length, none over [`MAX_PAYLOAD`].
pub fn split_frame(bytes: usize) -> Vec<usize> {
    let n = bytes.div_ceil(MAX_PAYLOAD).max(1);
    let base = bytes / n;
    let extra = bytes % n;
    (0..n).map(|i| base + usize::from(i < extra)).collect()
}

/// Video packets per second on average, for sizing expectations.
pub fn video_packets_per_second() -> f64 {
    let per_gop: usize = (0..KEYFRAME_EVERY)
        .map(|n| split_frame(video_frame_bytes(n)).len())
        .sum();
    per_gop as f64 * f64::from(VIDEO_FPS) / f64::from(KEYFRAME_EVERY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_survives_the_payload() {
        let p = Probe {
            counter: 7,
            sent_micros: 123_456_789,
        };
        let b = payload(0x10, p, 1_000);
        assert_eq!(b.len(), 1_000);
        assert_eq!(b[0], 0x10);
        assert_eq!(read_probe(&b), Some(p));
        assert_eq!(read_probe(&b[..10]), None);
    }

    #[test]
    fn the_video_stream_averages_its_bitrate() {
        let gop: usize = (0..KEYFRAME_EVERY).map(video_frame_bytes).sum();
        let bps = gop as f64 * 8.0 / 2.0;
        assert!((bps - 1_500_000.0).abs() < 1_000.0, "{bps}");
        assert!(video_frame_bytes(0) > 7 * video_frame_bytes(1));
    }

    #[test]
    fn frames_split_into_packets_of_at_most_1200_bytes() {
        for bytes in [1, 1_200, 1_201, 5_000, 50_000] {
            let parts = split_frame(bytes);
            assert_eq!(parts.iter().sum::<usize>(), bytes);
            assert!(parts.iter().all(|&p| p <= MAX_PAYLOAD));
        }
        let pps = video_packets_per_second();
        assert!((150.0..200.0).contains(&pps), "{pps}");
    }
}
