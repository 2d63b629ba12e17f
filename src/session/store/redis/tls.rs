//! `redis.ca`, `redis.client_cert` and `redis.client_key` → the redis crate's [`TlsCertificates`].
//!
//! The crate uses the roots it is given *instead of* its own, so the system roots are handed over
//! together with `redis.ca`: a private CA adds to the system roots, as `upstream.ca` does, rather
//! than replacing them. Every file is read and parsed here when the config is validated (start-up,
//! `check`, reload), so a bad one is refused by its field name instead of failing every
//! connection later with a 503.

use std::path::Path;

use ::redis::{ClientTlsConfig, TlsCertificates};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::RedisConfig;

/// A TLS setting of the `redis` block that cannot be used, and the field it came from.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct TlsFileError {
    pub field: String,
    pub message: String,
}

fn error(field: &str, message: impl Into<String>) -> TlsFileError {
    TlsFileError {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// The TLS material for the configured URLs: `None` when they are plain `redis://` (and no TLS
/// file is set). With `rediss://` the trusted roots are always passed, so that the system store
/// is what is trusted (the crate alone would trust only the bundled web PKI roots); only an empty
/// system store with no `redis.ca` leaves the crate to its bundled roots.
pub fn certificates(config: &RedisConfig) -> Result<Option<TlsCertificates>, TlsFileError> {
    let Some(files) = load_files(config)? else {
        return Ok(None);
    };
    let mut roots: Vec<pem::Pem> = rustls_native_certs::load_native_certs()
        .certs
        .into_iter()
        .map(|cert| pem::Pem::new("CERTIFICATE", cert.to_vec()))
        .collect();
    roots.extend(
        files
            .ca
            .iter()
            .map(|cert| pem::Pem::new("CERTIFICATE", cert.to_vec())),
    );
    Ok(Some(TlsCertificates {
        client_tls: files.client,
        root_cert: (!roots.is_empty()).then(|| pem::encode_many(&roots).into_bytes()),
    }))
}

/// Reads and checks the files only (no system roots): what config validation needs.
pub fn check(config: &RedisConfig) -> Result<(), TlsFileError> {
    load_files(config).map(|_| ())
}

/// What the files hold, parsed and checked.
struct Files {
    ca: Vec<CertificateDer<'static>>,
    client: Option<ClientTlsConfig>,
}

/// `None` when the URLs are plain `redis://` and no TLS file is set.
fn load_files(config: &RedisConfig) -> Result<Option<Files>, TlsFileError> {
    let set_fields = [
        ("redis.ca", config.ca.is_some()),
        ("redis.client_cert", config.client_cert.is_some()),
        ("redis.client_key", config.client_key.is_some()),
    ];
    if let Some(plain) = plain_url(config) {
        return match set_fields.iter().find(|(_, set)| *set) {
            Some((field, _)) => Err(error(
                field,
                format!("is only used with rediss:// (TLS), but {plain} is redis://"),
            )),
            None => Ok(None),
        };
    }

    let ca = match &config.ca {
        Some(path) => read_ca(path)?,
        None => Vec::new(),
    };
    let client = match (&config.client_cert, &config.client_key) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(error(
                "redis.client_key",
                "is required with redis.client_cert (set both or neither)",
            ))
        }
        (None, Some(_)) => {
            return Err(error(
                "redis.client_cert",
                "is required with redis.client_key (set both or neither)",
            ))
        }
        (Some(cert), Some(key)) => Some(read_client_pair(cert, key)?),
    };
    Ok(Some(Files { ca, client }))
}

/// The first configured URL that is not `rediss://`, named by its field; `None` when all are TLS.
fn plain_url(config: &RedisConfig) -> Option<String> {
    let is_tls = |url: &str| {
        url.split_once("://")
            .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("rediss"))
    };
    if config.cluster.is_empty() {
        return (!is_tls(&config.url)).then(|| "redis.url".to_owned());
    }
    config
        .cluster
        .iter()
        .position(|url| !is_tls(url))
        .map(|i| format!("redis.cluster[{i}]"))
}

fn read(field: &str, path: &Path) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(path).map_err(|e| error(field, format!("cannot read {}: {e}", path.display())))
}

fn read_certs(field: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let pem = read(field, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(field, format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(error(
            field,
            format!(
                "{}: no certificate found (expected PEM 'BEGIN CERTIFICATE')",
                path.display()
            ),
        ));
    }
    Ok(certs)
}

/// Each certificate must be usable as a trust anchor, as for `upstream.ca`.
fn read_ca(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let certs = read_certs("redis.ca", path)?;
    let mut check = rustls::RootCertStore::empty();
    for cert in &certs {
        check
            .add(cert.clone())
            .map_err(|e| error("redis.ca", format!("{}: {e}", path.display())))?;
    }
    Ok(certs)
}

/// Parses both files and checks that the key belongs to the certificate, which the crate would
/// otherwise only find out at the first handshake.
fn read_client_pair(cert_path: &Path, key_path: &Path) -> Result<ClientTlsConfig, TlsFileError> {
    const KEY: &str = "redis.client_key";
    let certs = read_certs("redis.client_cert", cert_path)?;
    let key_pem = read(KEY, key_path)?;
    let key = match PrivateKeyDer::from_pem_slice(&key_pem) {
        Ok(key) => key,
        Err(rustls_pki_types::pem::Error::NoItemsFound) => {
            return Err(error(
                KEY,
                format!(
                    "{}: no private key found (expected PEM PKCS#8, PKCS#1 or SEC1)",
                    key_path.display()
                ),
            ))
        }
        Err(e) => return Err(error(KEY, format!("{}: {e}", key_path.display()))),
    };
    let signing_key = crate::tls::crypto_provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| error(KEY, format!("{}: {e}", key_path.display())))?;
    if CertifiedKey::new(certs, signing_key).keys_match().is_err() {
        return Err(error(
            KEY,
            format!(
                "{} does not match the certificate in {}",
                key_path.display(),
                cert_path.display()
            ),
        ));
    }
    let cert_pem = read("redis.client_cert", cert_path)?;
    Ok(ClientTlsConfig {
        client_cert: cert_pem,
        client_key: key_pem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> RedisConfig {
        RedisConfig {
            url: url.into(),
            ..RedisConfig::default()
        }
    }

    #[test]
    fn plain_redis_needs_nothing() {
        assert!(certificates(&config("redis://127.0.0.1:6379/0"))
            .unwrap()
            .is_none());
    }

    #[test]
    fn tls_files_with_a_plain_url_name_the_field() {
        let mut c = config("redis://127.0.0.1:6379/0");
        c.client_key = Some("/nonexistent".into());
        let e = certificates(&c).unwrap_err();
        assert_eq!(e.field, "redis.client_key");
        assert!(e.message.contains("redis.url is redis://"), "{e}");

        let mut c = config("redis://ignored");
        c.cluster = vec!["rediss://a:1".into(), "redis://b:1".into()];
        c.ca = Some("/nonexistent".into());
        let e = certificates(&c).unwrap_err();
        assert_eq!(e.field, "redis.ca");
        assert!(e.message.contains("redis.cluster[1]"), "{e}");
    }

    #[test]
    fn client_cert_and_key_come_together() {
        let mut c = config("rediss://127.0.0.1:6380/0");
        c.client_cert = Some("/nonexistent".into());
        assert_eq!(certificates(&c).unwrap_err().field, "redis.client_key");
        let mut c = config("rediss://127.0.0.1:6380/0");
        c.client_key = Some("/nonexistent".into());
        assert_eq!(certificates(&c).unwrap_err().field, "redis.client_cert");
    }

    #[test]
    fn unreadable_or_empty_files_name_the_field_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();

        let mut c = config("rediss://127.0.0.1:6380/0");
        c.ca = Some(dir.path().join("missing.pem"));
        let e = certificates(&c).unwrap_err();
        assert_eq!(e.field, "redis.ca");
        assert!(e.message.contains("missing.pem"), "{e}");

        c.ca = Some(empty.clone());
        let e = certificates(&c).unwrap_err();
        assert_eq!(e.field, "redis.ca");
        assert!(e.message.contains("no certificate found"), "{e}");
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let a = rcgen::generate_simple_self_signed(vec!["a".into()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["b".into()]).unwrap();
        let mut c = config("rediss://127.0.0.1:6380/0");
        c.ca = Some(write("ca.pem", a.cert.pem()));
        c.client_cert = Some(write("cert.pem", a.cert.pem()));
        c.client_key = Some(write("key.pem", b.signing_key.serialize_pem()));
        let e = certificates(&c).unwrap_err();
        assert_eq!(e.field, "redis.client_key");
        assert!(e.message.contains("does not match"), "{e}");

        c.client_key = Some(write("good.pem", a.signing_key.serialize_pem()));
        let certs = certificates(&c).unwrap().unwrap();
        assert!(certs.client_tls.is_some());
        let roots = String::from_utf8(certs.root_cert.unwrap()).unwrap();
        assert!(
            roots.contains(a.cert.pem().lines().nth(1).unwrap()),
            "redis.ca is among the roots"
        );
    }
}
