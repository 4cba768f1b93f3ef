//! SRTP protection of one forwarded stream's packets, and SRTCP protection of its sender
//! reports, in the buffer they were marshalled into.
//!
//! The AEAD profiles (AES-GCM, RFC 7714: what browsers negotiate) are done here with ring,
//! sealing the payload in place with the header as associated data: no buffer per packet. The
//! AES-CM/HMAC-SHA1 profiles (some other stacks offer only those) go through webrtc-srtp's
//! context, which returns a fresh buffer that is copied back.

use aes::cipher::{BlockEncrypt, KeyInit};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_256_GCM};
use webrtc::srtp::context::Context as SrtpContext;
use webrtc::srtp::protection_profile::ProtectionProfile;

/// The length of an AES-GCM authentication tag.
const GCM_TAG: usize = 16;
/// RFC 3711 key derivation labels.
const LABEL_ENCRYPTION: u8 = 0x00;
const LABEL_SALT: u8 = 0x02;
const LABEL_RTCP_ENCRYPTION: u8 = 0x03;
const LABEL_RTCP_SALT: u8 = 0x05;
/// The SRTCP index is 31 bits; the word on the wire carries the encryption flag above it.
const MAX_SRTCP_INDEX: u32 = 0x7fff_ffff;
const RTCP_ENCRYPTED: u32 = 0x8000_0000;

pub(crate) enum Protector {
    Gcm(Box<GcmProtector>),
    Context(SrtpContext),
}

impl Protector {
    pub(crate) fn new(profile: ProtectionProfile, key: &[u8], salt: &[u8]) -> Option<Self> {
        match profile {
            ProtectionProfile::AeadAes128Gcm | ProtectionProfile::AeadAes256Gcm => {
                GcmProtector::new(key, salt).map(|gcm| Self::Gcm(Box::new(gcm)))
            }
            _ => SrtpContext::new(key, salt, profile, None, None)
                .ok()
                .map(Self::Context),
        }
    }

    /// Starts loading the key (see `fanout::prefetch`).
    pub(crate) fn prefetch(&self) {
        if let Self::Gcm(gcm) = self {
            crate::fanout::prefetch::lines(&**gcm);
        }
    }

    /// Protects the RTP packet in `wire` (SSRC and sequence number `id`, a header of
    /// `header_len` bytes): afterwards `wire` holds the SRTP packet. False if it could not be
    /// protected.
    pub(crate) fn protect(
        &mut self,
        wire: &mut Vec<u8>,
        id: (u32, u16),
        header_len: usize,
    ) -> bool {
        match self {
            Self::Gcm(gcm) => gcm.seal(wire, id, header_len),
            Self::Context(context) => {
                let protected = context.encrypt_rtp(wire);
                replace_with(wire, protected)
            }
        }
    }

    /// Protects the RTCP packet in `wire` (a sender report of this stream's SSRC, which its
    /// first SSRC field names): afterwards `wire` holds the SRTCP packet. False if it could not
    /// be protected.
    pub(crate) fn protect_rtcp(&mut self, wire: &mut Vec<u8>) -> bool {
        match self {
            Self::Gcm(gcm) => gcm.seal_rtcp(wire),
            Self::Context(context) => {
                let protected = context.encrypt_rtcp(wire);
                replace_with(wire, protected)
            }
        }
    }
}

/// Puts what webrtc-srtp's context made of `wire` in its place; false if it failed.
fn replace_with<E>(wire: &mut Vec<u8>, protected: Result<impl AsRef<[u8]>, E>) -> bool {
    match protected {
        Ok(protected) => {
            wire.clear();
            wire.extend_from_slice(protected.as_ref());
            true
        }
        Err(_) => false,
    }
}

/// AEAD_AES_128_GCM or AEAD_AES_256_GCM for one SSRC's packets and its RTCP.
pub(crate) struct GcmProtector {
    key: LessSafeKey,
    salt: [u8; 12],
    index: PacketIndex,
    rtcp_key: LessSafeKey,
    rtcp_salt: [u8; 12],
    /// The last SRTCP index used (RFC 3711 3.3.2: the receiver's replay list is per SSRC, so
    /// this lives as long as the SSRC's SRTP state, parked with it).
    rtcp_index: u32,
}

impl GcmProtector {
    /// From the master key (16 or 32 bytes) and the 12-byte master salt.
    fn new(master_key: &[u8], master_salt: &[u8]) -> Option<Self> {
        let algorithm = match master_key.len() {
            16 => &AES_128_GCM,
            32 => &AES_256_GCM,
            _ => return None,
        };
        if master_salt.len() != 12 {
            return None;
        }
        let key_of = |label| {
            let key = derive(label, master_key, master_salt, master_key.len())?;
            Some(LessSafeKey::new(UnboundKey::new(algorithm, &key).ok()?))
        };
        let salt_of = |label| derive(label, master_key, master_salt, 12)?.try_into().ok();
        Some(Self {
            key: key_of(LABEL_ENCRYPTION)?,
            salt: salt_of(LABEL_SALT)?,
            index: PacketIndex::default(),
            rtcp_key: key_of(LABEL_RTCP_ENCRYPTION)?,
            rtcp_salt: salt_of(LABEL_RTCP_SALT)?,
            rtcp_index: 0,
        })
    }

    /// RFC 7714 9: the first eight bytes (header and sender SSRC) stay clear and are
    /// authenticated together with the E flag and the SRTCP index, which follow the tag.
    fn seal_rtcp(&mut self, wire: &mut Vec<u8>) -> bool {
        if wire.len() < 8 {
            return false;
        }
        self.rtcp_index = if self.rtcp_index >= MAX_SRTCP_INDEX {
            0
        } else {
            self.rtcp_index + 1
        };
        let word = (RTCP_ENCRYPTED | self.rtcp_index).to_be_bytes();
        let mut iv = [0u8; 12];
        iv[2..6].copy_from_slice(&wire[4..8]);
        iv[8..12].copy_from_slice(&self.rtcp_index.to_be_bytes());
        for (b, s) in iv.iter_mut().zip(self.rtcp_salt) {
            *b ^= s;
        }
        let mut aad = [0u8; 12];
        aad[..8].copy_from_slice(&wire[..8]);
        aad[8..].copy_from_slice(&word);
        let Ok(tag) = self.rtcp_key.seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(aad),
            &mut wire[8..],
        ) else {
            return false;
        };
        wire.extend_from_slice(&tag.as_ref()[..GCM_TAG]);
        wire.extend_from_slice(&word);
        true
    }

    fn seal(&mut self, wire: &mut Vec<u8>, (ssrc, seq): (u32, u16), header_len: usize) -> bool {
        if wire.len() < header_len {
            return false;
        }
        let roc = (self.index.of(seq) >> 16) as u32;
        let mut iv = [0u8; 12];
        iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
        iv[6..10].copy_from_slice(&roc.to_be_bytes());
        iv[10..12].copy_from_slice(&seq.to_be_bytes());
        for (b, s) in iv.iter_mut().zip(self.salt) {
            *b ^= s;
        }
        let (head, payload) = wire.split_at_mut(header_len);
        let Ok(tag) = self.key.seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(&*head),
            payload,
        ) else {
            return false;
        };
        wire.extend_from_slice(&tag.as_ref()[..GCM_TAG]);
        true
    }
}

/// RFC 3711's key derivation (AES in counter mode as the PRF) with a key derivation rate of 0,
/// as DTLS-SRTP uses it (RFC 5764): `len` bytes for `label`.
fn derive(label: u8, master_key: &[u8], master_salt: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut input = [0u8; 16];
    input[..master_salt.len()].copy_from_slice(master_salt);
    input[7] ^= label;
    let mut out = Vec::with_capacity(len.div_ceil(16) * 16);
    for block in 0..len.div_ceil(16) {
        input[14..].copy_from_slice(&(block as u16).to_be_bytes());
        let mut b = aes::Block::from(input);
        match master_key.len() {
            16 => aes::Aes128::new_from_slice(master_key)
                .ok()?
                .encrypt_block(&mut b),
            32 => aes::Aes256::new_from_slice(master_key)
                .ok()?
                .encrypt_block(&mut b),
            _ => return None,
        }
        out.extend_from_slice(&b);
    }
    out.truncate(len);
    Some(out)
}

/// The sender's SRTP packet index (rollover count and sequence number, RFC 3711 3.3.1) of the
/// packets of one SSRC: a packet's index is the one nearest the highest index sent, so a
/// retransmission of a packet from before a sequence number wrap gets its original index.
#[derive(Default)]
struct PacketIndex {
    highest: Option<u64>,
}

impl PacketIndex {
    fn of(&mut self, seq: u16) -> u64 {
        let seq = u64::from(seq);
        let Some(highest) = self.highest else {
            self.highest = Some(seq);
            return seq;
        };
        let roc = highest >> 16;
        let index = [roc.checked_sub(1), Some(roc), Some(roc + 1)]
            .into_iter()
            .flatten()
            .map(|r| r << 16 | seq)
            .min_by_key(|i| i.abs_diff(highest))
            .unwrap_or(seq);
        if index > highest {
            self.highest = Some(index);
        }
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use webrtc::rtp::header::Header;
    use webrtc::util::marshal::{Marshal, MarshalSize};

    fn header(ssrc: u32, seq: u16) -> Header {
        Header {
            version: 2,
            payload_type: 96,
            sequence_number: seq,
            timestamp: 3_000,
            ssrc,
            ..Default::default()
        }
    }

    fn marshalled(header: &Header, payload: &[u8]) -> Vec<u8> {
        let mut wire = header.marshal().unwrap().to_vec();
        wire.extend_from_slice(payload);
        wire
    }

    /// Protects with `ours` and with webrtc-srtp's own context over the same keys.
    fn both(profile: ProtectionProfile, key: &[u8], salt: &[u8], seqs: &[u16]) {
        let mut ours = Protector::new(profile, key, salt).unwrap();
        let mut theirs = SrtpContext::new(key, salt, profile, None, None).unwrap();
        for (n, &seq) in seqs.iter().enumerate() {
            let header = header(0x1234_5678, seq);
            let payload: Vec<u8> = (0..200 + n).map(|i| (i * 7 + n) as u8).collect();
            let mut wire = marshalled(&header, &payload);
            let plain = wire.clone();
            let id = (header.ssrc, header.sequence_number);
            assert!(ours.protect(&mut wire, id, header.marshal_size()));
            let expected = theirs.encrypt_rtp_with_header(&plain, &header).unwrap();
            assert_eq!(
                wire,
                expected.to_vec(),
                "{profile:?}, packet {n} (seq {seq})"
            );
        }
    }

    #[test]
    fn gcm_packets_are_byte_for_byte_what_webrtc_srtp_makes_of_them_across_a_wrap() {
        let salt: Vec<u8> = (100..112).collect();
        // Across the sequence number wrap, with a late retransmission from before it.
        let seqs = [65_533, 65_534, 65_535, 0, 1, 65_535, 2];
        both(
            ProtectionProfile::AeadAes128Gcm,
            &(0..16).collect::<Vec<u8>>(),
            &salt,
            &seqs,
        );
        both(
            ProtectionProfile::AeadAes256Gcm,
            &(0..32).collect::<Vec<u8>>(),
            &salt,
            &seqs,
        );
    }

    #[test]
    fn cm_packets_go_through_webrtc_srtp() {
        both(
            ProtectionProfile::Aes128CmHmacSha1_80,
            &(0..16).collect::<Vec<u8>>(),
            &(0..14).collect::<Vec<u8>>(),
            &[7, 8, 9],
        );
    }

    #[test]
    fn what_it_protects_the_subscriber_decrypts() {
        let (key, salt): (Vec<u8>, Vec<u8>) = ((0..16).collect(), (20..32).collect());
        let mut ours = Protector::new(ProtectionProfile::AeadAes128Gcm, &key, &salt).unwrap();
        let mut receiver =
            SrtpContext::new(&key, &salt, ProtectionProfile::AeadAes128Gcm, None, None).unwrap();
        for seq in [10u16, 11, 13] {
            let header = header(42, seq);
            let mut wire = marshalled(&header, b"forwarded media");
            let plain = wire.clone();
            let id = (header.ssrc, header.sequence_number);
            assert!(ours.protect(&mut wire, id, header.marshal_size()));
            assert_ne!(wire[12..], plain[12..]);
            assert_eq!(receiver.decrypt_rtp(&wire).unwrap().to_vec(), plain);
        }
    }

    fn sender_report(ssrc: u32, n: u32) -> Vec<u8> {
        let report = webrtc::rtcp::sender_report::SenderReport {
            ssrc,
            ntp_time: 0x0102_0304_0506_0708 + u64::from(n),
            rtp_time: 90_000 * n,
            packet_count: 100 * n,
            octet_count: 100_000 * n,
            ..Default::default()
        };
        report.marshal().unwrap().to_vec()
    }

    /// Protects sender reports with ours (one per stream, as the send path has them) and with
    /// webrtc-srtp's own context over the same keys, which counts SRTCP indices per SSRC.
    fn both_rtcp(profile: ProtectionProfile, key: &[u8], salt: &[u8]) {
        let mut ours: Vec<_> = (0..2)
            .map(|_| Protector::new(profile, key, salt).unwrap())
            .collect();
        let mut theirs = SrtpContext::new(key, salt, profile, None, None).unwrap();
        for n in 0..5 {
            for (stream, ssrc) in [0x1234_5678, 0x0bad_cafe].into_iter().enumerate() {
                let mut wire = sender_report(ssrc, n);
                let expected = theirs.encrypt_rtcp(&wire).unwrap();
                assert!(ours[stream].protect_rtcp(&mut wire));
                assert_eq!(
                    wire,
                    expected.to_vec(),
                    "{profile:?}, report {n} of {ssrc:x}"
                );
            }
        }
    }

    #[test]
    fn sender_reports_are_byte_for_byte_what_webrtc_srtp_makes_of_them() {
        let salt: Vec<u8> = (100..112).collect();
        both_rtcp(
            ProtectionProfile::AeadAes128Gcm,
            &(0..16).collect::<Vec<u8>>(),
            &salt,
        );
        both_rtcp(
            ProtectionProfile::AeadAes256Gcm,
            &(0..32).collect::<Vec<u8>>(),
            &salt,
        );
        both_rtcp(
            ProtectionProfile::Aes128CmHmacSha1_80,
            &(0..16).collect::<Vec<u8>>(),
            &(0..14).collect::<Vec<u8>>(),
        );
    }

    #[test]
    fn what_it_protects_of_rtcp_the_subscriber_decrypts_and_a_replay_it_refuses() {
        let (key, salt): (Vec<u8>, Vec<u8>) = ((0..16).collect(), (20..32).collect());
        let mut ours = Protector::new(ProtectionProfile::AeadAes128Gcm, &key, &salt).unwrap();
        let replay = webrtc::srtp::option::srtcp_replay_protection(64);
        let profile = ProtectionProfile::AeadAes128Gcm;
        let mut receiver = SrtpContext::new(&key, &salt, profile, None, Some(replay)).unwrap();
        let mut first = None;
        for n in 0..3 {
            let plain = sender_report(42, n);
            let mut wire = plain.clone();
            assert!(ours.protect_rtcp(&mut wire));
            assert_ne!(wire[8..plain.len()], plain[8..]);
            assert_eq!(receiver.decrypt_rtcp(&wire).unwrap().to_vec(), plain);
            first.get_or_insert(wire);
        }
        assert!(receiver.decrypt_rtcp(&first.unwrap()).is_err());
    }

    #[test]
    fn the_packet_index_follows_the_highest_sequence_number_sent() {
        let mut index = PacketIndex::default();
        assert_eq!(index.of(65_534), 65_534);
        assert_eq!(index.of(65_535), 65_535);
        assert_eq!(index.of(0), 1 << 16);
        assert_eq!(index.of(65_535), 65_535, "a late one from before the wrap");
        assert_eq!(index.of(1), 1 << 16 | 1);
        assert_eq!(index.of(20_000), 20_000 + (1 << 16));
        assert_eq!(
            index.of(60_000),
            60_000,
            "nearer before the wrap than after the next"
        );
    }
}
