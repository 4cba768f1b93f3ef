//! One measured step: start a fresh roomcast, join R rooms of P publishers and S subscribers,
//! wait until every forwarded track delivers, warm up, measure a bounded window, tear down.
//! Scenarios (`fanout`, `rooms`) are sequences of steps.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::stream::{self, StreamExt};

use crate::clock::now_micros;
use crate::histogram::Histogram;
use crate::janus;
use crate::janus_process::JanusProcess;
use crate::peer::{FactoryOptions, Participant, PeerFactory, Role, Shared};
use crate::proc_stats;
use crate::proc_stats::ProcSample;
use crate::sfu_process::SfuProcess;
use crate::window::{Kind, Reception, Sent};

/// Joins in flight at once: enough to fill a step quickly, few enough not to look like a storm.
const JOIN_PARALLELISM: usize = 8;
/// Time after the window closes for the last packets stamped in it to arrive.
pub(crate) const GRACE: Duration = Duration::from_millis(500);

/// Which server a step measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum System {
    Roomcast,
    /// Janus's videoroom plugin; fan-out shapes (one publisher per room) only.
    Janus,
}

impl System {
    pub fn label(self) -> &'static str {
        match self {
            System::Roomcast => "roomcast",
            System::Janus => "Janus",
        }
    }
}

pub(crate) enum Server {
    Roomcast(SfuProcess),
    Janus(JanusProcess),
}

impl Server {
    pub(crate) fn addr(&self) -> std::net::SocketAddr {
        match self {
            Server::Roomcast(s) => s.addr,
            Server::Janus(j) => j.addr,
        }
    }

    pub(crate) fn sample(&self) -> Result<ProcSample> {
        match self {
            Server::Roomcast(s) => s.sample(),
            Server::Janus(j) => j.sample(),
        }
    }

    pub(crate) async fn stop(self) {
        match self {
            Server::Roomcast(s) => s.stop().await,
            Server::Janus(j) => j.stop().await,
        }
    }
}

/// How to run steps.
#[derive(Clone, Debug)]
pub struct Bench {
    pub binary: PathBuf,
    /// Pin roomcast to this core (the generator pins itself to another).
    pub sfu_core: Option<usize>,
    pub warmup: Duration,
    pub measure: Duration,
    /// Pace publishers' video at this many bytes per second (see [`Shared`]).
    pub pacing_bytes_per_sec: Option<f64>,
    /// Publishers send three simulcast layers (see [`crate::simulcast`]) instead of one stream.
    pub simulcast: bool,
    /// Record every room (into this directory) from before the warm-up to the end of the step.
    pub record: Option<PathBuf>,
    /// Run roomcast with its UDP mux (`--udp-port`).
    pub udp_mux: bool,
    /// Subscribers decrypt one packet in this many and count the rest at their sockets (see
    /// [`crate::sampling`]); 1 decrypts every packet.
    pub sample: u32,
}

#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub rooms: usize,
    pub publishers: usize,
    /// Receive-only participants per room.
    pub subscribers: usize,
}

impl Shape {
    pub fn participants(&self) -> usize {
        self.rooms * (self.publishers + self.subscribers)
    }

    /// Forwarded tracks: each participant receives audio and video of every other publisher.
    pub fn forwarded_tracks(&self) -> usize {
        let per_room = self.subscribers * self.publishers * 2
            + self.publishers * self.publishers.saturating_sub(1) * 2;
        per_room * self.rooms
    }
}

/// What one step measured.
#[derive(Clone, Debug)]
pub struct StepResult {
    pub shape: Shape,
    /// Forwarded tracks that delivered at least one packet before the window, of those expected.
    pub live_tracks: usize,
    pub expected_tracks: usize,
    /// The server's and the generator's CPU over the window, and the window's length.
    pub cpu: CpuUse,
    /// Packets received in the window, over every forwarded track.
    pub delivered: u64,
    /// Of `expected`, the packets meant for tracks that came up (excludes failed joins).
    pub expected_live: u64,
    /// Packets the publishers sent in the window times the tracks that should carry them.
    pub expected: u64,
    pub latency: Histogram,
    pub sfu_rss_base: u64,
    pub sfu_rss: u64,
    pub sfu_anon_base: u64,
    pub sfu_anon: u64,
    pub join_secs: f64,
    /// Simulcast video packets received per layer over the whole step, every subscriber.
    pub video_layers: [u64; crate::media::LAYERS.len()],
    /// Subscribers decrypted one packet in this many (1: all of them).
    pub sample: u32,
    /// With sampling: what the sampling sockets saw over the whole step.
    pub sampled: Option<SampledCounts>,
}

/// The CPU time the server and the load generator used over one measurement window, and the
/// figures derived from it.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuUse {
    /// The window's length in seconds.
    pub window_secs: f64,
    /// CPU time the server's threads used in the window (user and system), in microseconds.
    pub sfu_cpu_micros: u64,
    /// Time the server's threads were runnable but not running (another process had its core),
    /// in microseconds.
    pub sfu_wait_micros: u64,
    /// CPU time the load generator (this process) used in the window, in microseconds.
    pub generator_cpu_micros: u64,
}

impl CpuUse {
    /// `micros` as a share of one core over the window (an empty window counts as 1 ns).
    fn core_share(&self, micros: u64) -> f64 {
        micros as f64 / 1e6 / self.window_secs.max(1e-9)
    }

    /// Share of one core the server used during the window.
    pub fn sfu_core_share(&self) -> f64 {
        self.core_share(self.sfu_cpu_micros)
    }

    /// Share of the window the server spent runnable but waiting for its core.
    pub fn sfu_wait_share(&self) -> f64 {
        self.core_share(self.sfu_wait_micros)
    }

    /// Share of one core the load generator used during the window.
    pub fn generator_core_share(&self) -> f64 {
        self.core_share(self.generator_cpu_micros)
    }

    /// The server's CPU microseconds per one of `count` (packets, say; at least one).
    pub fn sfu_micros_per(&self, count: u64) -> f64 {
        self.sfu_cpu_micros as f64 / count.max(1) as f64
    }
}

/// What sampling subscribers' sockets counted over a whole step, besides the window's figures.
#[derive(Clone, Copy, Debug, Default)]
pub struct SampledCounts {
    /// RTP packets counted at the sockets, every forwarded track.
    pub received: u64,
    /// Packets missing between each track's first and highest sequence number, as an RTCP
    /// receiver report counts them: a cross-check of the window's loss, which it does not feed.
    pub lost: u64,
    /// RTCP packets the subscribers sent: 0, or skipped packets could have caused reports.
    pub rtcp_sent: u64,
}

impl StepResult {
    pub fn loss(&self) -> f64 {
        if self.expected == 0 {
            return 1.0;
        }
        1.0 - (self.delivered as f64 / self.expected as f64).min(1.0)
    }

    /// Loss on the forwarded tracks that came up: forwarding loss, without failed connections.
    pub fn live_loss(&self) -> f64 {
        if self.expected_live == 0 {
            return 1.0;
        }
        1.0 - (self.delivered as f64 / self.expected_live as f64).min(1.0)
    }

    /// Share of expected forwarded tracks that never delivered a packet.
    pub fn failed_track_share(&self) -> f64 {
        1.0 - self.live_tracks as f64 / self.expected_tracks.max(1) as f64
    }

    pub fn delivered_per_sec(&self) -> f64 {
        self.delivered as f64 / self.cpu.window_secs
    }

    pub fn cpu_micros_per_packet(&self) -> f64 {
        self.cpu.sfu_micros_per(self.delivered)
    }

    pub fn rss_per_participant(&self) -> f64 {
        self.sfu_rss.saturating_sub(self.sfu_rss_base) as f64
            / self.shape.participants().max(1) as f64
    }

    /// Like [`Self::rss_per_participant`], counting only memory not backed by a file: what the
    /// participants cost, without the code pages their first packets page in once.
    pub fn anon_per_participant(&self) -> f64 {
        self.sfu_anon.saturating_sub(self.sfu_anon_base) as f64
            / self.shape.participants().max(1) as f64
    }

    pub fn p(&self, q: f64) -> Option<f64> {
        self.latency.quantile(q).map(|v| v as f64 / 1000.0)
    }
}

/// Says what a recorded step wrote (so a run shows that video was recorded, not only audio),
/// then removes it.
pub(crate) fn report_recordings(dir: &Path) {
    let files: Vec<(String, u64)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "webm"))
                .map(|e| {
                    let size = e.metadata().map_or(0, |m| m.len());
                    (e.file_name().to_string_lossy().into_owned(), size)
                })
                .collect()
        })
        .unwrap_or_default();
    let bytes: u64 = files.iter().map(|f| f.1).sum();
    eprintln!(
        "  recorded {} files, {:.1} MB in all",
        files.len(),
        bytes as f64 / 1e6
    );
    let _ = std::fs::remove_dir_all(dir);
}

impl Bench {
    /// Runs one step against a fresh server process.
    pub async fn step(&self, system: System, shape: Shape) -> Result<StepResult> {
        anyhow::ensure!(
            system != System::Janus || shape.publishers == 1,
            "the Janus driver does fan-out shapes only (one publisher per room)"
        );
        let server = self
            .start_server(system, shape.publishers + shape.subscribers)
            .await?;
        let result = self.step_on(&server, shape).await;
        server.stop().await;
        if let Some(dir) = &self.record {
            report_recordings(dir);
        }
        result
    }

    /// A fresh server process with rooms of `capacity` participants, as this bench runs it.
    pub(crate) async fn start_server(&self, system: System, capacity: usize) -> Result<Server> {
        Ok(match system {
            System::Roomcast => {
                let mut extra = match &self.record {
                    Some(dir) => vec!["--recordings-dir".to_owned(), dir.display().to_string()],
                    None => Vec::new(),
                };
                if self.udp_mux {
                    let port = std::net::UdpSocket::bind("0.0.0.0:0")?.local_addr()?.port();
                    extra.extend(["--udp-port".to_owned(), port.to_string()]);
                }
                Server::Roomcast(
                    SfuProcess::start_with(&self.binary, self.sfu_core, capacity, &extra).await?,
                )
            }
            System::Janus => {
                anyhow::ensure!(!self.simulcast, "the Janus driver sends no simulcast");
                Server::Janus(JanusProcess::start(self.sfu_core).await?)
            }
        })
    }

    /// The peer factories a step's participants come from.
    pub(crate) fn factories(&self) -> Result<Factories> {
        let plain = Arc::new(PeerFactory::new()?);
        anyhow::ensure!(
            self.sample <= 1 || !self.simulcast,
            "sampling needs one stream per track: a simulcast layer switch renumbers it"
        );
        let subscriber = if self.sample > 1 {
            let options = FactoryOptions {
                sample: self.sample,
                ..FactoryOptions::default()
            };
            Arc::new(PeerFactory::with_options(options)?)
        } else {
            Arc::clone(&plain)
        };
        // Subscribers keep the lean factory either way, so only the publisher differs.
        let (publisher, publisher_role) = if self.simulcast {
            let options = FactoryOptions {
                simulcast: true,
                ..FactoryOptions::default()
            };
            (
                Arc::new(PeerFactory::with_options(options)?),
                Role::SimulcastPublisher,
            )
        } else {
            (Arc::clone(&plain), Role::Publisher)
        };
        Ok(Factories {
            plain,
            subscriber,
            publisher,
            publisher_role,
        })
    }

    /// What every participant of a step shares: the window and what was received.
    pub(crate) fn shared(&self) -> Arc<Shared> {
        Arc::new(Shared {
            pacing_bytes_per_sec: self.pacing_bytes_per_sec,
            ..Shared::default()
        })
    }

    /// Joins `shape`'s publishers, room by room; with them, per room, the id subscribers attach
    /// to (Janus needs the publisher's feed).
    pub(crate) async fn join_publishers(
        server: &Server,
        factories: &Factories,
        shared: &Arc<Shared>,
        shape: Shape,
    ) -> Result<(Vec<Participant>, Vec<String>)> {
        let mut participants = Vec::new();
        let mut feeds = Vec::new();
        for room in 0..shape.rooms {
            for i in 0..shape.publishers {
                let p = match server {
                    Server::Roomcast(s) => {
                        Participant::join(
                            &factories.publisher,
                            s.addr,
                            &format!("bench-{room}"),
                            factories.publisher_role,
                            shared,
                        )
                        .await
                    }
                    Server::Janus(j) => {
                        janus::join_publisher(
                            &factories.plain,
                            j.addr,
                            janus::room_id(room),
                            i == 0,
                            shared,
                        )
                        .await
                    }
                }
                .context("joining a publisher")?;
                if i == 0 {
                    feeds.push(p.id.clone());
                }
                participants.push(p);
            }
        }
        Ok((participants, feeds))
    }

    /// Joins one subscriber per entry of `rooms` (a room index), [`JOIN_PARALLELISM`] at a time;
    /// `feeds` as [`Bench::join_publishers`] gave them. With `until`, joins not done by then
    /// are abandoned (left out of the answer).
    pub(crate) async fn join_subscribers(
        server: &Server,
        factories: &Factories,
        shared: &Arc<Shared>,
        rooms: impl Iterator<Item = usize>,
        feeds: &[String],
        until: Option<Instant>,
    ) -> Vec<Result<Participant>> {
        let is_janus = matches!(server, Server::Janus(_));
        let addr = server.addr();
        stream::iter(rooms)
            .map(|room| {
                let factory = Arc::clone(&factories.subscriber);
                let shared = Arc::clone(shared);
                let feed = feeds.get(room).cloned().unwrap_or_default();
                async move {
                    if is_janus {
                        janus::join_subscriber(&factory, addr, janus::room_id(room), &feed, &shared)
                            .await
                    } else {
                        Participant::join(
                            &factory,
                            addr,
                            &format!("bench-{room}"),
                            Role::Subscriber,
                            &shared,
                        )
                        .await
                    }
                }
            })
            .buffer_unordered(JOIN_PARALLELISM)
            .take_until(async move {
                match until {
                    Some(until) => tokio::time::sleep_until(until.into()).await,
                    None => std::future::pending().await,
                }
            })
            .collect()
            .await
    }

    /// Measures one window on a running step: the server's and the generator's CPU around it,
    /// and a grace period after it for the last packets stamped in it. The window is cleared and
    /// the counts of any earlier window reset first, so the same participants can be measured
    /// window after window.
    pub(crate) async fn measure_window(
        &self,
        server: &Server,
        shared: &Shared,
        participants: &[Participant],
    ) -> Result<Measured> {
        shared.window.clear();
        for sent in participants.iter().filter_map(|p| p.sent.as_ref()) {
            sent.reset();
        }
        if let Ok(receptions) = shared.receptions.lock() {
            for r in receptions.iter() {
                r.reset_window();
            }
        }
        let me = std::process::id();
        let (sfu_before, generator_before) = (server.sample()?, proc_stats::sample(me)?);
        let t0 = now_micros();
        shared.window.open(t0);
        tokio::time::sleep(self.measure).await;
        let t1 = now_micros();
        shared.window.close(t1);
        let (sfu_after, generator_after) = (server.sample()?, proc_stats::sample(me)?);
        tokio::time::sleep(GRACE).await;
        Ok(Measured {
            window_secs: (t1 - t0) as f64 / 1e6,
            sfu_before,
            sfu_after,
            generator_before,
            generator_after,
        })
    }

    async fn step_on(&self, server: &Server, shape: Shape) -> Result<StepResult> {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let base = server.sample()?;
        let addr = server.addr();
        let factories = self.factories()?;
        let shared = self.shared();
        let joined_at = Instant::now();
        let (mut participants, feeds) =
            Self::join_publishers(server, &factories, &shared, shape).await?;
        let subscribers = (0..shape.rooms).flat_map(|r| (0..shape.subscribers).map(move |_| r));
        let joins =
            Self::join_subscribers(server, &factories, &shared, subscribers, &feeds, None).await;
        for j in joins {
            participants.push(j.context("joining a subscriber")?);
        }
        let expected_tracks = shape.forwarded_tracks();
        let deadline = Instant::now()
            + Duration::from_secs(30)
            + Duration::from_millis(50) * shape.participants() as u32;
        while shared.live_tracks() < expected_tracks && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let join_secs = joined_at.elapsed().as_secs_f64();
        let live_tracks = shared.live_tracks();
        if self.record.is_some() && matches!(server, Server::Roomcast(_)) {
            for room in 0..shape.rooms {
                crate::admin::start_recording(addr, &format!("bench-{room}")).await?;
            }
        }
        tokio::time::sleep(self.warmup).await;

        let m = self.measure_window(server, &shared, &participants).await?;

        let tally = tally(&participants, &shared, expected_tracks);
        let sampled = (self.sample > 1).then(|| sampled_counts(&participants, &shared));
        let mut video_layers = [0; crate::media::LAYERS.len()];
        if let Ok(receptions) = shared.receptions.lock() {
            for r in receptions.iter().filter(|r| r.kind == Kind::Video) {
                if let Some(per_layer) = r.with_video(|v| v.per_layer) {
                    for (sum, n) in video_layers.iter_mut().zip(per_layer) {
                        *sum += n;
                    }
                }
            }
        }
        close_all(participants).await;
        Ok(StepResult {
            shape,
            live_tracks,
            expected_tracks,
            cpu: m.cpu_use(),
            delivered: tally.delivered,
            expected: tally.expected,
            expected_live: tally.expected_live,
            latency: tally.latency,
            sfu_rss_base: base.rss_bytes,
            sfu_rss: m.sfu_after.rss_bytes,
            sfu_anon_base: base.anon_bytes,
            sfu_anon: m.sfu_after.anon_bytes,
            join_secs,
            video_layers,
            sample: self.sample.max(1),
            sampled,
        })
    }
}

/// The peer factories of a step (see [`Bench::factories`]).
pub(crate) struct Factories {
    /// The lean default: Janus's publishers, and subscribers when nothing is sampled.
    pub plain: Arc<PeerFactory>,
    pub subscriber: Arc<PeerFactory>,
    pub publisher: Arc<PeerFactory>,
    pub publisher_role: Role,
}

/// The process counters around one window ([`Bench::measure_window`]).
pub(crate) struct Measured {
    pub window_secs: f64,
    pub sfu_before: ProcSample,
    pub sfu_after: ProcSample,
    pub generator_before: ProcSample,
    pub generator_after: ProcSample,
}

impl Measured {
    /// The CPU the server and the generator used between the samples.
    pub fn cpu_use(&self) -> CpuUse {
        CpuUse {
            window_secs: self.window_secs,
            sfu_cpu_micros: self.sfu_after.cpu_micros - self.sfu_before.cpu_micros,
            sfu_wait_micros: self
                .sfu_after
                .runqueue_wait_micros
                .saturating_sub(self.sfu_before.runqueue_wait_micros),
            generator_cpu_micros: self.generator_after.cpu_micros
                - self.generator_before.cpu_micros,
        }
    }
}

/// What the sampling sockets counted over the step.
fn sampled_counts(participants: &[Participant], shared: &Shared) -> SampledCounts {
    let mut c = SampledCounts::default();
    for arrivals in participants.iter().filter_map(Participant::arrivals) {
        c.rtcp_sent += arrivals.rtcp_sent();
    }
    let receptions = shared
        .receptions
        .lock()
        .map(|r| r.clone())
        .unwrap_or_default();
    for r in receptions {
        if let Some((received, lost)) = r.socket_counts() {
            c.received += received;
            c.lost += lost;
        }
    }
    c
}

/// What the forwarded tracks delivered of what was sent in the window.
pub(crate) struct Tally {
    pub delivered: u64,
    /// Tracks that never appeared count as fully lost.
    pub expected: u64,
    /// Of `expected`, the packets meant for tracks that delivered anything.
    pub expected_live: u64,
    /// Tracks that delivered at least one of the window's packets.
    pub receiving: usize,
    pub latency: Histogram,
}

pub(crate) fn tally(
    participants: &[Participant],
    shared: &Shared,
    expected_tracks: usize,
) -> Tally {
    let receptions = shared
        .receptions
        .lock()
        .map(|r| r.clone())
        .unwrap_or_default();
    tally_receptions(&sent_by(participants), &receptions, expected_tracks)
}

/// What each publisher among `participants` sent in the window, by participant id.
pub(crate) fn sent_by(participants: &[Participant]) -> HashMap<String, Arc<Sent>> {
    participants
        .iter()
        .filter_map(|p| p.sent.as_ref().map(|s| (p.id.clone(), Arc::clone(s))))
        .collect()
}

/// [`tally`] over some receptions only (e.g. one subscriber's): `expected_tracks` of them were
/// due, and those that never appeared count as fully lost.
pub(crate) fn tally_receptions(
    sent: &HashMap<String, Arc<Sent>>,
    receptions: &[Arc<Reception>],
    expected_tracks: usize,
) -> Tally {
    let missing = expected_tracks.saturating_sub(receptions.len()) as u64;
    let per_track_sent: u64 = sent
        .values()
        .map(|s| s.get(Kind::Audio) + s.get(Kind::Video))
        .sum::<u64>()
        / (2 * sent.len().max(1)) as u64;
    let mut t = Tally {
        delivered: 0,
        expected: missing * per_track_sent,
        expected_live: 0,
        receiving: 0,
        latency: Histogram::default(),
    };
    for r in receptions {
        let summary = r.summary();
        let publisher = sent.get(&r.publisher).map(Arc::as_ref);
        let delivered = r.delivered(publisher);
        t.delivered += delivered;
        if delivered > 0 {
            t.receiving += 1;
        }
        let should = publisher.map(|s| s.get(r.kind)).unwrap_or(0);
        t.expected += should;
        if summary.total > 0 {
            t.expected_live += should;
        }
        t.latency.merge(&summary.latency);
    }
    t
}

/// Closes every participant, a few at a time, within a bounded time.
pub(crate) async fn close_all(participants: Vec<Participant>) {
    let closing = stream::iter(participants)
        .map(|p| p.close())
        .buffer_unordered(32)
        .collect::<Vec<()>>();
    let _ = tokio::time::timeout(Duration::from_secs(20), closing).await;
}

/// Where a step stopped a scenario, if it did.
pub fn stop_reason(r: &StepResult) -> Option<String> {
    if r.live_loss() > 0.01 {
        return Some(format!(
            "loss on connected tracks {:.2} % > 1 %",
            r.live_loss() * 100.0
        ));
    }
    if r.failed_track_share() > 0.05 {
        return Some(format!(
            "{:.1} % of forwarded tracks never came up",
            r.failed_track_share() * 100.0
        ));
    }
    if r.cpu.sfu_core_share() > 0.9 {
        return Some(format!(
            "SFU core {:.0} % busy",
            r.cpu.sfu_core_share() * 100.0
        ));
    }
    generator_bound(&r.cpu)
}

/// Every scenario stops once the generator's own core is the limit: past that point a figure
/// says more about the generator than about the server.
pub(crate) fn generator_bound(cpu: &CpuUse) -> Option<String> {
    let core_share = cpu.generator_core_share();
    (core_share > 0.9).then(|| {
        format!(
            "load generator's core {:.0} % busy: the generator, not the SFU, is the limit",
            core_share * 100.0
        )
    })
}

/// Checks the binary is where we expect it before any step starts.
pub fn check_binary(binary: &Path) -> Result<()> {
    anyhow::ensure!(
        binary.exists(),
        "no roomcast binary at {} (cargo build --release --bin roomcast)",
        binary.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_use_shares_are_of_one_core_over_the_window() {
        let cpu = CpuUse {
            window_secs: 10.0,
            sfu_cpu_micros: 5_000_000,
            sfu_wait_micros: 1_000_000,
            generator_cpu_micros: 9_500_000,
        };
        assert_eq!(cpu.sfu_core_share(), 0.5);
        assert_eq!(cpu.sfu_wait_share(), 0.1);
        assert_eq!(cpu.generator_core_share(), 0.95);
        assert_eq!(cpu.sfu_micros_per(1_000_000), 5.0);
        assert_eq!(cpu.sfu_micros_per(0), 5_000_000.0);
        assert!(generator_bound(&cpu).unwrap().contains("95 % busy"));
        // An empty window gives finite figures, not NaN or infinity.
        assert!(CpuUse::default().sfu_core_share().is_finite());
    }
}
