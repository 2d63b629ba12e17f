//! The signed session assertion: a compact JWS (RFC 7515/7519) the proxy adds to every forwarded
//! request that has a session, so an app that cannot trust the network in front of it can verify
//! the session with the proxy's public key instead of trusting plain `X-Session-*` headers.
//!
//! - [`Assertion`] holds the signing key, the claims' fixed parts and the rendered JWKS; it is
//!   built from the `assertion` config block and rebuilt on SIGHUP (key rotation).
//! - Signing costs far more than the rest of the session work, so each worker keeps a small cache:
//!   an assertion is reused for the same session handle and the same data until half its ttl has
//!   passed (see [`CACHE_ENTRIES`]). An app therefore always receives a token with at least
//!   `ttl / 2` of life left.
//! - The JWKS (RFC 7517) lists the current key and the previous ones, each with `kid` = its RFC 7638
//!   thumbprint, and is served by the admin listener and on the public listener at [`JWKS_PATH`].
//!
//! JWS encoding, key parsing and JWK thumbprints come from `jsonwebtoken`; the public key of the
//! signing key is derived with `aws-lc-rs`. Nothing here does crypto or base64 by hand. Reading
//! and publishing keys lives in `keys`.

mod keys;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Response};
use http_body_util::{Either, Full};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{EncodingKey, Header};
use serde::Serialize;
use serde_json::Value;

pub use keys::{generate_ed25519_pem, KeygenError};
use keys::{load_private, load_public, published, thumbprint};

use super::store::{Data, Handle, Millis, Session};
use crate::config::{AssertionConfig, Config};
use crate::error::{ProxyError, ResponseBody};
use crate::worker::PerWorker;

/// Where the public listener answers with the JWKS itself (never forwarded to the app).
pub const JWKS_PATH: &str = "/.well-known/session-proxy/jwks.json";

/// `Cache-Control` of the JWKS: verifiers refetch within five minutes, which is how long a newly
/// added key may go unseen; publish a new key (as a previous one) at least that long before
/// signing with it if verifiers must never see an unknown `kid`.
pub const JWKS_CACHE_CONTROL: &str = "max-age=300";

/// Sessions remembered per worker. An entry is the token (~300 bytes plus 4/3 of the session
/// data's JSON) and the data it was signed over (shared with the store where it can be), so 4096
/// entries of 300-byte sessions cost about 3 MiB per worker. When the cache
/// is full, entries past their reuse window are dropped; if none is, the whole cache is cleared
/// (a burst of more than 4096 distinct live sessions per worker within `ttl / 2` signs each once
/// more, nothing worse).
pub const CACHE_ENTRIES: usize = 4096;

/// Why the assertion key material could not be used. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AssertionError {
    /// The key file could not be read.
    #[error("assertion key {path}: cannot read it")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The signing key is not a PEM PKCS#8 Ed25519 or ECDSA P-256 private key.
    #[error("assertion.key {path}: not a PEM PKCS#8 Ed25519 or ECDSA P-256 private key ({reason}); create one with `session-proxy keygen --assertion --out FILE`")]
    PrivateKey { path: PathBuf, reason: String },
    /// A previous key is not a PEM SPKI Ed25519 or ECDSA P-256 public key.
    #[error(
        "assertion.previous_keys {path}: not a PEM (SPKI) Ed25519 or ECDSA P-256 public key ({reason})"
    )]
    PublicKey { path: PathBuf, reason: String },
    /// `assertion.header` is not a legal header name (validated in config; kept for safety).
    #[error("assertion.header {0:?} is not a valid header name")]
    HeaderName(String),
}

/// The claims of one assertion. `session` is the same object the app gets as `X-Session-Data`.
#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    iat: u64,
    nbf: u64,
    exp: u64,
    sid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    session: &'a Data,
}

/// One cached token.
struct Entry {
    /// The data it was signed over: a hit needs the same data, not only the same session.
    data: Arc<Data>,
    /// Its `iat` in milliseconds; reused until `signed + ttl / 2`.
    signed: Millis,
    token: HeaderValue,
}

/// One worker's cache, keyed by the SHA-256 of the session ID (the bytes behind the handle), so
/// the lookup needs no allocation.
#[derive(Default)]
struct Cache {
    /// Keyed by the session's handle (a SHA-256 of the ID, never the ID itself).
    entries: HashMap<Handle, Entry>,
}

/// The signer, the JWKS and the per-worker caches.
pub struct Assertion {
    header: HeaderName,
    issuer: String,
    audience: String,
    ttl: Duration,
    subject_key: Option<String>,
    key: EncodingKey,
    jws_header: Header,
    jwks: Bytes,
    cache: PerWorker<Mutex<Cache>>,
    /// [`CACHE_ENTRIES`]; a field so unit tests can fill the cache quickly.
    capacity: usize,
}

impl std::fmt::Debug for Assertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assertion")
            .field("header", &self.header)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("kid", &self.jws_header.kid)
            .finish_non_exhaustive()
    }
}

impl Assertion {
    /// Reads the keys the config names and renders the JWKS. `audience` is the `aud` claim
    /// ([`AssertionConfig::audience_for`] the upstream URL).
    pub fn load(cfg: &AssertionConfig, audience: &str) -> Result<Assertion, AssertionError> {
        let header = HeaderName::from_bytes(cfg.header.as_bytes())
            .map_err(|_| AssertionError::HeaderName(cfg.header.clone()))?;
        let (key, alg, current) = load_private(&cfg.key)?;
        let kid = thumbprint(&current).map_err(|reason| AssertionError::PrivateKey {
            path: cfg.key.clone(),
            reason,
        })?;
        let mut keys = vec![published(current, alg, kid.clone())];
        for path in &cfg.previous_keys {
            let (jwk, alg) = load_public(path)?;
            let kid = thumbprint(&jwk).map_err(|reason| AssertionError::PublicKey {
                path: path.clone(),
                reason,
            })?;
            // Listing the current key among the previous ones as well is harmless: publish once.
            if keys
                .iter()
                .all(|k| k.common.key_id.as_deref() != Some(&kid))
            {
                keys.push(published(jwk, alg, kid));
            }
        }
        let jwks =
            serde_json::to_vec(&JwkSet { keys }).map_err(|e| AssertionError::PrivateKey {
                path: cfg.key.clone(),
                reason: e.to_string(),
            })?;
        let mut jws_header = Header::new(alg);
        jws_header.kid = Some(kid);
        jws_header.typ = Some("JWT".into());
        let assertion = Assertion {
            header,
            issuer: cfg.issuer.clone(),
            audience: audience.to_owned(),
            ttl: cfg.ttl,
            subject_key: cfg.subject_key.clone(),
            key,
            jws_header,
            jwks: Bytes::from(jwks),
            cache: PerWorker::new(),
            capacity: CACHE_ENTRIES,
        };
        // Sign once now, so a key the signer refuses fails at start-up (or reload), naming the
        // file, rather than on every request.
        assertion
            .sign(&Data::new(), "start-up-check", 0)
            .map_err(|e| AssertionError::PrivateKey {
                path: cfg.key.clone(),
                reason: e.to_string(),
            })?;
        Ok(assertion)
    }

    /// The assertion the config asks for: `None` when the `assertion` block is absent.
    pub fn from_config(config: &Config) -> Result<Option<Arc<Assertion>>, AssertionError> {
        config
            .assertion
            .as_ref()
            .map(|a| Assertion::load(a, &a.audience_for(&config.upstream.url)).map(Arc::new))
            .transpose()
    }

    /// The request header that carries the assertion.
    pub fn header_name(&self) -> &HeaderName {
        &self.header
    }

    /// The JWKS document (current key first), rendered once at load.
    pub fn jwks(&self) -> Bytes {
        self.jwks.clone()
    }

    /// The JWKS as an HTTP answer: `GET`/`HEAD` get the document with
    /// `Cache-Control: max-age=300`; other methods get 405.
    pub fn jwks_response(&self, method: &Method) -> Response<ResponseBody> {
        if method != Method::GET && method != Method::HEAD {
            return ProxyError::MethodNotAllowed { allow: "GET, HEAD" }.into_response();
        }
        let mut res = Response::new(Either::Right(Full::new(self.jwks())));
        let headers = res.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/jwk-set+json"),
        );
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(JWKS_CACHE_CONTROL),
        );
        res
    }

    /// The current key's `kid`.
    pub fn kid(&self) -> &str {
        self.jws_header.kid.as_deref().unwrap_or("")
    }

    /// Adds the assertion for `session` to a request bound for the app, from this worker's cache
    /// when a token for the same session and data is less than `ttl / 2` old. On a signing
    /// failure (which the start-up check makes unexpected) the header is left out: the app then
    /// treats the request as anonymous, which fails closed.
    pub fn inject(&self, headers: &mut HeaderMap, session: &Session, handle: &Handle, now: Millis) {
        let digest = *handle;
        let cache = self.cache.get_or_init(Default::default);
        let reuse_for = self.ttl.as_millis() as u64 / 2;
        {
            let cache = cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(e) = cache.entries.get(&digest) {
                if now < e.signed.saturating_add(reuse_for)
                    && (Arc::ptr_eq(&e.data, &session.data) || *e.data == *session.data)
                {
                    headers.insert(self.header.clone(), e.token.clone());
                    return;
                }
            }
        }
        let token = match self.sign(&session.data, handle.as_str(), now) {
            Ok(token) => token,
            Err(e) => {
                tracing::error!(error = %e, "cannot sign the session assertion; forwarding without it");
                return;
            }
        };
        headers.insert(self.header.clone(), token.clone());
        let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.entries.len() >= self.capacity && !cache.entries.contains_key(&digest) {
            cache
                .entries
                .retain(|_, e| now < e.signed.saturating_add(reuse_for));
            if cache.entries.len() >= self.capacity {
                cache.entries.clear();
            }
        }
        cache.entries.insert(
            digest,
            Entry {
                data: Arc::clone(&session.data),
                // `iat` is whole seconds: counting the window from it keeps every reused token
                // at least `ttl / 2` from its `exp`.
                signed: now - now % 1000,
                token,
            },
        );
    }

    /// Signs one assertion: `iat` = `nbf` = now (whole seconds), `exp` = `iat + ttl`.
    pub fn sign(
        &self,
        data: &Data,
        handle: &str,
        now: Millis,
    ) -> Result<HeaderValue, jsonwebtoken::errors::Error> {
        let iat = now / 1000;
        let claims = Claims {
            iss: &self.issuer,
            aud: &self.audience,
            iat,
            nbf: iat,
            exp: iat + self.ttl.as_secs(),
            sid: handle,
            sub: self
                .subject_key
                .as_deref()
                .and_then(|k| data.get(k))
                .and_then(subject),
            session: data,
        };
        let token = jsonwebtoken::encode(&self.jws_header, &claims, &self.key)?;
        // A compact JWS is base64url and dots only: always a legal header value.
        HeaderValue::from_maybe_shared(Bytes::from(token))
            .map_err(|_| jsonwebtoken::errors::ErrorKind::InvalidToken.into())
    }
}

/// `sub` must be a string (RFC 7519 §4.1.2): a string value as is, a number or boolean as its JSON
/// text; objects, arrays and null give no `sub`.
fn subject(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
