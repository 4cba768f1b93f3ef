//! Errors of the edge.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum SignalingError {
    #[error("could not bind {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Serve(#[from] std::io::Error),
    #[error("certificate {path}: {source}")]
    Certificate {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("found {found} but not {missing}: remove it, or pass --cert and --key (nothing was overwritten)")]
    Incomplete { found: PathBuf, missing: PathBuf },
    #[error("could not generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
}
