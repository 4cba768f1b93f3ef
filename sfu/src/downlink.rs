//! One subscriber's downlink: what its feedback says the link carries (the bandwidth
//! estimator), and how that is shared among the video it receives (the allocator). A plain
//! struct with time passed in, owned by the participant's task.

use std::time::{Duration, Instant};

use crate::allocation::{Allocation, Allocator, AllocatorConfig, VideoDemand};
use crate::bwe::{BandwidthEstimator, EstimatorConfig};
use crate::peer::TransportEvent;

/// Where the estimate starts before any feedback: generous, so a subscriber on a good link gets
/// full video at once; the first signs of congestion bring it down within a second.
const INITIAL_ESTIMATE_BPS: u64 = 5_000_000;
const MIN_ESTIMATE_BPS: u64 = 100_000;
const MAX_ESTIMATE_BPS: u64 = 50_000_000;

/// Receiver reports feed the estimate only while no transport-wide feedback came this recently:
/// a subscriber that sends both has its losses counted once, from the feedback.
const FEEDBACK_FRESH: Duration = Duration::from_secs(2);

/// Kept for audio before video is shared out, per forwarded audio track, whatever it measures.
pub(crate) const AUDIO_RESERVE_BPS: u64 = 40_000;

pub(crate) struct Downlink {
    estimator: BandwidthEstimator,
    allocator: Allocator,
    /// The allocator's: a need is tried with the same headroom the allocator keeps.
    headroom: f64,
    last_feedback: Option<Instant>,
}

impl Downlink {
    pub(crate) fn new() -> Self {
        let config = AllocatorConfig::default();
        Self {
            estimator: BandwidthEstimator::new(EstimatorConfig {
                initial_bps: INITIAL_ESTIMATE_BPS,
                min_bps: MIN_ESTIMATE_BPS,
                max_bps: MAX_ESTIMATE_BPS,
            }),
            allocator: Allocator::new(config),
            headroom: config.headroom,
            last_feedback: None,
        }
    }

    pub(crate) fn on_transport(&mut self, now: Instant, event: TransportEvent) {
        match event {
            TransportEvent::Feedback(results) => {
                self.last_feedback = Some(now);
                self.estimator.on_transport_feedback(now, &results);
                tracing::trace!(packets = results.len(), lost = results.iter().filter(|r| r.arrived_at.is_none()).count(), estimate = self.estimate_bps(), acked = ?self.estimator.acked_bps(), usage = ?self.estimator.usage(), "transport feedback");
            }
            TransportEvent::LossReport(fraction_lost) => {
                let fresh = self
                    .last_feedback
                    .is_some_and(|at| now.saturating_duration_since(at) < FEEDBACK_FRESH);
                if !fresh {
                    self.estimator.on_receiver_report(now, fraction_lost);
                    tracing::trace!(fraction_lost, estimate = self.estimate_bps(), "loss report");
                }
            }
        }
    }

    /// Shares what the estimate leaves after `audio_bps` among the video tracks. When the
    /// tracks want more than that, the estimator is asked to try the whole need (it does
    /// unless congestion is recent); the allocator takes it up once it has lasted.
    pub(crate) fn allocate(
        &mut self,
        now: Instant,
        audio_bps: u64,
        video: &[VideoDemand],
    ) -> Allocation {
        let budget = self.estimate_bps().saturating_sub(audio_bps);
        let allocation = self.allocator.allocate(now, budget, video);
        if allocation.deficit_bps > 0 {
            let video = allocation
                .allocated_bps
                .saturating_add(allocation.deficit_bps);
            // Rounded up: the allocator must find the need within headroom × the estimate.
            let with_headroom = (video as f64 / self.headroom).ceil() as u64 + 1;
            let before = self.estimate_bps();
            self.estimator
                .try_rate(now, with_headroom.saturating_add(audio_bps));
            if self.estimate_bps() != before {
                tracing::debug!(
                    before,
                    tried = self.estimate_bps(),
                    "trying a higher downlink rate"
                );
            }
        }
        allocation
    }

    /// A track no longer received.
    pub(crate) fn forget(&mut self, track: u64) {
        self.allocator.remove(track);
    }

    pub(crate) fn estimate_bps(&self) -> u64 {
        self.estimator.estimate_bps()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocation::{Decision, Layer, PauseReason, Priority};
    use crate::bwe::PacketResult;

    fn camera(track: u64) -> VideoDemand {
        let layer = |bitrate_bps, width, height| Layer {
            bitrate_bps,
            width,
            height,
        };
        VideoDemand {
            track,
            priority: Priority::Normal,
            tile: None,
            visible: true,
            layers: vec![
                layer(150_000, 320, 180),
                layer(400_000, 640, 360),
                layer(1_200_000, 1280, 720),
            ],
        }
    }

    /// Feedback for 100 ms of 1,200-byte packets sent at `send_bps` through a link that delivers
    /// `link_bps`: arrivals spread out as the queue builds.
    fn feedback(start: Instant, from_ms: u64, send_bps: u64, link_bps: u64) -> TransportEvent {
        let packets = send_bps / 8 / 1200 / 10;
        let results = (0..packets)
            .map(|i| {
                let sent =
                    Duration::from_millis(from_ms) + Duration::from_secs(i) / 10 / packets as u32;
                let queue = Duration::from_secs_f64(
                    (from_ms as f64 / 1000.0 + i as f64 / 10.0 / packets as f64)
                        * (send_bps.saturating_sub(link_bps)) as f64
                        / link_bps as f64,
                );
                PacketResult {
                    sent_at: start + sent,
                    size: 1200,
                    arrived_at: Some(sent + queue + Duration::from_millis(20)),
                }
            })
            .collect();
        TransportEvent::Feedback(results)
    }

    #[test]
    fn with_no_feedback_yet_a_subscriber_gets_video_at_once() {
        let mut d = Downlink::new();
        let a = d.allocate(Instant::now(), 64_000, &[camera(1), camera(2)]);
        assert!(a
            .decisions
            .iter()
            .all(|(_, decision)| matches!(decision, Decision::Forward(_))));
    }

    #[test]
    fn a_queue_building_on_the_downlink_brings_the_estimate_and_the_layers_down() {
        let mut d = Downlink::new();
        let start = Instant::now();
        for step in 0..30u64 {
            let now = start + Duration::from_millis(100 * (step + 1));
            d.on_transport(now, feedback(start, 100 * step, 2_000_000, 500_000));
        }
        assert!(
            d.estimate_bps() < 1_000_000,
            "estimate {} after 3 s of a 500 kbit/s link",
            d.estimate_bps()
        );
        let a = d.allocate(start + Duration::from_secs(3), 64_000, &[camera(1)]);
        assert_eq!(a.decisions[0].1, Decision::Forward(0));
    }

    #[test]
    fn heavy_loss_in_receiver_reports_lowers_the_estimate_of_a_subscriber_without_feedback() {
        let mut d = Downlink::new();
        let start = Instant::now();
        for step in 0..10u64 {
            d.on_transport(
                start + Duration::from_secs(step),
                TransportEvent::LossReport(128),
            );
        }
        assert!(
            d.estimate_bps() < INITIAL_ESTIMATE_BPS / 4,
            "{}",
            d.estimate_bps()
        );
    }

    #[test]
    fn receiver_reports_are_ignored_while_transport_feedback_flows() {
        let mut d = Downlink::new();
        let start = Instant::now();
        d.on_transport(start, feedback(start, 0, 1_000_000, 10_000_000));
        let before = d.estimate_bps();
        for step in 1..5u64 {
            d.on_transport(
                start + Duration::from_millis(200 * step),
                TransportEvent::LossReport(255),
            );
        }
        assert!(
            d.estimate_bps() >= before / 2,
            "{} → {}",
            before,
            d.estimate_bps()
        );
    }

    #[test]
    fn after_heavy_loss_the_top_layer_is_tried_again_once_the_backoff_ran_out() {
        let mut d = Downlink::new();
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        for step in 0..10u64 {
            d.on_transport(at(step * 500), TransportEvent::LossReport(128));
            d.allocate(at(step * 500), 64_000, &[camera(1)]);
        }
        let low = d.estimate_bps();
        assert!(low < 400_000, "{low}");
        let mut top_from = None;
        for step in 10..60u64 {
            d.on_transport(at(step * 500), TransportEvent::LossReport(0));
            let a = d.allocate(at(step * 500), 64_000, &[camera(1)]);
            if a.decisions[0].1 == Decision::Forward(2) && top_from.is_none() {
                top_from = Some(step * 500);
            }
        }
        // The last cut was at 4.5 s: 5 s of backoff, then 3 s for the tried rate to last.
        let top_from = top_from.expect("the top layer came back");
        assert!((12_500..=13_500).contains(&top_from), "{top_from} ms");
    }

    #[test]
    fn audio_is_kept_out_of_the_video_budget() {
        let mut d = Downlink::new();
        let a = d.allocate(Instant::now(), INITIAL_ESTIMATE_BPS, &[camera(1)]);
        assert_eq!(a.decisions[0].1, Decision::Paused(PauseReason::NoBandwidth));
    }
}
