//! The trust boundary, session side (issue 11 items 5, 6, 7, 8, 9, 13): every `X-Session-*`
//! header the app sees was written by the proxy, only the proxy writes the session cookie, and
//! neither the client nor a careless app can turn the session headers into something else.
//!
//! The real binary in front of a steerable app (every `X-Test-Reply: Name: value` request header
//! becomes a `Name: value` response header), per store: cookie, memory and a `redis-server`
//! spawned by the harness on a free port.

use std::time::Duration;

use crate::support::*;
use base64::Engine;
use sha2::{Digest, Sha256};

const COOKIE: &str = "session_id";

/// The app: answers every `X-Test-Reply: Name: value` request header with `Name: value`. Control
/// lines too large for a request header are built here, from the path:
/// `/bulk-delete/N` deletes `k0` … `k{N-1}`; `/bulk-set/N/M` sets N keys and M more whose value
/// no store can hold exactly (`1e400`), in one JSON object line. Those keys have a `.`, so they
/// get no header of their own: 256 headers would exceed this upstream's (hyper's) limit of 100.
async fn app() -> TestUpstream {
    TestUpstream::with(|seen| {
        let mut reply = Reply::ok();
        let path = seen.uri.path();
        if let Some(n) = path.strip_prefix("/bulk-delete/") {
            let n: usize = n.parse().unwrap();
            let keys: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
            reply = reply.header("X-Session-Delete", &keys.join(", "));
        }
        if let Some(rest) = path.strip_prefix("/bulk-set/") {
            let (good, bad) = rest.split_once('/').unwrap_or((rest, "0"));
            let (good, bad): (usize, usize) = (good.parse().unwrap(), bad.parse().unwrap());
            let pairs: Vec<String> = (0..good)
                .map(|i| format!("\"k.{i}\":{i}"))
                .chain((0..bad).map(|i| format!("\"b.{i}\":1e400")))
                .collect();
            reply = reply.header("X-Session-Set", &format!("{{{}}}", pairs.join(",")));
        }
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
        self.get_path("/", reply).await
    }

    async fn get_path(&mut self, path: &str, reply: &[&str]) -> Answer {
        let cookie = self.cookie.as_ref().map(|c| format!("{COOKIE}={c}"));
        let mut headers: Vec<(&str, &str)> = reply.iter().map(|r| ("x-test-reply", *r)).collect();
        if let Some(c) = &cookie {
            headers.push(("cookie", c.as_str()));
        }
        let a = get(self.addr, path, &headers).await;
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

// ---------------------------------------------------------------------------------------------
// Item 9: deletes of any length; a handful of warning lines per response at most

/// The session data the app was handed on the last request, parsed.
fn data_seen(up: &TestUpstream) -> serde_json::Map<String, serde_json::Value> {
    let seen = up.last();
    let data = seen.header("x-session-data").expect("a session");
    serde_json::from_str(data).unwrap()
}

async fn a_delete_naming_9000_keys_applies(driver: &str) {
    let up = app().await;
    let (proxy, _redis) = proxy(&up, driver);
    let mut b = Browser::new(&proxy);
    b.get(&[
        "X-Session-Set: {\"k1\":1,\"k8999\":2,\"kept\":3}",
        "X-Session-Delete: missing",
    ])
    .await;
    let a = b.get_path("/bulk-delete/9000", &[]).await;
    assert_eq!(a.status, 200, "{driver}: {}", a.text());
    b.get(&[]).await;
    let data = data_seen(&up);
    assert_eq!(
        data.keys().collect::<Vec<_>>(),
        ["kept"],
        "{driver}: the deletes were not applied"
    );
    proxy.assert_no_panic();
}

#[tokio::test]
async fn a_delete_naming_9000_keys_applies_redis_store() {
    a_delete_naming_9000_keys_applies("redis").await;
}

#[tokio::test]
async fn a_delete_naming_9000_keys_applies_memory_store() {
    a_delete_naming_9000_keys_applies("memory").await;
}

/// The WARN lines the proxy logged, as (message, fields).
fn warnings(proxy: &TestProxy) -> Vec<serde_json::Value> {
    proxy.logs_at("WARN")
}

async fn one_response_writes_a_handful_of_warnings(driver: &str) {
    let up = app().await;
    let (proxy, _redis) = proxy(&up, driver);
    for (round, (path, counts)) in [
        // 20,000 good keys in one line, of which the first 256 fit in a session.
        ("/bulk-set/20000", &[20_000 - 256][..]),
        // And 10,000 numbers no store can hold.
        ("/bulk-set/10000/10000", &[10_000, 10_000][..]),
    ]
    .into_iter()
    .enumerate()
    {
        let before = warnings(&proxy).len();
        let mut b = Browser::new(&proxy);
        let a = b.get_path(path, &[]).await;
        assert_eq!(a.status, 200, "{driver} {path}: {}", a.text());
        b.get(&[]).await;
        assert_eq!(data_seen(&up).len(), 256, "{driver} {path}");
        // Two requests a round: once their access lines are in, so are their warnings.
        assert!(proxy.wait_for_access_lines(2 * (round + 1), Duration::from_secs(5)));
        let lines = warnings(&proxy);
        let new = &lines[before..];
        assert!(
            new.len() <= 3,
            "{driver} {path}: {} warning lines",
            new.len()
        );
        for count in counts {
            assert!(
                new.iter()
                    .any(|l| l.get("count").and_then(|c| c.as_u64()) == Some(*count)),
                "{driver} {path}: no warning with count {count}: {new:?}"
            );
        }
    }
    proxy.assert_no_panic();
}

#[tokio::test]
async fn one_response_writes_a_handful_of_warnings_memory_store() {
    one_response_writes_a_handful_of_warnings("memory").await;
}

#[tokio::test]
async fn one_response_writes_a_handful_of_warnings_redis_store() {
    one_response_writes_a_handful_of_warnings("redis").await;
}

// ---------------------------------------------------------------------------------------------
// Item 7: every store hands back exactly what it accepted

fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

async fn values_that_cannot_come_back_are_refused(driver: &str) {
    let up = app().await;
    let (proxy, _redis) = proxy(&up, driver);
    let mut b = Browser::new(&proxy);
    let edge = format!("X-Session-Set: edge={}", nested(32));
    let deep = format!("X-Session-Set: deep={}", nested(127));
    let deep_in_object = format!("X-Session-Set: {{\"deep2\":{},\"ok2\":2}}", nested(33));
    let a = b
        .get(&[
            "X-Session-Set: ok=1",
            &edge,
            &deep,
            &deep_in_object,
            "X-Session-Set: big=123456789012345678901234",
            "X-Session-Set: {\"big2\":-99999999999999999999,\"max\":18446744073709551615}",
            "X-Session-Set: min=-9223372036854775808",
        ])
        .await;
    assert_eq!(a.status, 200, "{driver}");
    // The next request still has the session, with exactly what was accepted.
    b.get(&[]).await;
    let seen = up.last();
    let data = seen.header("x-session-data").expect("the session survived");
    assert_eq!(
        data,
        format!(
            "{{\"edge\":{},\"max\":18446744073709551615,\"min\":-9223372036854775808,\"ok\":1,\"ok2\":2}}",
            nested(32)
        ),
        "{driver}"
    );
    assert!(proxy.wait_for_log("cannot be stored exactly", Duration::from_secs(5)));
    let warned: Vec<String> = proxy
        .logs_at("WARN")
        .iter()
        .filter_map(|l| Some(format!("{} x{}", l.get("problem")?, l.get("count")?)))
        .collect();
    assert!(
        warned
            .iter()
            .any(|w| w.contains("nested deeper than 32") && w.ends_with("x2")),
        "{driver}: {warned:?}"
    );
    assert!(
        warned
            .iter()
            .any(|w| w.contains("cannot be stored exactly") && w.ends_with("x2")),
        "{driver}: {warned:?}"
    );
    proxy.assert_no_panic();
}

#[tokio::test]
async fn values_that_cannot_come_back_are_refused_cookie_store() {
    values_that_cannot_come_back_are_refused("cookie").await;
}

#[tokio::test]
async fn values_that_cannot_come_back_are_refused_memory_store() {
    values_that_cannot_come_back_are_refused("memory").await;
}

#[tokio::test]
async fn values_that_cannot_come_back_are_refused_redis_store() {
    values_that_cannot_come_back_are_refused("redis").await;
}

// ---------------------------------------------------------------------------------------------
// Item 6: different keys never share a header

fn collision_warnings(proxy: &TestProxy) -> usize {
    proxy
        .logs_at("WARN")
        .iter()
        .filter(|l| {
            l.get("message")
                .and_then(|m| m.as_str())
                .is_some_and(|m| m.contains("map to one X-Session-* header"))
        })
        .count()
}

async fn keys_that_share_a_header_get_none(driver: &str) {
    let up = app().await;
    let (proxy, _redis) = proxy(&up, driver);
    let mut b = Browser::new(&proxy);
    b.get(&["X-Session-Set: user_id=1", "X-Session-Set: role=admin"])
        .await;
    b.get(&[]).await;
    assert_eq!(up.last().header("x-session-user-id"), Some("1"), "{driver}");
    assert_eq!(collision_warnings(&proxy), 0);

    // A later response adds two other spellings of the same header: one warning for it.
    b.get(&["X-Session-Set: user-id=2", "X-Session-Set: USER_ID=3"])
        .await;
    assert!(proxy.wait_for_log("map to one X-Session-*", Duration::from_secs(5)));
    assert_eq!(collision_warnings(&proxy), 1, "{driver}");
    b.get(&[]).await;
    let seen = up.last();
    assert_eq!(
        seen.headers.get_all("x-session-user-id").iter().count(),
        0,
        "{driver}"
    );
    assert_eq!(seen.header("x-session-role"), Some("admin"), "{driver}");
    assert_eq!(
        seen.header("x-session-data"),
        Some("{\"USER_ID\":3,\"role\":\"admin\",\"user-id\":2,\"user_id\":1}"),
        "{driver}"
    );
    // Requests alone log nothing more.
    b.get(&[]).await;
    assert_eq!(collision_warnings(&proxy), 1, "{driver}");

    // Down to one spelling: the header is back, with that key's value.
    b.get(&["X-Session-Delete: user-id, USER_ID"]).await;
    b.get(&[]).await;
    assert_eq!(up.last().header("x-session-user-id"), Some("1"), "{driver}");
    proxy.assert_no_panic();
}

#[tokio::test]
async fn keys_that_share_a_header_get_none_cookie_store() {
    keys_that_share_a_header_get_none("cookie").await;
}

#[tokio::test]
async fn keys_that_share_a_header_get_none_memory_store() {
    keys_that_share_a_header_get_none("memory").await;
}

// ---------------------------------------------------------------------------------------------
// Item 8: sessions.max_bytes, for every store

fn size_errors(proxy: &TestProxy) -> Vec<serde_json::Value> {
    proxy
        .logs_at("ERROR")
        .into_iter()
        .filter(|l| l.get("session_bytes").is_some())
        .collect()
}

async fn a_session_cannot_grow_past_max_bytes(driver: &str) {
    let up = app().await;
    // The default limit, 16 KiB.
    let (proxy, _redis) = proxy(&up, driver);
    let mut b = Browser::new(&proxy);
    b.get(&["X-Session-Set: user=Ann"]).await;
    let cookie = b.cookie.clone().unwrap();

    let big = format!("X-Session-Set: big={}", "x".repeat(20_000));
    for extra in [
        None,
        Some("X-Session-Clear: 1"),
        Some("X-Session-Regenerate: 1"),
    ] {
        let mut reply = vec![big.as_str(), "X-Session-Set: also=1"];
        reply.extend(extra);
        let a = b.get(&reply).await;
        assert_eq!(a.status, 500, "{driver} {extra:?}");
        assert!(a.text().contains("size limit"), "{driver}: {}", a.text());
        assert!(
            a.set_cookies().is_empty(),
            "{driver}: {:?}",
            a.set_cookies()
        );
        // The old session is kept, untouched.
        b.get(&[]).await;
        assert_eq!(b.cookie.as_deref(), Some(cookie.as_str()));
        assert_eq!(
            up.last().header("x-session-data"),
            Some("{\"user\":\"Ann\"}"),
            "{driver} {extra:?}"
        );
    }
    // The login and two requests per refusal: once their access lines are in, so are the errors.
    assert!(proxy.wait_for_access_lines(7, Duration::from_secs(5)));
    let errors = size_errors(&proxy);
    assert_eq!(errors.len(), 3, "{driver}: one error line per refusal");
    let size = errors[0]["session_bytes"].as_u64().unwrap();
    assert!(size > 20_000 && size < 20_100, "{driver}: {size}");
    assert_eq!(errors[0]["limit"].as_u64(), Some(16 * 1024));

    // Just under the limit is fine.
    let fits = format!("X-Session-Set: big={}", "x".repeat(16_000));
    assert_eq!(
        b.get(&[&fits]).await.status,
        if driver == "cookie" { 500 } else { 200 }
    );
    proxy.assert_no_panic();
}

#[tokio::test]
async fn a_session_cannot_grow_past_max_bytes_cookie_store() {
    a_session_cannot_grow_past_max_bytes("cookie").await;
}

#[tokio::test]
async fn a_session_cannot_grow_past_max_bytes_memory_store() {
    a_session_cannot_grow_past_max_bytes("memory").await;
}

#[tokio::test]
async fn a_session_cannot_grow_past_max_bytes_redis_store() {
    a_session_cannot_grow_past_max_bytes("redis").await;
}

#[tokio::test]
async fn max_bytes_comes_from_the_environment() {
    let up = app().await;
    let (proxy, _redis) = proxy_with(&up, "memory", |b| b.env("SESSION_MAX_BYTES", "100"));
    let mut b = Browser::new(&proxy);
    let a = b
        .get(&[&format!("X-Session-Set: v={}", "x".repeat(100))])
        .await;
    assert_eq!(a.status, 500);
    assert!(proxy.wait_for_log("session_bytes", Duration::from_secs(5)));
    assert_eq!(size_errors(&proxy)[0]["limit"].as_u64(), Some(100));
    let a = b
        .get(&[&format!("X-Session-Set: v={}", "x".repeat(50))])
        .await;
    assert_eq!(a.status, 200);
}
