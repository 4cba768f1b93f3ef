//! Logging setup: text or JSON, to standard error or a file (created readable by its owner
//! only: logs name participants and addresses). `RUST_LOG` overrides the levels.

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// webrtc-rs warns on every normal join and leave (ICE pinging before candidates arrive, closing
/// an agent that is closed, SRTP sessions ended, DTLS packets for a connection just closed, the
/// data channel's SCTP association writing into the DTLS connection closed under it): a
/// dozen lines per participant that train operators to ignore warnings. Those modules log
/// errors only unless `RUST_LOG` asks for more; roomcast's own failures still warn.
const DEFAULT_FILTER: &str =
    "info,webrtc=warn,webrtc::peer_connection::peer_connection_internal=error,\
     webrtc::mux=error,webrtc_ice=warn,webrtc_ice::agent::agent_internal=error,webrtc_srtp=error,\
     webrtc_dtls=warn,webrtc_mdns=warn,webrtc_sctp=warn,webrtc_sctp::association=error";

pub fn init(format: LogFormat, file: Option<&Path>) -> Result<()> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    // Colour codes only where a person reads a terminal, never in a file or a pipe.
    let ansi = file.is_none() && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    let writer: tracing_subscriber::fmt::writer::BoxMakeWriter = match file {
        Some(path) => {
            let mut options = OpenOptions::new();
            options.create(true).append(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let file = options
                .open(path)
                .with_context(|| format!("opening log file {}", path.display()))?;
            tracing_subscriber::fmt::writer::BoxMakeWriter::new(Mutex::new(file))
        }
        None => tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stderr),
    };
    match format {
        LogFormat::Text => builder.with_writer(writer).init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(writer)
            .init(),
    }
    Ok(())
}
