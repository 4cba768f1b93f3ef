//! Behavioural specification of the estimator, mostly against a small simulated path: a
//! sender following the estimate, a bottleneck with a bounded queue, periodic feedback.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::bwe::overuse::Usage;
use crate::bwe::{BandwidthEstimator, EstimatorConfig, PacketResult};

const PACKET_BYTES: u32 = 1200;
const FEEDBACK_EVERY: Duration = Duration::from_millis(50);
/// Feedback reports what arrived this long before it reaches the server.
const FEEDBACK_DELAY: Duration = Duration::from_millis(20);
const PROPAGATION: Duration = Duration::from_millis(20);
/// The subscriber's clock has its own origin; only differences may matter.
const REMOTE_ORIGIN: Duration = Duration::from_secs(1234);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn estimator(initial_bps: u64) -> BandwidthEstimator {
    BandwidthEstimator::new(EstimatorConfig {
        initial_bps,
        ..EstimatorConfig::default()
    })
}

/// A bottleneck that serialises packets at `bps` behind a queue of at most `max_queue`.
struct Link {
    bps: f64,
    busy_until: Duration,
    max_queue: Duration,
}

impl Link {
    fn carry(&mut self, sent: Duration, bytes: u32) -> Option<Duration> {
        let start = self.busy_until.max(sent);
        if start - sent > self.max_queue {
            return None;
        }
        self.busy_until = start + Duration::from_secs_f64(f64::from(bytes) * 8.0 / self.bps);
        Some(self.busy_until + PROPAGATION)
    }
}

/// A policer (token bucket) in front of the subscriber: drops what exceeds `bps` beyond a
/// burst of `burst_bytes`, and never queues, so delay says nothing (iptables `hashlimit`).
struct Policer {
    bps: f64,
    burst_bytes: f64,
    tokens: f64,
    last: Duration,
}

impl Policer {
    fn new(bps: f64, burst_bytes: f64) -> Self {
        Policer {
            bps,
            burst_bytes,
            tokens: burst_bytes,
            last: Duration::ZERO,
        }
    }

    fn carry(&mut self, sent: Duration, bytes: u32) -> Option<Duration> {
        let elapsed = sent.saturating_sub(self.last).as_secs_f64();
        self.last = self.last.max(sent);
        self.tokens = (self.tokens + elapsed * self.bps / 8.0).min(self.burst_bytes);
        if self.tokens < f64::from(bytes) {
            return None;
        }
        self.tokens -= f64::from(bytes);
        Some(sent + PROPAGATION)
    }
}

/// Audio plus the largest simulcast layer (150 k, 500 k, 1.5 M) whose total fits 0.9 × the
/// estimate, the lowest when none does: what the allocator makes a subscriber receive.
fn layered(estimate_bps: f64) -> f64 {
    const AUDIO: f64 = 40_000.0;
    let layer = [1_500_000.0, 500_000.0]
        .into_iter()
        .find(|&l| l + AUDIO <= 0.9 * estimate_bps)
        .unwrap_or(150_000.0);
    layer + AUDIO
}

/// A sender pacing 1200-byte packets at min(estimate, demand) (or as `layered` when set);
/// optionally it probes at twice the estimate for 100 ms once per `probe_every`.
struct Sim {
    bwe: BandwidthEstimator,
    link: Link,
    policer: Option<Policer>,
    layered: bool,
    base: Instant,
    now: Duration,
    next_send: Duration,
    in_flight: VecDeque<(Duration, Option<Duration>)>,
    demand_bps: f64,
    probe_every: Option<Duration>,
}

impl Sim {
    fn new(initial_bps: u64, link_bps: f64, demand_bps: f64) -> Self {
        Sim {
            bwe: estimator(initial_bps),
            link: Link {
                bps: link_bps,
                busy_until: Duration::ZERO,
                max_queue: ms(500),
            },
            policer: None,
            layered: false,
            base: Instant::now(),
            now: Duration::ZERO,
            next_send: Duration::ZERO,
            in_flight: VecDeque::new(),
            demand_bps,
            probe_every: None,
        }
    }

    fn send_rate(&mut self) -> f64 {
        let estimate = self.bwe.estimate_bps() as f64;
        let media = if self.layered {
            layered(estimate)
        } else {
            estimate.min(self.demand_bps)
        };
        let Some(every) = self.probe_every else {
            return media;
        };
        if self.next_send.as_nanos() % every.as_nanos() >= ms(100).as_nanos() {
            return media;
        }
        let probe = 2.0 * estimate;
        self.bwe.on_probe(self.base + self.next_send, probe as u64);
        probe
    }

    fn step(&mut self) {
        let end = self.now + FEEDBACK_EVERY;
        while self.next_send < end {
            let rate = self.send_rate();
            let arrival = match &mut self.policer {
                Some(policer) => policer.carry(self.next_send, PACKET_BYTES),
                None => self.link.carry(self.next_send, PACKET_BYTES),
            };
            self.in_flight.push_back((self.next_send, arrival));
            self.next_send += Duration::from_secs_f64(f64::from(PACKET_BYTES) * 8.0 / rate);
        }
        self.now = end;
        let cutoff = end.saturating_sub(FEEDBACK_DELAY);
        let mut results = Vec::new();
        while let Some(&(sent, arrival)) = self.in_flight.front() {
            if sent > cutoff || arrival.is_some_and(|a| a > cutoff) {
                break;
            }
            self.in_flight.pop_front();
            results.push(PacketResult {
                sent_at: self.base + sent,
                size: PACKET_BYTES,
                arrived_at: arrival.map(|a| a + REMOTE_ORIGIN),
            });
        }
        self.bwe.on_transport_feedback(self.base + end, &results);
    }

    /// Runs for `d`, returning the estimates seen after each feedback.
    fn run(&mut self, d: Duration) -> Vec<u64> {
        let end = self.now + d;
        let mut seen = Vec::new();
        while self.now < end {
            self.step();
            seen.push(self.bwe.estimate_bps());
        }
        seen
    }

    /// Steps until `done` holds, returning the simulated time it took.
    fn time_until(
        &mut self,
        limit: Duration,
        done: impl Fn(&BandwidthEstimator) -> bool,
    ) -> Option<Duration> {
        let start = self.now;
        while self.now - start < limit {
            self.step();
            if done(&self.bwe) {
                return Some(self.now - start);
            }
        }
        None
    }
}

fn mean(xs: &[u64]) -> f64 {
    xs.iter().sum::<u64>() as f64 / xs.len() as f64
}

#[test]
fn a_link_with_headroom_lets_the_estimate_grow() {
    let mut sim = Sim::new(300_000, 10e6, 20e6);
    let seen = sim.run(Duration::from_secs(5));
    assert_eq!(sim.bwe.usage(), Usage::Normal);
    // 8 % per second for five seconds.
    let growth = *seen.last().unwrap() as f64 / 300_000.0;
    eprintln!("growth over 5 s: {growth:.3}");
    assert!((1.3..1.6).contains(&growth), "growth {growth}");
}

#[test]
fn an_app_limited_sender_cannot_inflate_the_estimate() {
    let mut sim = Sim::new(300_000, 10e6, 400_000.0);
    let (mut top, mut top_acked) = (0, 0);
    for _ in 0..600 {
        sim.step();
        top = top.max(sim.bwe.estimate_bps());
        top_acked = top_acked.max(sim.bwe.acked_bps().unwrap_or(0));
    }
    eprintln!("app-limited at 400 kbit/s: top estimate {top}, top acked {top_acked}");
    assert!(top > 500_000, "grew to {top}");
    // +1 bps: both sides are truncated to integers.
    assert!(
        top as f64 <= 1.5 * top_acked as f64 + 10_001.0,
        "{top} vs {top_acked}"
    );
}

#[test]
fn a_probe_lifts_the_app_limited_cap() {
    let mut sim = Sim::new(300_000, 10e6, 400_000.0);
    sim.run(Duration::from_secs(10));
    sim.probe_every = Some(Duration::from_secs(1));
    sim.run(Duration::from_secs(3));
    eprintln!("after 3 s of probing: {}", sim.bwe.estimate_bps());
    assert!(sim.bwe.estimate_bps() > 1_500_000);
}

#[test]
fn a_queue_behind_a_bottleneck_is_detected_and_cut_within_a_few_hundred_ms() {
    let mut sim = Sim::new(1_000_000, 500e3, 1e6);
    let detected = sim.time_until(Duration::from_secs(2), |b| b.usage() == Usage::Overusing);
    let detected = detected.expect("over-use detected");
    // A cut right after an increase waits up to one RTT (libwebrtc `TimeToReduceFurther`).
    let cut = sim.time_until(Duration::from_secs(1), |b| b.estimate_bps() < 900_000);
    let cut = detected + cut.expect("estimate cut");
    let acked = sim.bwe.acked_bps().expect("acked bitrate") as f64;
    let ratio = sim.bwe.estimate_bps() as f64 / acked;
    eprintln!(
        "over-use after {detected:?}, cut after {cut:?} to {} = {ratio:.3} x acked {acked}",
        sim.bwe.estimate_bps()
    );
    assert!(detected <= ms(600) && cut <= ms(800));
    assert!((0.8..=0.9).contains(&ratio), "ratio {ratio}");
}

#[test]
fn the_estimate_settles_near_the_bottleneck_capacity() {
    let mut sim = Sim::new(1_000_000, 500e3, 1e6);
    let seen = sim.run(Duration::from_secs(20));
    let tail = &seen[seen.len() / 2..];
    let (lo, hi) = (*tail.iter().min().unwrap(), *tail.iter().max().unwrap());
    eprintln!("settled: mean {:.0}, range {lo}..{hi}", mean(tail));
    assert!((350_000.0..=650_000.0).contains(&mean(tail)));
    assert!(lo >= 350_000 && hi <= 650_000);
}

fn climb_after_lifting(probe_every: Option<Duration>) -> Option<Duration> {
    let mut sim = Sim::new(1_000_000, 500e3, 2.5e6);
    sim.run(Duration::from_secs(20));
    sim.link.bps = 5e6;
    sim.probe_every = probe_every;
    let took = sim.time_until(Duration::from_secs(40), |b| b.estimate_bps() >= 2_500_000);
    eprintln!("climb back to 2.5 Mbit/s with probes every {probe_every:?}: {took:?}");
    took
}

#[test]
fn lifting_the_bottleneck_lets_the_estimate_climb_back_at_eight_percent_per_second() {
    // From ~0.5 to 2.5 Mbit/s at 8 %/s alone takes at least ln 5 / ln 1.08 = 20.9 s;
    // only probing can do better (next test). The full queue before the lift lost packets,
    // so growth first waits out what is left of the backoff after that loss (≤ 5 s).
    let took = climb_after_lifting(None).expect("climbed");
    assert!(took <= Duration::from_secs(26), "{took:?}");
}

#[test]
fn lifting_the_bottleneck_with_periodic_probes_climbs_back_within_20_s() {
    let took = climb_after_lifting(Some(Duration::from_secs(2))).expect("climbed");
    assert!(took <= Duration::from_secs(20), "{took:?}");
}

/// A subscriber receiving simulcast behind a 400 kbit/s policer, lifted after `lift_after`:
/// the estimates and the media rates after each feedback (every 50 ms).
fn policed_subscriber(secs: u64, lift_after: u64) -> (Vec<u64>, Vec<f64>) {
    let mut sim = Sim::new(5_000_000, 10e6, 0.0);
    sim.layered = true;
    sim.policer = Some(Policer::new(400e3, 50e3));
    let mut estimates = Vec::new();
    let mut rates = Vec::new();
    while sim.now < Duration::from_secs(secs) {
        if sim.now >= Duration::from_secs(lift_after) {
            sim.policer = None;
        }
        // What the allocator asks for: the top layer and audio, with its 10 % headroom.
        sim.bwe
            .try_rate(sim.base + sim.now, (1_540_000f64 / 0.9).ceil() as u64);
        sim.step();
        estimates.push(sim.bwe.estimate_bps());
        rates.push(layered(sim.bwe.estimate_bps() as f64));
    }
    (estimates, rates)
}

/// When (in seconds) the sender moved to a larger layer than before.
fn moves_up(rates: &[f64]) -> Vec<f64> {
    let up = rates.windows(2).enumerate().filter(|(_, w)| w[1] > w[0]);
    up.map(|(i, _)| (i + 1) as f64 * 0.05).collect()
}

#[test]
fn behind_a_policer_tries_past_the_loss_point_less_and_less_often() {
    let (estimates, rates) = policed_subscriber(150, 150);
    let trials = moves_up(&rates);
    let mut tail = estimates[estimates.len() / 2..].to_vec();
    tail.sort_unstable();
    let median = tail[tail.len() / 2] as f64;
    eprintln!("policed at 400 k: moves up at {trials:?} s; last 75 s median estimate {median}");
    assert!(trials.len() <= 5, "{trials:?}");
    let gaps: Vec<f64> = trials.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.windows(2).all(|g| g[1] > g[0]), "gaps grow: {gaps:?}");
    assert!((350_000.0..=600_000.0).contains(&median));
}

#[test]
fn after_a_policer_is_lifted_the_top_layer_comes_back() {
    let (_, rates) = policed_subscriber(70, 30);
    let top = rates
        .iter()
        .rposition(|&r| r < 1.5e6)
        .map(|i| (i + 1) as f64 * 0.05);
    eprintln!(
        "lifted at 30 s: top layer from {top:?} s on, moves up at {:?}",
        moves_up(&rates)
    );
    assert!(top.is_some_and(|t| t <= 30.0 + 25.0), "{top:?}");
}

/// Flat feedback: `n` packets 10 ms apart from `start`; counting packets from time zero,
/// every `lose_every`-th is lost.
fn flat_feedback(
    base: Instant,
    start: Duration,
    n: u32,
    lose_every: Option<u32>,
) -> Vec<PacketResult> {
    let first = (start.as_millis() / 10) as u32;
    (0..n)
        .map(|i| {
            let sent = start + ms(10) * i;
            let lost = lose_every.is_some_and(|k| (first + i) % k == k - 1);
            PacketResult {
                sent_at: base + sent,
                size: PACKET_BYTES,
                arrived_at: (!lost).then_some(sent + PROPAGATION),
            }
        })
        .collect()
}

/// Feeds 100 ms feedbacks for `secs`; returns the estimate after each.
fn feed_with_loss(
    bwe: &mut BandwidthEstimator,
    base: Instant,
    secs: u32,
    lose_every: Option<u32>,
) -> Vec<u64> {
    (0..secs * 10)
        .map(|i| {
            let start = ms(100) * i;
            let fb = flat_feedback(base, start, 10, lose_every);
            bwe.on_transport_feedback(base + start + ms(150), &fb);
            bwe.estimate_bps()
        })
        .collect()
}

#[test]
fn heavy_loss_in_feedback_cuts_the_rate_by_half_the_loss() {
    let base = Instant::now();
    let mut bwe = estimator(1_000_000);
    bwe.on_transport_feedback(base + ms(600), &flat_feedback(base, ms(0), 50, Some(5)));
    // 20 % lost → 51/256 → × (1 − 51/512).
    let expected = 1e6 * (512.0 - 51.0) / 512.0;
    assert!(
        (bwe.estimate_bps() as f64 - expected).abs() < 1_000.0,
        "{}",
        bwe.estimate_bps()
    );
}

#[test]
fn moderate_loss_holds_the_rate() {
    let base = Instant::now();
    let mut bwe = estimator(1_000_000);
    let seen = feed_with_loss(&mut bwe, base, 5, Some(20));
    assert!(seen.iter().all(|&e| e == 1_000_000), "{seen:?}");
}

#[test]
fn low_loss_lets_the_rate_grow() {
    let base = Instant::now();
    let mut bwe = estimator(300_000);
    let seen = feed_with_loss(&mut bwe, base, 5, Some(100));
    assert!(*seen.last().unwrap() > 400_000, "{seen:?}");
}

#[test]
fn receiver_reports_without_loss_grow_the_estimate_slowly() {
    let base = Instant::now();
    let mut bwe = estimator(1_000_000);
    for s in 0..10 {
        bwe.on_receiver_report(base + Duration::from_secs(s), 0);
    }
    let growth = bwe.estimate_bps() as f64 / 1e6;
    assert!((1.5..2.5).contains(&growth), "growth {growth}");
}

#[test]
fn receiver_reports_with_a_quarter_lost_drop_the_estimate() {
    let base = Instant::now();
    let mut bwe = estimator(1_000_000);
    let mut last = bwe.estimate_bps();
    for s in 0..5 {
        bwe.on_receiver_report(base + Duration::from_secs(s), 64);
        assert!(bwe.estimate_bps() < last);
        last = bwe.estimate_bps();
    }
    assert!(last < 600_000, "{last}");
}

fn assert_in_bounds(bwe: &BandwidthEstimator) {
    let c = EstimatorConfig::default();
    assert!((c.min_bps..=c.max_bps).contains(&bwe.estimate_bps()));
}

#[test]
fn empty_feedback_changes_nothing() {
    let base = Instant::now();
    let mut bwe = estimator(1_000_000);
    bwe.on_transport_feedback(base, &[]);
    assert_eq!(bwe.estimate_bps(), 1_000_000);
    assert_eq!(bwe.usage(), Usage::Normal);
    assert_eq!(bwe.acked_bps(), None);
}

#[test]
fn all_lost_feedback_only_lowers_the_estimate_within_bounds() {
    let base = Instant::now();
    let mut bwe = estimator(1_000_000);
    for i in 0..200 {
        let mut fb = flat_feedback(base, ms(100) * i, 10, Some(1));
        fb.iter_mut().for_each(|p| p.arrived_at = None);
        bwe.on_transport_feedback(base + ms(100) * i + ms(50), &fb);
        assert_in_bounds(&bwe);
    }
    assert_eq!(bwe.estimate_bps(), EstimatorConfig::default().min_bps);
}

#[test]
fn arrivals_going_backwards_are_survived() {
    let base = Instant::now();
    let mut bwe = estimator(1_000_000);
    for i in 0..100u32 {
        let mut fb = flat_feedback(base, ms(100) * i, 10, None);
        for (k, p) in fb.iter_mut().enumerate() {
            p.arrived_at = Some(Duration::from_secs(1000) - ms(u64::from(i) * 97 + k as u64 * 13));
        }
        bwe.on_transport_feedback(base + ms(100) * i + ms(50), &fb);
        assert_in_bounds(&bwe);
    }
}

#[test]
fn ten_minutes_without_feedback_are_survived() {
    let mut sim = Sim::new(1_000_000, 2e6, 1e6);
    sim.run(Duration::from_secs(5));
    let before = sim.bwe.estimate_bps();
    sim.now += Duration::from_secs(600);
    sim.next_send = sim.now;
    sim.link.busy_until = sim.now;
    let after = sim.run(Duration::from_secs(5));
    assert_in_bounds(&sim.bwe);
    assert!(
        *after.last().unwrap() >= before / 2,
        "{before} -> {after:?}"
    );
}

#[test]
fn duplicate_feedback_is_harmless() {
    let base = Instant::now();
    let mut bwe = estimator(1_000_000);
    for i in 0..50 {
        let fb = flat_feedback(base, ms(100) * i, 10, None);
        let now = base + ms(100) * i + ms(50);
        bwe.on_transport_feedback(now, &fb);
        bwe.on_transport_feedback(now, &fb);
        assert_in_bounds(&bwe);
    }
    assert_ne!(bwe.usage(), Usage::Overusing);
}

fn packet(base: Instant, sent: Duration, size: u32, arrived: Option<Duration>) -> PacketResult {
    PacketResult {
        sent_at: base + sent,
        size,
        arrived_at: arrived,
    }
}

#[test]
fn absurd_inputs_do_not_panic() {
    let base = Instant::now();
    let config = EstimatorConfig {
        initial_bps: u64::MAX,
        min_bps: 10,
        max_bps: 1,
    };
    let mut bwe = BandwidthEstimator::new(config);
    let weird = [
        packet(base, ms(0), 0, Some(Duration::MAX)),
        packet(base, ms(1), u32::MAX, Some(Duration::ZERO)),
        packet(base, ms(0), 0, Some(Duration::ZERO)),
        packet(base, Duration::from_secs(86_400), 1, Some(ms(1))),
    ];
    for i in 0..100 {
        bwe.on_probe(base, u64::MAX);
        bwe.on_transport_feedback(base + Duration::from_secs(i * 3600), &weird);
        bwe.on_transport_feedback(base, &weird);
        bwe.on_receiver_report(base, 255);
        assert_eq!(bwe.estimate_bps(), 10);
    }
    let mut bwe = estimator(1_000_000);
    for t in [5, 0, 5, 3, 86_400] {
        let now = base + Duration::from_secs(t);
        bwe.on_probe(now, 0);
        bwe.on_transport_feedback(now, &weird);
        if let Some(earlier) = base.checked_sub(Duration::from_secs(3)) {
            bwe.on_transport_feedback(earlier, &weird);
            bwe.on_receiver_report(earlier, 0);
        }
        assert_in_bounds(&bwe);
    }
}

#[test]
fn random_garbage_never_panics_or_leaves_bounds() {
    let base = Instant::now();
    let mut bwe = estimator(1_000_000);
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        seed >> 33
    };
    for _ in 0..5_000 {
        let now = base + ms(next() % 100_000);
        let feedback: Vec<_> = (0..next() % 40)
            .map(|_| {
                let arrived =
                    (next() % 4 != 0).then(|| Duration::from_micros(next() << (next() % 30)));
                packet(base, ms(next() % 100_000), (next() % 2000) as u32, arrived)
            })
            .collect();
        match next() % 3 {
            0 => bwe.on_transport_feedback(now, &feedback),
            1 => bwe.on_receiver_report(now, next() as u8),
            _ => bwe.on_probe(now, next() << (next() % 32)),
        }
        assert_in_bounds(&bwe);
    }
}
