//! The trust boundary, session side (issue 11 items 5, 6, 7, 8, 9, 13): every `X-Session-*`
//! header the app sees was written by the proxy, only the proxy writes the session cookie, and
//! neither the client nor a careless app can turn the session headers into something else.
//!
//! The real binary in front of a steerable app (every `X-Test-Reply: Name: value` request header
//! becomes a `Name: value` response header), per store: cookie, memory and a `redis-server`
//! spawned by the harness on a free port.
mod support;

use base64::Engine;
use sha2::{Digest, Sha256};
use support::*;

const COOKIE: &str = "session_id";

/// The app: answers every `X-Test-Reply: Name: value` request header with `Name: value`.
async fn app() -> TestUpstream {
    TestUpstream::with(|seen| {
        let mut reply = Reply::ok();
        for v in seen.headers.get_all("x-test-reply") {
            let line = std::str::from_utf8(v.as_bytes()).unwrap();
            let (name, value) = line.split_once(": ").expect("Name: value");
            reply = reply.header(name, value);
        }
        reply
    })
    .await
}

/// A proxy with `driver` in front of `up`; the Redis server (when the driver needs one) lives as
/// long as the returned value.
fn proxy(up: &TestUpstream, driver: &str) -> (TestProxy, Option<RedisServer>) {
    proxy_with(up, driver, |b| b)
}

fn proxy_with(
    up: &TestUpstream,
    driver: &str,
    extra: impl FnOnce(ProxyBuilder) -> ProxyBuilder,
) -> (TestProxy, Option<RedisServer>) {
    let redis = (driver == "redis").then(RedisServer::start);
    let mut b = ProxyBuilder::new(&up.url()).driver(driver);
    if let Some(r) = &redis {
        b = b.set("redis.url", &format!("\"{}\"", r.url()));
    }
    (extra(b).start(), redis)
}

/// A one-cookie browser: sends the session cookie it holds, keeps what `Set-Cookie` says.
struct Browser {
    addr: std::net::SocketAddr,
    cookie: Option<String>,
}

impl Browser {
    fn new(proxy: &TestProxy) -> Browser {
        Browser {
            addr: proxy.addr,
            cookie: None,
        }
    }

    /// GET / with the held cookie; the app answers with the `reply` header lines.
    async fn get(&mut self, reply: &[&str]) -> Answer {
        let cookie = self.cookie.as_ref().map(|c| format!("{COOKIE}={c}"));
        let mut headers: Vec<(&str, &str)> = reply.iter().map(|r| ("x-test-reply", *r)).collect();
        if let Some(c) = &cookie {
            headers.push(("cookie", c.as_str()));
        }
        let a = get(self.addr, "/", &headers).await;
        match a.cookie(COOKIE) {
            Some(v) if v.is_empty() => self.cookie = None,
            Some(v) => self.cookie = Some(v),
            None => {}
        }
        a
    }
}

/// Every `x-session-*` header the app received, as (name, value).
fn session_headers(seen: &Seen) -> Vec<(String, String)> {
    seen.headers
        .iter()
        .filter(|(n, _)| n.as_str().starts_with("x-session-"))
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// base64url (no padding) of SHA-256: what the README promises `X-Session-Id` is.
fn sha256_b64url(text: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(text.as_bytes()))
}

// ---------------------------------------------------------------------------------------------
// Item 13: X-Session-Id is a handle, not the credential

async fn x_session_id_is_a_handle_never_a_credential(driver: &str) {
    let up = app().await;
    let (proxy, redis) = proxy(&up, driver);
    let mut b = Browser::new(&proxy);
    b.get(&["X-Session-Set: user=Ann"]).await;
    let cookie = b.cookie.clone().expect("session created");

    b.get(&[]).await;
    let handle = up.last().header("x-session-id").unwrap().to_owned();
    assert_eq!(handle.len(), 43, "{driver}");
    assert!(
        handle
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
        "{driver}: {handle}"
    );
    assert_ne!(handle, cookie, "{driver}: the app was handed the cookie");
    if driver != "cookie" {
        // The cookie is the bare ID for the server-side stores.
        assert_eq!(handle, sha256_b64url(&cookie), "{driver}");
    }
    if let Some(redis) = &redis {
        // The Redis key is the same digest: `session:{hex(d[0])}hex(d[1..])`.
        let d = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&handle)
            .unwrap();
        let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
        let key = format!("session:{{{}}}{}", &hex[..2], &hex[2..]);
        assert_eq!(redis.cli(&["exists", &key]).trim(), "1", "{key}");
    }

    // Stable for the session's life.
    b.get(&["X-Session-Set: n=1"]).await;
    b.get(&[]).await;
    assert_eq!(up.last().header("x-session-id"), Some(handle.as_str()));

    // Never accepted in place of the cookie.
    let a = get_with_cookie(proxy.addr, "/", COOKIE, &handle).await;
    assert_eq!(a.status, 200);
    assert_eq!(
        session_headers(&up.last()),
        vec![],
        "{driver}: the handle opened the session"
    );
    assert_eq!(a.cookie(COOKIE).as_deref(), Some(""), "{driver}: expired");

    // New after Regenerate, and again after Clear + Set.
    b.get(&["X-Session-Regenerate: 1"]).await;
    b.get(&[]).await;
    let regenerated = up.last().header("x-session-id").unwrap().to_owned();
    assert_ne!(regenerated, handle, "{driver}");
    b.get(&["X-Session-Clear: 1", "X-Session-Set: user=Bob"])
        .await;
    b.get(&[]).await;
    let fresh = up.last().header("x-session-id").unwrap().to_owned();
    assert!(fresh != handle && fresh != regenerated, "{driver}");
    proxy.assert_no_panic();
}

#[tokio::test]
async fn x_session_id_is_a_handle_cookie_store() {
    x_session_id_is_a_handle_never_a_credential("cookie").await;
}

#[tokio::test]
async fn x_session_id_is_a_handle_memory_store() {
    x_session_id_is_a_handle_never_a_credential("memory").await;
}

#[tokio::test]
async fn x_session_id_is_a_handle_redis_store() {
    x_session_id_is_a_handle_never_a_credential("redis").await;
}

// ---------------------------------------------------------------------------------------------
// Item 5: the app cannot plant the session cookie

/// `Set-Cookie` values an app might send that a browser could return as `session_id`.
const PLANTED: &[&str] = &[
    "session_id=planted",
    "=session_id=planted",
    "==session_id=planted",
    " = session_id = planted",
    "=\"session_id=planted\"",
    "\"session_id\"=planted",
    "Session_Id=planted; Path=/",
    "=session_id",
];

/// Cookies of the app's own that must pass untouched.
const THEIRS: &[&str] = &[
    "theme=dark; Path=/",
    "session_id2=keep",
    "xsession_id=keep",
    "pref=session_id=keep",
];

async fn the_app_cannot_plant_our_cookie(driver: &str) {
    let up = app().await;
    let (proxy, _redis) = proxy(&up, driver);
    for with_session_write in [false, true] {
        let mut reply: Vec<String> = PLANTED
            .iter()
            .chain(THEIRS)
            .map(|c| format!("Set-Cookie: {c}"))
            .collect();
        if with_session_write {
            reply.push("X-Session-Set: user=Ann".into());
        }
        let reply: Vec<&str> = reply.iter().map(String::as_str).collect();
        let a = Browser::new(&proxy).get(&reply).await;
        assert_eq!(a.status, 200);
        let lines = a.set_cookies();
        for planted in PLANTED {
            assert!(
                !lines.iter().any(|l| l.contains("planted")),
                "{driver}: {planted:?} reached the client: {lines:?}"
            );
        }
        for theirs in THEIRS {
            assert!(
                lines.iter().any(|l| l == theirs),
                "{driver}: {theirs:?} lost"
            );
        }
        let ours: Vec<&String> = lines
            .iter()
            .filter(|l| l.starts_with(&format!("{COOKIE}=")))
            .collect();
        assert_eq!(
            ours.len(),
            usize::from(with_session_write),
            "{driver}: {lines:?}"
        );
    }
    proxy.assert_no_panic();
}

#[tokio::test]
async fn the_app_cannot_plant_our_cookie_cookie_store() {
    the_app_cannot_plant_our_cookie("cookie").await;
}

#[tokio::test]
async fn the_app_cannot_plant_our_cookie_memory_store() {
    the_app_cannot_plant_our_cookie("memory").await;
}
