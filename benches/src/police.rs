//! Policing a subscriber's downlink on loopback: an iptables `hashlimit` rule on `INPUT` for its
//! media port drops what arrives above a rate (shared/docs/testing.md, "A subscriber with a
//! narrow downlink"). The bench's peers use IPv4 only and the server's media is on 127.0.0.1,
//! so no ip6tables rule is needed. Every rule added is removed when the [`Policer`] is dropped,
//! on errors too; rules left by a killed run (their hashlimit names start with
//! [`NAME_PREFIX`]) are removed by [`remove_leftovers`].

use std::process::Command;

use anyhow::{bail, Context, Result};

pub const NAME_PREFIX: &str = "rcbench";

#[derive(Default)]
pub struct Policer {
    /// The rule specifications added, without the `-I`/`-D INPUT` part.
    rules: Vec<Vec<String>>,
}

fn rule(port: u16, kilobytes_per_sec: u32) -> Vec<String> {
    let rate = format!("{kilobytes_per_sec}kb/s");
    let burst = format!("{kilobytes_per_sec}kb");
    let name = format!("{NAME_PREFIX}{port}");
    let port = port.to_string();
    [
        "-i",
        "lo",
        "-p",
        "udp",
        "--dport",
        &port,
        "-m",
        "hashlimit",
        "--hashlimit-name",
        &name,
        "--hashlimit-mode",
        "dstport",
        "--hashlimit-above",
        &rate,
        "--hashlimit-burst",
        &burst,
        "-j",
        "DROP",
    ]
    .map(str::to_owned)
    .to_vec()
}

fn iptables(action: &str, spec: &[String]) -> Result<()> {
    let out = Command::new("iptables")
        .arg(action)
        .arg("INPUT")
        .args(spec)
        .output()
        .context("running iptables (apt-get install -y iptables; needs root)")?;
    if !out.status.success() {
        bail!(
            "iptables {action}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl Policer {
    /// Drops UDP arriving on loopback at `port` above `kilobytes_per_sec` (kB/s: 50 ≈ 400 kbit/s).
    pub fn police(&mut self, port: u16, kilobytes_per_sec: u32) -> Result<()> {
        let spec = rule(port, kilobytes_per_sec);
        iptables("-I", &spec)?;
        self.rules.push(spec);
        Ok(())
    }

    /// Removes every rule this policer added.
    pub fn clear(&mut self) {
        for spec in self.rules.drain(..) {
            if let Err(e) = iptables("-D", &spec) {
                eprintln!("could not remove a policing rule: {e:#}");
            }
        }
    }
}

impl Drop for Policer {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Removes `INPUT` rules a killed bench run left behind (hashlimit names with our prefix).
pub fn remove_leftovers() -> Result<usize> {
    let out = Command::new("iptables")
        .args(["-S", "INPUT"])
        .output()
        .context("running iptables -S")?;
    let listing = String::from_utf8_lossy(&out.stdout);
    let mut removed = 0;
    for line in listing.lines() {
        if !line.contains(&format!("--hashlimit-name {NAME_PREFIX}")) {
            continue;
        }
        let Some(spec) = line.strip_prefix("-A INPUT ") else {
            continue;
        };
        let spec: Vec<String> = spec.split_whitespace().map(str::to_owned).collect();
        iptables("-D", &spec)?;
        removed += 1;
    }
    Ok(removed)
}
