//! What the media plane needs to know about its deployment.

use std::net::IpAddr;
use std::path::PathBuf;

use crate::{IceServers, SfuLimits};
use std::str::FromStr;
use std::time::Duration;

/// Settings for the media plane, built by the binary from flags and environment.
#[derive(Clone, Debug)]
pub struct SfuConfig {
    /// How many participants one room admits; one more gets `Full`.
    pub room_capacity: usize,
    /// UDP ports the PeerConnections may bind; `None` lets the OS choose.
    pub udp_ports: Option<PortRange>,
    /// One UDP port (IPv4) shared by every PeerConnection, instead of a port per connection.
    pub udp_mux_port: Option<u16>,
    /// Address announced instead of the host's own (NAT 1:1).
    pub public_ip: Option<IpAddr>,
    /// Local addresses offered as ICE host candidates; empty offers every interface's.
    pub media_ips: Vec<IpAddr>,
    /// Whether loopback addresses are offered as ICE candidates (needed when clients run on the
    /// same host, as in tests and development).
    pub include_loopback: bool,
    /// STUN/TURN servers handed to clients in `joined`.
    pub ice_servers: IceServers,
    /// How long a media connection may go silent before its participant is removed.
    pub peer_timeout: Duration,
    /// Bounds on rooms, participants, candidates and SDP sizes.
    pub limits: SfuLimits,
    /// Where recordings are written.
    pub recordings_dir: PathBuf,
}

impl Default for SfuConfig {
    fn default() -> Self {
        Self {
            room_capacity: 16,
            udp_ports: None,
            udp_mux_port: None,
            public_ip: None,
            media_ips: Vec::new(),
            include_loopback: true,
            ice_servers: IceServers::default(),
            peer_timeout: Duration::from_secs(10),
            limits: SfuLimits::default(),
            recordings_dir: PathBuf::from("recordings"),
        }
    }
}

/// An RTCIceServer entry as a browser expects it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IceServer {
    pub urls: Vec<String>,
    pub username: Option<String>,
    pub credential: Option<String>,
}

/// An inclusive range of UDP ports, written `MIN-MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    pub min: u16,
    pub max: u16,
}

impl FromStr for PortRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (min, max) = s
            .split_once('-')
            .ok_or_else(|| format!("expected MIN-MAX, got {s:?}"))?;
        let parse = |p: &str| {
            p.trim()
                .parse::<u16>()
                .map_err(|e| format!("bad port {p:?}: {e}"))
        };
        let (min, max) = (parse(min)?, parse(max)?);
        if min == 0 || min > max {
            return Err(format!(
                "port range {min}-{max} must satisfy 0 < MIN <= MAX"
            ));
        }
        Ok(Self { min, max })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_range_parses_min_dash_max() {
        assert_eq!(
            "10000-10100".parse::<PortRange>(),
            Ok(PortRange {
                min: 10000,
                max: 10100
            })
        );
    }

    #[test]
    fn port_range_rejects_reversed_zero_and_garbage() {
        assert!("200-100".parse::<PortRange>().is_err());
        assert!("0-100".parse::<PortRange>().is_err());
        assert!("abc".parse::<PortRange>().is_err());
        assert!("1-x".parse::<PortRange>().is_err());
    }
}
