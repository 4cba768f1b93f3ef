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
/// self-signed pair for localhost there if both are absent. One without the other is an error:
/// the existing file may be someone's real key, so it is never overwritten.
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
    let present = |p: &Path| p.symlink_metadata().is_ok();
    let generated = match (present(&cert), present(&key)) {
        (true, true) => false,
        (false, false) => true,
        (has_cert, _) => {
            let (found, missing) = if has_cert {
                (&cert, &key)
            } else {
                (&key, &cert)
            };
            return Err(SignalingError::Incomplete {
                found: found.clone(),
                missing: missing.clone(),
            });
        }
    };
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
    write_new(key_path, &certified.key_pair.serialize_pem(), 0o600).map_err(io(key_path))?;
    write_new(cert_path, &certified.cert.pem(), 0o644).map_err(io(cert_path))?;
    Ok(())
}

/// Writes a file that must not exist yet: no file is overwritten and no symlink followed (a
/// file that appeared meanwhile is an error, not a target).
fn write_new(path: &Path, contents: &str, mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
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
    fn a_key_without_its_certificate_is_left_alone() {
        let dir = temp_dir("half");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("key.pem"), "someone's real key").unwrap();
        let refused = load_or_generate(None, None, &dir).unwrap_err();
        assert!(refused.to_string().contains("cert.pem"), "{refused}");
        assert_eq!(
            fs::read_to_string(dir.join("key.pem")).unwrap(),
            "someone's real key"
        );
        assert!(!dir.join("cert.pem").exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn the_generated_key_is_its_owners_alone_and_no_symlink_is_followed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("mode");
        let files = load_or_generate(None, None, &dir).unwrap();
        let mode = fs::metadata(&files.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        fs::remove_dir_all(&dir).unwrap();

        let elsewhere = temp_dir("target");
        fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.join("key.pem")).unwrap();
        std::os::unix::fs::symlink(elsewhere.join("c"), dir.join("cert.pem")).unwrap();
        // Both "exist" as links: nothing is generated, so nothing is written through them.
        let _ = load_or_generate(None, None, &dir);
        assert!(!elsewhere.exists());
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
