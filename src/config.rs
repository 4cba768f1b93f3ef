//! Command-line flags and their `ROOMCAST_*` environment equivalents.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use roomcast_sfu::{PortRange, SfuConfig};

#[derive(Debug, Parser)]
#[command(
    name = "roomcast",
    version,
    about = "A small, fast SFU for multi-party WebRTC rooms"
)]
pub struct Config {
    /// Plain HTTP listen address, or "off".
    #[arg(long, env = "ROOMCAST_HTTP", default_value = "0.0.0.0:8080", value_parser = parse_listen)]
    pub http: Listen,

    /// HTTPS listen address, or "off".
    #[arg(long, env = "ROOMCAST_HTTPS", default_value = "0.0.0.0:8443", value_parser = parse_listen)]
    pub https: Listen,

    /// TLS certificate chain (PEM). Without --cert/--key a self-signed pair is generated in --cert-dir.
    #[arg(long, env = "ROOMCAST_CERT", requires = "key")]
    pub cert: Option<PathBuf>,

    /// TLS private key (PEM).
    #[arg(long, env = "ROOMCAST_KEY", requires = "cert")]
    pub key: Option<PathBuf>,

    /// Where the development certificate is generated and kept.
    #[arg(long, env = "ROOMCAST_CERT_DIR", default_value = "certs")]
    pub cert_dir: PathBuf,

    /// Participants one room admits; one more gets "full".
    #[arg(long, env = "ROOMCAST_ROOM_CAPACITY", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub room_capacity: u32,

    /// UDP ports for media, MIN-MAX (default: any port the OS gives).
    #[arg(long, env = "ROOMCAST_UDP_PORTS")]
    pub udp_ports: Option<PortRange>,

    /// Public address to announce in ICE candidates when behind NAT 1:1.
    #[arg(long, env = "ROOMCAST_PUBLIC_IP")]
    pub public_ip: Option<IpAddr>,

    /// Seconds a participant's media connection may stay silent before the participant is removed.
    #[arg(long, env = "ROOMCAST_PEER_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(2..=3600))]
    pub peer_timeout: u64,

    /// Bearer token for the admin API, /metrics and the /admin dashboard. Without it they answer
    /// only to loopback clients.
    #[arg(long, env = "ROOMCAST_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Log format.
    #[arg(long, env = "ROOMCAST_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Append logs to this file instead of standard error.
    #[arg(long, env = "ROOMCAST_LOG_FILE")]
    pub log_file: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// A listen address, or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listen {
    Off,
    On(SocketAddr),
}

fn parse_listen(s: &str) -> Result<Listen, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(Listen::Off);
    }
    s.parse()
        .map(Listen::On)
        .map_err(|e| format!("expected ADDR:PORT or \"off\": {e}"))
}

impl Config {
    pub fn sfu(&self) -> SfuConfig {
        SfuConfig {
            room_capacity: self.room_capacity as usize,
            udp_ports: self.udp_ports,
            public_ip: self.public_ip,
            peer_timeout: std::time::Duration::from_secs(self.peer_timeout),
            ..SfuConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_from(std::iter::once("roomcast").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_need_no_configuration() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.http, Listen::On("0.0.0.0:8080".parse().unwrap()));
        assert_eq!(c.https, Listen::On("0.0.0.0:8443".parse().unwrap()));
        assert_eq!(c.room_capacity, 16);
        assert_eq!(c.log_format, LogFormat::Text);
    }

    #[test]
    fn either_listener_can_be_turned_off() {
        let c = parse(&["--http", "off", "--https", "127.0.0.1:9443"]).unwrap();
        assert_eq!(c.http, Listen::Off);
        assert_eq!(c.https, Listen::On("127.0.0.1:9443".parse().unwrap()));
    }

    #[test]
    fn cert_and_key_come_together() {
        assert!(parse(&["--cert", "c.pem"]).is_err());
        assert!(parse(&["--cert", "c.pem", "--key", "k.pem"]).is_ok());
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parse(&["--room-capacity", "0"]).is_err());
        assert!(parse(&["--udp-ports", "9-1"]).is_err());
        assert!(parse(&["--http", "nowhere"]).is_err());
        assert!(parse(&["--log-format", "xml"]).is_err());
    }

    #[test]
    fn media_settings_reach_the_sfu() {
        let c = parse(&[
            "--udp-ports",
            "40000-40100",
            "--public-ip",
            "203.0.113.7",
            "--room-capacity",
            "2",
        ])
        .unwrap();
        let sfu = c.sfu();
        assert_eq!(sfu.room_capacity, 2);
        assert_eq!(
            sfu.udp_ports,
            Some(PortRange {
                min: 40000,
                max: 40100
            })
        );
        assert_eq!(sfu.public_ip, Some("203.0.113.7".parse().unwrap()));
    }
}
