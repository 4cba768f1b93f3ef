//! A track a client publishes to the server: read its RTP, keep its RTCP flowing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use webrtc::rtcp::sender_report::SenderReport;

use crate::stats::millis_since_epoch;

use webrtc::rtp_transceiver::rtp_codec::{RTCRtpCodecCapability, RTPCodecType};
use webrtc::rtp_transceiver::rtp_receiver::RTCRtpReceiver;
use webrtc::sdp;
use webrtc::track::track_remote::TrackRemote;

/// How long a simulcast layer's RTCP read may hold the receiver's track list (see
/// [`RemoteTrack::drain_rtcp`]): what a layer arriving later waits at most, and with it the
/// layers already flowing.
const RTCP_READ_SLICE: Duration = Duration::from_millis(50);

/// An RTP packet as it travels through the server.
pub(crate) type RtpPacket = webrtc::rtp::packet::Packet;

/// Bytes of a forwarded packet on the wire before SRTP: fixed header, CSRCs and payload (the
/// publisher's extensions are stripped on read).
pub(crate) fn wire_size(packet: &RtpPacket) -> usize {
    12 + 4 * packet.header.csrc.len() + packet.payload.len()
}

/// Audio or video.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaKind {
    Audio,
    Video,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        }
    }
}

/// The codec of a published track, as forwarded tracks must declare it.
#[derive(Clone, Debug)]
pub(crate) struct Codec(RTCRtpCodecCapability);

impl Codec {
    pub(super) fn capability(&self) -> &RTCRtpCodecCapability {
        &self.0
    }

    pub(crate) fn mime_type(&self) -> &str {
        &self.0.mime_type
    }

    pub(crate) fn clock_rate(&self) -> u32 {
        self.0.clock_rate
    }
}

/// One incoming stream: a whole track, or one simulcast layer of it.
pub(crate) struct RemoteTrack {
    track: Arc<TrackRemote>,
    receiver: Arc<RTCRtpReceiver>,
    mid: String,
    layer: u8,
    layer_count: u8,
    /// The negotiated id of the RFC 6464 audio-level extension, if the publisher sends it.
    audio_level_id: Option<u8>,
}

/// One packet read from a published stream.
pub(crate) struct Arrival {
    pub(crate) packet: RtpPacket,
    /// Its RFC 6464 audio level (−dBov, 0–127), for audio that carries one.
    pub(crate) audio_level: Option<u8>,
}

impl RemoteTrack {
    /// Layers are numbered in the order the publisher's SDP lists its RIDs, which browsers and
    /// SDKs write lowest resolution first (`a=simulcast:send q;h;f`).
    pub(super) async fn new(
        track: Arc<TrackRemote>,
        receiver: Arc<RTCRtpReceiver>,
        mid: String,
    ) -> Self {
        let rids: Vec<String> = receiver
            .tracks()
            .await
            .iter()
            .map(|t| t.rid().to_owned())
            .collect();
        let layer = rids.iter().position(|r| r == track.rid()).unwrap_or(0);
        let audio_level_id = track
            .params()
            .header_extensions
            .iter()
            .find(|e| e.uri == sdp::extmap::AUDIO_LEVEL_URI)
            .and_then(|e| u8::try_from(e.id).ok());
        Self {
            audio_level_id,
            track,
            receiver,
            mid,
            layer: u8::try_from(layer).unwrap_or(u8::MAX),
            layer_count: u8::try_from(rids.len().max(1)).unwrap_or(u8::MAX),
        }
    }

    /// The publisher's transceiver (media section) this stream arrives on.
    pub(crate) fn mid(&self) -> &str {
        &self.mid
    }

    /// The simulcast RID; empty without simulcast.
    pub(crate) fn rid(&self) -> &str {
        self.track.rid()
    }

    /// This stream's layer and how many the publisher announced.
    pub(crate) fn layer(&self) -> (u8, u8) {
        (self.layer, self.layer_count)
    }

    pub(crate) fn kind(&self) -> MediaKind {
        match self.track.kind() {
            RTPCodecType::Audio => MediaKind::Audio,
            _ => MediaKind::Video,
        }
    }

    pub(crate) fn codec(&self) -> Codec {
        Codec(self.track.codec().capability)
    }

    pub(crate) fn ssrc(&self) -> u32 {
        self.track.ssrc()
    }

    /// The next RTP packet, stripped of the publisher's header extensions (their ids belong to the
    /// publisher's negotiation, and a stale MID extension would route the packet to the wrong
    /// transceiver at the subscriber) once its audio level is read. `None` once the track has
    /// ended.
    pub(crate) async fn read(&self) -> Option<Arrival> {
        let (mut packet, _) = match self.track.read_rtp().await {
            Ok(read) => read,
            Err(error) => {
                // Why a track ends says whether the publisher stopped or the stack gave up.
                tracing::info!(ssrc = self.track.ssrc(), rid = %self.track.rid(), %error, "stopped reading a published track");
                return None;
            }
        };
        let audio_level = self
            .audio_level_id
            .and_then(|id| packet.header.get_extension(id))
            .and_then(|value| value.first().map(|b| b & 0x7f));
        packet.header.extension = false;
        packet.header.extension_profile = 0;
        packet.header.extensions.clear();
        // Left over, the publisher's extension padding would make the forwarded packet's
        // declared size disagree with its bytes once the subscriber's own extensions are set.
        packet.header.extensions_padding = 0;
        Some(Arrival {
            packet,
            audio_level,
        })
    }

    /// Drains the publisher's RTCP (sender reports) so the receiver-report interceptor can compute
    /// round-trip times. Returns when the track's connection is gone.
    ///
    /// A simulcast layer's read is given up every [`RTCP_READ_SLICE`] and started again:
    /// webrtc-rs holds the receiver's track list (a fair `RwLock`) for reading while it waits for
    /// a layer's next RTCP packet, and a layer that arrives later needs that list for writing.
    /// Queued behind a read that waits for a sender report, the writer blocked every new reader,
    /// the RTP reads of the layers already flowing included: the publisher's whole video stopped
    /// until each earlier layer's next sender report, forever for a publisher that sends none
    /// (≈ 1 in 3 starts of the bench's three-layer publisher, issue #10). A read cancelled while
    /// it waits loses nothing; one cancelled inside the interceptor chain may lose a sender
    /// report, which costs one round-trip sample.
    ///
    /// The stream's sender reports are kept in `reports` (the recorder aligns audio and video
    /// with them).
    pub(crate) async fn drain_rtcp(&self, reports: &SenderReportCell) {
        let rid = self.track.rid();
        let ssrc = self.track.ssrc();
        let keep = |packets: &[Box<dyn webrtc::rtcp::packet::Packet + Send + Sync>]| {
            for p in packets {
                if let Some(sr) = p.as_any().downcast_ref::<SenderReport>() {
                    if sr.ssrc == ssrc || ssrc == 0 {
                        reports.store(sr.ntp_time, sr.rtp_time);
                    }
                }
            }
        };
        if rid.is_empty() {
            while let Ok((packets, _)) = self.receiver.read_rtcp().await {
                keep(&packets);
            }
            return;
        }
        loop {
            let read = self.receiver.read_simulcast_rtcp(rid);
            match tokio::time::timeout(RTCP_READ_SLICE, read).await {
                Ok(Ok((packets, _))) => keep(&packets),
                Err(_) => {}
                Ok(Err(_)) => return,
            }
        }
    }
}

/// The latest sender report of one stream, readable without a lock: the middle 32 bits of its
/// NTP time (16.16 seconds, as RTCP's compact form) and its RTP timestamp, packed in one word
/// so a reader never sees half of one report and half of another (0 until the first report),
/// and when it arrived ([`millis_since_epoch`]; read apart, so possibly the previous report's,
/// which only matters to the first offset a recorder measures).
#[derive(Debug, Default)]
pub(crate) struct SenderReportCell {
    report: AtomicU64,
    arrived_ms: AtomicU64,
}

impl SenderReportCell {
    fn store(&self, ntp: u64, rtp: u32) {
        let compact = (ntp >> 16) as u32;
        self.arrived_ms
            .store(millis_since_epoch(Instant::now()), Ordering::Relaxed);
        self.report
            .store(u64::from(compact) << 32 | u64::from(rtp), Ordering::Relaxed);
    }

    /// (compact NTP time, RTP timestamp) of the latest report, and when it arrived.
    pub(crate) fn load(&self) -> Option<((u32, u32), u64)> {
        let word = self.report.load(Ordering::Relaxed);
        let arrived = self.arrived_ms.load(Ordering::Relaxed);
        (word != 0).then_some((((word >> 32) as u32, word as u32), arrived))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sender_report_is_kept_as_its_compact_ntp_time_and_rtp_timestamp() {
        let cell = SenderReportCell::default();
        assert_eq!(cell.load(), None, "nothing before the first report");
        // NTP 0x0001_2345_6789_abcd: the compact form is its middle 32 bits.
        cell.store(0x0001_2345_6789_abcd, 0xdead_beef);
        let (report, arrived) = cell.load().unwrap();
        assert_eq!(report, (0x2345_6789, 0xdead_beef));
        assert!(arrived <= millis_since_epoch(Instant::now()));
    }
}
