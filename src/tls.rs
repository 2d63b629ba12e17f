//! TLS termination: certificate loading, ALPN, and reload without dropping connections.
//!
//! The acceptor's `ServerConfig` sits behind an `ArcSwap`: every new connection takes the current
//! one, a reload swaps in a new one, and connections already established keep theirs. A reload
//! that fails (missing file, key not matching) logs and keeps the old certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::ServerConfig;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;

/// Why a certificate or key could not be used. Each names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: no certificate found (expected PEM 'BEGIN CERTIFICATE')", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{}: no private key found (expected PEM PKCS#8, PKCS#1 or SEC1)", path.display())]
    NoKey { path: PathBuf },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("{} does not match the certificate in {}", key.display(), cert.display())]
    KeyMismatch { cert: PathBuf, key: PathBuf },
}

impl TlsError {
    /// The setting that names the file at fault (`tls.cert` or `tls.key`): the operator edits a
    /// setting, and the path alone does not say which one when both point at one file.
    pub fn setting(&self, cfg: &TlsConfig) -> &'static str {
        match self {
            TlsError::NoCertificate { .. } => "tls.cert",
            TlsError::NoKey { .. } | TlsError::KeyMismatch { .. } => "tls.key",
            // Certificate and key in one file: the cert is read and parsed first.
            TlsError::Read { path, .. } | TlsError::Invalid { path, .. }
                if *path == cfg.key && *path != cfg.cert =>
            {
                "tls.key"
            }
            _ => "tls.cert",
        }
    }
}

/// The TLS side of the listener, reloadable in place.
pub struct Tls {
    current: ArcSwap<ServerConfig>,
}

impl Tls {
    pub fn load(cfg: &TlsConfig) -> Result<Tls, TlsError> {
        let config = server_config(&cfg.cert, &cfg.key)?;
        Ok(Tls {
            current: ArcSwap::from_pointee(config),
        })
    }

    /// The acceptor for the next connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.load_full())
    }

    /// Loads the files `cfg` names (perhaps new paths) and, on success, uses them from now on.
    pub fn reload_from(&self, cfg: &TlsConfig) -> Result<(), TlsError> {
        self.current
            .store(Arc::new(server_config(&cfg.cert, &cfg.key)?));
        Ok(())
    }
}

fn server_config(cert_path: &Path, key_path: &Path) -> Result<ServerConfig, TlsError> {
    let cert_pem = read(cert_path)?;
    let key_pem = read(key_path)?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Invalid {
            path: cert_path.to_owned(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert_path.to_owned(),
        });
    }
    let key = match PrivateKeyDer::from_pem_slice(&key_pem) {
        Ok(key) => key,
        Err(rustls_pki_types::pem::Error::NoItemsFound) => {
            return Err(TlsError::NoKey {
                path: key_path.to_owned(),
            })
        }
        Err(e) => {
            return Err(TlsError::Invalid {
                path: key_path.to_owned(),
                message: e.to_string(),
            })
        }
    };

    let provider = crypto_provider();
    let signing_key =
        provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| TlsError::Invalid {
                path: key_path.to_owned(),
                message: e.to_string(),
            })?;
    let certified = CertifiedKey::new(certs, signing_key);
    if certified.keys_match().is_err() {
        return Err(TlsError::KeyMismatch {
            cert: cert_path.to_owned(),
            key: key_path.to_owned(),
        });
    }

    // rustls' safe defaults: TLS 1.2 and 1.3 only, no legacy ciphers.
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Invalid {
            path: cert_path.to_owned(),
            message: e.to_string(),
        })?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SingleCert(Arc::new(certified))));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The one crypto provider every TLS config of the proxy is built with: aws-lc-rs, which offers the
/// X25519MLKEM768 hybrid (post-quantum) key exchange first, then X25519, P-256, P-384.
///
/// The listener and the upstream client pass it explicitly. The Redis client cannot be handed one:
/// it builds its config with `ClientConfig::builder()`, which takes the process default, so the
/// first call also installs this provider as that default. Were a different default installed
/// before (only an embedding program could), it is left alone and returned, so the whole process
/// still agrees on one provider.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    static DEFAULT: std::sync::OnceLock<Arc<CryptoProvider>> = std::sync::OnceLock::new();
    Arc::clone(DEFAULT.get_or_init(|| {
        // Fails only when a default is already set; either way one is set afterwards.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        CryptoProvider::get_default()
            .map(Arc::clone)
            .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
    }))
}

/// Serves one certificate whatever the SNI (like `with_single_cert`, but keeping our own
/// `keys_match` check and error).
#[derive(Debug)]
struct SingleCert(Arc<CertifiedKey>);

impl rustls::server::ResolvesServerCert for SingleCert {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}
