//! Markdown tables of a run: the machine, the floor, and one table per scenario.

use std::fmt::Write;

use crate::floor::FloorResult;
use crate::join_storm::StormResult;
use crate::scenario::StepResult;

/// CPU model, cores and kernel, as the run saw them.
pub fn machine() -> String {
    // Read once, before the generator pins itself: a pinned process may see only its own CPU.
    static MACHINE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    MACHINE.get_or_init(read_machine).clone()
}

fn read_machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mem_kb: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    format!(
        "{model}, {cores} cores online, {:.0} GiB RAM, Linux {}",
        mem_kb as f64 / 1_048_576.0,
        kernel.trim()
    )
}

pub fn floor_table(results: &[FloorResult]) -> String {
    let mut s = String::from(
        "| floor path | destinations | datagrams | thread CPU µs per datagram |\n| --- | ---: | ---: | ---: |\n",
    );
    for r in results {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.2} |",
            r.mode.label(),
            r.destinations,
            r.packets,
            r.micros_per_packet()
        );
    }
    s
}

fn ms(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "–".into())
}

/// One row per step; `floor` is the floor's µs per datagram the ratio column divides by.
pub fn steps_table(system: &str, steps: &[StepResult], floor: f64) -> String {
    let mut s = String::from(
        "| system | rooms × (pub + sub) | forwarded tracks live | delivered pkt/s | loss % | loss on live tracks % | p50 ms | p99 ms | SFU CPU µs/pkt | × floor | SFU core % | SFU run-queue wait % | RSS/participant MB | anon/participant MB | generator core % |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
    );
    for r in steps {
        let _ = writeln!(
            s,
            "| {system} | {} × ({} + {}) | {}/{} | {:.0} | {:.3} | {:.3} | {} | {} | {:.2} | {:.1} | {:.0} | {:.0} | {:.2} | {:.2} | {:.0} |",
            r.shape.rooms,
            r.shape.publishers,
            r.shape.subscribers,
            r.live_tracks,
            r.expected_tracks,
            r.delivered_per_sec(),
            r.loss() * 100.0,
            r.live_loss() * 100.0,
            ms(r.p(0.5)),
            ms(r.p(0.99)),
            r.cpu_micros_per_packet(),
            r.cpu_micros_per_packet() / floor.max(1e-9),
            r.cpu.sfu_core_share() * 100.0,
            r.cpu.sfu_wait_share() * 100.0,
            r.rss_per_participant() / 1_048_576.0,
            r.anon_per_participant() / 1_048_576.0,
            r.cpu.generator_core_share() * 100.0,
        );
    }
    s
}

/// What sampling meant for a run's figures, and the step-wide cross-checks; empty if every
/// subscriber decrypted every packet.
pub fn sampling_note(steps: &[StepResult]) -> String {
    let sampled: Vec<&StepResult> = steps.iter().filter(|r| r.sample > 1).collect();
    let Some(first) = sampled.first() else {
        return String::new();
    };
    let mut s = format!(
        "\nsampled: each subscriber decrypted and read the probe of one RTP packet in {} \
         (pseudo-random by sequence number, and each track's first) and counted every packet's \
         clear-text RTP header at its socket. Delivered packets and loss are those counts, over \
         the sequence numbers of the packets the publisher stamped inside the window; the latency \
         percentiles come from the decrypted packets alone. The step-wide columns cover joins and \
         warm-up too.\n\n\
         | subscribers | latency samples in the window | RTP packets counted, whole step | missing by sequence number, whole step (RTCP-style) | RTCP sent by subscribers |\n\
         | ---: | ---: | ---: | ---: | ---: |\n",
        first.sample
    );
    for r in sampled {
        let c = r.sampled.unwrap_or_default();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            r.shape.rooms * r.shape.subscribers,
            r.latency.count(),
            c.received,
            c.lost,
            c.rtcp_sent
        );
    }
    s
}

/// One row per storm.
pub fn storm_table(storms: &[StormResult]) -> String {
    let mut s = String::from(
        "| offered joins/s | joins | connected | refused | failed | accepted joins/s | to `joined` p50 / p99 ms | to connected p50 / p90 / p99 ms | background rooms: loss % | background p99 ms | SFU core % | RSS/joiner MB | generator core % |\n\
         | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for r in storms {
        let _ = writeln!(
            s,
            "| {:.0} | {} | {} | {} | {} | {:.1} | {} / {} | {} / {} / {} | {:.3} | {} | {:.0} | {:.2} | {:.0} |",
            r.storm.rate,
            r.attempts,
            r.connected,
            r.refused,
            r.failed,
            r.accepted_per_sec(),
            ms(r.joined_ms(0.5)),
            ms(r.joined_ms(0.99)),
            ms(r.connected_ms(0.5)),
            ms(r.connected_ms(0.9)),
            ms(r.connected_ms(0.99)),
            r.background_loss() * 100.0,
            ms(r.background_ms(0.99)),
            r.cpu.sfu_core_share() * 100.0,
            r.rss_per_joiner() / 1_048_576.0,
            r.cpu.generator_core_share() * 100.0,
        );
    }
    s
}

/// Plain and simulcast publisher side by side, step by step (same subscriber counts, in order).
pub fn simulcast_comparison(plain: &[StepResult], simulcast: &[StepResult]) -> String {
    let mut s = String::from(
        "| subscribers | plain: SFU CPU µs/pkt | simulcast: SFU CPU µs/pkt | simulcast / plain | plain / simulcast p99 ms | simulcast: video packets received per layer q / h / f |\n\
         | ---: | ---: | ---: | ---: | --- | --- |\n",
    );
    for (p, m) in plain.iter().zip(simulcast) {
        let layers: Vec<String> = m.video_layers.iter().map(u64::to_string).collect();
        let _ = writeln!(
            s,
            "| {} | {:.2} | {:.2} | {:.2} | {} / {} | {} |",
            p.shape.subscribers,
            p.cpu_micros_per_packet(),
            m.cpu_micros_per_packet(),
            m.cpu_micros_per_packet() / p.cpu_micros_per_packet(),
            ms(p.p(0.99)),
            ms(m.p(0.99)),
            layers.join(" / ")
        );
    }
    s
}
