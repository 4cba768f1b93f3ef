//! What the forwarder needs to know about a packet before it decides on it, read once per
//! packet at the publication so that no subscriber parses it again: whether it starts a
//! keyframe (where a layer switch may happen), and the VP8 descriptor to rewrite.

use super::vp8::{self, Vp8Descriptor};

/// How a track's payload is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PayloadFormat {
    Vp8,
    Vp9,
    H264,
    /// Audio, or a video codec whose keyframes the server cannot tell: every packet is a place
    /// to start, as before the forwarder existed.
    Opaque,
}

impl PayloadFormat {
    pub(crate) fn from_mime_type(mime: &str) -> Self {
        match mime.to_ascii_lowercase().as_str() {
            "video/vp8" => Self::Vp8,
            "video/vp9" => Self::Vp9,
            "video/h264" => Self::H264,
            _ => Self::Opaque,
        }
    }
}

/// One incoming packet as the forwarder sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FrameInfo {
    /// The simulcast layer the packet belongs to (0 without simulcast).
    pub(crate) layer: u8,
    /// A switch to this packet's layer may start here.
    pub(crate) keyframe: bool,
    /// Padding only (a publisher's bandwidth probe): it carries no media.
    pub(crate) padding_only: bool,
    /// The first packet after a stretch the server did not forward (its publisher was muted):
    /// what follows is a new stream, to be taken up like a switch.
    pub(crate) resync: bool,
    pub(crate) vp8: Option<Vp8Descriptor>,
}

impl FrameInfo {
    pub(crate) fn read(format: PayloadFormat, layer: u8, payload: &[u8]) -> Self {
        let mut info = FrameInfo {
            layer,
            padding_only: payload.is_empty(),
            ..FrameInfo::default()
        };
        if info.padding_only {
            return info;
        }
        match format {
            PayloadFormat::Vp8 => {
                info.vp8 = vp8::parse(payload);
                info.keyframe = info.vp8.is_some_and(|d| d.keyframe);
            }
            PayloadFormat::Vp9 => info.keyframe = vp9_keyframe(payload),
            PayloadFormat::H264 => info.keyframe = h264_keyframe(payload),
            PayloadFormat::Opaque => info.keyframe = true,
        }
        info
    }
}

/// The VP9 descriptor's P bit clear (not inter-predicted) with B set (starts a frame).
fn vp9_keyframe(payload: &[u8]) -> bool {
    payload
        .first()
        .is_some_and(|b| b & 0x40 == 0 && b & 0x08 != 0)
}

const H264_IDR: u8 = 5;
const H264_SPS: u8 = 7;
const H264_STAP_A: u8 = 24;
const H264_FU_A: u8 = 28;

/// A packet that carries an IDR slice or the SPS that precedes one (RFC 6184: single NAL unit,
/// STAP-A aggregate, or the first fragment of an FU-A).
fn h264_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    match first & 0x1f {
        H264_IDR | H264_SPS => true,
        H264_STAP_A => stap_a_nal_types(&payload[1..]).any(|t| t == H264_IDR || t == H264_SPS),
        H264_FU_A => payload
            .get(1)
            .is_some_and(|fu| fu & 0x80 != 0 && fu & 0x1f == H264_IDR),
        _ => false,
    }
}

fn stap_a_nal_types(mut rest: &[u8]) -> impl Iterator<Item = u8> + '_ {
    std::iter::from_fn(move || {
        let size = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
        let nal = rest.get(2..2 + size)?;
        rest = &rest[2 + size..];
        nal.first().map(|b| b & 0x1f)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_known_by_mime_type_whatever_the_case() {
        assert_eq!(
            PayloadFormat::from_mime_type("video/VP8"),
            PayloadFormat::Vp8
        );
        assert_eq!(
            PayloadFormat::from_mime_type("video/H264"),
            PayloadFormat::H264
        );
        assert_eq!(
            PayloadFormat::from_mime_type("audio/opus"),
            PayloadFormat::Opaque
        );
        assert_eq!(
            PayloadFormat::from_mime_type("video/AV1"),
            PayloadFormat::Opaque
        );
    }

    #[test]
    fn an_empty_payload_is_padding_and_never_a_keyframe() {
        for format in [
            PayloadFormat::Vp8,
            PayloadFormat::Opaque,
            PayloadFormat::H264,
        ] {
            let info = FrameInfo::read(format, 2, &[]);
            assert!(info.padding_only && !info.keyframe);
            assert_eq!(info.layer, 2);
        }
    }

    #[test]
    fn every_packet_of_an_opaque_track_is_a_place_to_start() {
        assert!(FrameInfo::read(PayloadFormat::Opaque, 0, &[1, 2, 3]).keyframe);
    }

    #[test]
    fn vp8_keyframes_come_from_the_descriptor() {
        let key = vp8::tests::payload(1, 0, 0, true, true);
        let delta = vp8::tests::payload(2, 0, 0, true, false);
        assert!(FrameInfo::read(PayloadFormat::Vp8, 0, &key).keyframe);
        assert!(!FrameInfo::read(PayloadFormat::Vp8, 0, &delta).keyframe);
        assert!(FrameInfo::read(PayloadFormat::Vp8, 0, &delta).vp8.is_some());
    }

    #[test]
    fn h264_keyframes_in_every_packetization() {
        assert!(h264_keyframe(&[0x65, 0x88]), "IDR slice");
        assert!(h264_keyframe(&[0x67, 0x42]), "SPS");
        assert!(!h264_keyframe(&[0x41, 0x9a]), "non-IDR slice");
        let stap = [0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce];
        assert!(h264_keyframe(&stap), "STAP-A with SPS and PPS");
        assert!(
            !h264_keyframe(&[0x78, 0x00, 0x02, 0x41, 0x9a]),
            "STAP-A of a delta slice"
        );
        assert!(
            !h264_keyframe(&[0x78, 0x00, 0x09, 0x67]),
            "truncated STAP-A"
        );
        assert!(
            h264_keyframe(&[0x7c, 0x85, 0x88]),
            "first FU-A fragment of an IDR"
        );
        assert!(!h264_keyframe(&[0x7c, 0x05, 0x88]), "later FU-A fragment");
    }

    #[test]
    fn vp9_keyframes_start_a_frame_without_inter_prediction() {
        assert!(vp9_keyframe(&[0x08]));
        assert!(!vp9_keyframe(&[0x48]), "inter-predicted");
        assert!(!vp9_keyframe(&[0x00]), "not the frame's first packet");
    }
}
