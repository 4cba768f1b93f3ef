//! A private network namespace for runs that include Janus.
//!
//! Janus (libnice) gathers no candidates on a loopback interface, and with nothing usable it
//! falls back to every interface, i.e. non-loopback addresses. So a run with Janus re-executes
//! itself inside a namespace of its own holding `lo` and an interface `rcb0` (one end of a veth
//! pair whose other end stays in the namespace too) with the loopback address 127.0.0.2/32: Janus gathers there (`ice_enforce_list = "rcb0"`), and every
//! packet of the run still goes to 127.0.0.0/8, inside a namespace that disappears afterwards.

use std::process::Command;

use anyhow::{bail, Context, Result};

pub const NAME: &str = "roomcast-bench";
pub const IFACE: &str = "rcb0";
const PEER: &str = "rcb1";
const MARK: &str = "ROOMCAST_BENCH_IN_NETNS";

/// Whether this process already runs inside the benchmark's namespace.
pub fn inside() -> bool {
    std::env::var_os(MARK).is_some()
}

fn ip(args: &[&str]) -> Result<()> {
    let status = Command::new("ip")
        .args(args)
        .status()
        .with_context(|| format!("running ip {}", args.join(" ")))?;
    if !status.success() {
        bail!("ip {} failed ({status})", args.join(" "));
    }
    Ok(())
}

fn in_ns(args: &[&str]) -> Result<()> {
    let mut all = vec!["netns", "exec", NAME, "ip"];
    all.extend_from_slice(args);
    ip(&all)
}

/// Creates the namespace, re-runs this program inside it with the same arguments, removes the
/// namespace, and returns the child's exit code.
pub fn rerun_inside() -> Result<i32> {
    let _ = Command::new("ip")
        .args(["netns", "del", NAME])
        .stderr(std::process::Stdio::null())
        .status();
    ip(&["netns", "add", NAME])?;
    let result = (|| -> Result<i32> {
        in_ns(&["link", "set", "lo", "up"])?;
        // A veth pair with both ends inside (this kernel has no `dummy` link type).
        in_ns(&["link", "add", IFACE, "type", "veth", "peer", "name", PEER])?;
        in_ns(&["addr", "add", "127.0.0.2/32", "dev", IFACE])?;
        in_ns(&["link", "set", IFACE, "up"])?;
        in_ns(&["link", "set", PEER, "up"])?;
        let exe = std::env::current_exe().context("locating this executable")?;
        let status = Command::new("ip")
            .args(["netns", "exec", NAME])
            .arg(exe)
            .args(std::env::args_os().skip(1))
            .env(MARK, "1")
            .status()
            .context("re-running inside the namespace")?;
        Ok(status.code().unwrap_or(1))
    })();
    let _ = ip(&["netns", "del", NAME]);
    result
}
