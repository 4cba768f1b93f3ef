//! The VP8 payload descriptor (RFC 7741 §4.2): reading the fields a forwarder needs, and
//! rewriting picture id, TL0PICIDX and KEYIDX so that a subscriber sees one continuous stream
//! while the forwarder switches between simulcast layers, each numbered on its own.

/// What a forwarder needs from one VP8 packet's descriptor, and where its fields sit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Vp8Descriptor {
    /// The packet starts a frame (S bit set on partition 0).
    pub(crate) frame_start: bool,
    /// The frame is a keyframe; only known on the packet that starts it.
    pub(crate) keyframe: bool,
    pub(crate) picture_id: Option<PictureId>,
    /// Byte offset and value of TL0PICIDX.
    pub(crate) tl0_pic_idx: Option<(u8, u8)>,
    /// Byte offset and value of the KEYIDX (5 bits of the T/K byte).
    pub(crate) key_idx: Option<(u8, u8)>,
    /// Where the VP8 payload header starts, after the descriptor.
    pub(crate) header_offset: usize,
}

impl Vp8Descriptor {
    /// The frame's width and height, read from a keyframe's header (RFC 6386 §9.1).
    pub(crate) fn keyframe_size(&self, payload: &[u8]) -> Option<(u16, u16)> {
        if !self.keyframe {
            return None;
        }
        let header = payload.get(self.header_offset..self.header_offset + 10)?;
        if header[3..6] != [0x9d, 0x01, 0x2a] {
            return None;
        }
        let width = u16::from_le_bytes([header[6], header[7]]) & 0x3fff;
        let height = u16::from_le_bytes([header[8], header[9]]) & 0x3fff;
        Some((width, height))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PictureId {
    /// Offsets are bytes: a descriptor is at most 6 bytes long. A forwarded packet's rewrite is
    /// kept in each subscriber's retransmission history, so its size counts per subscriber.
    pub(crate) offset: u8,
    pub(crate) value: u16,
    /// 15 bits (M set) or 7.
    pub(crate) long: bool,
}

impl PictureId {
    fn modulus(self) -> u16 {
        if self.long {
            1 << 15
        } else {
            1 << 7
        }
    }
}

const X_BIT: u8 = 0x80;
const S_BIT: u8 = 0x10;
const I_BIT: u8 = 0x80;
const L_BIT: u8 = 0x40;
const T_BIT: u8 = 0x20;
const K_BIT: u8 = 0x10;
const M_BIT: u8 = 0x80;

/// Parses the descriptor; `None` if the payload is too short to hold what it announces.
pub(crate) fn parse(payload: &[u8]) -> Option<Vp8Descriptor> {
    let byte = |at: u8| payload.get(usize::from(at)).copied();
    let first = byte(0)?;
    let mut d = Vp8Descriptor {
        frame_start: first & S_BIT != 0 && first & 0x07 == 0,
        ..Vp8Descriptor::default()
    };
    let mut at = 1;
    if first & X_BIT != 0 {
        let ext = byte(at)?;
        at += 1;
        if ext & I_BIT != 0 {
            let high = byte(at)?;
            if high & M_BIT != 0 {
                let low = byte(at + 1)?;
                let value = (u16::from(high & 0x7f) << 8) | u16::from(low);
                d.picture_id = Some(PictureId {
                    offset: at,
                    value,
                    long: true,
                });
                at += 2;
            } else {
                d.picture_id = Some(PictureId {
                    offset: at,
                    value: u16::from(high),
                    long: false,
                });
                at += 1;
            }
        }
        if ext & L_BIT != 0 {
            d.tl0_pic_idx = Some((at, byte(at)?));
            at += 1;
        }
        if ext & (T_BIT | K_BIT) != 0 {
            let tk = byte(at)?;
            if ext & K_BIT != 0 {
                d.key_idx = Some((at, tk & 0x1f));
            }
            at += 1;
        }
    }
    d.header_offset = usize::from(at);
    // The VP8 payload header's P bit is clear on keyframes (RFC 7741 §4.3).
    d.keyframe = d.frame_start && byte(at).is_some_and(|b| b & 0x01 == 0);
    Some(d)
}

/// How one packet's numbering is to be rewritten: output values for the fields it carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Vp8Rewrite {
    pub(crate) picture_id: Option<PictureId>,
    pub(crate) tl0_pic_idx: Option<(u8, u8)>,
    pub(crate) key_idx: Option<(u8, u8)>,
}

impl Vp8Rewrite {
    /// Writes the output values into a copy of the payload.
    pub(crate) fn apply(&self, payload: &mut [u8]) {
        if let Some(p) = self.picture_id {
            let at = usize::from(p.offset);
            if p.long {
                if let Some(bytes) = payload.get_mut(at..at + 2) {
                    bytes[0] = M_BIT | ((p.value >> 8) as u8 & 0x7f);
                    bytes[1] = p.value as u8;
                }
            } else if let Some(b) = payload.get_mut(at) {
                *b = p.value as u8 & 0x7f;
            }
        }
        if let Some((at, v)) = self.tl0_pic_idx {
            if let Some(b) = payload.get_mut(usize::from(at)) {
                *b = v;
            }
        }
        if let Some((at, v)) = self.key_idx {
            if let Some(b) = payload.get_mut(usize::from(at)) {
                *b = (*b & !0x1f) | (v & 0x1f);
            }
        }
    }
}

/// Keeps the outgoing picture id, TL0PICIDX and KEYIDX continuous across switches. Offsets are
/// fixed for the life of one input stream, so a late packet of the current layer maps the same
/// way as its neighbours.
#[derive(Debug, Default)]
pub(crate) struct Vp8Munger {
    picture_id_offset: u16,
    tl0_offset: u8,
    key_idx_offset: u8,
    last_picture_id: Option<u16>,
    last_tl0: Option<u8>,
    last_key_idx: Option<u8>,
}

impl Vp8Munger {
    /// A new input stream starts with `first`: its numbering continues one past the last output.
    pub(crate) fn switch(&mut self, first: &Vp8Descriptor) {
        if let (Some(p), Some(last)) = (first.picture_id, self.last_picture_id) {
            let wanted = (last + 1) % p.modulus();
            self.picture_id_offset = p.value.wrapping_sub(wanted) % p.modulus();
        }
        if let (Some((_, v)), Some(last)) = (first.tl0_pic_idx, self.last_tl0) {
            self.tl0_offset = v.wrapping_sub(last.wrapping_add(1));
        }
        if let (Some((_, v)), Some(last)) = (first.key_idx, self.last_key_idx) {
            self.key_idx_offset = v.wrapping_sub(last.wrapping_add(1)) & 0x1f;
        }
    }

    /// The rewrite for one forwarded packet of the current stream; `None` when nothing changes.
    pub(crate) fn rewrite(&mut self, d: &Vp8Descriptor) -> Option<Vp8Rewrite> {
        let picture_id = d.picture_id.map(|p| {
            let value = p
                .value
                .wrapping_add(p.modulus())
                .wrapping_sub(self.picture_id_offset)
                % p.modulus();
            self.last_picture_id = Some(newest(self.last_picture_id, value, p.modulus()));
            PictureId { value, ..p }
        });
        let tl0_pic_idx = d.tl0_pic_idx.map(|(at, v)| {
            let value = v.wrapping_sub(self.tl0_offset);
            self.last_tl0 = Some(newest(self.last_tl0.map(u16::from), u16::from(value), 256) as u8);
            (at, value)
        });
        let key_idx = d.key_idx.map(|(at, v)| {
            let value = v.wrapping_sub(self.key_idx_offset) & 0x1f;
            self.last_key_idx =
                Some(newest(self.last_key_idx.map(u16::from), u16::from(value), 32) as u8);
            (at, value)
        });
        let unchanged =
            self.picture_id_offset == 0 && self.tl0_offset == 0 && self.key_idx_offset == 0;
        (!unchanged).then_some(Vp8Rewrite {
            picture_id,
            tl0_pic_idx,
            key_idx,
        })
    }
}

/// The later of two values of a counter that wraps at `modulus`, so a late packet never winds
/// the last output back.
fn newest(last: Option<u16>, value: u16, modulus: u16) -> u16 {
    match last {
        Some(last) if (value.wrapping_add(modulus).wrapping_sub(last)) % modulus > modulus / 2 => {
            last
        }
        _ => value,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A VP8 payload with every optional field: 15-bit picture id, TL0PICIDX, TID/KEYIDX.
    pub(crate) fn payload(
        picture_id: u16,
        tl0: u8,
        key_idx: u8,
        start: bool,
        keyframe: bool,
    ) -> Vec<u8> {
        let s = if start { S_BIT } else { 0 };
        vec![
            X_BIT | s,
            I_BIT | L_BIT | T_BIT | K_BIT,
            M_BIT | (picture_id >> 8) as u8,
            picture_id as u8,
            tl0,
            key_idx & 0x1f,
            if keyframe { 0x00 } else { 0x01 },
            0xaa,
        ]
    }

    #[test]
    fn a_keyframe_is_recognised_only_on_the_packet_that_starts_it() {
        let d = parse(&payload(300, 7, 3, true, true)).unwrap();
        assert!(d.frame_start && d.keyframe);
        assert_eq!(d.picture_id.unwrap().value, 300);
        assert_eq!(d.tl0_pic_idx, Some((4, 7)));
        assert_eq!(d.key_idx, Some((5, 3)));
        let middle = parse(&payload(300, 7, 3, false, true)).unwrap();
        assert!(!middle.frame_start && !middle.keyframe);
        let delta = parse(&payload(301, 7, 3, true, false)).unwrap();
        assert!(delta.frame_start && !delta.keyframe);
    }

    #[test]
    fn a_keyframe_tells_its_frame_size() {
        let mut bytes = payload(1, 0, 0, true, true);
        bytes.truncate(6);
        bytes.extend_from_slice(&[0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x41]);
        let d = parse(&bytes).unwrap();
        assert_eq!(
            d.keyframe_size(&bytes),
            Some((640, 480)),
            "scale bits ignored"
        );
        let delta = parse(&payload(2, 0, 0, true, false)).unwrap();
        assert_eq!(delta.keyframe_size(&payload(2, 0, 0, true, false)), None);
        let short = parse(&payload(1, 0, 0, true, true)).unwrap();
        assert_eq!(short.keyframe_size(&payload(1, 0, 0, true, true)), None);
    }

    #[test]
    fn a_short_picture_id_and_a_bare_descriptor_parse() {
        let d = parse(&[X_BIT | S_BIT, I_BIT, 0x05, 0x00]).unwrap();
        assert_eq!(
            d.picture_id,
            Some(PictureId {
                offset: 2,
                value: 5,
                long: false
            })
        );
        assert!(d.keyframe);
        let bare = parse(&[S_BIT, 0x01]).unwrap();
        assert!(bare.frame_start && !bare.keyframe && bare.picture_id.is_none());
    }

    #[test]
    fn truncated_descriptors_are_refused_not_misread() {
        for cut in 0..6 {
            assert!(
                parse(&payload(300, 7, 3, true, true)[..cut]).is_none(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn after_a_switch_numbering_continues_one_past_the_last_output() {
        let mut m = Vp8Munger::default();
        let first = parse(&payload(100, 10, 2, true, true)).unwrap();
        m.switch(&first);
        assert_eq!(m.rewrite(&first), None, "the first stream passes unchanged");
        let other = parse(&payload(32_000, 250, 31, true, true)).unwrap();
        m.switch(&other);
        let r = m.rewrite(&other).unwrap();
        assert_eq!(r.picture_id.unwrap().value, 101);
        assert_eq!(r.tl0_pic_idx, Some((4, 11)));
        assert_eq!(r.key_idx, Some((5, 3)));
        let mut bytes = payload(32_000, 250, 31, true, true);
        r.apply(&mut bytes);
        let out = parse(&bytes).unwrap();
        assert_eq!(out.picture_id.unwrap().value, 101);
        assert_eq!(out.tl0_pic_idx, Some((4, 11)));
        assert_eq!(out.key_idx, Some((5, 3)));
        assert!(out.keyframe, "the rest of the payload is untouched");
    }

    #[test]
    fn the_picture_id_wraps_at_fifteen_bits() {
        let mut m = Vp8Munger::default();
        let first = parse(&payload(32_767, 0, 0, true, true)).unwrap();
        m.switch(&first);
        m.rewrite(&first);
        let other = parse(&payload(5, 0, 0, true, true)).unwrap();
        m.switch(&other);
        assert_eq!(m.rewrite(&other).unwrap().picture_id.unwrap().value, 0);
        let next = parse(&payload(6, 0, 0, true, false)).unwrap();
        assert_eq!(m.rewrite(&next).unwrap().picture_id.unwrap().value, 1);
    }

    #[test]
    fn a_late_packet_does_not_wind_the_last_picture_id_back() {
        let mut m = Vp8Munger::default();
        for id in [10, 11, 12] {
            let d = parse(&payload(id, 0, 0, true, false)).unwrap();
            m.rewrite(&d);
        }
        m.rewrite(&parse(&payload(9, 0, 0, true, false)).unwrap());
        let other = parse(&payload(500, 0, 0, true, true)).unwrap();
        m.switch(&other);
        assert_eq!(m.rewrite(&other).unwrap().picture_id.unwrap().value, 13);
    }
}
