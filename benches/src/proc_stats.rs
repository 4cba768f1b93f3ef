//! CPU time and resident memory of a process, from `/proc/<pid>/task/*/schedstat` (or
//! `/proc/<pid>/stat`'s utime+stime where schedstat is missing) and `/proc/<pid>/statm`.
//!
//! Both CPU sources count a thread's time only while it lives; threads that exit inside a
//! window take their share with them, so the long-lived runtime workers this measures must be
//! what does the work (true of tokio's workers).

use anyhow::{anyhow, Context, Result};

/// One reading of a process's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcSample {
    /// utime + stime, in microseconds.
    pub cpu_micros: u64,
    /// Resident set size in bytes.
    pub rss_bytes: u64,
    /// Of it, what is not backed by a file (`statm`'s resident minus shared): the heap and
    /// stacks. The pages of the binary's code that the first connections touch are resident
    /// too, once per process, whatever the number of participants.
    pub anon_bytes: u64,
    /// Time its threads were runnable but waiting for a CPU (schedstat), in microseconds: a
    /// pinned server that waits here is being starved by other work on its core.
    pub runqueue_wait_micros: u64,
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf with a valid name has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

fn page_size() -> u64 {
    // SAFETY: as above.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64
    } else {
        4096
    }
}

/// Parses utime + stime (fields 14 and 15) from a `/proc/<pid>/stat` line, in clock ticks.
/// The command name (field 2) may contain spaces and parentheses, so fields are counted from the
/// last `)`.
pub fn parse_stat_ticks(stat: &str) -> Result<u64> {
    let rest = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| anyhow!("no command name in stat line"))?;
    // After ")" come field 3 (state) onwards; utime is field 14, so index 11 here.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .ok_or_else(|| anyhow!("stat line too short"))?
            .parse::<u64>()
            .context("stat field is not a number")
    };
    Ok(field(11)? + field(12)?)
}

/// On-CPU and run-queue-wait nanoseconds of every live thread of `pid`, from `/proc/<pid>/task/*/schedstat`:
/// nanosecond resolution, where `stat`'s utime+stime move in 10 ms ticks (too coarse for a
/// 10 s window at low load). `None` if the kernel does not expose schedstat.
fn schedstat_nanos(pid: u32) -> Option<(u64, u64)> {
    let (mut on_cpu, mut waiting) = (0u64, 0u64);
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = task.ok()?.path().join("schedstat");
        // A thread may exit between listing and reading: skip it.
        let Ok(line) = std::fs::read_to_string(path) else {
            continue;
        };
        let mut fields = line.split_whitespace();
        on_cpu += fields.next()?.parse::<u64>().ok()?;
        waiting += fields.next()?.parse::<u64>().ok()?;
    }
    Some((on_cpu, waiting))
}

/// Reads a process's CPU time and RSS now.
pub fn sample(pid: u32) -> Result<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let ticks = parse_stat_ticks(&stat)?;
    let (cpu_micros, runqueue_wait_micros) = match schedstat_nanos(pid) {
        Some((on_cpu, waiting)) => (on_cpu / 1_000, waiting / 1_000),
        None => (ticks * 1_000_000 / clock_ticks(), 0),
    };
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm"))
        .with_context(|| format!("reading /proc/{pid}/statm"))?;
    let field = |i: usize| -> Result<u64> {
        statm
            .split_whitespace()
            .nth(i)
            .ok_or_else(|| anyhow!("statm too short"))?
            .parse()
            .context("statm field is not a number")
    };
    let (resident, shared) = (field(1)?, field(2)?);
    Ok(ProcSample {
        cpu_micros,
        runqueue_wait_micros,
        rss_bytes: resident * page_size(),
        anon_bytes: resident.saturating_sub(shared) * page_size(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_whose_name_has_spaces() {
        let line = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0";
        assert_eq!(parse_stat_ticks(line).unwrap(), 300);
        assert!(parse_stat_ticks("garbage").is_err());
    }

    #[test]
    fn samples_this_process() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss_bytes > 0);
        assert!(s.anon_bytes > 0 && s.anon_bytes < s.rss_bytes);
    }
}
