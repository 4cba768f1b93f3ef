//! RTP packets written straight into the send buffer (RFC 3550 header, RFC 8285 extensions),
//! from the fields the send path already holds: no header struct cloned, no extension list
//! allocated per packet.

/// The header of one outgoing packet.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OutHeader<'a> {
    pub(crate) marker: bool,
    pub(crate) payload_type: u8,
    pub(crate) sequence_number: u16,
    pub(crate) timestamp: u32,
    pub(crate) ssrc: u32,
    pub(crate) csrc: &'a [u32],
    /// Header extensions, (id, value), in this order.
    pub(crate) extensions: &'a [(u8, &'a [u8])],
}

impl OutHeader<'_> {
    /// The header's length on the wire.
    pub(crate) fn len(&self) -> usize {
        12 + 4 * self.csrc.len() + self.extension_block_len()
    }

    /// One-byte elements (RFC 8285 4.2) where every id and length allows, two-byte otherwise.
    fn one_byte(&self) -> bool {
        self.extensions
            .iter()
            .all(|(id, v)| (1..=14).contains(id) && (1..=16).contains(&v.len()))
    }

    fn extension_block_len(&self) -> usize {
        if self.extensions.is_empty() {
            return 0;
        }
        let per_element = if self.one_byte() { 1 } else { 2 };
        let data: usize = self
            .extensions
            .iter()
            .map(|(_, v)| per_element + v.len())
            .sum();
        4 + data.div_ceil(4) * 4
    }

    /// Where the value of extension `index` starts in the written packet.
    pub(crate) fn value_offset(&self, index: usize) -> usize {
        let per_element = if self.one_byte() { 1 } else { 2 };
        let before: usize = self.extensions[..index]
            .iter()
            .map(|(_, v)| per_element + v.len())
            .sum();
        12 + 4 * self.csrc.len() + 4 + before + per_element
    }

    /// Replaces `out` with the packet: this header, then `payload`. Returns the header length.
    pub(crate) fn write(&self, out: &mut Vec<u8>, payload: &[u8]) -> usize {
        out.clear();
        let has_extensions = !self.extensions.is_empty();
        out.push(2 << 6 | u8::from(has_extensions) << 4 | (self.csrc.len() as u8 & 0x0f));
        out.push(u8::from(self.marker) << 7 | (self.payload_type & 0x7f));
        out.extend_from_slice(&self.sequence_number.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        for csrc in self.csrc.iter().take(15) {
            out.extend_from_slice(&csrc.to_be_bytes());
        }
        if has_extensions {
            self.write_extensions(out);
        }
        let header_len = out.len();
        out.extend_from_slice(payload);
        header_len
    }

    fn write_extensions(&self, out: &mut Vec<u8>) {
        let one_byte = self.one_byte();
        let profile: u16 = if one_byte { 0xBEDE } else { 0x1000 };
        let block = self.extension_block_len();
        out.extend_from_slice(&profile.to_be_bytes());
        out.extend_from_slice(&(((block - 4) / 4) as u16).to_be_bytes());
        let start = out.len();
        for (id, value) in self.extensions {
            if one_byte {
                out.push(id << 4 | (value.len() as u8 - 1));
            } else {
                out.push(*id);
                out.push(value.len() as u8);
            }
            out.extend_from_slice(value);
        }
        out.resize(start + block - 4, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use bytes::Bytes;
    use webrtc::rtp::header::{
        Extension, Header, EXTENSION_PROFILE_ONE_BYTE, EXTENSION_PROFILE_TWO_BYTE,
    };
    use webrtc::rtp::packet::Packet;
    use webrtc::util::marshal::Marshal;

    /// What the rtp crate makes of the same packet.
    fn reference(h: &OutHeader, payload: &[u8]) -> Vec<u8> {
        let profile = if h.one_byte() {
            EXTENSION_PROFILE_ONE_BYTE
        } else {
            EXTENSION_PROFILE_TWO_BYTE
        };
        let packet = Packet {
            header: Header {
                version: 2,
                marker: h.marker,
                payload_type: h.payload_type,
                sequence_number: h.sequence_number,
                timestamp: h.timestamp,
                ssrc: h.ssrc,
                csrc: h.csrc.to_vec(),
                extension: !h.extensions.is_empty(),
                extension_profile: profile,
                extensions: h
                    .extensions
                    .iter()
                    .map(|(id, v)| Extension {
                        id: *id,
                        payload: Bytes::copy_from_slice(v),
                    })
                    .collect(),
                ..Default::default()
            },
            payload: Bytes::copy_from_slice(payload),
        };
        packet.marshal().unwrap().to_vec()
    }

    fn check(h: OutHeader) {
        let payload = [0x90, 0xe0, 0x80, 1, 2, 3, 4, 5];
        let mut out = vec![0xff; 3];
        let header_len = h.write(&mut out, &payload);
        assert_eq!(out, reference(&h, &payload), "{h:?}");
        assert_eq!(header_len, h.len());
        assert_eq!(out.len(), h.len() + payload.len());
    }

    #[test]
    fn packets_are_byte_for_byte_what_the_rtp_crate_marshals() {
        let base = OutHeader {
            marker: true,
            payload_type: 96,
            sequence_number: 65_535,
            timestamp: 0xdead_beef,
            ssrc: 0x0102_0304,
            csrc: &[],
            extensions: &[],
        };
        check(base);
        // MID and a transport-wide sequence number: one-byte elements, padded to a word.
        let numbered = OutHeader {
            extensions: &[(4, b"1"), (3, &[0x12, 0x34])],
            ..base
        };
        check(numbered);
        let mut out = Vec::new();
        numbered.write(&mut out, &[]);
        let at = numbered.value_offset(1);
        assert_eq!(out[at..at + 2], [0x12, 0x34]);
        check(OutHeader {
            marker: false,
            csrc: &[7, 8],
            extensions: &[(1, b"video0")],
            ..base
        });
        // An id above 14 needs two-byte elements.
        check(OutHeader {
            extensions: &[(15, b"0"), (3, &[0, 1])],
            ..base
        });
    }
}
