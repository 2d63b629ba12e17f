//! Forwarding to the upstream: header hygiene, `X-Forwarded-*`, upgrades, timeouts, pooling.
//!
//! Bodies are never buffered: the client's [`Incoming`] body becomes the upstream request body
//! (wrapped only to enforce `upstream.max_body` and to filter trailers), and the upstream's
//! `Incoming` body is handed back to the server to stream to the client, trailers filtered.
//!
//! [`target`] decides which request targets and authorities are acceptable, [`forwarded`] writes
//! the client-address family of headers, [`trailers`] filters trailer sections both ways,
//! `hop_by_hop` removes what must not cross the proxy, `connector` builds the client's TCP and TLS,
//! [`client`] keeps the upstream connections (per worker thread) and sends on them.

pub mod client;
mod connector;
pub mod forwarded;
mod hop_by_hop;
pub mod target;
pub mod trailers;

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::combinators::MapErr;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;

pub use connector::UpstreamSetupError;
pub use hop_by_hop::{remove_hop_by_hop, upgrade_protocol, HOP_BY_HOP};

use crate::config::UpstreamConfig;
use crate::error::{ProxyError, UpstreamFailure};

/// The body sent upstream: the client's, streamed, trailers filtered, with the optional size cap.
/// Errors reading the client's body are tagged [`ClientBodyError`] so they are not mistaken for
/// upstream failures.
pub type UpstreamBody =
    Limited<MapErr<trailers::Filtered<Incoming>, fn(hyper::Error) -> ClientBodyError>>;

/// The upstream's response body as the client receives it: streamed, trailers filtered, its
/// connection pooled again once it has been read to the end.
pub type DownstreamBody = trailers::Filtered<client::Returning>;

/// The client's request body broke (malformed chunking, or the client hung up mid-body).
#[derive(Debug, thiserror::Error)]
#[error("reading the client's request body")]
pub struct ClientBodyError(#[source] pub hyper::Error);

/// What the server knows about the client connection.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub peer: SocketAddr,
    pub tls: bool,
    /// `peer`'s address as the forwarding headers write it, formatted once per connection.
    pub addr: forwarded::PeerAddr,
}

impl ClientInfo {
    pub fn new(peer: SocketAddr, tls: bool) -> ClientInfo {
        ClientInfo {
            peer,
            tls,
            addr: forwarded::PeerAddr::new(peer.ip()),
        }
    }
}

pub struct Upstream {
    /// Connections are pooled per worker thread: a pooled connection's task lives on the runtime
    /// that opened it; sharing one pool across threads would hand thread B a connection driven
    /// by thread A and turn every request into two cross-thread wake-ups.
    client: client::Client,
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    /// The upstream URL's path without a trailing `/`, prepended to every request path.
    base_path: String,
    authority_header: HeaderValue,
    preserve_host: bool,
    timeout: Duration,
    max_body: Option<u64>,
    /// `upstream.upgrades`, lower case.
    upgrades: Vec<String>,
    max_response_headers: usize,
    trusted_proxies: Vec<ipnet::IpNet>,
}
static VIA_11: HeaderValue = HeaderValue::from_static("1.1 session-proxy");
static VIA_2: HeaderValue = HeaderValue::from_static("2 session-proxy");
static UPGRADE_TOKEN: HeaderValue = HeaderValue::from_static("upgrade");
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

impl Upstream {
    pub fn new(
        cfg: &UpstreamConfig,
        trusted_proxies: &[ipnet::IpNet],
    ) -> Result<Upstream, UpstreamSetupError> {
        let connector = connector::connector(cfg)?;

        let url = &cfg.url;
        let authority = url.authority().ok_or(UpstreamSetupError::NoHost)?.clone();
        let base_path = url.path().trim_end_matches('/').to_owned();
        let scheme = url.scheme().cloned().unwrap_or(http::uri::Scheme::HTTP);
        let dst = Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|_| UpstreamSetupError::NoHost)?;
        Ok(Upstream {
            client: client::Client::new(connector, dst, cfg.max_response_headers),
            scheme,
            authority_header: HeaderValue::from_str(authority.as_str())
                .map_err(|_| UpstreamSetupError::NoHost)?,
            authority,
            base_path,
            preserve_host: cfg.preserve_host,
            timeout: cfg.timeout,
            max_body: cfg.max_body,
            upgrades: cfg.upgrades.clone(),
            max_response_headers: cfg.max_response_headers,
            trusted_proxies: trusted_proxies.to_vec(),
        })
    }

    /// The `Upgrade` value to forward, if the client asks for an upgrade (HTTP/1.1, `Upgrade` plus
    /// the `upgrade` token in `Connection`) and every protocol it names is in `upstream.upgrades`.
    /// Any other upgrade is not forwarded: an upstream that switched to, say, h2c would turn the
    /// connection into a raw pipe to the app, past every check and the session layer.
    pub fn allowed_upgrade(&self, version: Version, headers: &HeaderMap) -> Option<HeaderValue> {
        let proto = upgrade_protocol(version, headers)?;
        self.protocols_allowed(&proto).then_some(proto)
    }

    fn protocols_allowed(&self, upgrade: &HeaderValue) -> bool {
        let Ok(list) = upgrade.to_str() else {
            return false;
        };
        let mut protocols = list.split(',').map(str::trim).filter(|p| !p.is_empty());
        let mut any = false;
        let all = protocols.all(|p| {
            any = true;
            let name = p.split('/').next().unwrap_or(p).trim();
            self.upgrades.iter().any(|u| u.eq_ignore_ascii_case(name))
        });
        any && all
    }

    /// Rewrites the client's request head for the upstream. Runs before the session layer so that
    /// a `Connection:` list cannot remove a header the session layer added. `upgrade` is what
    /// [`Upstream::allowed_upgrade`] returned: the only upgrade that survives.
    pub fn prepare(
        &self,
        parts: &mut Parts,
        client: ClientInfo,
        upgrade: Option<HeaderValue>,
    ) -> Result<(), ProxyError> {
        if let Some(limit) = self.max_body {
            if content_length(&parts.headers).is_some_and(|len| len > limit) {
                return Err(ProxyError::BodyTooLarge { limit });
            }
        }
        target::check(&parts.method, &parts.uri, parts.version, &parts.headers)
            .map_err(ProxyError::BadTarget)?;
        let original_host = target::host_of(&parts.uri, &parts.headers);
        let headers = &mut parts.headers;
        if headers.contains_key(header::TRANSFER_ENCODING) {
            // hyper has already dropped Content-Length and will close the connection after this
            // exchange (RFC 9112 §6.3); make sure no length reaches the upstream beside chunking.
            headers.remove(header::CONTENT_LENGTH);
        }
        remove_hop_by_hop(headers);
        if let Some(proto) = upgrade {
            headers.insert(header::CONNECTION, UPGRADE_TOKEN.clone());
            headers.insert(header::UPGRADE, proto);
        }

        forwarded::apply(
            headers,
            &forwarded::Hop {
                peer: &client.addr,
                tls: client.tls,
                host: original_host.as_ref(),
            },
            &self.trusted_proxies,
        );
        headers.append(
            header::VIA,
            if parts.version == Version::HTTP_2 {
                VIA_2.clone()
            } else {
                VIA_11.clone()
            },
        );
        if !headers.contains_key(X_REQUEST_ID) {
            if let Some(id) = new_request_id() {
                headers.insert(X_REQUEST_ID, id);
            }
        }

        let host = match (&original_host, self.preserve_host) {
            (Some(h), true) => h.clone(),
            _ => self.authority_header.clone(),
        };
        headers.insert(header::HOST, host);

        if let Some(uri) = self.upstream_uri(&parts.uri)? {
            parts.uri = uri;
        }
        parts.version = Version::HTTP_11;
        Ok(())
    }

    /// The request target sent upstream, in origin-form (an HTTP/1.1 connection of our own
    /// wants `/path?query`, not an absolute URI): dot-segments removed (so nothing climbs out of
    /// the prefix), then the upstream URL's path prepended. `OPTIONS *` stays `*`. `None` when
    /// the client's target is already exactly that (nearly every request): nothing is rebuilt.
    fn upstream_uri(&self, original: &Uri) -> Result<Option<Uri>, ProxyError> {
        let path = target::normalize_path(original.path()).map_err(ProxyError::BadTarget)?;
        let query = original.query();
        let unchanged = self.base_path.is_empty() && matches!(path, std::borrow::Cow::Borrowed(_));
        let path_and_query = if unchanged {
            if original.scheme().is_none() && original.authority().is_none() {
                return Ok(None);
            }
            // Absolute-form (HTTP/1.1 proxy-style, or HTTP/2's :scheme and :authority).
            original
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"))
        } else {
            let prefix = if path == "*" { "" } else { &self.base_path };
            let mut pq =
                String::with_capacity(prefix.len() + path.len() + query.map_or(0, |q| q.len() + 1));
            pq.push_str(prefix);
            pq.push_str(&path);
            if let Some(q) = query {
                pq.push('?');
                pq.push_str(q);
            }
            http::uri::PathAndQuery::try_from(pq)
                .map_err(|_| ProxyError::BadRequest("request target is not a valid path"))?
        };
        Ok(Some(Uri::from(path_and_query)))
    }

    /// Sends the prepared request and waits for the response head (bounded by `upstream.timeout`).
    /// `upgrading` says whether an upgrade was forwarded: a `101` for any other request (or for a
    /// protocol outside `upstream.upgrades`) is a protocol violation by the upstream and a 502,
    /// never relayed; relaying it would splice the client straight to the app.
    pub async fn send(
        &self,
        parts: Parts,
        body: Incoming,
        upgrading: bool,
    ) -> Result<Response<client::Returning>, ProxyError> {
        let limit = self.max_body.map_or(usize::MAX, |l| l as usize);
        let body = trailers::Filtered::new(body)
            .map_err(ClientBodyError as fn(hyper::Error) -> ClientBodyError);
        let req = Request::from_parts(parts, Limited::new(body, limit));
        let (response, conn) = match tokio::time::timeout(self.timeout, self.client.send(req)).await
        {
            Ok(Ok(sent)) => sent,
            Ok(Err(e)) => return Err(self.classify(e)),
            Err(_) => {
                return Err(ProxyError::Upstream {
                    kind: UpstreamFailure::Timeout,
                    detail: format!("no response head within {:?}", self.timeout),
                })
            }
        };
        let (mut parts, body) = response.into_parts();
        let upgrade = if parts.status == StatusCode::SWITCHING_PROTOCOLS {
            Some(self.check_switch(upgrading, parts.headers.get(header::UPGRADE))?)
        } else {
            None
        };
        remove_hop_by_hop(&mut parts.headers);
        let switched = upgrade.is_some();
        if let Some(proto) = upgrade {
            parts
                .headers
                .insert(header::CONNECTION, UPGRADE_TOKEN.clone());
            parts.headers.insert(header::UPGRADE, proto);
        }
        parts.headers.append(header::VIA, VIA_11.clone());
        // The upstream hop's version is not the client's: an HTTP/1.0 app must not turn the
        // client's status line into HTTP/1.0 (and cost it keep-alive). hyper writes the version
        // the client connection speaks from here.
        parts.version = Version::HTTP_11;
        let body = if switched {
            // The connection is the tunnel's now (through the response's `OnUpgrade`).
            client::Returning::unpooled(body)
        } else {
            self.client.returning(body, conn)
        };
        Ok(Response::from_parts(parts, body))
    }

    /// The upstream answered 101: acceptable only for a forwarded upgrade, to a listed protocol.
    fn check_switch(
        &self,
        upgrading: bool,
        to: Option<&HeaderValue>,
    ) -> Result<HeaderValue, ProxyError> {
        let violation = |detail: &str| ProxyError::Upstream {
            kind: UpstreamFailure::Protocol,
            detail: detail.to_owned(),
        };
        if !upgrading {
            return Err(violation(
                "the upstream answered 101 Switching Protocols to a request that asked for no upgrade it may have",
            ));
        }
        match to {
            Some(proto) if self.protocols_allowed(proto) => Ok(proto.clone()),
            _ => Err(violation(
                "the upstream switched to a protocol not listed in upstream.upgrades",
            )),
        }
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

    fn classify(&self, e: client::SendError) -> ProxyError {
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
        if find_source::<hyper::Error>(&e).is_some_and(hyper::Error::is_parse_too_large) {
            return ProxyError::Upstream {
                kind: UpstreamFailure::Reset,
                detail: format!(
                    "the upstream's response head is too large: more than upstream.max_response_headers ({}) header lines, or over 64 KiB",
                    self.max_response_headers
                ),
            };
        }
        let kind = if matches!(e, client::SendError::Connect(_)) {
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

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn new_request_id() -> Option<HeaderValue> {
    let id: u128 = rand::random();
    HeaderValue::try_from(format!("{id:032x}")).ok()
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
