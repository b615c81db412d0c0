//! TLS client settings for the feed's WebSockets and snapshot fetches: rustls with the `ring`
//! provider, trusting either the public web roots (Binance production) or only the certificates
//! of one PEM file (`ringmaker venue`'s `cert.pem`, a test venue).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why the TLS settings could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The CA file could not be read or holds no certificate.
    #[error("CA certificate file {path}: {why}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        why: String,
    },
    /// rustls refused the settings.
    #[error("TLS settings: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A client configuration trusting the certificates of `ca` (PEM), or with `None` the public
/// web roots.
pub fn client_config(ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            let bad = |why: String| TlsError::CaFile {
                path: path.to_path_buf(),
                why,
            };
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))?;
            for c in certs {
                let c = c.map_err(|e| bad(e.to_string()))?;
                roots.add(c).map_err(|e| bad(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(bad("no certificate in it".into()));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    // A TLS 1.3 market stream leaves rustls's record layer once open: its traffic secrets are
    // taken out (`dangerous_into_kernel_connection`) to decrypt records in place (see
    // `net::conn`, "Buffers").
    cfg.enable_secret_extraction = true;
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_ca_file_is_a_typed_error() {
        let e = client_config(Some(Path::new("/no/such/ca.pem"))).unwrap_err();
        assert!(e.to_string().contains("/no/such/ca.pem"), "{e}");
        let dir = std::env::temp_dir().join(format!("feeds-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = client_config(Some(&empty)).unwrap_err();
        assert!(e.to_string().contains("no certificate"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
        let cfg = client_config(None).unwrap();
        assert!(cfg.enable_secret_extraction);
    }
}
