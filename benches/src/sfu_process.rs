//! A roomcast process under test: started from its binary, pinned to one core with `taskset`,
//! listening on a free loopback port, and killed when dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::proc_stats::{self, ProcSample};

pub struct SfuProcess {
    child: Child,
    pid: u32,
    pub addr: SocketAddr,
}

/// Where the roomcast binary is by default: next to this one (same target dir and profile).
pub fn default_binary() -> Result<PathBuf> {
    let me = std::env::current_exe().context("locating this executable")?;
    let dir = me
        .parent()
        .ok_or_else(|| anyhow!("executable has no directory"))?;
    Ok(dir.join("roomcast"))
}

/// Whether `taskset` is on the PATH (util-linux).
pub fn have_taskset() -> bool {
    std::process::Command::new("taskset")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

impl SfuProcess {
    /// Starts `binary` on `core` (if given) with plain HTTP on a free loopback port, media on
    /// 127.0.0.1, and room capacity for `capacity` participants.
    pub async fn start(binary: &Path, core: Option<usize>, capacity: usize) -> Result<Self> {
        Self::start_with(binary, core, capacity, &[]).await
    }

    /// [`SfuProcess::start`] with more flags.
    pub async fn start_with(
        binary: &Path,
        core: Option<usize>,
        capacity: usize,
        extra: &[String],
    ) -> Result<Self> {
        if !binary.exists() {
            bail!(
                "no roomcast binary at {} (build it: cargo build --release --bin roomcast)",
                binary.display()
            );
        }
        let args = [
            "--http",
            "127.0.0.1:0",
            "--https",
            "off",
            "--media-ip",
            "127.0.0.1",
            "--room-capacity",
            &capacity.max(2).to_string(),
            "--peer-timeout",
            "30",
            // The benchmark measures capacity, not the admission limits' defaults: its peers
            // all connect from 127.0.0.1.
            "--max-participants",
            "100000",
            "--max-connections-per-address",
            "100000",
        ]
        .map(str::to_owned);
        let mut cmd = match core {
            Some(core) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(core.to_string()).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        cmd.args(args)
            .args(extra)
            // ROOMCAST_BENCH_LOG (a RUST_LOG filter) lets a diagnosing run see the server's logs.
            .env(
                "RUST_LOG",
                std::env::var("ROOMCAST_BENCH_LOG").unwrap_or_else(|_| "error".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        // `taskset` execs the binary, so the child's pid is roomcast's.
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("roomcast exited at once"))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.strip_prefix("roomcast: open http://") {
                    return url
                        .trim()
                        .parse::<SocketAddr>()
                        .context("parsing the address");
                }
            }
            bail!("roomcast exited before printing its address")
        })
        .await
        .map_err(|_| anyhow!("roomcast printed no address within 30 s"))??;
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self { child, pid, addr })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn sample(&self) -> Result<ProcSample> {
        proc_stats::sample(self.pid)
    }

    /// Stops the process and waits for it.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}
