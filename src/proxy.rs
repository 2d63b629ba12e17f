//! Forwarding to the upstream: header hygiene, `X-Forwarded-*`, upgrades, timeouts, pooling.
//!
//! Bodies are never buffered: the client's [`Incoming`] body becomes the upstream request body
//! (wrapped only to enforce `upstream.max_body`), and the upstream's `Incoming` body is handed back
//! to the server to stream to the client.

use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::combinators::MapErr;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::config::UpstreamConfig;
use crate::error::{ProxyError, UpstreamFailure};
use crate::worker::PerWorker;

/// The body sent upstream: the client's, streamed, with the optional size cap. Errors reading the
/// client's body are tagged [`ClientBodyError`] so they are not mistaken for upstream failures.
pub type UpstreamBody = Limited<MapErr<Incoming, fn(hyper::Error) -> ClientBodyError>>;

/// The client's request body broke (malformed chunking, or the client hung up mid-body).
#[derive(Debug, thiserror::Error)]
#[error("reading the client's request body")]
pub struct ClientBodyError(#[source] pub hyper::Error);

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

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
}

/// What the server knows about the client connection.
#[derive(Debug, Clone, Copy)]
pub struct ClientInfo {
    pub peer: SocketAddr,
    pub tls: bool,
}

pub struct Upstream {
    /// One pool per worker thread, built on first use there. A pooled connection's task lives on
    /// the runtime that opened it; sharing one pool across threads would hand thread B a
    /// connection driven by thread A and turn every request into two cross-thread wake-ups.
    pools: PerWorker<Client<Connector, UpstreamBody>>,
    connector: Connector,
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    /// The upstream URL's path without a trailing `/`, prepended to every request path.
    base_path: String,
    authority_header: HeaderValue,
    preserve_host: bool,
    timeout: Duration,
    max_body: Option<u64>,
}

static VIA_11: HeaderValue = HeaderValue::from_static("1.1 session-proxy");
static VIA_2: HeaderValue = HeaderValue::from_static("2 session-proxy");
static PROTO_HTTP: HeaderValue = HeaderValue::from_static("http");
static PROTO_HTTPS: HeaderValue = HeaderValue::from_static("https");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

impl Upstream {
    pub fn new(cfg: &UpstreamConfig) -> Result<Upstream, UpstreamSetupError> {
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

        let url = &cfg.url;
        let authority = url
            .authority()
            .expect("validated: upstream.url has a host")
            .clone();
        let base_path = url.path().trim_end_matches('/').to_owned();
        Ok(Upstream {
            pools: PerWorker::new(),
            connector,
            scheme: url.scheme().cloned().unwrap_or(http::uri::Scheme::HTTP),
            authority_header: HeaderValue::from_str(authority.as_str())
                .expect("an authority is a valid header value"),
            authority,
            base_path,
            preserve_host: cfg.preserve_host,
            timeout: cfg.timeout,
            max_body: cfg.max_body,
        })
    }

    /// Rewrites the client's request head for the upstream. Runs before the session layer so that
    /// a `Connection:` list cannot remove a header the session layer added.
    pub fn prepare(&self, parts: &mut Parts, client: ClientInfo) -> Result<(), ProxyError> {
        if let Some(limit) = self.max_body {
            if content_length(&parts.headers).is_some_and(|len| len > limit) {
                return Err(ProxyError::BodyTooLarge { limit });
            }
        }
        check_target(parts)?;
        let upgrade = upgrade_protocol(parts.version, &parts.headers);
        let original_host = host_of(parts);
        let headers = &mut parts.headers;
        if headers.contains_key(header::TRANSFER_ENCODING) {
            // hyper has already dropped Content-Length and will close the connection after this
            // exchange (RFC 9112 §6.3); make sure no length reaches the upstream beside chunking.
            headers.remove(header::CONTENT_LENGTH);
        }
        remove_hop_by_hop(headers);
        if let Some(proto) = upgrade {
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(header::UPGRADE, proto);
        }

        append_forwarded_for(headers, client.peer.ip());
        headers.insert(
            X_FORWARDED_PROTO,
            if client.tls {
                PROTO_HTTPS.clone()
            } else {
                PROTO_HTTP.clone()
            },
        );
        match &original_host {
            Some(host) => {
                headers.insert(X_FORWARDED_HOST, host.clone());
            }
            // No Host to report: never pass on a value the client made up.
            None => {
                headers.remove(X_FORWARDED_HOST);
            }
        }
        headers.append(
            header::VIA,
            if parts.version == Version::HTTP_2 {
                VIA_2.clone()
            } else {
                VIA_11.clone()
            },
        );
        if !headers.contains_key(X_REQUEST_ID) {
            headers.insert(X_REQUEST_ID, new_request_id());
        }

        let host = match (&original_host, self.preserve_host) {
            (Some(h), true) => h.clone(),
            _ => self.authority_header.clone(),
        };
        headers.insert(header::HOST, host);

        parts.uri = self.upstream_uri(&parts.uri)?;
        parts.version = Version::HTTP_11;
        Ok(())
    }

    fn upstream_uri(&self, original: &Uri) -> Result<Uri, ProxyError> {
        let pq = original
            .path_and_query()
            .map(|pq| pq.as_str())
            .unwrap_or("/");
        let path_and_query = if self.base_path.is_empty() {
            http::uri::PathAndQuery::try_from(pq)
        } else {
            http::uri::PathAndQuery::try_from(format!("{}{}", self.base_path, pq))
        }
        .map_err(|_| ProxyError::BadRequest("request target is not a valid path"))?;
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
            .map_err(|_| ProxyError::BadRequest("request target is not a valid path"))
    }

    /// Sends the prepared request and waits for the response head (bounded by `upstream.timeout`).
    pub async fn send(
        &self,
        parts: Parts,
        body: Incoming,
    ) -> Result<Response<Incoming>, ProxyError> {
        let limit = self.max_body.map_or(usize::MAX, |l| l as usize);
        let body = body.map_err(ClientBodyError as fn(hyper::Error) -> ClientBodyError);
        let req = Request::from_parts(parts, Limited::new(body, limit));
        let response = match tokio::time::timeout(self.timeout, self.client().request(req)).await {
            Ok(Ok(res)) => res,
            Ok(Err(e)) => return Err(self.classify(e)),
            Err(_) => {
                return Err(ProxyError::Upstream {
                    kind: UpstreamFailure::Timeout,
                    detail: format!("no response head within {:?}", self.timeout),
                })
            }
        };
        let (mut parts, body) = response.into_parts();
        let upgraded = parts.status == StatusCode::SWITCHING_PROTOCOLS;
        let upgrade = upgraded
            .then(|| parts.headers.get(header::UPGRADE).cloned())
            .flatten();
        remove_hop_by_hop(&mut parts.headers);
        if let Some(proto) = upgrade {
            parts
                .headers
                .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            parts.headers.insert(header::UPGRADE, proto);
        }
        parts.headers.append(header::VIA, VIA_11.clone());
        Ok(Response::from_parts(parts, body))
    }

    fn client(&self) -> &Client<Connector, UpstreamBody> {
        self.pools.get_or_init(|| {
            Client::builder(TokioExecutor::new())
                .pool_timer(TokioTimer::new())
                .pool_idle_timeout(Duration::from_secs(60))
                .pool_max_idle_per_host(1024)
                .build(self.connector.clone())
        })
    }

    /// Can a TCP connection to the upstream be opened? For `/healthz`; never on the request path.
    pub async fn probe(&self, within: Duration) -> Result<(), String> {
        let port =
            self.authority
                .port_u16()
                .unwrap_or(if self.scheme == http::uri::Scheme::HTTPS {
                    443
                } else {
                    80
                });
        let host = self
            .authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        match tokio::time::timeout(within, tokio::net::TcpStream::connect((host, port))).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("cannot connect to {}: {e}", self.authority)),
            Err(_) => Err(format!(
                "no connection to {} within {within:?}",
                self.authority
            )),
        }
    }

    fn classify(&self, e: hyper_util::client::legacy::Error) -> ProxyError {
        if let Some(limit) = self.max_body {
            if find_source::<LengthLimitError>(&e).is_some() {
                return ProxyError::BodyTooLarge { limit };
            }
        }
        if find_source::<ClientBodyError>(&e).is_some() {
            // The client's side broke, not the upstream's: a 400 (if anyone is still listening),
            // and no upstream-failure warning.
            return ProxyError::BadRequest("the request body was malformed or cut short");
        }
        let kind = if e.is_connect() {
            match find_source::<std::io::Error>(&e) {
                Some(io) if io.kind() == std::io::ErrorKind::TimedOut => {
                    UpstreamFailure::ConnectTimeout
                }
                _ => UpstreamFailure::Connect,
            }
        } else {
            UpstreamFailure::Reset
        };
        ProxyError::Upstream {
            kind,
            detail: crate::error::chain(&e),
        }
    }
}

/// Relays bytes both ways once client and upstream have both switched protocols; the tunnel's
/// lifecycle (connection slot, shutdown, idle timeout, metrics) lives in [`crate::tunnel`].
pub use crate::tunnel::splice as splice_upgrade;

/// The protocol an HTTP/1.1 request asks to upgrade to, if it really asks (both `Upgrade` and the
/// `upgrade` token in `Connection`). HTTP/2 has no such mechanism.
pub fn upgrade_protocol(version: Version, headers: &HeaderMap) -> Option<HeaderValue> {
    if version != Version::HTTP_11 {
        return None;
    }
    let proto = headers.get(header::UPGRADE)?;
    connection_tokens(headers)
        .any(|t| t.eq_ignore_ascii_case("upgrade"))
        .then(|| proto.clone())
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Removes the hop-by-hop headers of RFC 9110 §7.6.1, including every header `Connection` names.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = connection_tokens(headers)
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        KEEP_ALIVE,
        PROXY_CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
    ] {
        headers.remove(name);
    }
}

fn append_forwarded_for(headers: &mut HeaderMap, ip: IpAddr) {
    // An IPv4 client on a dual-stack socket shows up as ::ffff:a.b.c.d; log it as the app expects.
    let ip = match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    let mut list = String::new();
    for v in headers.get_all(X_FORWARDED_FOR) {
        if let Ok(s) = v.to_str() {
            if !list.is_empty() {
                list.push_str(", ");
            }
            list.push_str(s);
        }
    }
    if !list.is_empty() {
        list.push_str(", ");
    }
    use std::fmt::Write;
    let _ = write!(list, "{ip}");
    if let Ok(v) = HeaderValue::try_from(list) {
        headers.insert(X_FORWARDED_FOR, v);
    }
}

/// The request target and `Host` (RFC 9112 §3.2). Refused with 400:
/// - any duplicate `Host` (two differing ones are how routing-confusion attacks start);
/// - a missing `Host` on HTTP/1.1, whatever the target form;
/// - `CONNECT` (authority-form): this is a reverse proxy, not a tunnel;
/// - an authority-form target on any other method;
/// - an absolute-form target (or HTTP/2 `:authority`) with a `Host` that names another authority:
///   RFC 9112 §3.2 requires the client to send the identical value, and a disagreement is the
///   shape of host-override and cache-poisoning attacks. A conforming absolute-form request is
///   accepted (RFC 9112 §3.2.2) and forwarded in origin-form.
fn check_target(parts: &Parts) -> Result<(), ProxyError> {
    if parts.method == http::Method::CONNECT {
        return Err(ProxyError::BadRequest("CONNECT is not supported"));
    }
    let mut hosts = parts.headers.get_all(header::HOST).iter();
    let (host, second) = (hosts.next(), hosts.next());
    if second.is_some() {
        return Err(ProxyError::BadRequest("more than one Host header"));
    }
    if host.is_none() && parts.version == Version::HTTP_11 {
        return Err(ProxyError::BadRequest("missing Host header"));
    }
    if let Some(authority) = parts.uri.authority() {
        if parts.uri.scheme().is_none() {
            return Err(ProxyError::BadRequest("authority-form target"));
        }
        match host {
            Some(h)
                if h.as_bytes()
                    .eq_ignore_ascii_case(authority.as_str().as_bytes()) => {}
            Some(_) => {
                return Err(ProxyError::BadRequest(
                    "the target's authority differs from Host",
                ))
            }
            None if parts.version == Version::HTTP_2 => {}
            None => return Err(ProxyError::BadRequest("absolute-form target without Host")),
        }
    }
    Ok(())
}

/// The host the client addressed: `:authority` (HTTP/2) or absolute-form target, else `Host`.
fn host_of(parts: &Parts) -> Option<HeaderValue> {
    if let Some(auth) = parts.uri.authority() {
        return HeaderValue::from_str(auth.as_str()).ok();
    }
    parts.headers.get(header::HOST).cloned()
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn new_request_id() -> HeaderValue {
    let id: u128 = rand::random();
    HeaderValue::try_from(format!("{id:032x}")).expect("hex is a valid header value")
}

fn find_source<'a, T: StdError + 'static>(e: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(found) = err.downcast_ref::<T>() {
            return Some(found);
        }
        cur = err.source();
    }
    None
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
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_named_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, X-Secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert(KEEP_ALIVE, HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(header::TRAILER, HeaderValue::from_static("x"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(PROXY_CONNECTION, HeaderValue::from_static("keep-alive"));
        h.insert(
            header::PROXY_AUTHORIZATION,
            HeaderValue::from_static("Basic x"),
        );
        h.insert(
            header::PROXY_AUTHENTICATE,
            HeaderValue::from_static("Basic"),
        );
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        remove_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
    }

    #[test]
    fn forwarded_for_appends() {
        let mut h = HeaderMap::new();
        h.append(X_FORWARDED_FOR, HeaderValue::from_static("1.1.1.1"));
        h.append(X_FORWARDED_FOR, HeaderValue::from_static("2.2.2.2"));
        append_forwarded_for(&mut h, "3.3.3.3".parse().unwrap());
        assert_eq!(h[X_FORWARDED_FOR], "1.1.1.1, 2.2.2.2, 3.3.3.3");
        let mut h = HeaderMap::new();
        append_forwarded_for(&mut h, "::ffff:10.0.0.1".parse().unwrap());
        assert_eq!(h[X_FORWARDED_FOR], "10.0.0.1");
    }

    #[test]
    fn upgrade_needs_both_headers_and_http11() {
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(upgrade_protocol(Version::HTTP_11, &h).is_none());
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert!(upgrade_protocol(Version::HTTP_11, &h).is_some());
        assert!(upgrade_protocol(Version::HTTP_2, &h).is_none());
    }
}
