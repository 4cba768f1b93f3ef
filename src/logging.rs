//! Logging setup: text or JSON, to standard error or a file. `RUST_LOG` overrides the level.

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(format: LogFormat, file: Option<&Path>) -> Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(
            "info,webrtc=warn,webrtc_ice=warn,webrtc_srtp=error,webrtc_dtls=warn,webrtc_mdns=warn",
        )
    });
    // Colour codes only where a person reads a terminal, never in a file or a pipe.
    let ansi = file.is_none() && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    let writer: tracing_subscriber::fmt::writer::BoxMakeWriter = match file {
        Some(path) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
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
