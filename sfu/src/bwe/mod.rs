//! Per-subscriber downlink bandwidth estimation after Google Congestion Control
//! (draft-ietf-rmcat-gcc-02 and libwebrtc's `goog_cc`).
//!
//! The estimate is the lower of two controllers:
//! - a delay-based one: packets are grouped into pacer bursts ([`inter_arrival`]), the
//!   growth of one-way delay is fitted by a trendline ([`trendline`]), compared against an
//!   adaptive threshold ([`overuse`]) and turned into rate changes by AIMD ([`aimd`]) that
//!   is capped by what the subscriber actually received ([`acked_bitrate`]);
//! - a loss-based one ([`loss`]), which also stands alone for subscribers that only send
//!   receiver reports.
//!
//! Probes announced by the sender ([`probe`]) may lift the acknowledged-bitrate cap and,
//! when delivered intact, move the estimate up at once instead of at 8 % per second.
//!
//! When the allocator could use more than the estimate, the estimator may jump to that
//! rate and let the media test it, but only once congestion is long enough ago ([`backoff`]);
//! after loss the estimate stays below where the last cuts stopped for as long.
//!
//! Everything is a plain state machine fed with timestamps; nothing here reads a clock.

mod acked_bitrate;
mod aimd;
mod backoff;
mod estimator;
mod inter_arrival;
mod loss;
mod overuse;
mod probe;
mod trendline;

#[cfg(test)]
mod tests;

pub(crate) use estimator::{BandwidthEstimator, EstimatorConfig, PacketResult};

/// Clamps without `f64::clamp`, which panics on NaN bounds; a NaN value lands on `lo`.
pub(crate) fn bound(x: f64, lo: f64, hi: f64) -> f64 {
    x.max(lo).min(hi)
}
