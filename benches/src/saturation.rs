//! The `fanout-step` scenario: one roomcast process taken past saturation and back.
//!
//! One publisher and `base` subscribers join, warm up and are measured ("below saturation");
//! more subscribers join, up to `peak`, and after a short wait the same window is measured again
//! ("overload"); then the subscribers that joined last leave, and after a short wait the `base`
//! that stayed are measured once more ("recovered"). The server process is never restarted: the
//! last phase shows whether it recovers by itself once the load drops.
//!
//! Each phase's window is the one a fan-out step measures ([`Bench::measure_window`], cleared
//! and re-counted per phase), tallied per subscriber ([`tally_receptions`]), so the table shows
//! how evenly the loss is spread and whether every subscriber still receives. The server's
//! `/metrics` counters show whether ingest keeps up with what the publisher sends.

use std::fmt::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::admin;
use crate::histogram::Histogram;
use crate::peer::Participant;
use crate::scenario::{
    close_all, generator_bound, report_recordings, sent_by, tally_receptions, Bench, CpuUse,
    Server, Shape, System, GRACE,
};
use crate::window::Kind;

/// How long the overload's new subscribers get for their tracks to come up before the phase
/// goes on without them (they then count as receiving nothing).
const NEW_TRACKS_DEADLINE: Duration = Duration::from_secs(20);
/// How long the overload's joins may take in all; those not done by then are abandoned (and
/// reported as failed), so a server that stops answering joins cannot stall the run.
const OVERLOAD_JOIN_BUDGET: Duration = Duration::from_secs(60);
/// When a phase's p99 latency is beyond the grace period after its window, its packets are
/// counted again this much later, to tell the late ones from the lost ones.
const LATE_WAIT: Duration = Duration::from_secs(5);
/// Forwarded tracks per subscriber: the publisher's audio and video.
const TRACKS_PER_SUBSCRIBER: usize = 2;

/// The subscriber counts of a saturation step, and the wait after each change.
#[derive(Clone, Copy, Debug)]
pub struct StepConfig {
    pub base: usize,
    pub peak: usize,
    /// Wait after subscribers joined (overload) or left (recovered), before the window.
    pub settle: Duration,
}

/// Which phase of the step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhaseKind {
    Below,
    Overload,
    Recovered,
}

impl PhaseKind {
    pub fn label(self) -> &'static str {
        match self {
            PhaseKind::Below => "1 below saturation",
            PhaseKind::Overload => "2 overload",
            PhaseKind::Recovered => "3 recovered",
        }
    }
}

/// What one phase measured, over the subscribers present in it.
#[derive(Clone, Debug)]
pub struct Phase {
    pub kind: PhaseKind,
    pub subscribers: usize,
    /// Joins that failed on the way to this phase (not among `subscribers`).
    pub joins_failed: usize,
    /// The server's and the generator's CPU over the window, and the window's length.
    pub cpu: CpuUse,
    /// Packets the publisher stamped inside the window, audio and video.
    pub sent: u64,
    /// Of those, packets the subscribers received by the end of the grace period after the
    /// window, all of them together.
    pub delivered: u64,
    /// Packets that arrived after that, within [`LATE_WAIT`] more (counted only when the p99
    /// latency is beyond the grace period); part of the loss.
    pub late: Option<u64>,
    pub expected: u64,
    pub latency: Histogram,
    /// Each subscriber's loss (0..=1) of what the publisher sent in the window.
    pub losses: Vec<f64>,
    /// Subscribers that received at least one of the window's packets.
    pub receiving_any: usize,
    /// Subscribers that received some of the window's packets on every forwarded track.
    pub receiving_all: usize,
    /// RTP packets per second the server counted from the publisher (its `/metrics`).
    pub ingest_per_sec: Option<f64>,
    /// `roomcast_dropped_packets_total` per second: mostly publishers' packets the fan-out
    /// dropped for every subscriber at once (too late, or its queue full).
    pub dropped_per_sec: Option<f64>,
}

impl Phase {
    /// What the server was asked to forward: what the publisher sent, to every subscriber.
    pub fn offered_per_sec(&self) -> f64 {
        (self.sent * self.subscribers as u64) as f64 / self.cpu.window_secs
    }

    pub fn delivered_per_sec(&self) -> f64 {
        self.delivered as f64 / self.cpu.window_secs
    }

    pub fn loss(&self) -> f64 {
        loss(self.delivered, self.expected)
    }

    /// The share of `expected` that arrived, but after the grace period.
    pub fn late_share(&self) -> Option<f64> {
        self.late
            .map(|late| late as f64 / self.expected.max(1) as f64)
    }

    pub fn cpu_micros_per_delivered(&self) -> f64 {
        self.cpu.sfu_micros_per(self.delivered)
    }

    /// The server's ingest over what the publisher sent, per second each.
    pub fn ingest_share(&self) -> Option<f64> {
        let sent_per_sec = self.sent as f64 / self.cpu.window_secs;
        self.ingest_per_sec
            .filter(|_| sent_per_sec > 0.0)
            .map(|i| i / sent_per_sec)
    }

    /// The share of the lost packets that the server dropped whole, for every subscriber at
    /// once, before doing any work for one of them: its drops × subscribers over what was
    /// offered and not delivered. Near 1 means no CPU went into packets that were then lost.
    pub fn dropped_whole_share(&self) -> Option<f64> {
        let lost_per_sec = self.offered_per_sec() - self.delivered_per_sec();
        self.dropped_per_sec
            .filter(|_| lost_per_sec > 0.0)
            .map(|d| d * self.subscribers as f64 / lost_per_sec)
    }

    pub fn p(&self, q: f64) -> Option<f64> {
        self.latency.quantile(q).map(|v| v as f64 / 1000.0)
    }
}

/// The share of `expected` not delivered; all of it when nothing was expected.
pub fn loss(delivered: u64, expected: u64) -> f64 {
    if expected == 0 {
        return 1.0;
    }
    1.0 - (delivered as f64 / expected as f64).min(1.0)
}

/// How a figure is spread across subscribers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub min: f64,
    pub median: f64,
    pub p90: f64,
    pub max: f64,
}

/// Min, median, 90th percentile and max of `values` (interpolated between the closest ranks);
/// `None` if there are none.
pub fn spread(values: &[f64]) -> Option<Spread> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(Spread {
        min: v[0],
        median: quantile(&v, 0.5),
        p90: quantile(&v, 0.9),
        max: v[v.len() - 1],
    })
}

/// `q` of ascending, non-empty `sorted`, linear between the closest ranks.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// The excess load a phase's offered rate puts on one core, if one core forwards
/// `capacity_per_sec`: the share of it that cannot be forwarded (0 when within capacity).
pub fn excess_share(offered_per_sec: f64, capacity_per_sec: f64) -> f64 {
    if capacity_per_sec <= 0.0 || offered_per_sec <= capacity_per_sec {
        return 0.0;
    }
    1.0 - capacity_per_sec / offered_per_sec
}

/// The server's packet counters at one moment, from `/metrics`.
struct ServerCounters {
    at: Instant,
    received: u64,
    dropped: u64,
}

async fn server_counters(addr: SocketAddr) -> Option<ServerCounters> {
    let text = match admin::get_text(addr, "/metrics").await {
        Ok(text) => text,
        Err(e) => {
            println!("  no /metrics reading: {e:#}");
            return None;
        }
    };
    Some(ServerCounters {
        at: Instant::now(),
        received: admin::prometheus_value(&text, "roomcast_received_packets_total")?,
        dropped: admin::prometheus_value(&text, "roomcast_dropped_packets_total").unwrap_or(0),
    })
}

/// Forwarded tracks of `participants` that have delivered a packet.
fn live_tracks(participants: &[Participant]) -> usize {
    participants
        .iter()
        .map(|p| {
            p.receptions
                .lock()
                .map(|r| r.iter().filter(|r| r.total() > 0).count())
                .unwrap_or(0)
        })
        .sum()
}

/// Waits until `participants` have all their tracks up, or `deadline`; the tracks up.
async fn wait_live(participants: &[Participant], deadline: Instant) -> usize {
    let expected = participants.len() * TRACKS_PER_SUBSCRIBER;
    while live_tracks(participants) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    live_tracks(participants)
}

impl Bench {
    /// Runs the saturation step against one fresh roomcast process.
    pub async fn saturation_step(&self, config: StepConfig) -> Result<Vec<Phase>> {
        anyhow::ensure!(
            0 < config.base && config.base < config.peak,
            "the step needs 0 < base < peak (base {}, peak {})",
            config.base,
            config.peak
        );
        let server = self.start_server(System::Roomcast, 1 + config.peak).await?;
        let result = self.saturation_on(&server, config).await;
        server.stop().await;
        if let Some(dir) = &self.record {
            report_recordings(dir);
        }
        result
    }

    async fn saturation_on(&self, server: &Server, config: StepConfig) -> Result<Vec<Phase>> {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let factories = self.factories()?;
        let shared = self.shared();
        let shape = Shape {
            rooms: 1,
            publishers: 1,
            subscribers: config.base,
        };
        let (publishers, feeds) = Self::join_publishers(server, &factories, &shared, shape).await?;
        let joined_at = Instant::now();
        let rooms = std::iter::repeat_n(0, config.base);
        let mut subscribers = Vec::new();
        for j in Self::join_subscribers(server, &factories, &shared, rooms, &feeds, None).await {
            subscribers.push(j.context("joining a subscriber")?);
        }
        let deadline = Instant::now()
            + Duration::from_secs(30)
            + Duration::from_millis(50) * shape.participants() as u32;
        let live = wait_live(&subscribers, deadline).await;
        println!(
            "phase 1: {} subscribers joined, {live}/{} tracks live after {:.1} s",
            config.base,
            config.base * TRACKS_PER_SUBSCRIBER,
            joined_at.elapsed().as_secs_f64()
        );
        if self.record.is_some() {
            admin::start_recording(server.addr(), "bench-0").await?;
        }
        tokio::time::sleep(self.warmup).await;
        let stage = Stage {
            server,
            shared: &shared,
            publishers: &publishers,
        };
        let mut phases = Vec::new();
        phases.push(
            self.phase(&stage, &subscribers, PhaseKind::Below, 0)
                .await?,
        );

        let joined_at = Instant::now();
        let joining = config.peak - config.base;
        let rooms = std::iter::repeat_n(0, joining);
        let until = Some(joined_at + OVERLOAD_JOIN_BUDGET);
        let mut added = Vec::new();
        let mut errors = 0;
        for j in Self::join_subscribers(server, &factories, &shared, rooms, &feeds, until).await {
            match j {
                Ok(p) => added.push(p),
                Err(e) => {
                    errors += 1;
                    if errors <= 3 {
                        println!("phase 2: a join failed: {e:#}");
                    }
                }
            }
        }
        // Failed, or abandoned when the budget ran out.
        let failed = joining - added.len();
        let live = wait_live(&added, Instant::now() + NEW_TRACKS_DEADLINE).await;
        println!(
            "phase 2: {} more subscribers joined ({failed} failed), {live}/{} of their tracks live after {:.1} s",
            added.len(),
            added.len() * TRACKS_PER_SUBSCRIBER,
            joined_at.elapsed().as_secs_f64()
        );
        subscribers.extend(added);
        tokio::time::sleep(config.settle).await;
        phases.push(
            self.phase(&stage, &subscribers, PhaseKind::Overload, failed)
                .await?,
        );

        // The subscribers that joined last leave; the first `base` stay.
        let leaving = subscribers.split_off(config.base);
        let left_at = Instant::now();
        let n = leaving.len();
        close_all(leaving).await;
        println!(
            "phase 3: {n} subscribers left in {:.1} s",
            left_at.elapsed().as_secs_f64()
        );
        tokio::time::sleep(config.settle).await;
        phases.push(
            self.phase(&stage, &subscribers, PhaseKind::Recovered, 0)
                .await?,
        );

        subscribers.extend(publishers);
        close_all(subscribers).await;
        Ok(phases)
    }

    /// Measures one window over `subscribers` and prints its row.
    async fn phase(
        &self,
        stage: &Stage<'_>,
        subscribers: &[Participant],
        kind: PhaseKind,
        joins_failed: usize,
    ) -> Result<Phase> {
        let Stage {
            server,
            shared,
            publishers,
        } = *stage;
        let before = server_counters(server.addr()).await;
        let m = self.measure_window(server, shared, publishers).await?;
        let after = server_counters(server.addr()).await;
        let rate = |of: fn(&ServerCounters) -> u64| {
            let (b, a) = (before.as_ref()?, after.as_ref()?);
            let secs = a.at.duration_since(b.at).as_secs_f64();
            (secs > 0.0).then(|| of(a).saturating_sub(of(b)) as f64 / secs)
        };
        let sent = sent_by(publishers);
        let mut phase = Phase {
            kind,
            subscribers: subscribers.len(),
            joins_failed,
            cpu: m.cpu_use(),
            sent: sent
                .values()
                .map(|s| s.get(Kind::Audio) + s.get(Kind::Video))
                .sum(),
            delivered: 0,
            late: None,
            expected: 0,
            latency: Histogram::default(),
            losses: Vec::with_capacity(subscribers.len()),
            receiving_any: 0,
            receiving_all: 0,
            ingest_per_sec: rate(|c| c.received),
            dropped_per_sec: rate(|c| c.dropped),
        };
        let expected_tracks = TRACKS_PER_SUBSCRIBER * publishers.len();
        let tallies = || {
            subscribers.iter().map(|s| {
                let receptions = s.receptions.lock().map(|r| r.clone()).unwrap_or_default();
                tally_receptions(&sent, &receptions, expected_tracks)
            })
        };
        for t in tallies() {
            phase.delivered += t.delivered;
            phase.expected += t.expected;
            phase.latency.merge(&t.latency);
            phase.losses.push(loss(t.delivered, t.expected));
            if t.receiving > 0 {
                phase.receiving_any += 1;
            }
            if t.receiving >= expected_tracks {
                phase.receiving_all += 1;
            }
        }
        let grace_ms = GRACE.as_secs_f64() * 1e3;
        if phase.p(0.99).is_some_and(|p99| p99 > grace_ms) {
            // Packets still in flight when the window was counted: count again later, and
            // take the latency from every packet of the window that arrived by then.
            tokio::time::sleep(LATE_WAIT).await;
            let (mut delivered, mut latency) = (0, Histogram::default());
            for t in tallies() {
                delivered += t.delivered;
                latency.merge(&t.latency);
            }
            phase.late = Some(delivered.saturating_sub(phase.delivered));
            phase.latency = latency;
        }
        println!("{}", table(std::slice::from_ref(&phase)));
        Ok(phase)
    }
}

/// What every phase of one run measures against.
#[derive(Clone, Copy)]
struct Stage<'a> {
    server: &'a Server,
    shared: &'a crate::peer::Shared,
    publishers: &'a [Participant],
}

fn ms(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "–".into())
}

/// One row per phase.
pub fn table(phases: &[Phase]) -> String {
    let mut s = String::from(
        "| phase | subscribers | offered pkt/s | delivered pkt/s | loss % | of which late % | per-subscriber loss % min / median / p90 / max | subscribers receiving: any / every track | p50 ms | p99 ms | SFU core % | SFU run-queue wait % | SFU CPU µs / delivered pkt | server ingest % of sent | server queue drops pkt/s | generator core % |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for p in phases {
        let subscribers = if p.joins_failed > 0 {
            format!("{} ({} joins failed)", p.subscribers, p.joins_failed)
        } else {
            p.subscribers.to_string()
        };
        let spread = spread(&p.losses)
            .map(|s| {
                format!(
                    "{:.1} / {:.1} / {:.1} / {:.1}",
                    s.min * 100.0,
                    s.median * 100.0,
                    s.p90 * 100.0,
                    s.max * 100.0
                )
            })
            .unwrap_or_else(|| "–".into());
        let _ = writeln!(
            s,
            "| {} | {subscribers} | {:.0} | {:.0} | {:.2} | {} | {spread} | {} / {} | {} | {} | {:.0} | {:.0} | {:.2} | {} | {} | {:.0} |",
            p.kind.label(),
            p.offered_per_sec(),
            p.delivered_per_sec(),
            p.loss() * 100.0,
            p.late_share()
                .map(|v| format!("{:.2}", v * 100.0))
                .unwrap_or_else(|| "–".into()),
            p.receiving_any,
            p.receiving_all,
            ms(p.p(0.5)),
            ms(p.p(0.99)),
            p.cpu.sfu_core_share() * 100.0,
            p.cpu.sfu_wait_share() * 100.0,
            p.cpu_micros_per_delivered(),
            p.ingest_share()
                .map(|v| format!("{:.1}", v * 100.0))
                .unwrap_or_else(|| "–".into()),
            p.dropped_per_sec
                .map(|v| format!("{v:.0}"))
                .unwrap_or_else(|| "–".into()),
            p.cpu.generator_core_share() * 100.0,
        );
    }
    s
}

/// What the table says in words: the overload against phase 1's cost, and the recovery.
pub fn notes(phases: &[Phase]) -> String {
    let mut s = String::new();
    let find = |kind| phases.iter().find(|p| p.kind == kind);
    if let (Some(below), Some(overload)) = (find(PhaseKind::Below), find(PhaseKind::Overload)) {
        let micros = below.cpu_micros_per_delivered();
        if below.delivered > 0 && micros > 0.0 {
            let capacity = 1e6 / micros;
            let excess = excess_share(overload.offered_per_sec(), capacity);
            let _ = writeln!(
                s,
                "- overload: at phase 1's cost ({micros:.2} µs of server CPU per delivered packet) one core forwards ≈ {capacity:.0} pkt/s; phase 2 offers {:.0} pkt/s, {:.2} × that, an excess of ≈ {:.1} % (what graceful overload would lose, spread evenly). Phase 2 lost {:.1} % (per subscriber {}).",
                overload.offered_per_sec(),
                overload.offered_per_sec() / capacity,
                excess * 100.0,
                overload.loss() * 100.0,
                spread(&overload.losses)
                    .map(|s| format!("{:.1} – {:.1} %", s.min * 100.0, s.max * 100.0))
                    .unwrap_or_else(|| "–".into()),
            );
            if let Some(whole) = overload.dropped_whole_share() {
                let _ = writeln!(
                    s,
                    "- overload's loss, dropped whole: the server's drops × subscribers are {:.0} % of the packets lost in phase 2 (a packet dropped at the fan-out's queue costs nothing per subscriber; whatever is left was lost after work went into it, or on the way). Phase 2 cost {:.2} µs of server CPU per delivered packet against phase 1's {micros:.2}.",
                    whole * 100.0,
                    overload.cpu_micros_per_delivered(),
                );
            }
        }
    }
    for p in phases {
        if let Some(why) = generator_bound(&p.cpu) {
            let _ = writeln!(s, "- phase {}: {why}.", p.kind.label());
        }
    }
    if let Some(recovered) = find(PhaseKind::Recovered) {
        let _ = writeln!(
            s,
            "- recovered: {} of the {} subscribers that stayed received packets in phase 3's window ({} on every track); its loss figures cover only them.",
            recovered.receiving_any, recovered.subscribers, recovered.receiving_all,
        );
        if let Some(below) = find(PhaseKind::Below) {
            let _ = writeln!(
                s,
                "- phase 3 against phase 1 (same subscribers): delivered {:.0} vs {:.0} pkt/s, loss {:.2} vs {:.2} %, p99 {} vs {} ms.",
                recovered.delivered_per_sec(),
                below.delivered_per_sec(),
                recovered.loss() * 100.0,
                below.loss() * 100.0,
                ms(recovered.p(0.99)),
                ms(below.p(0.99)),
            );
        }
    }
    let _ = writeln!(
        s,
        "- offered: packets the publisher stamped in the window × subscribers. Loss: of those, not received by {GRACE:?} after the window closed (a subscriber's tracks that never came up count as lost); where the p99 latency is beyond that, the packets are counted again {LATE_WAIT:?} later: \"of which late\" is what arrived meanwhile, and the latency percentiles include it. Server ingest: `roomcast_received_packets_total` from `/metrics` over the window against what the publisher sent (the server adds to it about once a second per stream, so ± 1 s of packets); queue drops: `roomcast_dropped_packets_total`."
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_interpolates_between_ranks() {
        assert_eq!(spread(&[]), None);
        assert_eq!(
            spread(&[0.3]),
            Some(Spread {
                min: 0.3,
                median: 0.3,
                p90: 0.3,
                max: 0.3
            })
        );
        // Unsorted, even count: the median is between the middle two.
        let s = spread(&[0.4, 0.0, 0.2, 0.1]).unwrap();
        assert_eq!((s.min, s.max), (0.0, 0.4));
        assert!((s.median - 0.15).abs() < 1e-12, "{s:?}");
        // p90 of 4 values: position 2.7, between 0.2 and 0.4.
        assert!((s.p90 - 0.34).abs() < 1e-12, "{s:?}");
        let ramp: Vec<f64> = (0..=100).map(f64::from).collect();
        let s = spread(&ramp).unwrap();
        assert_eq!((s.min, s.median, s.p90, s.max), (0.0, 50.0, 90.0, 100.0));
        // A NaN (no figure) is left out rather than sorted somewhere.
        assert_eq!(spread(&[f64::NAN, 1.0]).unwrap().median, 1.0);
    }

    #[test]
    fn loss_is_what_was_not_delivered() {
        assert_eq!(loss(0, 0), 1.0);
        assert_eq!(loss(75, 100), 0.25);
        assert_eq!(loss(120, 100), 0.0);
    }

    #[test]
    fn excess_is_the_share_beyond_capacity() {
        assert_eq!(excess_share(80.0, 100.0), 0.0);
        assert_eq!(excess_share(100.0, 100.0), 0.0);
        assert!((excess_share(130.0, 100.0) - 0.3 / 1.3).abs() < 1e-12);
        assert_eq!(excess_share(10.0, 0.0), 0.0);
    }

    fn phase(kind: PhaseKind, subscribers: usize, sent: u64, delivered: u64) -> Phase {
        Phase {
            kind,
            subscribers,
            joins_failed: 0,
            cpu: CpuUse {
                window_secs: 10.0,
                sfu_cpu_micros: 5_000_000,
                sfu_wait_micros: 0,
                generator_cpu_micros: 4_000_000,
            },
            sent,
            delivered,
            late: None,
            expected: sent * subscribers as u64,
            latency: Histogram::default(),
            losses: vec![0.0; subscribers],
            receiving_any: subscribers,
            receiving_all: subscribers,
            ingest_per_sec: Some(210.0),
            dropped_per_sec: None,
        }
    }

    #[test]
    fn a_phase_reports_offered_and_delivered_rates() {
        let p = phase(PhaseKind::Overload, 600, 2_160, 1_000_000);
        assert_eq!(p.offered_per_sec(), 129_600.0);
        assert_eq!(p.delivered_per_sec(), 100_000.0);
        assert!((p.loss() - (1.0 - 1_000_000.0 / 1_296_000.0)).abs() < 1e-12);
        assert_eq!(p.cpu.sfu_core_share(), 0.5);
        assert_eq!(p.cpu_micros_per_delivered(), 5.0);
        assert!((p.ingest_share().unwrap() - 210.0 / 216.0).abs() < 1e-12);
        let t = table(std::slice::from_ref(&p));
        assert!(
            t.contains("| 2 overload | 600 | 129600 | 100000 | 22.84 | – |"),
            "{t}"
        );
        assert!(t.contains("| 97.2 | – | 40 |"), "{t}");
        let below = phase(PhaseKind::Below, 400, 2_160, 864_000);
        let n = notes(&[below, p]);
        // 400 × 2,160 packets at 5 s of CPU: 5.79 µs each, ≈ 172,800 pkt/s per core.
        assert!(n.contains("≈ 172800 pkt/s"), "{n}");
        assert!(
            !n.contains("dropped whole"),
            "no drop counter, no claim: {n}"
        );
    }

    #[test]
    fn overload_loss_is_compared_with_the_packets_dropped_whole() {
        // 29,600 pkt/s offered and not delivered; 40 publisher packets a second dropped for
        // 600 subscribers each are 24,000 of them.
        let mut overload = phase(PhaseKind::Overload, 600, 2_160, 1_000_000);
        overload.dropped_per_sec = Some(40.0);
        assert!((overload.dropped_whole_share().unwrap() - 24_000.0 / 29_600.0).abs() < 1e-12);
        let below = phase(PhaseKind::Below, 400, 2_160, 864_000);
        let n = notes(&[below, overload]);
        assert!(n.contains("are 81 % of the packets lost in phase 2"), "{n}");
        assert!(n.contains("Phase 2 cost 5.00 µs"), "{n}");
        // Nothing lost: no share to speak of.
        let mut full = phase(PhaseKind::Overload, 600, 2_160, 1_296_000);
        full.dropped_per_sec = Some(0.0);
        assert_eq!(full.dropped_whole_share(), None);
    }
}
