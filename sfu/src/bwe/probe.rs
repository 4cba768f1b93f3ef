//! Probe bookkeeping. While the sender pads above what media needs it calls
//! `BandwidthEstimator::on_probe`; this module remembers that window (server clock),
//! measures how fast the packets sent inside it were delivered (libwebrtc
//! `ProbeBitrateEstimator`) and keeps the acknowledged-bitrate cap lifted meanwhile.
//!
//! Times are microseconds, rates bits per second.

/// Calls further apart than this belong to different probes.
#[allow(dead_code)] // used once probing is driven (next step of issue #10)
const SAME_PROBE_GAP_US: i64 = 100_000;
/// The cap stays lifted this long after the last call, so the feedback describing the
/// probe (one RTT plus the feedback interval later) is still judged under it.
const CAP_HOLD_US: i64 = 1_000_000;
/// Fewer packets give no trustworthy rate (libwebrtc `kMinReceivedProbesRatio` × 5 probes).
const MIN_PACKETS: u32 = 5;
/// Longer spans are not a probe burst any more (libwebrtc `kMaxProbeInterval`).
const MAX_SPAN_US: i64 = 1_000_000;
/// Receiving noticeably slower than sending means the probe hit capacity; then aim a
/// little below what arrived (libwebrtc `kMinRatioForUnsaturatedLink`,
/// `kTargetUtilizationFraction`). Receiving over twice as fast is a measurement artefact
/// (libwebrtc `kMaxValidRatio`).
const SATURATED_RATIO: f64 = 0.9;
const SATURATED_TARGET: f64 = 0.95;
const MAX_VALID_RATIO: f64 = 2.0;

#[derive(Clone, Copy, Debug)]
struct Endpoint {
    at: i64,
    size: u32,
}

#[derive(Debug, Default)]
struct Delivery {
    first_send: Option<Endpoint>,
    last_send: Option<Endpoint>,
    first_arrival: Option<Endpoint>,
    last_arrival: Option<Endpoint>,
    bytes: u64,
    packets: u32,
    fresh: bool,
}

impl Delivery {
    fn add(&mut self, send: i64, arrival: i64, size: u32) {
        let ep = |at| Some(Endpoint { at, size });
        if self.first_send.is_none_or(|e| send < e.at) {
            self.first_send = ep(send);
        }
        if self.last_send.is_none_or(|e| send >= e.at) {
            self.last_send = ep(send);
        }
        if self.first_arrival.is_none_or(|e| arrival < e.at) {
            self.first_arrival = ep(arrival);
        }
        if self.last_arrival.is_none_or(|e| arrival >= e.at) {
            self.last_arrival = ep(arrival);
        }
        self.bytes = self.bytes.saturating_add(u64::from(size));
        self.packets = self.packets.saturating_add(1);
        self.fresh = true;
    }

    /// Rate over a span; the packet at the span's open end took no time of it.
    fn rate(&self, first: Option<Endpoint>, last: Option<Endpoint>, excluded: u32) -> Option<f64> {
        let span = last?.at.saturating_sub(first?.at);
        if span <= 0 || span > MAX_SPAN_US {
            return None;
        }
        let bits = self.bytes.saturating_sub(u64::from(excluded)) as f64 * 8.0;
        Some(bits / (span as f64 / 1e6))
    }

    fn bitrate(&self) -> Option<f64> {
        if self.packets < MIN_PACKETS {
            return None;
        }
        let send = self.rate(self.first_send, self.last_send, self.last_send?.size)?;
        let recv = self.rate(
            self.first_arrival,
            self.last_arrival,
            self.first_arrival?.size,
        )?;
        if recv > MAX_VALID_RATIO * send {
            return None;
        }
        Some(if recv < SATURATED_RATIO * send {
            SATURATED_TARGET * recv
        } else {
            send.min(recv)
        })
    }
}

#[derive(Debug)]
struct Cluster {
    start_us: i64,
    last_call_us: i64,
    bps: f64,
    delivery: Delivery,
}

#[derive(Debug, Default)]
pub struct ProbeTracker {
    cluster: Option<Cluster>,
}

impl ProbeTracker {
    #[allow(dead_code)] // used once probing is driven (next step of issue #10)
    pub fn on_probe(&mut self, now_us: i64, bps: f64) {
        match &mut self.cluster {
            Some(c) if (0..=SAME_PROBE_GAP_US).contains(&now_us.saturating_sub(c.last_call_us)) => {
                c.last_call_us = now_us;
                c.bps = c.bps.max(bps);
            }
            _ => {
                self.cluster = Some(Cluster {
                    start_us: now_us,
                    last_call_us: now_us,
                    bps,
                    delivery: Delivery::default(),
                })
            }
        }
    }

    /// The probe's rate while it runs and shortly after, as a floor for the increase cap.
    pub fn cap_floor(&self, now_us: i64) -> f64 {
        match &self.cluster {
            Some(c) if now_us.saturating_sub(c.last_call_us) <= CAP_HOLD_US => c.bps,
            _ => 0.0,
        }
    }

    pub fn on_packet(&mut self, send_us: i64, arrival_us: i64, size: u32) {
        if let Some(c) = &mut self.cluster {
            if (c.start_us..=c.last_call_us).contains(&send_us) {
                c.delivery.add(send_us, arrival_us, size);
            }
        }
    }

    /// The delivered probe rate, once per batch of new probe packets, so a stale result
    /// cannot undo a later cut.
    pub fn take_result(&mut self) -> Option<f64> {
        let delivery = &mut self.cluster.as_mut()?.delivery;
        if !std::mem::take(&mut delivery.fresh) {
            return None;
        }
        delivery.bitrate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe_through(link_bps: f64) -> Option<f64> {
        let mut p = ProbeTracker::default();
        let gap_us = 4_800; // 1200 B at 2 Mbit/s
        let serialise_us = (9_600.0 / link_bps * 1e6) as i64;
        let mut free_at = 0;
        for i in 0..10 {
            let send = i * gap_us;
            p.on_probe(send, 2e6);
            free_at = send.max(free_at) + serialise_us;
            p.on_packet(send, free_at + 30_000, 1200);
        }
        p.take_result()
    }

    #[test]
    fn a_probe_through_a_wide_link_measures_its_own_rate() {
        let r = probe_through(10e6).unwrap();
        assert!((r - 2e6).abs() < 1e4, "{r}");
    }

    #[test]
    fn a_probe_through_a_narrow_link_measures_the_link() {
        let r = probe_through(1e6).unwrap();
        assert!((r - 0.95e6).abs() < 2e4, "{r}");
    }

    #[test]
    fn a_result_is_reported_once() {
        let mut p = ProbeTracker::default();
        for i in 0..10 {
            p.on_probe(i * 5_000, 2e6);
            p.on_packet(i * 5_000, i * 5_000, 1200);
        }
        assert!(p.take_result().is_some());
        assert!(p.take_result().is_none());
    }
}
