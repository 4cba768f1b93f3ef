//! What this test process holds right now, read from `/proc/self`: for leak checks that compare a
//! baseline with the state after a workload.

use std::time::Duration;

/// A snapshot of the resources a leak would show in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resources {
    /// Tasks alive in the current tokio runtime.
    pub tasks: usize,
    /// Open file descriptors (sockets, epoll, pipes, files).
    pub fds: usize,
    /// Resident set size in KiB.
    pub rss_kib: u64,
}

impl Resources {
    /// Reads the current figures; must run inside a tokio runtime.
    pub fn now() -> Self {
        Self {
            tasks: tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks(),
            fds: open_fds(),
            rss_kib: rss_kib(),
        }
    }

    /// Polls until tasks and fds have not changed for two seconds (connections closed a moment
    /// ago finish closing), for at most `patience`; returns the last reading either way.
    pub async fn quiescent(patience: Duration) -> Self {
        let deadline = tokio::time::Instant::now() + patience;
        let mut last = Self::now();
        let mut unchanged = 0;
        while unchanged < 8 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = Self::now();
            let same = (now.tasks, now.fds) == (last.tasks, last.fds);
            unchanged = if same { unchanged + 1 } else { 0 };
            last = now;
        }
        last
    }

    /// Polls until tasks and fds are within `tolerance` of `baseline`, for at most `patience`;
    /// returns the last reading either way.
    pub async fn settle_towards(baseline: Self, tolerance: usize, patience: Duration) -> Self {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let now = Self::now();
            let settled =
                now.tasks <= baseline.tasks + tolerance && now.fds <= baseline.fds + tolerance;
            if settled || tokio::time::Instant::now() >= deadline {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// The number of entries in `/proc/self/fd`.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// `VmRSS` from `/proc/self/status`, in KiB.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}
