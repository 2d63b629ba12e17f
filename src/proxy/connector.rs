//! The upstream client's connector: TCP settings, and TLS trusting the system roots plus
//! `upstream.ca`.

use hyper_util::client::legacy::connect::HttpConnector;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::config::UpstreamConfig;

pub(super) type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// Errors building the upstream client (bad CA file and the like).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamSetupError {
    #[error("cannot read upstream.ca {path}")]
    CaRead {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("upstream.ca {path}: no usable certificate in the file")]
    CaEmpty { path: String },
    #[error("upstream.ca {path}: {message}")]
    CaInvalid { path: String, message: String },
    #[error("upstream.url has no host")]
    NoHost,
    #[error("cannot set up TLS for the upstream: {0}")]
    Tls(String),
}

/// The connector every worker's pool is built on.
pub(super) fn connector(cfg: &UpstreamConfig) -> Result<Connector, UpstreamSetupError> {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(cfg.connect_timeout));
    http.set_nodelay(true);
    http.enforce_http(false);

    let tls = tls_client_config(cfg.ca.as_deref())?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(connector)
}

fn tls_client_config(
    ca: Option<&std::path::Path>,
) -> Result<rustls::ClientConfig, UpstreamSetupError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if let Some(path) = ca {
        let shown = path.display().to_string();
        let pem = std::fs::read(path).map_err(|source| UpstreamSetupError::CaRead {
            path: shown.clone(),
            source,
        })?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| UpstreamSetupError::CaInvalid {
                path: shown.clone(),
                message: e.to_string(),
            })?;
            roots.add(cert).map_err(|e| UpstreamSetupError::CaInvalid {
                path: shown.clone(),
                message: e.to_string(),
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(UpstreamSetupError::CaEmpty { path: shown });
        }
    }
    let provider = crate::tls::crypto_provider();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| UpstreamSetupError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}
