//! TLS for the venue: a self-signed certificate for `localhost` and `127.0.0.1`, made at start
//! with `rcgen`, written as PEM so that clients can trust it, and the rustls (ring provider)
//! server configuration that serves it.

use anyhow::Context as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The names the certificate is valid for.
pub const CERT_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

/// A generated certificate and the server configuration that presents it.
#[derive(Debug, Clone)]
pub struct Tls {
    /// The rustls server configuration (HTTP/1.1 only, no client authentication).
    pub config: Arc<rustls::ServerConfig>,
    /// Where the certificate was written (PEM).
    pub cert_path: PathBuf,
    /// The certificate, DER.
    pub cert_der: CertificateDer<'static>,
}

/// The ring crypto provider (the workspace builds rustls without aws-lc).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Tls {
    /// Generates a key pair and a self-signed certificate for [`CERT_NAMES`], writes the
    /// certificate to `dir/cert.pem` (creating `dir`), and builds the server configuration.
    pub fn generate(dir: &Path) -> anyhow::Result<Tls> {
        let names: Vec<String> = CERT_NAMES.iter().map(|s| s.to_string()).collect();
        let certified =
            rcgen::generate_simple_self_signed(names).context("generating a certificate")?;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating certificate directory {}", dir.display()))?;
        let cert_path = dir.join("cert.pem");
        std::fs::write(&cert_path, certified.cert.pem())
            .with_context(|| format!("writing {}", cert_path.display()))?;
        let cert_der = certified.cert.der().clone();
        let key =
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_single_cert(vec![cert_der.clone()], key)
            .context("TLS server certificate")?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            config: Arc::new(config),
            cert_path,
            cert_der,
        })
    }
}
