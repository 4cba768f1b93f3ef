//! The `join-storm` scenario: how many joins per second roomcast accepts while the rooms already
//! on it stay healthy.
//!
//! A step starts a fresh roomcast, fills `background_rooms` rooms of four publishing participants
//! and lets their media settle. Then joiners arrive at a fixed offered rate for a bounded time,
//! each a new WebRTC peer doing the whole join: WebSocket, `join`, offer/answer, ICE, DTLS. They
//! fill rooms of their own ([`STORM_ROOM_SIZE`] each) and stay until the step ends, as people do
//! when a meeting starts. A join counts as accepted when its PeerConnection is connected within
//! [`CONNECT_TIMEOUT`]. The background rooms' loss and latency are measured over the whole
//! storm, from the first joiner until the last one settled.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::task::JoinHandle;

use crate::clock::now_micros;
use crate::histogram::Histogram;
use crate::peer::{Participant, PeerFactory, Role, Shared};
use crate::proc_stats;
use crate::scenario::{close_all, generator_bound, tally, Bench, CpuUse, Measured, Shape};
use crate::sfu_process::SfuProcess;

/// Joiners per storm room.
pub const STORM_ROOM_SIZE: usize = 10;
/// A join that is not connected this long after it started has failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Publishers in each background room.
const BACKGROUND_ROOM_SIZE: usize = 4;

/// One storm: `rate` joins per second offered for `duration`.
#[derive(Clone, Copy, Debug)]
pub struct Storm {
    pub rate: f64,
    pub duration: Duration,
    pub background_rooms: usize,
}

impl Storm {
    fn attempts(&self) -> usize {
        (self.rate * self.duration.as_secs_f64()).round().max(1.0) as usize
    }

    fn background(&self) -> Shape {
        Shape {
            rooms: self.background_rooms,
            publishers: BACKGROUND_ROOM_SIZE,
            subscribers: 0,
        }
    }
}

/// How one joiner fared.
enum JoinOutcome {
    /// `joined` came back after `to_joined`, and the connection was up after `to_connected`.
    Connected {
        to_joined: Duration,
        to_connected: Duration,
    },
    /// The server refused the join (`full`, `error`) or signaling broke.
    Refused(String),
    /// Joined, but the connection failed or timed out.
    Failed(String),
}

/// What one storm measured.
#[derive(Clone, Debug)]
pub struct StormResult {
    pub storm: Storm,
    pub attempts: usize,
    pub connected: usize,
    pub refused: usize,
    pub failed: usize,
    /// The first few reasons joins did not succeed, for the log.
    pub reasons: Vec<String>,
    /// Micros from opening the WebSocket to `joined`, and to a connected PeerConnection.
    pub to_joined: Histogram,
    pub to_connected: Histogram,
    /// The server's and the generator's CPU from the first join until every joiner had
    /// settled (that is the window).
    pub cpu: CpuUse,
    pub background_delivered: u64,
    pub background_expected_live: u64,
    pub background_latency: Histogram,
    /// RSS before the storm and after it.
    pub rss_before: u64,
    pub rss_after: u64,
}

impl StormResult {
    /// Joins that ended connected (within [`CONNECT_TIMEOUT`]), per second of offered storm;
    /// how long they took is in the latency columns.
    pub fn accepted_per_sec(&self) -> f64 {
        self.connected as f64 / self.storm.duration.as_secs_f64().max(1e-9)
    }

    pub fn unsuccessful_share(&self) -> f64 {
        (self.refused + self.failed) as f64 / self.attempts.max(1) as f64
    }

    /// Loss on the background rooms' forwarded tracks during the storm.
    pub fn background_loss(&self) -> f64 {
        if self.background_expected_live == 0 {
            return 1.0;
        }
        1.0 - (self.background_delivered as f64 / self.background_expected_live as f64).min(1.0)
    }

    /// Server memory the storm added, per connected joiner.
    pub fn rss_per_joiner(&self) -> f64 {
        self.rss_after.saturating_sub(self.rss_before) as f64 / self.connected.max(1) as f64
    }
}

fn ms(h: &Histogram, q: f64) -> Option<f64> {
    h.quantile(q).map(|v| v as f64 / 1000.0)
}

impl StormResult {
    pub fn joined_ms(&self, q: f64) -> Option<f64> {
        ms(&self.to_joined, q)
    }

    pub fn connected_ms(&self, q: f64) -> Option<f64> {
        ms(&self.to_connected, q)
    }

    pub fn background_ms(&self, q: f64) -> Option<f64> {
        ms(&self.background_latency, q)
    }
}

impl Bench {
    /// Runs one storm against a fresh roomcast process.
    pub async fn storm(&self, storm: Storm) -> Result<StormResult> {
        let capacity = STORM_ROOM_SIZE.max(BACKGROUND_ROOM_SIZE);
        let server = SfuProcess::start(&self.binary, self.sfu_core, capacity).await?;
        let result = self.storm_on(&server, storm).await;
        server.stop().await;
        result
    }

    async fn storm_on(&self, server: &SfuProcess, storm: Storm) -> Result<StormResult> {
        let factory = Arc::new(PeerFactory::new()?);
        let shared = Arc::new(Shared {
            pacing_bytes_per_sec: self.pacing_bytes_per_sec,
            ..Shared::default()
        });
        let background = storm.background();
        let mut participants = Vec::new();
        for room in 0..background.rooms {
            for _ in 0..background.publishers {
                let room = format!("bench-{room}");
                let p = Participant::join(&factory, server.addr, &room, Role::Publisher, &shared)
                    .await
                    .context("joining a background publisher")?;
                participants.push(p);
            }
        }
        let expected_tracks = background.forwarded_tracks();
        let deadline = Instant::now() + Duration::from_secs(30);
        while shared.live_tracks() < expected_tracks && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(self.warmup).await;

        let me = std::process::id();
        let (s0, g0) = (server.sample()?, proc_stats::sample(me)?);
        let t0 = now_micros();
        shared.window.open(t0);
        let joins = launch_joiners(&factory, server.addr, &shared, storm).await;
        let mut result = StormResult {
            storm,
            attempts: joins.len(),
            connected: 0,
            refused: 0,
            failed: 0,
            reasons: Vec::new(),
            to_joined: Histogram::default(),
            to_connected: Histogram::default(),
            cpu: CpuUse::default(),
            background_delivered: 0,
            background_expected_live: 0,
            background_latency: Histogram::default(),
            rss_before: s0.rss_bytes,
            rss_after: 0,
        };
        for join in joins {
            let (outcome, joiner) = join.await.context("a joiner's task")?;
            result.record(outcome);
            participants.extend(joiner);
        }
        let t1 = now_micros();
        shared.window.close(t1);
        let (s1, g1) = (server.sample()?, proc_stats::sample(me)?);
        tokio::time::sleep(Duration::from_millis(500)).await;

        let background_tally = tally(&participants, &shared, expected_tracks);
        close_all(participants).await;
        result.cpu = Measured {
            window_secs: (t1 - t0) as f64 / 1e6,
            sfu_before: s0,
            sfu_after: s1,
            generator_before: g0,
            generator_after: g1,
        }
        .cpu_use();
        result.background_delivered = background_tally.delivered;
        result.background_expected_live = background_tally.expected_live;
        result.background_latency = background_tally.latency;
        result.rss_after = s1.rss_bytes;
        Ok(result)
    }
}

impl StormResult {
    fn record(&mut self, outcome: JoinOutcome) {
        let reason = match outcome {
            JoinOutcome::Connected {
                to_joined,
                to_connected,
            } => {
                self.connected += 1;
                self.to_joined.record(to_joined.as_micros() as u64);
                self.to_connected.record(to_connected.as_micros() as u64);
                return;
            }
            JoinOutcome::Refused(why) => {
                self.refused += 1;
                format!("refused: {why}")
            }
            JoinOutcome::Failed(why) => {
                self.failed += 1;
                format!("failed: {why}")
            }
        };
        if self.reasons.len() < 5 {
            self.reasons.push(reason);
        }
    }
}

type JoinTask = JoinHandle<(JoinOutcome, Option<Participant>)>;

/// Starts one joiner every 1/rate seconds; returns their tasks in order.
async fn launch_joiners(
    factory: &Arc<PeerFactory>,
    addr: std::net::SocketAddr,
    shared: &Arc<Shared>,
    storm: Storm,
) -> Vec<JoinTask> {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / storm.rate));
    // A late tick must not fire a burst: the offered rate is the rate.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tasks = Vec::with_capacity(storm.attempts());
    for i in 0..storm.attempts() {
        tick.tick().await;
        let room = format!("storm-{}", i / STORM_ROOM_SIZE);
        tasks.push(tokio::spawn(join_one(
            Arc::clone(factory),
            addr,
            room,
            Arc::clone(shared),
        )));
    }
    tasks
}

async fn join_one(
    factory: Arc<PeerFactory>,
    addr: std::net::SocketAddr,
    room: String,
    shared: Arc<Shared>,
) -> (JoinOutcome, Option<Participant>) {
    let started = Instant::now();
    let joiner = match Participant::join(&factory, addr, &room, Role::Subscriber, &shared).await {
        Ok(p) => p,
        Err(e) => return (JoinOutcome::Refused(format!("{e:#}")), None),
    };
    let to_joined = started.elapsed();
    let outcome = match joiner.connected(CONNECT_TIMEOUT).await {
        Ok(()) => JoinOutcome::Connected {
            to_joined,
            to_connected: started.elapsed(),
        },
        Err(e) => JoinOutcome::Failed(format!("{e:#}")),
    };
    (outcome, Some(joiner))
}

/// Where a storm stopped the scenario, if it did.
pub fn stop_reason(r: &StormResult) -> Option<String> {
    if r.unsuccessful_share() > 0.01 {
        return Some(format!(
            "{:.1} % of joins did not connect",
            r.unsuccessful_share() * 100.0
        ));
    }
    if r.connected_ms(0.5).is_some_and(|ms| ms > 1000.0) {
        return Some("half the joins took over a second to connect".into());
    }
    if r.background_loss() > 0.01 {
        return Some(format!(
            "the background rooms lost {:.2} %",
            r.background_loss() * 100.0
        ));
    }
    generator_bound(&r.cpu)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storm_of(attempts: usize) -> StormResult {
        let storm = Storm {
            rate: 10.0,
            duration: Duration::from_secs(5),
            background_rooms: 1,
        };
        StormResult {
            storm,
            attempts,
            connected: 0,
            refused: 0,
            failed: 0,
            reasons: Vec::new(),
            to_joined: Histogram::default(),
            to_connected: Histogram::default(),
            cpu: CpuUse {
                window_secs: 5.5,
                ..CpuUse::default()
            },
            background_delivered: 1_000,
            background_expected_live: 1_000,
            background_latency: Histogram::default(),
            rss_before: 0,
            rss_after: 0,
        }
    }

    fn connected_after(r: &mut StormResult, ms: u64) {
        r.record(JoinOutcome::Connected {
            to_joined: Duration::from_millis(1),
            to_connected: Duration::from_millis(ms),
        });
    }

    #[test]
    fn accepted_rate_counts_connected_joins_over_the_offered_duration() {
        let mut r = storm_of(50);
        for _ in 0..50 {
            connected_after(&mut r, 5);
        }
        assert_eq!(r.accepted_per_sec(), 10.0);
        assert_eq!(stop_reason(&r), None);
    }

    #[test]
    fn more_than_one_percent_of_joins_not_connecting_stops_the_storm() {
        let mut r = storm_of(100);
        for _ in 0..98 {
            connected_after(&mut r, 5);
        }
        r.record(JoinOutcome::Refused("join refused: server_full".into()));
        r.record(JoinOutcome::Failed("not connected within 10s".into()));
        assert_eq!((r.connected, r.refused, r.failed), (98, 1, 1));
        assert_eq!(r.reasons.len(), 2);
        assert!(stop_reason(&r).unwrap().contains("did not connect"));
    }

    #[test]
    fn slow_joins_stop_the_storm_even_when_all_connect() {
        let mut r = storm_of(10);
        for _ in 0..10 {
            connected_after(&mut r, 1_500);
        }
        assert!(stop_reason(&r).unwrap().contains("over a second"));
    }

    #[test]
    fn loss_in_the_background_rooms_stops_the_storm() {
        let mut r = storm_of(10);
        for _ in 0..10 {
            connected_after(&mut r, 5);
        }
        r.background_delivered = 980;
        assert!(stop_reason(&r)
            .unwrap()
            .contains("background rooms lost 2.00 %"));
    }
}
