//! One subscription as the fan-out runs it: its [`Forwarder`] (which packets, renumbered how) and
//! its [`OutboundStream`] (onto the wire), driven by the publication's fan-out task, which owns
//! every writer of the publication and calls them in turn for each packet.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::batch::Batch;
use super::prefetch;
use crate::forwarder::{Forwarder, Verdict};
use crate::peer::{wire_size, OutboundStream, Stamp};
use crate::publication::{Ingress, SubscriptionControl, SubscriptionId, PAUSED};
use crate::stats::{Counters, MeterWindow, OutboundStats};

/// How often a forwarded track's sender report goes out, at most (webrtc-rs's interceptor sent
/// one a second).
const SENDER_REPORT_INTERVAL: Duration = Duration::from_secs(1);

pub(crate) struct Writer {
    pub(super) id: SubscriptionId,
    stream: OutboundStream,
    control: Arc<SubscriptionControl>,
    forwarder: Forwarder,
    stats: Arc<OutboundStats>,
    meter: FlushOnDrop,
    /// Sender reports go out with the media, checked per packet: a stream that sends nothing has
    /// nothing to report.
    next_report: Instant,
}

/// How far along a writer's chain of pointers a prefetch reaches (see [`super::prefetch`]):
/// each stage reads only pointers the one before has fetched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// The writer's own struct.
    Own,
    /// What its fields point at: the subscription's flags and statistics, the track, the
    /// binding, the SRTP key.
    Pointees,
    /// One hop further: the binding's generation and the subscriber's connection.
    Connection,
    /// The connection's transport-wide numbering.
    Transport,
    /// The history slot of the next transport-wide number.
    TransportSlot,
}

/// What a writer needs besides its stream and forwarder.
pub(crate) struct WriterParts {
    pub(crate) id: SubscriptionId,
    pub(crate) control: Arc<SubscriptionControl>,
    pub(crate) stats: Arc<OutboundStats>,
    pub(crate) counters: Arc<Counters>,
}

impl Writer {
    pub(crate) fn new(stream: OutboundStream, forwarder: Forwarder, parts: WriterParts) -> Self {
        Self {
            id: parts.id,
            stream,
            control: parts.control,
            forwarder,
            stats: parts.stats,
            meter: FlushOnDrop {
                window: MeterWindow::new(),
                counters: parts.counters,
            },
            next_report: Instant::now(),
        }
    }

    /// Ends the writer and hands back its forwarder (for a parked track). The stream is dropped
    /// here, which parks its SRTP state for the next stream on the same SSRC.
    pub(crate) fn into_forwarder(self) -> Forwarder {
        self.forwarder
    }

    /// Offers the publisher's packet; queues it in `batch` under `tag` if the forwarder takes it.
    /// Returns a layer to ask a keyframe of, if the forwarder needs one.
    pub(super) fn on_packet(
        &mut self,
        now: Instant,
        ingress: &Arc<Ingress>,
        batch: &mut Batch,
        tag: u32,
    ) -> Option<u8> {
        self.retarget();
        if self.control.wanted.load(Ordering::Relaxed) & (1 << ingress.info.layer) == 0 {
            return None;
        }
        self.write(now, ingress, batch, tag);
        if now >= self.next_report {
            self.report(now, batch, tag);
        }
        self.forwarder.keyframe_request(now)
    }

    /// Starts loading what [`Self::on_packet`] will touch, as far as `stage` reaches.
    pub(super) fn prefetch(&self, stage: Stage) {
        match stage {
            Stage::Own => prefetch::lines(self),
            Stage::Pointees => {
                prefetch::line(Arc::as_ptr(&self.control));
                prefetch::line(Arc::as_ptr(&self.stats));
                self.stream.prefetch_pointees();
            }
            Stage::Connection => self.stream.prefetch_connection(),
            Stage::Transport => self.stream.prefetch_transport(),
            Stage::TransportSlot => self.stream.prefetch_transport_slot(),
        }
    }

    /// Sends again those of `lost` the stream still holds.
    pub(super) fn resend(&mut self, lost: &[u16], now: Instant, batch: &mut Batch, tag: u32) {
        self.stream.resend(lost, now, batch, tag);
    }

    /// Takes back a packet's transport-wide number: its datagram did not leave.
    pub(super) fn not_sent(&mut self, stamp: Option<Stamp>) {
        if let Some(stamp) = stamp {
            self.stream.forget(stamp);
        }
    }

    /// Takes up the target the allocator set.
    fn retarget(&mut self) {
        let target = self.control.target.load(Ordering::Relaxed);
        if self
            .forwarder
            .set_target((target != PAUSED).then_some(target))
        {
            self.publish_state();
        }
    }

    /// Tells the fan-out which layers to offer, and the reports and the feedback task which layer
    /// is forwarded.
    fn publish_state(&self) {
        let wanted = self.forwarder.wanted_layers();
        if self.control.wanted.load(Ordering::Relaxed) != wanted {
            self.control.wanted.store(wanted, Ordering::Relaxed);
        }
        let current = self.forwarder.current().unwrap_or(PAUSED);
        if self.stats.layer.load(Ordering::Relaxed) != current {
            self.stats.layer.store(current, Ordering::Relaxed);
        }
    }

    fn write(&mut self, now: Instant, ingress: &Arc<Ingress>, batch: &mut Batch, tag: u32) {
        // Until packets can leave, the forwarder does not see them: the subscriber's stream
        // starts at a keyframe it actually receives.
        if !self.stream.is_ready() {
            return;
        }
        let header = &ingress.packet.header;
        let verdict =
            self.forwarder
                .on_packet(now, &ingress.info, header.sequence_number, header.timestamp);
        self.publish_state();
        let Verdict::Forward(rewrite) = verdict else {
            return;
        };
        if self.stream.send(ingress, &rewrite, now, batch, tag) {
            let size = wire_size(&ingress.packet);
            let flow = &self.meter.counters.forwarded;
            self.stats
                .meter
                .record(&mut self.meter.window, size, now, flow);
        }
    }

    fn report(&mut self, now: Instant, batch: &mut Batch, tag: u32) {
        if self.stream.send_report(now, SystemTime::now(), batch, tag) {
            self.next_report = now + SENDER_REPORT_INTERVAL;
        }
    }
}

/// Flushes the writer's counts into the server totals when it goes, however it goes.
struct FlushOnDrop {
    window: MeterWindow,
    counters: Arc<Counters>,
}

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        self.window.flush(&self.counters.forwarded);
    }
}
