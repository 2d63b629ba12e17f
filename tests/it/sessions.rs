//! The session contract (issue 3), end to end: the real `session-proxy` binary in front of a real
//! upstream over TCP on loopback.
//!
//! The upstream here is a tiny "app" whose answer the test steers through the request: every
//! `X-Test-Reply: Name: value` request header becomes a `Name: value` response header, so a test
//! can make the app send any `X-Session-*` control without a new upstream per case. What the app
//! received is read back with `TestUpstream::last()`.

use std::time::{Duration, SystemTime};

use crate::support::*;

const COOKIE: &str = "session_id";

/// The steerable app described above.
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

/// A one-cookie browser: sends the session cookie it holds, stores what `Set-Cookie` says (an
/// empty value means "forget it").
struct Browser {
    addr: std::net::SocketAddr,
    name: String,
    cookie: Option<String>,
}

impl Browser {
    fn new(proxy: &TestProxy) -> Browser {
        Browser::named(proxy, COOKIE)
    }

    fn named(proxy: &TestProxy, name: &str) -> Browser {
        Browser {
            addr: proxy.addr,
            name: name.to_owned(),
            cookie: None,
        }
    }

    /// GET `path` with the held cookie; the app answers with the `reply` header lines.
    async fn get(&mut self, path: &str, reply: &[&str]) -> Answer {
        self.get_with(path, reply, &[]).await
    }

    async fn get_with(&mut self, path: &str, reply: &[&str], extra: &[(&str, &str)]) -> Answer {
        let cookie = self.cookie.as_ref().map(|c| format!("{}={c}", self.name));
        let mut headers: Vec<(&str, &str)> = reply.iter().map(|r| ("x-test-reply", *r)).collect();
        if let Some(c) = &cookie {
            headers.push(("cookie", c.as_str()));
        }
        headers.extend_from_slice(extra);
        let answer = get(self.addr, path, &headers).await;
        if let Some(v) = answer.cookie(&self.name) {
            self.cookie = (!v.is_empty()).then_some(v);
        }
        answer
    }
}

/// Every header the app saw whose name, lowercased with `_` read as `-`, starts with `x-session-`.
fn session_headers(seen: &Seen) -> Vec<(String, String)> {
    seen.headers
        .iter()
        .filter(|(n, _)| n.as_str().replace('_', "-").starts_with("x-session-"))
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// The one value of header `name` the app saw (panics if it saw several).
/// What the app sees as `X-Session-Id` for a memory or Redis cookie (the bare ID): its handle,
/// base64url of SHA-256 (issue 11 item 13; tested in `trust_session.rs`).
fn handle_of(id: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(id.as_bytes()))
}

fn one<'a>(seen: &'a Seen, name: &str) -> Option<&'a str> {
    let all: Vec<_> = seen.headers.get_all(name).iter().collect();
    assert!(all.len() <= 1, "{name} arrived {} times", all.len());
    seen.header(name)
}

/// Our Set-Cookie line, split into (value, attributes lowercased-name → value).
fn our_set_cookie(a: &Answer, name: &str) -> Option<(String, Vec<(String, String)>)> {
    let lines: Vec<String> = a
        .set_cookies()
        .into_iter()
        .filter(|c| c.starts_with(&format!("{name}=")))
        .collect();
    assert!(lines.len() <= 1, "several Set-Cookie for {name}: {lines:?}");
    let line = lines.into_iter().next()?;
    let mut parts = line.split("; ");
    let value = parts.next().unwrap()[name.len() + 1..].to_owned();
    let attrs = parts
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_ascii_lowercase(), v.to_owned())
        })
        .collect();
    Some((value, attrs))
}

fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Asserts `a` tells the browser to forget our cookie.
fn assert_expires_cookie(a: &Answer, name: &str) {
    let (value, attrs) = our_set_cookie(a, name)
        .unwrap_or_else(|| panic!("no expiring Set-Cookie: {:?}", a.set_cookies()));
    assert_eq!(value, "", "{:?}", a.set_cookies());
    assert_eq!(attr(&attrs, "max-age"), Some("0"));
    let expires = httpdate::parse_http_date(attr(&attrs, "expires").expect("Expires")).unwrap();
    assert!(expires < SystemTime::now());
    assert_eq!(a.header("cache-control"), Some("no-store"));
}

fn assert_no_session_seen(up: &TestUpstream) {
    let seen = up.last();
    assert_eq!(
        session_headers(&seen),
        vec![],
        "the app saw session headers"
    );
}

// ---------------------------------------------------------------------------------------------
// Request path: spoofing and the cookie

const SPOOFS: &[(&str, &str)] = &[
    ("X-Session-Id", "spoofed-id"),
    ("x-session-user-id", "0"),
    ("X_Session_Id", "spoofed-underscore"),
    ("X-SESSION-DATA", "{\"admin\":true}"),
    ("X_SESSION_ROLE", "admin"),
];

#[tokio::test]
async fn spoofed_session_headers_are_stripped_without_a_session() {
    let up = app().await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let mut extra = SPOOFS.to_vec();
    extra.push(("X-Other", "kept"));
    let a = get(proxy.addr, "/", &extra).await;
    assert_eq!(a.status, 200);
    assert_no_session_seen(&up);
    assert_eq!(up.last().header("x-other"), Some("kept"));
    // No session is created just because a request arrived.
    assert!(a.set_cookies().is_empty(), "{:?}", a.set_cookies());
}

#[tokio::test]
async fn spoofed_session_headers_are_stripped_with_a_valid_session() {
    let up = app().await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let mut b = Browser::new(&proxy);
    b.get("/login", &["X-Session-Set: user_id=7"]).await;
    assert!(b.cookie.is_some());
    b.get_with("/", &[], SPOOFS).await;
    let seen = up.last();
    let id = one(&seen, "x-session-id").expect("real id");
    assert_ne!(id, "spoofed-id");
    assert_eq!(id.len(), 43);
    assert_eq!(one(&seen, "x-session-user-id"), Some("7"));
    assert_eq!(one(&seen, "x-session-data"), Some("{\"user_id\":7}"));
    let mut names: Vec<String> = session_headers(&seen).into_iter().map(|(n, _)| n).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "x-session-created",
            "x-session-data",
            "x-session-id",
            "x-session-last-seen",
            "x-session-user-id"
        ],
        "only the proxy's own session headers"
    );
    assert!(seen.header("x_session_id").is_none() && seen.header("x_session_role").is_none());
    assert!(seen.header("x-session-role").is_none());
}

#[tokio::test]
async fn the_session_cookie_never_reaches_the_app_but_other_cookies_do() {
    let up = app().await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let mut b = Browser::new(&proxy);
    b.get("/login", &["X-Session-Set: user=Ann"]).await;
    let ours = b.cookie.clone().unwrap();

    let header = format!("theme=dark; {COOKIE}={ours}; q=\"a b\"");
    get(proxy.addr, "/", &[("cookie", header.as_str())]).await;
    let seen = up.last();
    assert_eq!(seen.header("cookie"), Some("theme=dark; q=\"a b\""));
    assert_eq!(seen.header("x-session-user"), Some("Ann"));

    // Only ours: the Cookie header goes away entirely.
    b.get("/", &[]).await;
    let seen = up.last();
    assert!(seen.headers.get("cookie").is_none());
    assert_eq!(seen.header("x-session-user"), Some("Ann"));

    // A non-ASCII (UTF-8) cookie beside ours neither hides our session nor gets lost.
    let header = format!("pref=caf\u{e9}; {COOKIE}={ours}");
    get(proxy.addr, "/", &[("cookie", header.as_str())]).await;
    let seen = up.last();
    assert_eq!(seen.header("x-session-user"), Some("Ann"));
    assert_eq!(
        seen.headers["cookie"].as_bytes(),
        "pref=caf\u{e9}".as_bytes()
    );

    // Nor does it leak when it is not valid.
    let header = format!("{COOKIE}=garbage; other=1");
    get(proxy.addr, "/", &[("cookie", header.as_str())]).await;
    assert_eq!(up.last().header("cookie"), Some("other=1"));
}

// ---------------------------------------------------------------------------------------------
// Response path: the controls

#[tokio::test]
async fn set_delete_and_clear() {
    let up = app().await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let mut b = Browser::new(&proxy);

    let a = b
        .get("/", &["X-Session-Set: a=1", "X-Session-Set: b=two"])
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("cache-control"), Some("no-store"));
    b.get("/", &[]).await;
    assert_eq!(
        up.last().header("x-session-data"),
        Some("{\"a\":1,\"b\":\"two\"}")
    );

    let a = b.get("/", &["X-Session-Delete: a, missing"]).await;
    assert!(our_set_cookie(&a, COOKIE).is_some());
    b.get("/", &[]).await;
    let seen = up.last();
    assert_eq!(seen.header("x-session-data"), Some("{\"b\":\"two\"}"));
    assert!(seen.header("x-session-a").is_none());
    assert_eq!(seen.header("x-session-b"), Some("two"));

    let a = b.get("/", &["X-Session-Clear: 1"]).await;
    assert_expires_cookie(&a, COOKIE);
    assert!(b.cookie.is_none());
    b.get("/", &[]).await;
    assert_no_session_seen(&up);
}

#[tokio::test]
async fn regenerate_keeps_the_data_under_a_new_id() {
    let up = app().await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let mut b = Browser::new(&proxy);
    b.get("/", &["X-Session-Set: user=Ann"]).await;
    b.get("/", &[]).await;
    let before = up.last().header("x-session-id").unwrap().to_owned();

    let a = b.get("/", &["X-Session-Regenerate: 1"]).await;
    assert!(our_set_cookie(&a, COOKIE).is_some());
    b.get("/", &[]).await;
    let seen = up.last();
    assert_ne!(seen.header("x-session-id").unwrap(), before);
    assert_eq!(seen.header("x-session-data"), Some("{\"user\":\"Ann\"}"));
}

#[tokio::test]
async fn clear_then_set_starts_a_fresh_session() {
    let up = app().await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let mut b = Browser::new(&proxy);
    b.get("/", &["X-Session-Set: user=Ann", "X-Session-Set: cart=3"])
        .await;
    b.get("/", &[]).await;
    let before = up.last().header("x-session-id").unwrap().to_owned();

    // Set listed first on purpose: the order of application is fixed, not the order of lines.
    let a = b
        .get("/", &["X-Session-Set: user=Bob", "X-Session-Clear: 1"])
        .await;
    let (value, _) = our_set_cookie(&a, COOKIE).unwrap();
    assert!(!value.is_empty(), "a new session, not an expired cookie");
    b.get("/", &[]).await;
    let seen = up.last();
    assert_ne!(seen.header("x-session-id").unwrap(), before);
    assert_eq!(seen.header("x-session-data"), Some("{\"user\":\"Bob\"}"));
}

/// A proxy (cookie store) in front of the steerable app, and a browser that has logged in with the
/// app's `sets` (one `X-Session-Set` line each) and asked again: returns what the app saw then.
async fn set_then_read(sets: &[&str]) -> (Seen, Browser, TestUpstream, TestProxy) {
    let up = app().await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let lines: Vec<String> = sets.iter().map(|s| format!("X-Session-Set: {s}")).collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let mut b = Browser::new(&proxy);
    b.get("/", &lines).await;
    b.get("/", &[]).await;
    (up.last(), b, up, proxy)
}

/// Asserts the app saw each header of `want` exactly once with that value.
fn assert_seen(seen: &Seen, want: &[(&str, &str)]) {
    for (name, value) in want {
        assert_eq!(one(seen, name), Some(*value), "{name}");
    }
}

#[tokio::test]
async fn set_values_are_json_typed() {
    let (seen, mut b, up, _proxy) = set_then_read(&[
        "count=3",
        "ok=true",
        "name=\"Jos\\u00e9\"",
        "plain=Ann",
        "{\"obj_a\":1,\"obj_b\":[true,null],\"obj_c\":{\"k\":\"v\"}}",
    ])
    .await;
    assert_seen(
        &seen,
        &[
            (
                "x-session-data",
                "{\"count\":3,\"name\":\"Jos\\u00e9\",\"obj_a\":1,\"obj_b\":[true,null],\
                 \"obj_c\":{\"k\":\"v\"},\"ok\":true,\"plain\":\"Ann\"}",
            ),
            ("x-session-count", "3"),
            ("x-session-ok", "true"),
            ("x-session-name", "\"Jos\\u00e9\""),
            ("x-session-plain", "Ann"),
            ("x-session-obj-a", "1"),
            ("x-session-obj-b", "[true,null]"),
            ("x-session-obj-c", "{\"k\":\"v\"}"),
        ],
    );

    // An object line merges into what is there; it does not replace the map.
    b.get("/", &["X-Session-Set: {\"count\":4}"]).await;
    b.get("/", &[]).await;
    assert_seen(
        &up.last(),
        &[("x-session-count", "4"), ("x-session-plain", "Ann")],
    );
}

#[tokio::test]
async fn session_data_header_is_exact_ascii_json_for_non_ascii_data() {
    // Raw UTF-8 in the app's header and JSON escapes must land as the same data.
    let (seen, ..) = set_then_read(&[
        "name=Jos\u{e9}",
        "{\"zh\":\"\u{4e2d}\u{6587}\",\"emoji\":\"\\ud83d\\ude00\"}",
        "caf\u{e9}=1",
        "id=shadow",
        "line=\"a\\r\\nb\"",
    ])
    .await;
    assert_seen(
        &seen,
        &[
            (
                "x-session-data",
                "{\"caf\\u00e9\":1,\"emoji\":\"\\ud83d\\ude00\",\"id\":\"shadow\",\
                 \"line\":\"a\\r\\nb\",\"name\":\"Jos\\u00e9\",\"zh\":\"\\u4e2d\\u6587\"}",
            ),
            ("x-session-name", "\"Jos\\u00e9\""),
            ("x-session-zh", "\"\\u4e2d\\u6587\""),
            ("x-session-line", "\"a\\r\\nb\""),
        ],
    );
    assert!(seen.headers["x-session-data"].as_bytes().is_ascii());
    // `id` and non-token keys get no header of their own; X-Session-Id is still the real ID.
    assert_ne!(one(&seen, "x-session-id"), Some("shadow"));
    assert_eq!(
        session_headers(&seen).len(),
        // id, data, created, last-seen + the four simple keys
        4 + 4,
        "{:?}",
        session_headers(&seen)
    );
}

#[tokio::test]
async fn response_session_headers_never_reach_the_client() {
    let up = app().await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let mut b = Browser::new(&proxy);
    let a = b
        .get(
            "/",
            &[
                "X-Session-Set: a=1",
                "X-Session-Set: novalue",
                "X-Session-Delete: zzz",
                "X-Session-Regenerate: 1",
                "X-Session-User-Id: 9",
                "X_Session_Other: x",
                "X-SESSION-DATA: {}",
                "X-Session-Id: leak",
                "X-App: kept",
            ],
        )
        .await;
    assert_eq!(a.status, 200);
    let leaked: Vec<_> = a
        .headers
        .keys()
        .filter(|n| n.as_str().replace('_', "-").starts_with("x-session-"))
        .collect();
    assert!(leaked.is_empty(), "{leaked:?}");
    assert_eq!(a.header("x-app"), Some("kept"));
    assert_eq!(a.text(), "hello from upstream");
    // The malformed line was ignored with a warning; the good one applied.
    assert!(proxy.wait_for_log("ignored X-Session-* lines", Duration::from_secs(2)));
    assert!(proxy.logs().iter().any(|l| l.contains("WARN")
        && l.contains("ignored X-Session-* lines")
        && l.contains("no '='")));
    b.get("/", &[]).await;
    assert_eq!(up.last().header("x-session-data"), Some("{\"a\":1}"));

    // Also with no session involved at all.
    let a = get(
        proxy.addr,
        "/",
        &[
            ("x-test-reply", "X-Session-Whatever: 1"),
            ("x-test-reply", "X-App: kept"),
        ],
    )
    .await;
    assert!(a.header("x-session-whatever").is_none());
    assert!(a.set_cookies().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Bad cookies and expiry

#[tokio::test]
async fn tampered_truncated_garbage_and_foreign_cookies_are_no_session() {
    let up = app().await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let mut b = Browser::new(&proxy);
    b.get("/", &["X-Session-Set: user=Ann"]).await;
    let good = b.cookie.clone().unwrap();

    let mut flipped = good.clone().into_bytes();
    let i = flipped.len() / 2;
    flipped[i] = if flipped[i] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();

    let foreign = {
        let other = ProxyBuilder::new(&up.url())
            .set("sessions.secret", &format!("\"{OTHER_SECRET}\""))
            .start();
        let mut o = Browser::new(&other);
        o.get("/", &["X-Session-Set: user=Mallory"]).await;
        o.cookie.unwrap()
    };

    for bad in [
        flipped.as_str(),
        &good[..good.len() - 5],
        &good[..20],
        "garbage",
        "!!!not-base64!!!",
        &format!("{good}AAAA"),
        foreign.as_str(),
    ] {
        let a = get_with_cookie(proxy.addr, "/", COOKIE, bad).await;
        assert_eq!(a.status, 200, "{bad}");
        assert_no_session_seen(&up);
        assert_expires_cookie(&a, COOKIE);
    }
    // The good one still works.
    let a = get_with_cookie(proxy.addr, "/", COOKIE, &good).await;
    assert_eq!(a.status, 200);
    assert_eq!(up.last().header("x-session-user"), Some("Ann"));
    assert!(a.set_cookies().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Secrets and size

#[tokio::test]
async fn secret_rotation_with_previous_secrets() {
    let up = app().await;
    let quoted = |s: &str| format!("\"{s}\"");
    // Sealed under A (the default test secret).
    let a_proxy = ProxyBuilder::new(&up.url()).start();
    let mut b = Browser::new(&a_proxy);
    b.get("/", &["X-Session-Set: user=Ann"]).await;
    let sealed_a = b.cookie.clone().unwrap();

    // B with previous [A]: accepted, re-sealed under B.
    let rotated = ProxyBuilder::new(&up.url())
        .set("sessions.secret", &quoted(OTHER_SECRET))
        .set(
            "sessions.previous_secrets",
            &format!("[{}]", quoted(SECRET)),
        )
        .start();
    let a = get_with_cookie(rotated.addr, "/", COOKIE, &sealed_a).await;
    assert_eq!(up.last().header("x-session-user"), Some("Ann"));
    let id = up.last().header("x-session-id").unwrap().to_owned();
    let (sealed_b, attrs) = our_set_cookie(&a, COOKIE).expect("re-sealed");
    assert!(!sealed_b.is_empty() && sealed_b != sealed_a);
    assert!(attr(&attrs, "max-age").is_some());
    // Sealed under B now: no further re-seal.
    let a = get_with_cookie(rotated.addr, "/", COOKIE, &sealed_b).await;
    assert!(a.set_cookies().is_empty());

    // Only B: the re-sealed cookie works, the old one does not.
    let b_only = ProxyBuilder::new(&up.url())
        .set("sessions.secret", &quoted(OTHER_SECRET))
        .start();
    let a = get_with_cookie(b_only.addr, "/", COOKIE, &sealed_b).await;
    assert_eq!(up.last().header("x-session-user"), Some("Ann"));
    assert_eq!(up.last().header("x-session-id"), Some(id.as_str()));
    assert!(a.set_cookies().is_empty());
    let a = get_with_cookie(b_only.addr, "/", COOKIE, &sealed_a).await;
    assert_no_session_seen(&up);
    assert_expires_cookie(&a, COOKIE);
}

#[tokio::test]
async fn a_session_too_large_for_a_cookie_is_a_500_and_the_old_cookie_stays() {
    let up = app().await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let mut b = Browser::new(&proxy);
    b.get("/", &["X-Session-Set: user=Ann"]).await;
    let before = b.cookie.clone().unwrap();

    let big = format!("X-Session-Set: blob={}", "x".repeat(4000));
    let a = b.get("/", &[big.as_str(), "X-App: should-not-pass"]).await;
    assert_eq!(a.status, 500);
    assert!(a.text().contains("too large"), "{}", a.text());
    assert!(a.set_cookies().is_empty(), "{:?}", a.set_cookies());
    assert!(a.header("x-app").is_none());
    assert_eq!(b.cookie.as_deref(), Some(before.as_str()));

    assert!(proxy.wait_for_log("set_cookie_bytes", Duration::from_secs(2)));
    let line = proxy
        .logs()
        .into_iter()
        .find(|l| l.contains("set_cookie_bytes"))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["level"], "ERROR", "{line}");
    let size = v["set_cookie_bytes"].as_u64().expect(&line);
    assert!(size > 4096, "{line}");

    // The client's previous cookie still holds the previous session.
    b.get("/", &[]).await;
    assert_eq!(
        up.last().header("x-session-data"),
        Some("{\"user\":\"Ann\"}")
    );
    // Just under the limit is fine.
    let fits = format!("X-Session-Set: blob={}", "x".repeat(2000));
    let a = b.get("/", &[fits.as_str()]).await;
    assert_eq!(a.status, 200);
    let line = a.set_cookies().pop().unwrap();
    assert!(line.len() <= 4096);
}

// ---------------------------------------------------------------------------------------------
// The cookie itself

#[tokio::test]
async fn an_unchanged_session_gets_no_set_cookie() {
    let up = app().await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let mut b = Browser::new(&proxy);
    b.get("/", &["X-Session-Set: user=Ann"]).await;
    for reply in [
        &[][..],
        &["Cache-Control: public, max-age=60"][..],
        &["X-Session-Set: user=Ann"][..],
        &["X-Session-Delete: nothing-there"][..],
    ] {
        let a = b.get("/", reply).await;
        assert_eq!(up.last().header("x-session-user"), Some("Ann"));
        assert!(
            a.set_cookies().is_empty(),
            "{reply:?}: {:?}",
            a.set_cookies()
        );
        if !reply.is_empty() && reply[0].starts_with("Cache-Control") {
            // Not our cookie: the app's caching is left alone.
            assert_eq!(a.header("cache-control"), Some("public, max-age=60"));
        }
    }
    // A response with our cookie is never cacheable, whatever the app said.
    let a = b
        .get(
            "/",
            &["Cache-Control: public, max-age=60", "X-Session-Set: n=1"],
        )
        .await;
    assert!(our_set_cookie(&a, COOKIE).is_some());
    let cc: Vec<_> = a.headers.get_all("cache-control").iter().collect();
    assert_eq!(cc, ["no-store"]);
}

#[tokio::test]
async fn cookie_attributes_are_as_configured() {
    let up = app().await;
    let proxy = ProxyBuilder::new(&up.url())
        .set("sessions.secure", "true")
        .set("sessions.http_only", "true")
        .set("sessions.same_site", "Strict")
        .set("sessions.domain", "example.test")
        .set("sessions.path", "/app")
        .set("sessions.max_age", "1h")
        .start();
    let mut b = Browser::new(&proxy);
    let a = b.get("/app/login", &["X-Session-Set: user=Ann"]).await;
    // The same Path, Domain and flags on the cookie and, on expiry, on its removal (or the
    // browser would not match it).
    let configured = [
        ("path", Some("/app")),
        ("domain", Some("example.test")),
        ("secure", Some("")),
        ("httponly", Some("")),
        ("samesite", Some("Strict")),
    ];
    let (value, attrs) = our_set_cookie(&a, COOKIE).unwrap();
    assert!(!value.is_empty());
    assert_attrs("login", &attrs, &configured);
    let max_age: u64 = attr(&attrs, "max-age").unwrap().parse().unwrap();
    assert!((3598..=3600).contains(&max_age), "{max_age}");
    let expires = httpdate::parse_http_date(attr(&attrs, "expires").unwrap()).unwrap();
    let in_secs = expires
        .duration_since(SystemTime::now())
        .unwrap()
        .as_secs_f64();
    assert!(
        (max_age as f64 - in_secs).abs() <= 2.0,
        "{in_secs} vs {max_age}"
    );
    assert_eq!(a.header("cache-control"), Some("no-store"));

    let a = b.get("/app/logout", &["X-Session-Clear: 1"]).await;
    assert_expires_cookie(&a, COOKIE);
    let (_, attrs) = our_set_cookie(&a, COOKIE).unwrap();
    assert_attrs("logout", &attrs, &configured);

    assert_cookie_attributes(
        &up,
        &[
            CookieCase {
                name: "SameSite=None (needs Secure), HttpOnly off, no Domain",
                set: &[
                    ("sessions.secure", "true"),
                    ("sessions.http_only", "false"),
                    ("sessions.same_site", "None"),
                ],
                env: &[],
                want: &[
                    ("samesite", Some("None")),
                    ("secure", Some("")),
                    ("httponly", None),
                    ("domain", None),
                    ("path", Some("/")),
                ],
            },
            CookieCase {
                name: "the harness's defaults (secure: false): HttpOnly and SameSite=Lax",
                set: &[],
                env: &[],
                want: &[
                    ("secure", None),
                    ("httponly", Some("")),
                    ("samesite", Some("Lax")),
                ],
            },
        ],
    )
    .await;
}

/// A proxy configured by `set` (dotted config keys) and `env`, and what its cookie's attributes
/// must be: each named attribute's value, `a|b` for either, None for absent.
struct CookieCase<'a> {
    name: &'a str,
    set: &'a [(&'a str, &'a str)],
    env: &'a [(&'a str, &'a str)],
    want: &'a [(&'a str, Option<&'a str>)],
}

/// Starts each case's proxy in front of `up`, logs in and checks the Set-Cookie attributes,
/// naming the case that fails.
async fn assert_cookie_attributes(up: &TestUpstream, cases: &[CookieCase<'_>]) {
    for case in cases {
        let mut builder = ProxyBuilder::new(&up.url());
        for (key, value) in case.set {
            builder = builder.set(key, value);
        }
        for (key, value) in case.env {
            builder = builder.env(key, value);
        }
        let proxy = builder.start();
        let (a, _) = login(&proxy, COOKIE).await;
        let (_, attrs) = our_set_cookie(&a, COOKIE)
            .unwrap_or_else(|| panic!("{}: no Set-Cookie: {:?}", case.name, a.set_cookies()));
        assert_attrs(case.name, &attrs, case.want);
    }
}

/// Asserts each attribute of `want` (a value, `a|b` for either, None for absent) on `attrs`.
fn assert_attrs(case: &str, attrs: &[(String, String)], want: &[(&str, Option<&str>)]) {
    for (name, want) in want {
        let got = attr(attrs, name);
        let ok = match want {
            None => got.is_none(),
            Some(alternatives) => alternatives.split('|').any(|w| got == Some(w)),
        };
        assert!(ok, "{case}: {name} is {got:?}, want {want:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Environment overrides: every SESSION_* variable, observed on a running proxy

/// Logs in on `proxy` (cookie named `name`) and returns the answer.
async fn login(proxy: &TestProxy, name: &str) -> (Answer, Browser) {
    let mut b = Browser::named(proxy, name);
    let a = b.get("/", &["X-Session-Set: user=Ann"]).await;
    (a, b)
}

#[tokio::test]
async fn env_overrides_every_session_variable() {
    let up = app().await;

    // SESSION_DRIVER: the memory store's cookie is the bare 43-character ID.
    let proxy = ProxyBuilder::new(&up.url())
        .env("SESSION_DRIVER", "memory")
        .start();
    let (_, mut b) = login(&proxy, COOKIE).await;
    let value = b.cookie.clone().unwrap();
    b.get("/", &[]).await;
    assert_eq!(
        up.last().header("x-session-id"),
        Some(handle_of(&value).as_str())
    );
    let cookie_store = ProxyBuilder::new(&up.url()).start();
    let (_, b) = login(&cookie_store, COOKIE).await;
    assert!(
        b.cookie.unwrap().len() > 100,
        "the cookie store seals the data"
    );

    // SESSION_COOKIE_NAME
    let proxy = ProxyBuilder::new(&up.url())
        .env("SESSION_COOKIE_NAME", "sid")
        .start();
    let (a, mut b) = login(&proxy, "sid").await;
    assert!(our_set_cookie(&a, "sid").is_some());
    assert!(our_set_cookie(&a, COOKIE).is_none());
    b.get("/", &[]).await;
    assert_eq!(up.last().header("x-session-user"), Some("Ann"));

    assert_cookie_attributes(
        &up,
        &[
            CookieCase {
                name: "SESSION_MAX_AGE",
                set: &[],
                env: &[("SESSION_MAX_AGE", "1h")],
                want: &[("max-age", Some("3599|3600"))],
            },
            CookieCase {
                name: "SESSION_IDLE_TIMEOUT: the cookie lives for the idle window, not max_age",
                set: &[],
                env: &[("SESSION_MAX_AGE", "1h"), ("SESSION_IDLE_TIMEOUT", "90s")],
                want: &[("max-age", Some("89|90"))],
            },
            CookieCase {
                name:
                    "SESSION_SECURE (the file says false), SESSION_HTTP_ONLY, SESSION_SAME_SITE, \
                       SESSION_DOMAIN, SESSION_PATH",
                set: &[],
                env: &[
                    ("SESSION_SECURE", "true"),
                    ("SESSION_HTTP_ONLY", "false"),
                    ("SESSION_SAME_SITE", "Strict"),
                    ("SESSION_DOMAIN", "example.test"),
                    ("SESSION_PATH", "/app"),
                ],
                want: &[
                    ("secure", Some("")),
                    ("httponly", None),
                    ("samesite", Some("Strict")),
                    ("domain", Some("example.test")),
                    ("path", Some("/app")),
                ],
            },
            CookieCase {
                name: "SESSION_SECURE=false over the file's true",
                set: &[("sessions.secure", "true")],
                env: &[("SESSION_SECURE", "false")],
                want: &[("secure", None), ("httponly", Some(""))],
            },
        ],
    )
    .await;

    // SESSION_SECRET: a cookie sealed under the file's secret is refused, and vice versa.
    let (_, b) = login(&cookie_store, COOKIE).await;
    let sealed_file = b.cookie.unwrap();
    let proxy = ProxyBuilder::new(&up.url())
        .env("SESSION_SECRET", OTHER_SECRET)
        .start();
    let a = get_with_cookie(proxy.addr, "/", COOKIE, &sealed_file).await;
    assert_no_session_seen(&up);
    assert_expires_cookie(&a, COOKIE);
    let (_, b) = login(&proxy, COOKIE).await;
    let sealed_env = b.cookie.unwrap();
    let a = get_with_cookie(cookie_store.addr, "/", COOKIE, &sealed_env).await;
    assert_no_session_seen(&up);
    assert_expires_cookie(&a, COOKIE);

    // SESSION_PREVIOUS_SECRETS (comma-separated): the old cookie is accepted and re-sealed.
    let proxy = ProxyBuilder::new(&up.url())
        .env("SESSION_SECRET", OTHER_SECRET)
        .env(
            "SESSION_PREVIOUS_SECRETS",
            &format!("{}, {SECRET}", "z".repeat(40)),
        )
        .start();
    let a = get_with_cookie(proxy.addr, "/", COOKIE, &sealed_file).await;
    assert_eq!(up.last().header("x-session-user"), Some("Ann"));
    let (resealed, _) = our_set_cookie(&a, COOKIE).unwrap();
    let a = get_with_cookie(cookie_store.addr, "/", COOKIE, &resealed).await;
    assert_no_session_seen(&up);
    assert_expires_cookie(&a, COOKIE);
}

// ---------------------------------------------------------------------------------------------
// Memory store: the same core flow, plus what only a server-side store can do

#[tokio::test]
async fn memory_store_core_flow() {
    let up = app().await;
    let proxy = ProxyBuilder::new(&up.url()).driver("memory").start();
    let mut b = Browser::new(&proxy);

    // Nothing is created by a bare request.
    let a = b.get("/", &[]).await;
    assert!(a.set_cookies().is_empty());
    assert_no_session_seen(&up);

    let a = b
        .get(
            "/login",
            &[
                "X-Session-Set: user_id=7",
                "X-Session-Set: name=\"Jos\\u00e9\"",
            ],
        )
        .await;
    assert_eq!(a.header("cache-control"), Some("no-store"));
    let id = b.cookie.clone().unwrap();
    assert_eq!(id.len(), 43);

    // Read back, with spoofs stripped and the cookie withheld from the app.
    let a = b
        .get_with(
            "/",
            &[],
            &[("X_Session_User_Id", "0"), ("X-Session-Id", "x")],
        )
        .await;
    assert!(a.set_cookies().is_empty());
    let seen = up.last();
    assert_eq!(one(&seen, "x-session-id"), Some(handle_of(&id).as_str()));
    assert_eq!(one(&seen, "x-session-user-id"), Some("7"));
    assert_eq!(
        one(&seen, "x-session-data"),
        Some("{\"name\":\"Jos\\u00e9\",\"user_id\":7}")
    );
    assert!(seen.headers.get("cookie").is_none());

    // Set and delete.
    b.get("/", &["X-Session-Set: cart=3", "X-Session-Delete: name"])
        .await;
    assert_eq!(b.cookie.as_deref(), Some(id.as_str()));
    b.get("/", &[]).await;
    assert_eq!(
        up.last().header("x-session-data"),
        Some("{\"cart\":3,\"user_id\":7}")
    );

    // Regenerate: new ID, same data, and the old ID is dead.
    let a = b.get("/", &["X-Session-Regenerate: 1"]).await;
    let new_id = b.cookie.clone().unwrap();
    assert_ne!(new_id, id);
    assert_eq!(a.header("cache-control"), Some("no-store"));
    b.get("/", &[]).await;
    assert_eq!(
        up.last().header("x-session-id"),
        Some(handle_of(&new_id).as_str())
    );
    assert_eq!(
        up.last().header("x-session-data"),
        Some("{\"cart\":3,\"user_id\":7}")
    );
    let a = get_with_cookie(proxy.addr, "/", COOKIE, &id).await;
    assert_eq!(a.status, 200);
    assert_no_session_seen(&up);
    assert_expires_cookie(&a, COOKIE);

    // Clear + Set: a fresh session under another ID, and the cleared one is gone server-side.
    b.get("/", &["X-Session-Clear: 1", "X-Session-Set: user_id=8"])
        .await;
    let fresh = b.cookie.clone().unwrap();
    assert_ne!(fresh, new_id);
    b.get("/", &[]).await;
    assert_eq!(up.last().header("x-session-data"), Some("{\"user_id\":8}"));
    get_with_cookie(proxy.addr, "/", COOKIE, &new_id).await;
    assert_no_session_seen(&up);

    // Clear (logout): the cookie is expired and the ID no longer works even if replayed.
    let a = b.get("/", &["X-Session-Clear: 1"]).await;
    assert_expires_cookie(&a, COOKIE);
    let a = get_with_cookie(proxy.addr, "/", COOKIE, &fresh).await;
    assert_no_session_seen(&up);
    assert_expires_cookie(&a, COOKIE);

    // Garbage and unknown IDs: no session, 200, expired.
    for bad in ["garbage", &"A".repeat(43)] {
        let a = get_with_cookie(proxy.addr, "/", COOKIE, bad).await;
        assert_eq!(a.status, 200);
        assert_no_session_seen(&up);
        assert_expires_cookie(&a, COOKIE);
    }
}

#[tokio::test]
async fn the_app_cannot_plant_or_overwrite_the_session_cookie() {
    let up = app().await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let res = get(
        proxy.addr,
        "/",
        &[
            ("x-test-reply", "Set-Cookie: session_id=planted; Path=/"),
            ("x-test-reply", "Set-Cookie: theme=dark; Path=/"),
        ],
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.cookie("session_id"), None, "{:?}", res.set_cookies());
    assert_eq!(res.cookie("theme").as_deref(), Some("dark"));
}
