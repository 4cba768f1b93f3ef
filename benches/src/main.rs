//! `roomcast-bench`: runs the fan-out benchmark and writes its tables and charts.
//!
//! ```text
//! roomcast-bench quick              # CI smoke run: 1 and 5 subscribers, 5 s each; fails on no delivery
//! roomcast-bench fanout             # 1 publisher → S subscribers, S stepping up until loss or saturation
//! roomcast-bench fanout-step        # one server taken past saturation and back: base → peak → base
//! roomcast-bench rooms              # R rooms of 4 participants, all publishing
//! roomcast-bench join-storm         # joins/s accepted while background rooms stay healthy
//! roomcast-bench floor              # only the physical floor
//! roomcast-bench simulcast          # fan-out with/without simulcast, layer switches, mixed room
//! roomcast-bench layer-switch       # only the layer-switch times
//! roomcast-bench mixed-room         # only the mixed room with policed subscribers (root)
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use roomcast_bench::adaptive::{self, MixedConfig, SwitchConfig};
use roomcast_bench::floor::{self, FloorResult, SendMode};
use roomcast_bench::janus_process;
use roomcast_bench::join_storm::{self, Storm, StormResult};
use roomcast_bench::netns;
use roomcast_bench::plot::{self, Series};
use roomcast_bench::report;
use roomcast_bench::saturation::{self, StepConfig};
use roomcast_bench::scenario::{self, Bench, Shape, StepResult, System};
use roomcast_bench::sfu_process;

#[derive(Parser)]
#[command(about = "roomcast fan-out benchmark: real WebRTC peers against the roomcast binary")]
struct Args {
    #[command(subcommand)]
    command: Cmd,
    /// The roomcast binary (default: next to this executable).
    #[arg(long, global = true)]
    roomcast: Option<PathBuf>,
    /// Do not pin roomcast to core 0 and the generator to core 1.
    #[arg(long, global = true)]
    no_pin: bool,
    /// Seconds of traffic before each measurement window.
    #[arg(long, global = true)]
    warmup: Option<u64>,
    /// Seconds in each measurement window.
    #[arg(long, global = true)]
    measure: Option<u64>,
    /// Where the markdown tables go.
    #[arg(long, global = true, default_value = "benches/results")]
    out: PathBuf,
    /// Where the PNG charts go.
    #[arg(long, global = true, default_value = "docs")]
    plots: PathBuf,
    /// Also measure Janus's videoroom (Debian package `janus`) with the same load, step by step.
    #[arg(long, global = true)]
    janus: bool,
    /// Record every room (`POST /api/rooms/{room}/recording`) from before the warm-up, into a
    /// temporary directory removed afterwards.
    #[arg(long, global = true)]
    record: bool,
    /// Publishers in `fanout` and `rooms` send three simulcast layers (real VP8 descriptors and
    /// keyframe headers, which a recording needs to write video).
    #[arg(long, global = true)]
    simulcast_publishers: bool,
    /// Pace publishers' video at 2.5 × its bitrate, as browsers do, instead of one burst a frame.
    #[arg(long, global = true)]
    paced: bool,
    /// Run roomcast with all media on one UDP port (`--udp-port`), as a production deployment
    /// does; its send path then writes straight to that socket.
    #[arg(long, global = true)]
    udp_mux: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// A short smoke run for CI: fails if no packet is delivered.
    Quick,
    /// 1 publisher → S subscribers, S stepping up.
    Fanout {
        /// Subscriber counts to try, in order.
        #[arg(long, value_delimiter = ',', default_values_t = [1usize, 10, 25, 50, 100, 200, 300, 500, 750, 1000])]
        steps: Vec<usize>,
        /// Stop stepping after this many minutes.
        #[arg(long, default_value_t = 15)]
        max_minutes: u64,
        /// Subscribers decrypt one RTP packet in K (pseudo-random) for latency and count every
        /// packet's clear-text header at their sockets for delivery and loss, so one generator
        /// core drives many more of them. 1 decrypts every packet.
        #[arg(long, default_value_t = 1, value_name = "K",
              value_parser = clap::value_parser!(u32).range(1..=i64::from(roomcast_bench::sampling::MAX_EVERY)))]
        sample: u32,
    },
    /// One roomcast process taken past saturation and back: 1 publisher and `base` subscribers
    /// (below saturation), then `peak` (overload), then the last to join leave and `base` stay
    /// (recovered); each phase measured, loss per subscriber included.
    FanoutStep {
        /// Subscribers below saturation, and again after the overload.
        #[arg(long, default_value_t = 400)]
        base: usize,
        /// Subscribers during the overload.
        #[arg(long, default_value_t = 600)]
        peak: usize,
        /// Seconds to wait after subscribers join or leave, before the phase's window (the
        /// first phase waits the warm-up instead).
        #[arg(long, default_value_t = 5)]
        settle: u64,
        /// As `fanout --sample`.
        #[arg(long, default_value_t = 1, value_name = "K",
              value_parser = clap::value_parser!(u32).range(1..=i64::from(roomcast_bench::sampling::MAX_EVERY)))]
        sample: u32,
    },
    /// R rooms of 4 participants, all publishing.
    Rooms {
        #[arg(long, value_delimiter = ',', default_values_t = [1usize, 5, 10, 20, 40])]
        steps: Vec<usize>,
        #[arg(long, default_value_t = 10)]
        max_minutes: u64,
    },
    /// Joins per second the server accepts while background rooms stay healthy.
    JoinStorm {
        /// Offered join rates (joins per second) to try, in order.
        #[arg(long, value_delimiter = ',', default_values_t = [10.0f64, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0])]
        rates: Vec<f64>,
        /// Seconds each storm lasts.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Rooms of 4 publishing participants that must stay healthy meanwhile.
        #[arg(long, default_value_t = 4)]
        background_rooms: usize,
        #[arg(long, default_value_t = 10)]
        max_minutes: u64,
    },
    /// A two-node cluster on a real Redis: joins, messages and a join storm through the room's
    /// owner and through the other node (signaling relayed); needs redis-server.
    Cluster {
        /// Joins timed one after another, per path.
        #[arg(long, default_value_t = 100)]
        joins: usize,
        /// Mute toggles timed per path.
        #[arg(long, default_value_t = 200)]
        messages: usize,
        /// Joins in each path's storm.
        #[arg(long, default_value_t = 500)]
        storm_joins: usize,
        /// Clients joining at once in the storm.
        #[arg(long, default_value_t = 20)]
        concurrency: usize,
    },
    /// The physical floor only.
    Floor,
    /// Simulcast in one run: fan-out with a plain and a simulcast publisher side by side,
    /// layer-switch times, and a mixed room with policed subscribers (needs root: iptables).
    Simulcast {
        /// Subscriber counts for the fan-out comparison.
        #[arg(long, value_delimiter = ',', default_values_t = [1usize, 10, 100])]
        steps: Vec<usize>,
        #[command(flatten)]
        switch: SwitchArgs,
        #[command(flatten)]
        mixed: MixedArgs,
    },
    /// Layer-switch times only: subscribers switch between the top and the lowest layer.
    LayerSwitch {
        #[command(flatten)]
        switch: SwitchArgs,
    },
    /// A mixed room only: some subscribers' downlinks policed with iptables (needs root).
    MixedRoom {
        #[command(flatten)]
        mixed: MixedArgs,
    },
}

#[derive(clap::Args, Clone, Copy)]
struct SwitchArgs {
    /// Subscribers switching layers at once.
    #[arg(long, default_value_t = 20)]
    switch_subscribers: usize,
    /// Seconds they keep switching.
    #[arg(long, default_value_t = 30)]
    switch_seconds: u64,
}

#[derive(clap::Args, Clone, Copy)]
struct MixedArgs {
    /// Subscribers in the mixed room.
    #[arg(long, default_value_t = 10)]
    mixed_subscribers: usize,
    /// How many of them are policed.
    #[arg(long, default_value_t = 3)]
    policed: usize,
    /// The policed downlink, kbit/s.
    #[arg(long, default_value_t = 400)]
    police_kbit: u32,
    /// Seconds the room runs after policing starts.
    #[arg(long, default_value_t = 30)]
    mixed_seconds: u64,
}

impl SwitchArgs {
    fn config(self) -> SwitchConfig {
        SwitchConfig {
            subscribers: self.switch_subscribers,
            duration: Duration::from_secs(self.switch_seconds),
        }
    }
}

impl MixedArgs {
    fn config(self) -> MixedConfig {
        MixedConfig {
            subscribers: self.mixed_subscribers,
            policed: self.policed.min(self.mixed_subscribers),
            kbit: self.police_kbit,
            duration: Duration::from_secs(self.mixed_seconds),
            tail: Duration::from_secs(10.min(self.mixed_seconds)),
        }
    }
}

const SFU_CORE: usize = 0;
/// Fresh simulcast starts `quick` checks, ≈ 4 s each: with the stall of one start in three
/// that they guard against, three catch it 7 times in 8.
const QUICK_SIMULCAST_STARTS: usize = 3;
const GENERATOR_CORE: usize = 1;

fn main() -> Result<()> {
    let args = Args::parse();
    if args.janus && janus_process::installed() && !netns::inside() {
        // Janus must gather on a loopback-addressed interface of its own: see netns.rs.
        std::process::exit(netns::rerun_inside()?);
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let pin = !args.no_pin && cores >= 2 && sfu_process::have_taskset();
    // Before pinning: a pinned process may see only its own CPU in /proc/cpuinfo.
    let _ = report::machine();
    if pin {
        // Before any other thread exists, so every thread of the generator inherits it.
        floor::pin_thread(GENERATOR_CORE);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(run(args, pin))
}

async fn run(args: Args, pin: bool) -> Result<()> {
    let binary = match &args.roomcast {
        Some(b) => b.clone(),
        None => sfu_process::default_binary()?,
    };
    scenario::check_binary(&binary)?;
    if let Cmd::Cluster {
        joins,
        messages,
        storm_joins,
        concurrency,
    } = &args.command
    {
        let config = roomcast_bench::cluster::ClusterConfig {
            joins: *joins,
            messages: *messages,
            storm_joins: *storm_joins,
            concurrency: *concurrency,
        };
        let results = roomcast_bench::cluster::run(&binary, config).await?;
        println!("{}", roomcast_bench::cluster::table(&results));
        return Ok(());
    }

    let quick = matches!(args.command, Cmd::Quick);
    let bench = Bench {
        binary: binary.clone(),
        sfu_core: pin.then_some(SFU_CORE),
        warmup: Duration::from_secs(args.warmup.unwrap_or(if quick { 2 } else { 5 })),
        measure: Duration::from_secs(args.measure.unwrap_or(if quick { 5 } else { 10 })),
        // 2.5 × the video bitrate: the pacing factor browsers use.
        pacing_bytes_per_sec: args
            .paced
            .then_some(2.5 * f64::from(roomcast_bench::media::VIDEO_BITRATE) / 8.0),
        simulcast: args.simulcast_publishers,
        record: args.record.then(|| {
            std::env::temp_dir().join(format!("roomcast-bench-recordings-{}", std::process::id()))
        }),
        udp_mux: args.udp_mux,
        sample: match args.command {
            Cmd::Fanout { sample, .. } | Cmd::FanoutStep { sample, .. } => sample,
            _ => 1,
        },
    };
    let label = |system: System| {
        let mut label = system.label().to_owned();
        if args.paced {
            label.push_str(" (paced)");
        }
        if bench.sample > 1 {
            label.push_str(&format!(" (1 in {} decrypted)", bench.sample));
        }
        label
    };
    if matches!(args.command, Cmd::FanoutStep { .. }) {
        println!("command: {}", command_line());
    }
    println!("machine: {}", report::machine());
    let setup = format!(
        "roomcast: {} ({}), warm-up {:?}, window {:?}",
        binary.display(),
        if pin {
            "pinned to core 0, generator on core 1"
        } else {
            "not pinned"
        },
        bench.warmup,
        bench.measure
    );
    println!("{setup}");
    if let Cmd::FanoutStep {
        base, peak, settle, ..
    } = args.command
    {
        let config = StepConfig {
            base,
            peak,
            settle: Duration::from_secs(settle),
        };
        return run_fanout_step(&args, &bench, config, &setup).await;
    }

    let floor_secs = if quick { 0.3 } else { 2.0 };
    let floors = measure_floor(pin, floor_secs)?;
    let floor_table = report::floor_table(&floors);
    println!("\n{floor_table}");
    let floor_of = |mode| {
        floors
            .iter()
            .find(|f| f.mode == mode)
            .map(FloorResult::micros_per_packet)
            .unwrap_or(f64::NAN)
    };
    let floor_mmsg = floor_of(SendMode::Sendmmsg);
    let floor_gso = floor_of(SendMode::Gso);
    if matches!(args.command, Cmd::Floor) {
        return Ok(());
    }
    match &args.command {
        Cmd::Simulcast {
            steps,
            switch,
            mixed,
        } => {
            let parts = SimulcastParts {
                steps: steps.clone(),
                switch: Some(switch.config()),
                mixed: Some(mixed.config()),
            };
            return run_simulcast(&args, &bench, parts, floor_mmsg, "simulcast").await;
        }
        Cmd::LayerSwitch { switch } => {
            let parts = SimulcastParts {
                steps: Vec::new(),
                switch: Some(switch.config()),
                mixed: None,
            };
            return run_simulcast(&args, &bench, parts, floor_mmsg, "layer-switch").await;
        }
        Cmd::MixedRoom { mixed } => {
            let parts = SimulcastParts {
                steps: Vec::new(),
                switch: None,
                mixed: Some(mixed.config()),
            };
            return run_simulcast(&args, &bench, parts, floor_mmsg, "mixed-room").await;
        }
        _ => {}
    }
    if let Cmd::JoinStorm {
        rates,
        seconds,
        background_rooms,
        max_minutes,
    } = &args.command
    {
        let storms: Vec<Storm> = rates
            .iter()
            .map(|&rate| Storm {
                rate,
                duration: Duration::from_secs(*seconds),
                background_rooms: *background_rooms,
            })
            .collect();
        let results = run_storms(&bench, storms, *max_minutes).await?;
        write_storms(&args, &results)?;
        return draw_storms(&args.plots, &results);
    }

    let (name, shapes, max_minutes): (&str, Vec<Shape>, u64) = match &args.command {
        Cmd::Quick => ("quick", fanout_shapes(&[1, 5]), 2),
        Cmd::Fanout {
            steps, max_minutes, ..
        } => ("fanout", fanout_shapes(steps), *max_minutes),
        Cmd::Rooms { steps, max_minutes } => (
            "rooms",
            steps
                .iter()
                .map(|&rooms| Shape {
                    rooms,
                    publishers: 4,
                    subscribers: 0,
                })
                .collect(),
            *max_minutes,
        ),
        Cmd::Floor
        | Cmd::Cluster { .. }
        | Cmd::FanoutStep { .. }
        | Cmd::JoinStorm { .. }
        | Cmd::Simulcast { .. }
        | Cmd::LayerSwitch { .. }
        | Cmd::MixedRoom { .. } => unreachable!("returned above"),
    };
    // A paced or sampled run writes its own tables and charts beside the others.
    let mut name = name.to_owned();
    if args.paced {
        name.push_str("-paced");
    }
    if bench.sample > 1 {
        name.push_str(&format!("-sample{}", bench.sample));
    }
    let mut systems = vec![System::Roomcast];
    if args.janus {
        if janus_process::installed() {
            systems.push(System::Janus);
        } else {
            println!("no Janus: /usr/bin/janus is not installed (apt-get install -y janus)");
        }
    }
    let started = Instant::now();
    let mut results: Vec<(System, StepResult)> = Vec::new();
    'steps: for shape in shapes {
        for system in systems.clone() {
            if started.elapsed() > Duration::from_secs(max_minutes * 60) {
                println!("stopping: the run's {max_minutes}-minute budget is spent");
                break 'steps;
            }
            if system == System::Janus && shape.publishers != 1 {
                continue;
            }
            println!(
                "step: {} — {} room(s) × ({} publishers + {} subscribers)",
                system.label(),
                shape.rooms,
                shape.publishers,
                shape.subscribers
            );
            let r = match bench.step(system, shape).await {
                Ok(r) => r,
                Err(e) if system == System::Janus => {
                    println!("Janus step failed, Janus left out from here on: {e:#}");
                    systems.retain(|s| *s != System::Janus);
                    continue;
                }
                Err(e) => return Err(e.context(format!("step {shape:?}"))),
            };
            println!(
                "{}",
                report::steps_table(&label(system), std::slice::from_ref(&r), floor_mmsg)
            );
            let stop = scenario::stop_reason(&r);
            results.push((system, r));
            if let Some(why) = stop {
                println!("{}: stopping: {why}", system.label());
                systems.retain(|s| *s != system);
            }
        }
        if systems.is_empty() {
            break;
        }
    }

    let mut table = String::new();
    for (i, system) in [System::Roomcast, System::Janus].into_iter().enumerate() {
        let rows: Vec<StepResult> = results
            .iter()
            .filter(|(s, _)| *s == system)
            .map(|(_, r)| r.clone())
            .collect();
        if !rows.is_empty() {
            if i > 0 {
                table.push('\n');
            }
            table.push_str(&report::steps_table(&label(system), &rows, floor_mmsg));
        }
    }
    let all: Vec<StepResult> = results.iter().map(|(_, r)| r.clone()).collect();
    let sampling = report::sampling_note(&all);
    let doc = format!(
        "# {name}\n\nmachine: {}\n\n{floor_table}\n{table}\nratio column: roomcast's CPU per forwarded packet over the sendmmsg floor ({floor_mmsg:.2} µs); the GSO floor is {floor_gso:.2} µs.\n{sampling}",
        report::machine()
    );
    println!("\n{table}{sampling}");
    std::fs::create_dir_all(&args.out)?;
    let out = args.out.join(format!("{name}.md"));
    std::fs::write(&out, doc).with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {}", out.display());

    if quick {
        if let Some((_, r)) = results.iter().find(|(_, r)| r.delivered == 0) {
            bail!("no packets delivered at {:?}", r.shape);
        }
        println!("quick: every step delivered packets");
        let storm = Storm {
            rate: 5.0,
            duration: Duration::from_secs(2),
            background_rooms: 1,
        };
        let storms = run_storms(&bench, vec![storm], max_minutes).await?;
        write_storms(&args, &storms)?;
        if storms.iter().any(|r| r.connected == 0) {
            bail!("no joiner connected in the quick join storm");
        }
        println!("quick: the join storm connected joiners");
        bench.simulcast_starts(QUICK_SIMULCAST_STARTS).await?;
        println!("quick: {QUICK_SIMULCAST_STARTS} simulcast starts reached the top layer");
        return Ok(());
    }
    draw(&args.plots, &name, &results, floor_mmsg, floor_gso)
}

/// This process's command line, as a shell would take it back.
fn command_line() -> String {
    std::env::args()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=,:+@%".contains(c));
            if plain {
                a
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs the saturation step and writes `<out>/fanout-step.md`.
async fn run_fanout_step(
    args: &Args,
    bench: &Bench,
    config: StepConfig,
    setup: &str,
) -> Result<()> {
    if args.janus {
        println!("fanout-step measures roomcast only: --janus is ignored");
    }
    println!(
        "fanout-step: 1 publisher; {} subscribers, then {} (overload), then back to {}; {:?} after each change",
        config.base, config.peak, config.base, config.settle
    );
    let started = chrono_like_now();
    let load_at_start = load_average();
    let phases = bench
        .saturation_step(config)
        .await
        .context("the saturation step")?;
    let mut table = saturation::table(&phases);
    table.push('\n');
    table.push_str(&saturation::notes(&phases));
    if bench.sample > 1 {
        table.push_str(&format!(
            "- sampled: each subscriber decrypted one RTP packet in {} (latency percentiles come from those) and counted every packet's clear-text header at its socket (delivered and loss come from those counts).\n",
            bench.sample
        ));
    }
    let doc = format!(
        "# fanout-step\n\ncommand: `{}`\n\nmachine: {}\n{setup}, {:?} after each change\nstarted: {started}\nload average at start: {load_at_start}, at the end: {}\n\n{table}",
        command_line(),
        report::machine(),
        config.settle,
        load_average(),
    );
    println!("\n{table}");
    std::fs::create_dir_all(&args.out)?;
    let out = args.out.join("fanout-step.md");
    std::fs::write(&out, doc).with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {}", out.display());
    Ok(())
}

/// Which simulcast scenarios a run does.
struct SimulcastParts {
    /// Fan-out steps, each run with a plain and then a simulcast publisher.
    steps: Vec<usize>,
    switch: Option<SwitchConfig>,
    mixed: Option<MixedConfig>,
}

/// Runs the simulcast scenarios and writes `<out>/<name>.md`.
async fn run_simulcast(
    args: &Args,
    bench: &Bench,
    parts: SimulcastParts,
    floor_mmsg: f64,
    name: &str,
) -> Result<()> {
    let started = chrono_like_now();
    let mut doc = format!(
        "# {name}\n\nmachine: {}\nstarted: {started}\nload average at start: {}\n\n",
        report::machine(),
        load_average()
    );
    if !parts.steps.is_empty() {
        let mut plain = Vec::new();
        let mut layered = Vec::new();
        let mut retried = String::new();
        let simulcast = Bench {
            simulcast: true,
            ..bench.clone()
        };
        for (s, shape) in parts.steps.iter().zip(fanout_shapes(&parts.steps)) {
            for (b, rows, label) in [
                (bench, &mut plain, "roomcast"),
                (&simulcast, &mut layered, "roomcast (simulcast)"),
            ] {
                let mut attempt = 0;
                let r = loop {
                    attempt += 1;
                    println!("step: {label} — 1 publisher + {s} subscribers");
                    let r = b
                        .step(System::Roomcast, shape)
                        .await
                        .with_context(|| format!("{label} at {s} subscribers"))?;
                    // A simulcast start where the server never ingested the top layer (see
                    // adaptive::START_ATTEMPTS) is retried with a fresh server, and noted.
                    let stalled = b.simulcast && r.video_layers.last() == Some(&0);
                    if !stalled || attempt >= adaptive::START_ATTEMPTS {
                        break r;
                    }
                    let note = format!(
                        "{label} at {s} subscribers: the top layer reached no subscriber (start {attempt}); retried with a fresh server\n\n"
                    );
                    println!("{note}");
                    retried.push_str(&note);
                };
                println!(
                    "{}",
                    report::steps_table(label, std::slice::from_ref(&r), floor_mmsg)
                );
                rows.push(r);
            }
        }
        doc.push_str("## Fan-out: plain and simulcast publisher, same run\n\n");
        doc.push_str(&report::steps_table("roomcast", &plain, floor_mmsg));
        doc.push('\n');
        doc.push_str(&report::steps_table(
            "roomcast (simulcast)",
            &layered,
            floor_mmsg,
        ));
        doc.push('\n');
        doc.push_str(&report::simulcast_comparison(&plain, &layered));
        doc.push('\n');
        doc.push_str(&retried);
    }
    if let Some(config) = parts.switch {
        println!(
            "layer switch: {} subscribers for {:?}",
            config.subscribers, config.duration
        );
        let r = bench.layer_switch(config).await.context("layer switch")?;
        let table = adaptive::switch_table(&r);
        println!("{table}");
        doc.push_str(&failed_starts(&r.failed_starts));
        doc.push_str(&format!(
            "## Layer switch: {} subscribers, {:.0} s of switching\n\nthe server's view of the publication (rid, bps, width, height): {:?}\n\n{table}\n",
            r.subscribers, r.seconds, r.server_layers
        ));
    }
    if let Some(config) = parts.mixed {
        println!(
            "mixed room: {} subscribers, {} policed to {} kbit/s, {:?}",
            config.subscribers, config.policed, config.kbit, config.duration
        );
        let r = bench.mixed_room(config).await.context("mixed room")?;
        let tables = adaptive::mixed_tables(&r);
        println!("{tables}");
        doc.push_str(&failed_starts(&r.failed_starts));
        doc.push_str(&format!(
            "## Mixed room: {} subscribers, {} policed to {} kbit/s, {} s; rates over the last {} s\n\n{tables}\n{}",
            config.subscribers,
            config.policed,
            config.kbit,
            config.duration.as_secs(),
            config.tail.as_secs(),
            adaptive::mixed_timeline(&r)
        ));
    }
    doc.push_str(&format!("\nload average at the end: {}\n", load_average()));
    std::fs::create_dir_all(&args.out)?;
    let out = args.out.join(format!("{name}.md"));
    std::fs::write(&out, doc).with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {}", out.display());
    Ok(())
}

/// A note on starts that were retried, for the raw output.
fn failed_starts(failed: &[String]) -> String {
    failed
        .iter()
        .map(|why| format!("retried a start (fresh server): {why}\n\n"))
        .collect()
}

/// The current UTC time, `YYYY-MM-DD HH:MM UTC`, without a date dependency (`date -u`).
fn chrono_like_now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Runs storms in order until one stops the scenario or the time budget is spent.
async fn run_storms(
    bench: &Bench,
    storms: Vec<Storm>,
    max_minutes: u64,
) -> Result<Vec<StormResult>> {
    let started = Instant::now();
    let mut results = Vec::new();
    for storm in storms {
        if started.elapsed() > Duration::from_secs(max_minutes * 60) {
            println!("stopping: the run's {max_minutes}-minute budget is spent");
            break;
        }
        println!(
            "storm: {} joins/s for {:?}, {} background room(s) of 4 publishing",
            storm.rate, storm.duration, storm.background_rooms
        );
        let r = bench
            .storm(storm)
            .await
            .with_context(|| format!("storm {storm:?}"))?;
        println!("{}", report::storm_table(std::slice::from_ref(&r)));
        for reason in &r.reasons {
            println!("  a join that did not connect: {reason}");
        }
        let stop = join_storm::stop_reason(&r);
        results.push(r);
        if let Some(why) = stop {
            println!("join-storm: stopping: {why}");
            break;
        }
    }
    Ok(results)
}

fn write_storms(args: &Args, results: &[StormResult]) -> Result<()> {
    let table = report::storm_table(results);
    let doc = format!(
        "# join-storm\n\nmachine: {}\n\njoiners fill rooms of {} and stay; a join is accepted when its PeerConnection is connected within {:?}.\n\n{table}",
        report::machine(),
        join_storm::STORM_ROOM_SIZE,
        join_storm::CONNECT_TIMEOUT,
    );
    println!("\n{table}");
    std::fs::create_dir_all(&args.out)?;
    let out = args.out.join("join-storm.md");
    std::fs::write(&out, doc).with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {}", out.display());
    Ok(())
}

/// Join time and the background rooms' latency against the offered rate: where they bend is
/// where the server stops keeping up (every offered join was accepted in the runs so far).
fn draw_storms(dir: &std::path::Path, results: &[StormResult]) -> Result<()> {
    if !ready_to_draw(dir, results.len())? {
        return Ok(());
    }
    let series = |label: &str, y: &dyn Fn(&StormResult) -> Option<f64>| Series {
        label: label.to_owned(),
        points: results
            .iter()
            .filter_map(|r| y(r).map(|y| (r.storm.rate, y)))
            .collect(),
        dashed: false,
    };
    let path = dir.join("bench-join-storm.png");
    plot::chart(
        &path,
        "join-storm: time to connect, and the background rooms' latency",
        "offered joins/s",
        "ms",
        &[
            series("join → connected, p50", &|r| r.connected_ms(0.5)),
            series("join → connected, p99", &|r| r.connected_ms(0.99)),
            series("background rooms' media, p99 one-way", &|r| {
                r.background_ms(0.99)
            }),
        ],
    )?;
    println!("wrote {}", path.display());
    Ok(())
}

fn fanout_shapes(steps: &[usize]) -> Vec<Shape> {
    steps
        .iter()
        .map(|&subscribers| Shape {
            rooms: 1,
            publishers: 1,
            subscribers,
        })
        .collect()
}

/// The floor, with as many destinations as a mid-size step, on the SFU's core.
fn measure_floor(pin: bool, secs: f64) -> Result<Vec<FloorResult>> {
    let d = Duration::from_secs_f64(secs);
    let (core, drain) = if pin {
        (Some(SFU_CORE), Some(GENERATOR_CORE))
    } else {
        (None, None)
    };
    [
        SendMode::ProtectOnly,
        SendMode::Sendmmsg,
        SendMode::Gso,
        SendMode::RingSendmmsg,
        SendMode::RingGso,
    ]
    .into_iter()
    .map(|mode| floor::measure(mode, 100, d, core, drain))
    .collect()
}

/// x for a step: subscribers in fan-out, participants in rooms.
fn x_of(r: &StepResult) -> f64 {
    if r.shape.subscribers > 0 {
        r.shape.subscribers as f64
    } else {
        r.shape.participants() as f64
    }
}

fn draw(
    dir: &std::path::Path,
    name: &str,
    results: &[(System, StepResult)],
    mmsg: f64,
    gso: f64,
) -> Result<()> {
    if !ready_to_draw(dir, results.len())? {
        return Ok(());
    }
    let mut xs: Vec<f64> = results.iter().map(|(_, r)| x_of(r)).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let flat = |label: &str, v: f64| Series {
        label: label.to_owned(),
        points: xs.iter().map(|&x| (x, v)).collect(),
        dashed: true,
    };
    let of = |system: System, value: &dyn Fn(&StepResult) -> f64| Series {
        label: system.label().to_owned(),
        points: results
            .iter()
            .filter(|(s, _)| *s == system)
            .map(|(_, r)| (x_of(r), value(r)))
            .collect(),
        dashed: false,
    };
    let systems: Vec<System> = [System::Roomcast, System::Janus]
        .into_iter()
        .filter(|s| results.iter().any(|(r, _)| r == s))
        .collect();
    let mut cpu: Vec<Series> = systems
        .iter()
        .map(|&s| of(s, &StepResult::cpu_micros_per_packet))
        .collect();
    cpu.push(flat("floor: SRTP + sendmmsg", mmsg));
    cpu.push(flat("floor: SRTP + UDP GSO", gso));
    let loss: Vec<Series> = systems
        .iter()
        .map(|&s| of(s, &|r: &StepResult| r.loss() * 100.0))
        .collect();
    let x_label = if results.iter().all(|(_, r)| r.shape.subscribers > 0) {
        "subscribers"
    } else {
        "participants"
    };
    let cpu_path = dir.join(format!("bench-{name}-cpu.png"));
    plot::chart(
        &cpu_path,
        &format!("{name}: server CPU per forwarded packet"),
        x_label,
        "CPU µs per packet",
        &cpu,
    )?;
    let loss_path = dir.join(format!("bench-{name}-loss.png"));
    plot::chart(
        &loss_path,
        &format!("{name}: packet loss"),
        x_label,
        "loss %",
        &loss,
    )?;
    println!("wrote {} and {}", cpu_path.display(), loss_path.display());
    Ok(())
}

/// Whether there is something to chart and a font to chart it with; makes `dir` if so. A
/// missing font costs the charts, not the run.
fn ready_to_draw(dir: &std::path::Path, results: usize) -> Result<bool> {
    if results == 0 {
        return Ok(false);
    }
    if let Err(e) = plot::load_font() {
        println!("no charts: {e}");
        return Ok(false);
    }
    std::fs::create_dir_all(dir)?;
    Ok(true)
}
