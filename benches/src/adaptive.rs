//! Scenarios for per-subscriber adaptive media, with one simulcast publisher:
//!
//! - **Layer switch** ([`Bench::layer_switch`]): subscribers receiving the top layer ask for
//!   another one with `track_settings` (a small tile, the full tile again, hide and show), and
//!   each switch is timed from the request leaving the generator to the first packet of the new
//!   layer's keyframe arriving.
//! - **Mixed room** ([`Bench::mixed_room`]): some subscribers' downlinks are policed with
//!   iptables, every subscriber sends congestion feedback as a browser does, and each group's
//!   frame rate, layer, loss and time to settle are reported.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::future::join_all;
use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};

use crate::admin;
use crate::clock::now_micros;
use crate::histogram::Histogram;
use crate::layers::{Counters, VideoLog};
use crate::media::LAYERS;
use crate::peer::{FactoryOptions, Participant, PeerFactory, Role, Shared};
use crate::police::{self, Policer};
use crate::scenario::{close_all, Bench};
use crate::sfu_process::SfuProcess;

const ROOM: &str = "bench-0";
const TOP: u8 = (LAYERS.len() - 1) as u8;
const JOIN_PARALLELISM: usize = 8;
/// How long a down or up switch may take before it counts as timed out.
const SWITCH_TIMEOUT_SECS: u64 = 8;

/// Layer-switch run parameters.
#[derive(Clone, Copy, Debug)]
pub struct SwitchConfig {
    pub subscribers: usize,
    /// How long subscribers keep switching.
    pub duration: Duration,
}

/// Switch times of one kind, in microseconds.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    pub times: Histogram,
    /// Switches whose keyframe had not arrived within the timeout.
    pub timeouts: u64,
    /// Of the switches that completed, those whose keyframe answered a keyframe request (the
    /// rest landed on the publisher's periodic keyframe).
    pub requested: u64,
}

impl Samples {
    fn add(&mut self, outcome: Option<(u64, bool)>) {
        match outcome {
            Some((micros, requested)) => {
                self.times.record(micros);
                self.requested += u64::from(requested);
            }
            None => self.timeouts += 1,
        }
    }

    fn merge(&mut self, other: &Samples) {
        self.times.merge(&other.times);
        self.timeouts += other.timeouts;
        self.requested += other.requested;
    }

    pub fn ms(&self, q: f64) -> Option<f64> {
        self.times.quantile(q).map(|v| v as f64 / 1000.0)
    }
}

#[derive(Clone, Debug, Default)]
pub struct SwitchResult {
    pub subscribers: usize,
    pub seconds: f64,
    /// The publication's layers as the server's admin API reports them.
    pub server_layers: Vec<(String, u64, u64, u64)>,
    /// Tile 1280×720 → 320×180: top layer → lowest layer.
    pub down: Samples,
    /// Tile 320×180 → 1280×720: lowest layer → the first keyframe of a higher layer.
    pub up_first: Samples,
    /// Tile 320×180 → 1280×720: lowest layer → top layer.
    pub up: Samples,
    /// `visible:false` → the last video packet.
    pub hide: Samples,
    /// `visible:true` (tile 1280×720) after a hide → the first keyframe of any layer.
    pub show: Samples,
    /// `visible:true` after a hide → the first keyframe of the top layer.
    pub show_top: Samples,
    /// Starts that were retried (see [`START_ATTEMPTS`]).
    pub failed_starts: Vec<String>,
}

/// Mixed-room run parameters.
#[derive(Clone, Copy, Debug)]
pub struct MixedConfig {
    pub subscribers: usize,
    pub policed: usize,
    /// The policed downlink, kbit/s.
    pub kbit: u32,
    pub duration: Duration,
    /// The final span the frame rate, layer and loss are read over.
    pub tail: Duration,
}

/// One subscriber of a mixed room.
#[derive(Clone, Debug)]
pub struct MixedSubscriber {
    pub policed: bool,
    /// Over the final [`MixedConfig::tail`].
    pub tail: Counters,
    /// Since policing started.
    pub whole: Counters,
    /// The size of the main layer's keyframes as received.
    pub size: Option<(u16, u16)>,
    /// Seconds from policing to the last change of layer (0 if none).
    pub settle_secs: f64,
    /// The layer did not change during the tail.
    pub settled: bool,
    pub layer_changes: usize,
    /// The admin API's view at the end: forwarded layer and downlink estimate.
    pub server_layer: Option<u64>,
    pub downlink_bps: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct MixedResult {
    pub config: MixedConfig,
    pub subscribers: Vec<MixedSubscriber>,
    /// Per second since policing: (seconds, subscriber index, forwarded layer, downlink bps).
    pub timeline: Vec<(f64, usize, Option<u64>, Option<u64>)>,
    /// Starts that were retried (see [`START_ATTEMPTS`]).
    pub failed_starts: Vec<String>,
}

/// How a switch went, each as (µs since the request, the keyframe answered a request).
struct Switched {
    /// The first keyframe of a layer other than the one flowing at the request.
    first: Option<(u64, bool)>,
    /// The first keyframe of the target layer.
    target: Option<(u64, bool)>,
}

/// Sends `track_settings` for `track` and waits for the first keyframe of `layer` that starts
/// arriving after the request, or `timeout`.
async fn switch(
    p: &Participant,
    log: &crate::window::Reception,
    settings: Value,
    layer: u8,
    timeout: Duration,
) -> Result<Switched> {
    let from = log.with_video(|v| v.layer).flatten();
    let t0 = now_micros();
    p.signal(settings)?;
    let deadline = t0 + timeout.as_micros() as u64;
    let mut first = None;
    loop {
        let (other, target) = log
            .with_video(|v| {
                let other = v
                    .keyframes
                    .iter()
                    .find(|(t, l, _)| *t >= t0 && Some(*l) != from)
                    .map(|(t, _, requested)| (t - t0, *requested));
                (other, v.keyframe_since(t0, Some(layer)))
            })
            .unwrap_or((None, None));
        if first.is_none() {
            first = other;
        }
        if let Some((t, requested)) = target {
            return Ok(Switched {
                first: first.or(Some((t - t0, requested))),
                target: Some((t - t0, requested)),
            });
        }
        if now_micros() > deadline {
            return Ok(Switched {
                first,
                target: None,
            });
        }
        // Arrival times are stamped by the receiver; polling only delays the next request.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn settings(track: &str, visible: bool, tile: Option<(u16, u16)>) -> Value {
    let mut m = json!({"type": "track_settings", "track": track, "visible": visible});
    if let Some((w, h)) = tile {
        m["width"] = json!(w);
        m["height"] = json!(h);
    }
    m
}

/// A small deterministic generator, for staggering subscribers without a dependency.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }
}

/// One subscriber's switching loop until `until`.
async fn keep_switching(p: &Participant, index: usize, until: Instant) -> Result<SwitchResult> {
    let mut r = SwitchResult::default();
    let Some(log) = p.video_receptions().into_iter().next() else {
        anyhow::bail!("subscriber {index} has no video track");
    };
    let track = log.track_id.clone();
    let small = Some((LAYERS[0].width, LAYERS[0].height));
    let full = Some((
        LAYERS[LAYERS.len() - 1].width,
        LAYERS[LAYERS.len() - 1].height,
    ));
    let timeout = Duration::from_secs(SWITCH_TIMEOUT_SECS);
    let mut rng = Lcg(index as u64 + 1);
    let pause = |rng: &mut Lcg| Duration::from_millis(150 + rng.below(400));
    tokio::time::sleep(Duration::from_millis(rng.below(1_000))).await;
    let mut round = 0u64;
    while Instant::now() < until {
        round += 1;
        // A down/up pair, then (every other round) a hide and show.
        for _ in 0..1 {
            let down = switch(p, &log, settings(&track, true, small), 0, timeout).await?;
            r.down.add(down.target);
            tokio::time::sleep(pause(&mut rng)).await;
            let up = switch(p, &log, settings(&track, true, full), TOP, timeout).await?;
            r.up_first.add(up.first);
            r.up.add(up.target);
            tokio::time::sleep(pause(&mut rng)).await;
        }
        if round.is_multiple_of(2) && Instant::now() < until {
            let t0 = now_micros();
            p.signal(settings(&track, false, None))?;
            tokio::time::sleep(Duration::from_millis(600)).await;
            let last = log.with_video(|v| v.last_arrival).unwrap_or(0);
            r.hide.add(Some((last.saturating_sub(t0), false)));
            let t1 = now_micros();
            p.signal(settings(&track, true, full))?;
            let climb_deadline = t1 + 15_000_000;
            let mut shown = None;
            let mut top = None;
            while now_micros() < climb_deadline && top.is_none() {
                tokio::time::sleep(Duration::from_millis(10)).await;
                let (any, best) = log
                    .with_video(|v| (v.keyframe_since(t1, None), v.keyframe_since(t1, Some(TOP))))
                    .unwrap_or((None, None));
                if shown.is_none() {
                    shown = any.map(|(t, req)| (t - t1, req));
                }
                top = best.map(|(t, req)| (t - t1, req));
            }
            r.show.add(shown);
            r.show_top.add(top);
            tokio::time::sleep(pause(&mut rng)).await;
        }
    }
    Ok(r)
}

/// Joins one simulcast publisher and `subscribers` subscribers made by `factory`.
async fn join_room(
    addr: SocketAddr,
    shared: &Arc<Shared>,
    factory: &Arc<PeerFactory>,
    subscribers: usize,
) -> Result<(Participant, Vec<Participant>)> {
    let publisher_factory = PeerFactory::with_options(FactoryOptions {
        simulcast: true,
        ..FactoryOptions::default()
    })?;
    let publisher = Participant::join(
        &publisher_factory,
        addr,
        ROOM,
        Role::SimulcastPublisher,
        shared,
    )
    .await
    .context("joining the simulcast publisher")?;
    let joins: Vec<Result<Participant>> = stream::iter(0..subscribers)
        .map(|_| {
            let factory = Arc::clone(factory);
            let shared = Arc::clone(shared);
            async move { Participant::join(&factory, addr, ROOM, Role::Subscriber, &shared).await }
        })
        .buffer_unordered(JOIN_PARALLELISM)
        .collect()
        .await;
    let mut subs = Vec::new();
    for j in joins {
        subs.push(j.context("joining a subscriber")?);
    }
    Ok((publisher, subs))
}

/// Waits until every subscriber's video is on `layer` (any layer if `None`); false on timeout.
async fn wait_for_layer(subs: &[Participant], layer: Option<u8>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let ready = subs.iter().all(|p| {
            p.video_receptions().first().is_some_and(|r| {
                r.with_video(|v| v.packets > 0 && layer.is_none_or(|l| v.layer == Some(l)))
                    .unwrap_or(false)
            })
        });
        if ready {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// A room whose simulcast publisher the server ingests on every layer, and whose subscribers
/// all receive the top layer.
struct Room {
    server: SfuProcess,
    publisher: Participant,
    subs: Vec<Participant>,
    /// The publication's layers as the admin API reports them.
    server_layers: Vec<(String, u64, u64, u64)>,
    /// Earlier starts that never got there (see [`START_ATTEMPTS`]).
    failed_starts: Vec<String>,
}

impl Room {
    async fn close(self) {
        let mut all = self.subs;
        all.push(self.publisher);
        close_all(all).await;
        self.server.stop().await;
    }
}

/// Starts of a simulcast room tried before giving up. Some starts used to never get going: the
/// server registered one or two of the three layers and then received no video at all (see
/// docs/benchmarks.md, "Simulcast"); such a start is retried with a fresh server and counted.
pub const START_ATTEMPTS: usize = 4;
const START_TIMEOUT: Duration = Duration::from_secs(15);

impl Bench {
    /// Starts a server, joins the simulcast publisher and `subscribers` subscribers, and waits
    /// until each receives the top layer; retries a start that does not get there.
    async fn start_room(&self, subscribers: usize, options: FactoryOptions) -> Result<Room> {
        let mut failed_starts = Vec::new();
        for _ in 0..START_ATTEMPTS {
            match self.try_start(subscribers, options).await? {
                Ok(room) => {
                    println!(
                        "server sees the publication's layers (rid, bps, width, height): {:?}",
                        room.server_layers
                    );
                    return Ok(Room {
                        failed_starts,
                        ..room
                    });
                }
                Err(why) => {
                    println!("a start failed, retrying with a fresh server: {why}");
                    failed_starts.push(why);
                }
            }
        }
        anyhow::bail!(
            "{START_ATTEMPTS} starts in a row failed: {}",
            failed_starts.join("; ")
        )
    }

    /// One start: a fresh server, the publisher and the subscribers, until each receives the
    /// top layer; `Ok(Err(why))` when they do not get there in time.
    async fn try_start(
        &self,
        subscribers: usize,
        options: FactoryOptions,
    ) -> Result<std::result::Result<Room, String>> {
        let server = SfuProcess::start(&self.binary, self.sfu_core, subscribers + 1).await?;
        let shared = Arc::new(Shared::default());
        let factory = Arc::new(PeerFactory::with_options(options)?);
        let (publisher, subs) = match join_room(server.addr, &shared, &factory, subscribers).await {
            Ok(joined) => joined,
            Err(e) => {
                server.stop().await;
                return Err(e);
            }
        };
        let timeout = START_TIMEOUT + Duration::from_millis(50) * subscribers as u32;
        let ready = wait_for_layer(&subs, Some(TOP), timeout).await;
        let server_layers = match admin::room(server.addr, ROOM).await {
            Ok(room) => admin::participant(&room, &publisher.id)
                .map(admin::published_layers)
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let room = Room {
            server,
            publisher,
            subs,
            server_layers,
            failed_starts: Vec::new(),
        };
        if ready {
            return Ok(Ok(room));
        }
        let why = format!(
            "not every subscriber received the top layer within {timeout:?}; the server saw the layers {:?}",
            room.server_layers
        );
        room.close().await;
        Ok(Err(why))
    }

    /// The smoke check `quick` runs: `starts` fresh simulcast rooms in a row, each of which must
    /// get the top layer to its one subscriber at the first try. Starts used to stall (the
    /// server's simulcast ingest blocked behind a layer's RTCP read, fixed in
    /// `RemoteTrack::drain_rtcp`) about one time in three.
    pub async fn simulcast_starts(&self, starts: usize) -> Result<()> {
        for start in 1..=starts {
            match self.try_start(1, FactoryOptions::default()).await? {
                Ok(room) => room.close().await,
                Err(why) => anyhow::bail!("simulcast start {start} of {starts}: {why}"),
            }
        }
        Ok(())
    }

    /// The layer-switch scenario against a fresh server.
    pub async fn layer_switch(&self, config: SwitchConfig) -> Result<SwitchResult> {
        let room = self
            .start_room(config.subscribers, FactoryOptions::default())
            .await?;
        tokio::time::sleep(self.warmup).await;
        let started = Instant::now();
        let until = started + config.duration;
        let runs = join_all(
            room.subs
                .iter()
                .enumerate()
                .map(|(i, p)| keep_switching(p, i, until)),
        )
        .await;
        let seconds = started.elapsed().as_secs_f64();
        let mut r = SwitchResult {
            subscribers: config.subscribers,
            seconds,
            server_layers: room.server_layers.clone(),
            failed_starts: room.failed_starts.clone(),
            ..SwitchResult::default()
        };
        room.close().await;
        for run in runs {
            let run = run?;
            r.down.merge(&run.down);
            r.up.merge(&run.up);
            r.up_first.merge(&run.up_first);
            r.hide.merge(&run.hide);
            r.show.merge(&run.show);
            r.show_top.merge(&run.show_top);
        }
        Ok(r)
    }

    /// The mixed-room scenario against a fresh server. Needs root for iptables.
    pub async fn mixed_room(&self, config: MixedConfig) -> Result<MixedResult> {
        let leftovers = police::remove_leftovers()?;
        if leftovers > 0 {
            println!("removed {leftovers} policing rule(s) an earlier run left behind");
        }
        let options = FactoryOptions {
            feedback: true,
            ..FactoryOptions::default()
        };
        let room = self.start_room(config.subscribers, options).await?;
        let outcome = async {
            tokio::time::sleep(self.warmup).await;
            let mut policer = Policer::default();
            for p in room.subs.iter().take(config.policed) {
                let port = p
                    .media_port()
                    .await
                    .context("a policed subscriber has no selected candidate pair")?;
                policer.police(port, config.kbit / 8)?;
            }
            let result = self
                .observe_mixed(room.server.addr, &room.subs, config)
                .await;
            policer.clear();
            result
        }
        .await;
        let failed_starts = room.failed_starts.clone();
        room.close().await;
        outcome.map(|r| MixedResult { failed_starts, ..r })
    }

    /// Watches a mixed room from the moment policing starts.
    async fn observe_mixed(
        &self,
        addr: SocketAddr,
        subs: &[Participant],
        config: MixedConfig,
    ) -> Result<MixedResult> {
        let logs: Vec<_> = subs
            .iter()
            .map(|p| p.video_receptions().into_iter().next())
            .collect::<Option<Vec<_>>>()
            .context("a subscriber without a video track")?;
        let snapshot = || logs.iter().map(|l| l.video()).collect::<Vec<VideoLog>>();
        let t0 = now_micros();
        let started = Instant::now();
        let at_start = snapshot();
        let tail_from = started + config.duration.saturating_sub(config.tail);
        let mut at_tail = None;
        let mut timeline = Vec::new();
        let mut last_room = Value::Null;
        while started.elapsed() < config.duration {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if at_tail.is_none() && Instant::now() >= tail_from {
                at_tail = Some(snapshot());
            }
            if let Ok(room) = admin::room(addr, ROOM).await {
                let secs = started.elapsed().as_secs_f64();
                for (i, p) in subs.iter().enumerate() {
                    let entry = admin::participant(&room, &p.id);
                    timeline.push((
                        secs,
                        i,
                        entry.and_then(admin::forwarded_video_layer),
                        entry.and_then(|e| e["downlink_bps"].as_u64()),
                    ));
                }
                last_room = room;
            }
        }
        let at_end = snapshot();
        let at_tail = at_tail.unwrap_or_else(|| at_start.clone());
        let tail_start = t0 + config.duration.saturating_sub(config.tail).as_micros() as u64;
        let subscribers = subs
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let end = &at_end[i];
                let tail = end.since(&at_tail[i]);
                let after: Vec<&(u64, u8)> = end.changes.iter().filter(|(t, _)| *t >= t0).collect();
                let last_change = after.last().map(|(t, _)| *t);
                let entry = admin::participant(&last_room, &p.id);
                MixedSubscriber {
                    policed: i < config.policed,
                    tail,
                    whole: end.since(&at_start[i]),
                    size: tail.main_layer().and_then(|l| end.sizes[usize::from(l)]),
                    settle_secs: last_change.map_or(0.0, |t| (t - t0) as f64 / 1e6),
                    settled: last_change.is_none_or(|t| t < tail_start),
                    layer_changes: after.len(),
                    server_layer: entry.and_then(admin::forwarded_video_layer),
                    downlink_bps: entry.and_then(|e| e["downlink_bps"].as_u64()),
                }
            })
            .collect();
        Ok(MixedResult {
            config,
            subscribers,
            timeline,
            failed_starts: Vec::new(),
        })
    }
}

fn ms(v: Option<f64>) -> String {
    v.map_or("–".to_owned(), |v| format!("{v:.1}"))
}

/// The layer-switch table.
pub fn switch_table(r: &SwitchResult) -> String {
    let mut t = String::from(
        "| switch | from → to | samples | p50 ms | p99 ms | max ms | answered a PLI | timeouts (8 s; show→top 15 s) |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    let rows: [(&str, &str, &Samples); 6] = [
        ("down (tile 320×180)", "f → q", &r.down),
        ("up (tile 1280×720), first step", "q → h or f", &r.up_first),
        ("up (tile 1280×720)", "q → f", &r.up),
        (
            "hide (`visible:false`)",
            "f → nothing: last packet",
            &r.hide,
        ),
        ("show (`visible:true`)", "nothing → first keyframe", &r.show),
        ("show, until the top layer", "nothing → f", &r.show_top),
    ];
    for (name, what, s) in rows {
        let n = s.times.count();
        let requested = if name.starts_with("hide") {
            "–".to_owned()
        } else {
            format!("{} / {n}", s.requested)
        };
        t.push_str(&format!(
            "| {name} | {what} | {n} | {} | {} | {} | {requested} | {} |\n",
            ms(s.ms(0.5)),
            ms(s.ms(0.99)),
            ms(s.ms(1.0)),
            s.timeouts
        ));
    }
    t
}

fn layer_name(layer: Option<u8>) -> String {
    match layer {
        Some(l) => LAYERS
            .get(usize::from(l))
            .map_or(format!("{l}"), |s| format!("{} ({l})", s.rid)),
        None => "none".to_owned(),
    }
}

/// The mixed room: one row per subscriber, then one per group.
pub fn mixed_tables(r: &MixedResult) -> String {
    let tail = r.config.tail.as_secs_f64();
    let mut t = String::from(
        "| subscriber | policed | layer (tail) | size | complete frames/s | decodable frames/s | loss % (tail) | loss % (whole run) | layer changes | settled after s | settled | server: layer, downlink kbit/s |\n| ---: | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |\n",
    );
    for (i, s) in r.subscribers.iter().enumerate() {
        t.push_str(&format!(
            "| {i} | {} | {} | {} | {:.1} | {:.1} | {:.2} | {:.2} | {} | {:.1} | {} | {}, {} |\n",
            if s.policed { "yes" } else { "no" },
            layer_name(s.tail.main_layer()),
            s.size.map_or("–".to_owned(), |(w, h)| format!("{w}×{h}")),
            s.tail.complete_frames as f64 / tail,
            s.tail.decodable_frames as f64 / tail,
            s.tail.loss() * 100.0,
            s.whole.loss() * 100.0,
            s.layer_changes,
            s.settle_secs,
            if s.settled { "yes" } else { "no" },
            s.server_layer
                .map_or("paused".to_owned(), |l| l.to_string()),
            s.downlink_bps
                .map_or("–".to_owned(), |b| format!("{:.0}", b as f64 / 1000.0)),
        ));
    }
    t.push_str("\n| group | subscribers | layers received (tail) | sizes | complete frames/s, mean (min–max) | decodable frames/s, mean (min–max) | loss % (tail), mean (max) | settled after s, max | all settled |\n| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | --- |\n");
    for policed in [true, false] {
        let group: Vec<&MixedSubscriber> = r
            .subscribers
            .iter()
            .filter(|s| s.policed == policed)
            .collect();
        if group.is_empty() {
            continue;
        }
        let stat = |f: &dyn Fn(&MixedSubscriber) -> f64| {
            let v: Vec<f64> = group.iter().map(|s| f(s)).collect();
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let min = v.iter().copied().fold(f64::INFINITY, f64::min);
            let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (mean, min, max)
        };
        let complete = stat(&|s| s.tail.complete_frames as f64 / tail);
        let decodable = stat(&|s| s.tail.decodable_frames as f64 / tail);
        let loss = stat(&|s| s.tail.loss() * 100.0);
        let settle = stat(&|s| s.settle_secs);
        let mut layers: Vec<String> = group
            .iter()
            .map(|s| layer_name(s.tail.main_layer()))
            .collect();
        layers.sort();
        layers.dedup();
        let mut sizes: Vec<String> = group
            .iter()
            .map(|s| s.size.map_or("–".to_owned(), |(w, h)| format!("{w}×{h}")))
            .collect();
        sizes.sort();
        sizes.dedup();
        t.push_str(&format!(
            "| {} ({} kbit/s) | {} | {} | {} | {:.1} ({:.1}–{:.1}) | {:.1} ({:.1}–{:.1}) | {:.2} ({:.2}) | {:.1} | {} |\n",
            if policed { "policed" } else { "not policed" },
            if policed { r.config.kbit.to_string() } else { "∞".to_owned() },
            group.len(),
            layers.join(", "),
            sizes.join(", "),
            complete.0,
            complete.1,
            complete.2,
            decodable.0,
            decodable.1,
            decodable.2,
            loss.0,
            loss.2,
            settle.2,
            if group.iter().all(|s| s.settled) { "yes" } else { "no" },
        ));
    }
    t
}

/// The admin API's view over time, one line per second: each subscriber's forwarded layer and
/// downlink estimate (kbit/s).
pub fn mixed_timeline(r: &MixedResult) -> String {
    let mut out = String::from("seconds since policing: per subscriber `layer@downlink kbit/s` (policed first)\n\n```text\n");
    let mut secs: Vec<f64> = r.timeline.iter().map(|(s, ..)| *s).collect();
    secs.dedup();
    for s in secs {
        out.push_str(&format!("{s:5.1}"));
        for (_, i, layer, bps) in r.timeline.iter().filter(|(t, ..)| *t == s) {
            let sep = if *i == r.config.policed { " |" } else { "" };
            out.push_str(&format!(
                "{sep} {}@{}",
                layer.map_or("-".to_owned(), |l| l.to_string()),
                bps.map_or("?".to_owned(), |b| (b / 1000).to_string())
            ));
        }
        out.push('\n');
    }
    out.push_str("```\n");
    out
}
