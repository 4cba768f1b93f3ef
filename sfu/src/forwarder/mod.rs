//! The forwarder: one subscriber's view of one publication. It decides, packet by packet, what
//! the subscriber receives and how it is numbered — the role of mediasoup's Consumer or
//! LiveKit's DownTrack.
//!
//! A plain struct with no I/O and no clock of its own: packets, targets and `now` go in,
//! verdicts and keyframe requests come out. It holds the layer it forwards and the layer it is
//! asked for, and switches only where the target layer starts a keyframe (asking that layer for
//! one, throttled). Sequence numbers, timestamps and the VP8 picture numbering it sends form one
//! continuous stream across switches, pauses and the packets it drops (a publisher's padding
//! probes mean nothing downstream), so a subscriber's NACK always names a packet that was sent.

mod frame;
mod sequencer;
mod timestamps;
pub(crate) mod vp8;

pub(crate) use frame::{FrameInfo, PayloadFormat};
pub(crate) use vp8::Vp8Rewrite;

use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::peer::RtpPacket;
use sequencer::Sequencer;
use timestamps::Timestamps;
use vp8::Vp8Munger;

/// How long a forwarder waits for the keyframe it asked for before asking again.
const KEYFRAME_RETRY: Duration = Duration::from_millis(500);

/// What to do with one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Send it, numbered so.
    Forward(Rewrite),
    Drop(DropReason),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DropReason {
    /// Another layer than the one forwarded, or paused.
    NotForwarded,
    /// Waiting for a keyframe to start or switch on.
    AwaitingKeyframe,
    /// The publisher's padding: it probes the publisher's uplink, not the subscriber's.
    Padding,
    /// Too late: from before the current stream began, or beyond the reorder window.
    Late,
}

/// The outgoing numbering of one forwarded packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rewrite {
    pub(crate) sequence_number: u16,
    pub(crate) timestamp: u32,
    /// VP8 descriptor fields to rewrite; `None` when the payload passes unchanged.
    pub(crate) vp8: Option<Vp8Rewrite>,
}

impl Rewrite {
    /// The packet as the subscriber receives it. The payload is shared, and copied only when its
    /// VP8 numbering must change.
    pub(crate) fn apply(&self, packet: &RtpPacket) -> RtpPacket {
        let mut out = packet.clone();
        out.header.sequence_number = self.sequence_number;
        out.header.timestamp = self.timestamp;
        out.header.padding = false;
        if let Some(vp8) = self.vp8 {
            let mut payload = BytesMut::from(&packet.payload[..]);
            vp8.apply(&mut payload);
            out.payload = payload.freeze();
        }
        out
    }
}

#[derive(Debug)]
pub(crate) struct Forwarder {
    /// The layer being forwarded; `None` while paused or before the first keyframe.
    current: Option<u8>,
    /// The layer asked for; `None` = paused.
    target: Option<u8>,
    sequencer: Sequencer,
    timestamps: Timestamps,
    vp8: Vp8Munger,
    /// When a keyframe of the target layer was last asked for, while a switch waits for one.
    keyframe_asked: Option<Instant>,
}

impl Forwarder {
    /// A forwarder that will start on `target` at its first keyframe, numbering its output from
    /// `first_sequence_number`.
    pub(crate) fn new(clock_rate: u32, first_sequence_number: u16, target: Option<u8>) -> Self {
        Self {
            current: None,
            target,
            sequencer: Sequencer::new(first_sequence_number),
            timestamps: Timestamps::new(clock_rate),
            vp8: Vp8Munger::default(),
            keyframe_asked: None,
        }
    }

    /// Takes up another publication on the same outgoing stream: nothing is forwarded until a
    /// keyframe of `target` comes, and from there the numbering continues where it stopped, as
    /// after a layer switch.
    pub(crate) fn restart(mut self, target: Option<u8>) -> Self {
        self.current = None;
        self.target = target;
        self.keyframe_asked = None;
        self
    }

    /// Asks for another layer (`None` pauses). Pausing takes effect at once; a layer is taken up
    /// at its next keyframe, and until then the current one keeps flowing.
    /// Sets the layer to forward (`None`: pause); returns whether that changed anything.
    pub(crate) fn set_target(&mut self, target: Option<u8>) -> bool {
        if target == self.target {
            return false;
        }
        self.target = target;
        self.keyframe_asked = None;
        if target.is_none() {
            self.current = None;
        }
        true
    }

    pub(crate) fn current(&self) -> Option<u8> {
        self.current
    }

    /// The layers whose packets this forwarder may use, one bit per layer: the publication need
    /// not hand it any other.
    pub(crate) fn wanted_layers(&self) -> u8 {
        [self.current, self.target]
            .into_iter()
            .flatten()
            .fold(0, |mask, layer| {
                mask | 1u8.checked_shl(u32::from(layer)).unwrap_or(0)
            })
    }

    /// Decides on one packet of layer `info.layer`.
    pub(crate) fn on_packet(
        &mut self,
        now: Instant,
        info: &FrameInfo,
        sequence_number: u16,
        timestamp: u32,
    ) -> Verdict {
        if info.resync && Some(info.layer) == self.current {
            // Nothing of this layer was forwarded for a while: pick it up again at a keyframe,
            // numbered on from the last packet sent.
            self.current = None;
        }
        let switching = self.target.is_some() && self.current != self.target;
        if switching && Some(info.layer) == self.target && info.keyframe {
            self.switch(now, info, sequence_number, timestamp);
        } else if Some(info.layer) != self.current {
            return Verdict::Drop(if Some(info.layer) == self.target {
                DropReason::AwaitingKeyframe
            } else {
                DropReason::NotForwarded
            });
        }
        if info.padding_only {
            self.sequencer.drop_packet(sequence_number);
            return Verdict::Drop(DropReason::Padding);
        }
        let Some(sequence_number) = self.sequencer.forward(sequence_number) else {
            return Verdict::Drop(DropReason::Late);
        };
        Verdict::Forward(Rewrite {
            sequence_number,
            timestamp: self.timestamps.forward(now, timestamp),
            vp8: info.vp8.and_then(|d| self.vp8.rewrite(&d)),
        })
    }

    fn switch(&mut self, now: Instant, info: &FrameInfo, sequence_number: u16, timestamp: u32) {
        self.current = self.target;
        self.keyframe_asked = None;
        self.sequencer.switch(sequence_number);
        self.timestamps.switch(now, timestamp);
        if let Some(d) = &info.vp8 {
            self.vp8.switch(d);
        }
    }

    /// The layer to ask for a keyframe now, if a switch is waiting for one and it was not asked
    /// for within the retry interval.
    pub(crate) fn keyframe_request(&mut self, now: Instant) -> Option<u8> {
        let target = self.target?;
        if self.current == Some(target) {
            return None;
        }
        let due = self
            .keyframe_asked
            .is_none_or(|at| now.saturating_duration_since(at) >= KEYFRAME_RETRY);
        due.then(|| {
            self.keyframe_asked = Some(now);
            target
        })
    }
}

/// One forwarder's per-packet work (read the packet, decide, rewrite), for the microbenchmarks
/// in `benches/`.
#[doc(hidden)]
pub struct ForwarderBench {
    forwarder: Forwarder,
    format: PayloadFormat,
}

impl ForwarderBench {
    /// A forwarder of a VP8 video track, forwarding layer 0.
    pub fn vp8() -> Self {
        Self {
            forwarder: Forwarder::new(90_000, 0, Some(0)),
            format: PayloadFormat::Vp8,
        }
    }

    /// The packet as the subscriber would receive it, if forwarded.
    pub fn forward(&mut self, now: Instant, packet: &RtpPacket) -> Option<RtpPacket> {
        let info = FrameInfo::read(self.format, 0, &packet.payload);
        let h = &packet.header;
        match self
            .forwarder
            .on_packet(now, &info, h.sequence_number, h.timestamp)
        {
            Verdict::Forward(rewrite) => Some(rewrite.apply(packet)),
            Verdict::Drop(_) => None,
        }
    }
}

#[cfg(test)]
mod tests;
