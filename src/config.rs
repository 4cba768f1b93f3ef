//! Command-line flags and their `ROOMCAST_*` environment equivalents.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use roomcast_sfu::{IceServers, PortRange, SfuConfig, TurnAuth};

use crate::limits::LimitFlags;
use crate::token::TokenArgs;

#[derive(Debug, Parser)]
#[command(
    name = "roomcast",
    version,
    about = "A small, fast SFU for multi-party WebRTC rooms"
)]
pub struct Config {
    #[command(subcommand)]
    pub command: Option<Command>,

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

    /// Participants one room admits; one more gets "full". Up to 10,000: a webinar's one
    /// publisher and its audience is one room.
    #[arg(long, env = "ROOMCAST_ROOM_CAPACITY", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub room_capacity: u32,

    /// UDP ports for media, MIN-MAX, one per connection (default: any port the OS gives).
    #[arg(long, env = "ROOMCAST_UDP_PORTS", conflicts_with = "udp_port")]
    pub udp_ports: Option<PortRange>,

    /// One UDP port (IPv4) for all media connections (UDP mux), instead of a port each.
    #[arg(long, env = "ROOMCAST_UDP_PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub udp_port: Option<u16>,

    /// STUN server URL for clients, e.g. stun:stun.example.org:3478 (repeatable; env: comma-separated).
    #[arg(long = "stun", env = "ROOMCAST_STUN", value_delimiter = ',')]
    pub stun: Vec<String>,

    /// TURN server URL for clients, e.g. turn:turn.example.org:3478?transport=udp (repeatable;
    /// env: comma-separated).
    #[arg(long = "turn", env = "ROOMCAST_TURN", value_delimiter = ',')]
    pub turn: Vec<String>,

    /// coturn's static-auth-secret (use-auth-secret mode): mint per-participant TURN credentials.
    #[arg(
        long,
        env = "ROOMCAST_TURN_SECRET",
        hide_env_values = true,
        conflicts_with = "turn_username"
    )]
    pub turn_secret: Option<String>,

    /// Lifetime of minted TURN credentials, in seconds.
    #[arg(long, env = "ROOMCAST_TURN_TTL", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(60..))]
    pub turn_ttl: u64,

    /// Static TURN username, for a TURN server not in shared-secret mode.
    #[arg(long, env = "ROOMCAST_TURN_USERNAME", requires = "turn_password")]
    pub turn_username: Option<String>,

    /// Static TURN password.
    #[arg(
        long,
        env = "ROOMCAST_TURN_PASSWORD",
        hide_env_values = true,
        requires = "turn_username"
    )]
    pub turn_password: Option<String>,

    /// Public address to announce in ICE candidates when behind NAT 1:1.
    #[arg(long, env = "ROOMCAST_PUBLIC_IP")]
    pub public_ip: Option<IpAddr>,

    /// Local address to offer media on (repeatable; env: comma-separated). Default: every
    /// interface's addresses, IPv4 and IPv6.
    #[arg(long = "media-ip", env = "ROOMCAST_MEDIA_IP", value_delimiter = ',')]
    pub media_ips: Vec<IpAddr>,

    /// Seconds a participant's media connection may stay silent before the participant is removed.
    #[arg(long, env = "ROOMCAST_PEER_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(2..=3600))]
    pub peer_timeout: u64,

    /// Bearer token for the admin API, /metrics and the /admin dashboard. Without it they answer
    /// only to loopback clients.
    #[arg(long, env = "ROOMCAST_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Secret for room access tokens (JWT, HS256). With it, joining requires a token naming the
    /// room; without it, rooms are open to anyone who can reach the server.
    #[arg(long, env = "ROOMCAST_TOKEN_SECRET", hide_env_values = true)]
    pub token_secret: Option<String>,

    /// Origin whose pages may open the signaling WebSocket, e.g. https://meet.example.org
    /// (repeatable; env: comma-separated). Default: this server's own origins only.
    #[arg(
        long = "allowed-origin",
        env = "ROOMCAST_ALLOWED_ORIGIN",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,

    /// Where room recordings are written (one WebM file per participant and recording).
    #[arg(long, env = "ROOMCAST_RECORDINGS_DIR", default_value = "recordings")]
    pub recordings_dir: PathBuf,

    #[command(flatten)]
    pub limits: LimitFlags,

    /// Log format.
    #[arg(long, env = "ROOMCAST_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Join a cluster coordinated through this Redis (`redis://` or `rediss://`, password in the
    /// URL). Without it the server is one node on its own.
    #[arg(long, env = "ROOMCAST_REDIS", hide_env_values = true)]
    pub redis: Option<String>,

    /// The base URL other nodes and operators use to reach this node (with --redis); by default
    /// http://127.0.0.1 and the HTTP port, which only works on one machine.
    #[arg(long, env = "ROOMCAST_NODE_URL")]
    pub node_url: Option<String>,

    /// Append logs to this file instead of standard error.
    #[arg(long, env = "ROOMCAST_LOG_FILE")]
    pub log_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a room access token signed with --token-secret, then exit.
    Token(TokenArgs),
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
    /// `--node-url`, or this machine's loopback address and the bound HTTP (else HTTPS) port.
    pub fn node_url(
        &self,
        (http, https): (Option<std::net::SocketAddr>, Option<std::net::SocketAddr>),
    ) -> String {
        if let Some(url) = &self.node_url {
            return url.trim_end_matches('/').to_owned();
        }
        let url = match (http, https) {
            (Some(addr), _) => format!("http://127.0.0.1:{}", addr.port()),
            (None, Some(addr)) => format!("https://127.0.0.1:{}", addr.port()),
            (None, None) => String::new(),
        };
        tracing::warn!(%url, "no --node-url: other nodes reach this one at a loopback address, which works on one machine only");
        url
    }

    fn ice_servers(&self) -> IceServers {
        let turn_auth = match (&self.turn_secret, &self.turn_username, &self.turn_password) {
            (Some(secret), _, _) => TurnAuth::Secret {
                secret: secret.clone(),
                ttl: std::time::Duration::from_secs(self.turn_ttl),
            },
            (None, Some(username), Some(password)) => TurnAuth::Static {
                username: username.clone(),
                password: password.clone(),
            },
            _ => TurnAuth::None,
        };
        IceServers {
            stun: self.stun.clone(),
            turn: self.turn.clone(),
            turn_auth,
        }
    }

    pub fn sfu(&self) -> SfuConfig {
        SfuConfig {
            room_capacity: self.room_capacity as usize,
            udp_ports: self.udp_ports,
            udp_mux_port: self.udp_port,
            public_ip: self.public_ip,
            media_ips: self.media_ips.clone(),
            ice_servers: self.ice_servers(),
            peer_timeout: std::time::Duration::from_secs(self.peer_timeout),
            limits: self.limits.sfu(),
            recordings_dir: self.recordings_dir.clone(),
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
    fn ice_servers_are_repeatable_and_a_secret_mints_credentials() {
        let c = parse(&[
            "--stun",
            "stun:a:3478",
            "--stun",
            "stun:b:3478",
            "--turn",
            "turn:t:3478?transport=udp",
            "--turn-secret",
            "s",
            "--turn-ttl",
            "600",
        ])
        .unwrap();
        let ice = c.sfu().ice_servers;
        assert_eq!(ice.stun, ["stun:a:3478", "stun:b:3478"]);
        assert_eq!(ice.turn, ["turn:t:3478?transport=udp"]);
        assert_eq!(
            ice.turn_auth,
            TurnAuth::Secret {
                secret: "s".into(),
                ttl: std::time::Duration::from_secs(600)
            }
        );
    }

    #[test]
    fn static_turn_credentials_come_in_pairs_and_exclude_a_secret() {
        assert!(parse(&["--turn-username", "u"]).is_err());
        assert!(parse(&[
            "--turn-username",
            "u",
            "--turn-password",
            "p",
            "--turn-secret",
            "s"
        ])
        .is_err());
        let c = parse(&[
            "--turn",
            "turn:t",
            "--turn-username",
            "u",
            "--turn-password",
            "p",
        ])
        .unwrap();
        assert_eq!(
            c.sfu().ice_servers.turn_auth,
            TurnAuth::Static {
                username: "u".into(),
                password: "p".into()
            }
        );
    }

    #[test]
    fn one_udp_port_or_a_range_but_not_both() {
        assert_eq!(
            parse(&["--udp-port", "50000"]).unwrap().sfu().udp_mux_port,
            Some(50000)
        );
        assert!(parse(&["--udp-port", "50000", "--udp-ports", "40000-40100"]).is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parse(&["--room-capacity", "0"]).is_err());
        assert!(parse(&["--room-capacity", "10001"]).is_err());
        assert!(parse(&["--udp-ports", "9-1"]).is_err());
        assert!(parse(&["--http", "nowhere"]).is_err());
        assert!(parse(&["--log-format", "xml"]).is_err());
    }

    #[test]
    fn a_room_holds_a_webinar_one_publisher_and_a_thousand_viewers_and_more() {
        let c = parse(&["--room-capacity", "10000"]).unwrap();
        assert_eq!(c.room_capacity, 10_000);
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
            "--media-ip",
            "127.0.0.1",
            "--media-ip",
            "::1",
            "--recordings-dir",
            "/var/rec",
        ])
        .unwrap();
        let sfu = c.sfu();
        assert_eq!(sfu.recordings_dir, PathBuf::from("/var/rec"));
        assert_eq!(
            parse(&[]).unwrap().sfu().recordings_dir,
            PathBuf::from("recordings")
        );
        assert_eq!(
            sfu.media_ips,
            [
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
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
