//! Certificates made in the test (never committed) and an HTTPS client that trusts them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

use super::Answer;

/// A throwaway certificate authority.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        TestCa { issuer }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf for `localhost` and 127.0.0.1: (cert PEM, key PEM, cert DER).
    pub fn leaf(&self, common_name: &str) -> (String, String, Vec<u8>) {
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem(), cert.der().to_vec())
    }

    /// Writes a leaf's cert and key into `dir` as cert.pem / key.pem; returns their paths and DER.
    pub fn write_leaf(&self, dir: &Path, common_name: &str) -> (PathBuf, PathBuf, Vec<u8>) {
        let (cert, key, der) = self.leaf(common_name);
        let (cp, kp) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cp, cert).unwrap();
        std::fs::write(&kp, key).unwrap();
        (cp, kp, der)
    }
}

/// A client as rustls builds it by default: the aws-lc-rs provider, which offers X25519MLKEM768
/// first.
pub fn client_config(ca_pem: &str, alpn: &[&[u8]]) -> rustls::ClientConfig {
    client_config_with(ca_pem, alpn, rustls::crypto::aws_lc_rs::default_provider())
}

pub fn client_config_with(
    ca_pem: &str,
    alpn: &[&[u8]],
    provider: rustls::crypto::CryptoProvider,
) -> rustls::ClientConfig {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// The result of one HTTPS request.
pub struct TlsAnswer {
    pub version: Version,
    pub answer: Answer,
}

/// One HTTPS request to `addr` (SNI `localhost`), HTTP/2 when `h2`, else HTTP/1.1.
pub async fn https_request(
    addr: SocketAddr,
    ca_pem: &str,
    h2: bool,
    req: Request<Full<Bytes>>,
) -> TlsAnswer {
    let alpn: &[&[u8]] = if h2 { &[b"h2"] } else { &[b"http/1.1"] };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(ca_pem, alpn)));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = tokio::time::timeout(
        Duration::from_secs(10),
        connector.connect(ServerName::try_from("localhost").unwrap(), tcp),
    )
    .await
    .expect("handshake in time")
    .expect("handshake");
    let io = TokioIo::new(tls);
    let mut req = req;
    if !h2 {
        // HTTP/1.1 clients send origin-form plus Host (RFC 9112 §3.2); the proxy refuses an
        // absolute-form target without a matching Host.
        let authority = req.uri().authority().map(|a| a.to_string());
        if let Some(authority) = authority {
            let pq = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/".into());
            *req.uri_mut() = pq.parse().unwrap();
            req.headers_mut()
                .entry(http::header::HOST)
                .or_insert(authority.parse().unwrap());
        }
    }
    let res = if h2 {
        let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .unwrap();
        tokio::spawn(conn);
        sender.send_request(req).await.unwrap()
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        sender.send_request(req).await.unwrap()
    };
    let version = res.version();
    let (parts, body) = res.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    TlsAnswer {
        version,
        answer: Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        },
    }
}

/// Just the handshake: the certificate the server presents now.
pub async fn presented_cert(addr: SocketAddr, ca_pem: &str) -> Result<Vec<u8>, String> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(ca_pem, &[])));
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    Ok(tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default())
}

/// The key exchange group a handshake with `addr` (SNI `localhost`) settles on, for a client
/// built on `provider`.
pub async fn negotiated_group(
    addr: SocketAddr,
    ca_pem: &str,
    provider: rustls::crypto::CryptoProvider,
) -> rustls::NamedGroup {
    let config = client_config_with(ca_pem, &[], provider);
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("handshake");
    tls.get_ref()
        .1
        .negotiated_key_exchange_group()
        .expect("a key exchange took place")
        .name()
}
