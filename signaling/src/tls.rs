//! TLS material: PEM files named by the operator, or a self-signed development certificate
//! generated into `certs/` on first run (what the original demo did by hand with openssl).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum_server::tls_rustls::RustlsConfig;

use crate::SignalingError;

/// Where the certificate and key live.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// True when this run created them.
    pub generated: bool,
}

/// Uses `cert`/`key` when both are given; otherwise `dir/cert.pem` and `dir/key.pem`, generating a
/// self-signed pair for localhost there if they are absent.
pub fn load_or_generate(
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    dir: &Path,
) -> Result<TlsFiles, SignalingError> {
    if let (Some(cert), Some(key)) = (cert, key) {
        for path in [&cert, &key] {
            fs::metadata(path).map_err(|source| SignalingError::Certificate {
                path: path.clone(),
                source,
            })?;
        }
        return Ok(TlsFiles {
            cert,
            key,
            generated: false,
        });
    }
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let generated = !(cert.exists() && key.exists());
    if generated {
        generate(&cert, &key)?;
    }
    Ok(TlsFiles {
        cert,
        key,
        generated,
    })
}

fn generate(cert_path: &Path, key_path: &Path) -> Result<(), SignalingError> {
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let certified = rcgen::generate_simple_self_signed(names)?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SignalingError::Certificate { path, source }
    };
    if let Some(dir) = cert_path.parent() {
        fs::create_dir_all(dir).map_err(io(dir))?;
    }
    write_private(key_path, &certified.key_pair.serialize_pem()).map_err(io(key_path))?;
    fs::write(cert_path, certified.cert.pem()).map_err(io(cert_path))?;
    Ok(())
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

/// The rustls server configuration for the files (rustls speaks only TLS 1.2 and 1.3), offering
/// HTTP/1.1 only: the edge serves HTTP/1.1.
pub(crate) async fn rustls_config(
    files: &TlsFiles,
) -> Result<Arc<rustls::ServerConfig>, SignalingError> {
    // Several parts of the process may ask; the first install wins and later ones are no-ops.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let loaded = RustlsConfig::from_pem_file(&files.cert, &files.key)
        .await
        .map_err(|source| SignalingError::Certificate {
            path: files.cert.clone(),
            source,
        })?;
    let mut config = (*loaded.get_inner()).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("roomcast-tls-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_missing_pair_is_generated_once_and_then_reused() {
        let dir = temp_dir("gen");
        let first = load_or_generate(None, None, &dir).unwrap();
        assert!(first.generated);
        let pem = fs::read_to_string(&first.cert).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let second = load_or_generate(None, None, &dir).unwrap();
        assert!(!second.generated);
        assert_eq!(fs::read_to_string(&second.cert).unwrap(), pem);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn named_files_must_exist() {
        let dir = temp_dir("named");
        let err = load_or_generate(Some(dir.join("c.pem")), Some(dir.join("k.pem")), &dir);
        assert!(matches!(err, Err(SignalingError::Certificate { .. })));
    }

    #[tokio::test]
    async fn a_generated_pair_loads_into_rustls() {
        let dir = temp_dir("load");
        let files = load_or_generate(None, None, &dir).unwrap();
        rustls_config(&files).await.unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }
}
