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

/// Bytes of one frame of a stream of `bitrate` bits/s with the same group-of-pictures shape as
/// [`video_frame_bytes`] (a keyframe weighs [`KEYFRAME_WEIGHT`] delta frames).
pub fn frame_bytes(bitrate: u32, keyframe: bool) -> usize {
    let gop_bytes = u64::from(bitrate) / 8 * u64::from(KEYFRAME_EVERY) / u64::from(VIDEO_FPS);
    let units = u64::from(KEYFRAME_EVERY - 1 + KEYFRAME_WEIGHT);
    let delta = gop_bytes / units;
    if keyframe {
        (delta * u64::from(KEYFRAME_WEIGHT)) as usize
    } else {
        delta as usize
    }
}

/// One simulcast layer of the synthetic camera.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerSpec {
    pub rid: &'static str,
    pub width: u16,
    pub height: u16,
    pub bitrate: u32,
}

/// The simulcast publisher's layers, lowest first (the order of `a=simulcast:send q;h;f`).
pub const LAYERS: [LayerSpec; 3] = [
    LayerSpec {
        rid: "q",
        width: 320,
        height: 180,
        bitrate: 150_000,
    },
    LayerSpec {
        rid: "h",
        width: 640,
        height: 360,
        bitrate: 500_000,
    },
    LayerSpec {
        rid: "f",
        width: 1280,
        height: 720,
        bitrate: VIDEO_BITRATE,
    },
];

/// A simulcast video payload starts with a real VP8 payload descriptor (X and I set, a 15-bit
/// picture id: 4 bytes), then 10 bytes holding the VP8 payload header on a frame's first packet
/// (a keyframe's frame tag, start code and size; a delta frame's frame tag) and zeros elsewhere,
/// then the [`VideoProbe`]. The X bit tells it from the plain layout, whose first byte never has
/// it.
pub const VP8_DESCRIPTOR_LEN: usize = 4;
const VP8_HEADER_ROOM: usize = 10;
const VIDEO_PROBE_AT: usize = VP8_DESCRIPTOR_LEN + VP8_HEADER_ROOM;
pub const VIDEO_PROBE_LEN: usize = VIDEO_PROBE_AT + 20;

/// The probe of a simulcast video packet: which layer, frame and packet it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VideoProbe {
    /// The layer's own packet counter.
    pub counter: u32,
    pub sent_micros: u64,
    /// Layer index, 0 = lowest.
    pub layer: u8,
    pub flags: u8,
    /// The layer's own frame number.
    pub frame: u32,
    /// This packet's index in its frame, and the frame's packet count.
    pub index: u8,
    pub packets: u8,
}

impl VideoProbe {
    /// The frame is a keyframe.
    pub const KEYFRAME: u8 = 1;
    /// The keyframe answers a keyframe request (PLI or FIR), not the periodic schedule.
    pub const REQUESTED: u8 = 2;

    pub fn keyframe(&self) -> bool {
        self.flags & Self::KEYFRAME != 0
    }

    pub fn requested(&self) -> bool {
        self.flags & Self::REQUESTED != 0
    }

    /// The packet that starts a keyframe: where a forwarder may switch to this layer.
    pub fn keyframe_start(&self) -> bool {
        self.keyframe() && self.index == 0
    }

    pub fn as_probe(&self) -> Probe {
        Probe {
            counter: self.counter,
            sent_micros: self.sent_micros,
        }
    }
}

/// Builds a simulcast video payload of `len` bytes (at least [`VIDEO_PROBE_LEN`]) for layer
/// `spec`: descriptor with `picture_id`, VP8 header on the frame's first packet, probe.
pub fn simulcast_payload(
    probe: VideoProbe,
    picture_id: u16,
    spec: &LayerSpec,
    len: usize,
) -> Bytes {
    let len = len.max(VIDEO_PROBE_LEN);
    let mut b = BytesMut::with_capacity(len);
    let first = probe.index == 0;
    // X, and S on the first packet of partition 0.
    b.put_u8(0x80 | if first { 0x10 } else { 0x00 });
    // I: a picture id follows; M: 15 bits.
    b.put_u8(0x80);
    b.put_u16(0x8000 | (picture_id & 0x7fff));
    match (first, probe.keyframe()) {
        (true, true) => {
            // Frame tag (RFC 6386 §9.1): P = 0 (keyframe), version 0, show_frame; then the start
            // code and the 14-bit width and height, little-endian, scaling 0.
            b.put_slice(&[0x10, 0x00, 0x00, 0x9d, 0x01, 0x2a]);
            b.put_u16_le(spec.width & 0x3fff);
            b.put_u16_le(spec.height & 0x3fff);
        }
        (true, false) => {
            // P = 1: an interframe.
            b.put_u8(0x11);
            b.put_bytes(0, VP8_HEADER_ROOM - 1);
        }
        _ => b.put_bytes(0, VP8_HEADER_ROOM),
    }
    b.put_u32(probe.counter);
    b.put_u64(probe.sent_micros);
    b.put_u8(probe.layer);
    b.put_u8(probe.flags);
    b.put_u32(probe.frame);
    b.put_u8(probe.index);
    b.put_u8(probe.packets);
    b.put_bytes(0, len - VIDEO_PROBE_LEN);
    b.freeze()
}

/// Reads a simulcast video probe, and the keyframe size if this packet starts a keyframe;
/// `None` for any other layout.
pub fn read_video_probe(payload: &[u8]) -> Option<(VideoProbe, Option<(u16, u16)>)> {
    let head = payload.get(..VIDEO_PROBE_LEN)?;
    if head[0] & 0x80 == 0 || head[1] & 0x80 == 0 {
        return None;
    }
    let p = &head[VIDEO_PROBE_AT..];
    let probe = VideoProbe {
        counter: u32::from_be_bytes(p[0..4].try_into().ok()?),
        sent_micros: u64::from_be_bytes(p[4..12].try_into().ok()?),
        layer: p[12],
        flags: p[13],
        frame: u32::from_be_bytes(p[14..18].try_into().ok()?),
        index: p[18],
        packets: p[19],
    };
    let vp8 = &head[VP8_DESCRIPTOR_LEN..VIDEO_PROBE_AT];
    let size =
        (head[0] & 0x10 != 0 && vp8[0] & 0x01 == 0 && vp8[3..6] == [0x9d, 0x01, 0x2a]).then(|| {
            (
                u16::from_le_bytes([vp8[6], vp8[7]]) & 0x3fff,
                u16::from_le_bytes([vp8[8], vp8[9]]) & 0x3fff,
            )
        });
    Some((probe, size))
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
    fn a_simulcast_payload_carries_a_vp8_keyframe_header_and_the_probe() {
        let probe = VideoProbe {
            counter: 9,
            sent_micros: 77,
            layer: 1,
            flags: VideoProbe::KEYFRAME,
            frame: 60,
            index: 0,
            packets: 13,
        };
        let b = simulcast_payload(probe, 0x1234, &LAYERS[1], 1_100);
        assert_eq!(b.len(), 1_100);
        // Descriptor: X|S, I, M + 15-bit picture id; then the keyframe's header.
        assert_eq!(&b[..4], &[0x90, 0x80, 0x92, 0x34]);
        assert_eq!(b[4] & 0x01, 0, "P bit clear on a keyframe");
        assert_eq!(&b[7..10], &[0x9d, 0x01, 0x2a]);
        assert_eq!(read_video_probe(&b), Some((probe, Some((640, 360)))));
        let delta = VideoProbe {
            flags: 0,
            index: 1,
            ..probe
        };
        let d = simulcast_payload(delta, 5, &LAYERS[1], 10);
        assert_eq!(d.len(), VIDEO_PROBE_LEN);
        assert_eq!(d[0], 0x80);
        assert_eq!(read_video_probe(&d), Some((delta, None)));
        // The plain layout is not mistaken for it.
        let plain = payload(
            0x10,
            Probe {
                counter: 1,
                sent_micros: 2,
            },
            1_000,
        );
        assert_eq!(read_video_probe(&plain), None);
    }

    #[test]
    fn layers_keep_their_bitrates() {
        for spec in LAYERS {
            let gop = frame_bytes(spec.bitrate, true)
                + (KEYFRAME_EVERY as usize - 1) * frame_bytes(spec.bitrate, false);
            let bps = gop as f64 * 8.0 / 2.0;
            assert!((bps / f64::from(spec.bitrate) - 1.0).abs() < 0.01, "{bps}");
        }
        assert_eq!(frame_bytes(VIDEO_BITRATE, true), video_frame_bytes(0));
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
