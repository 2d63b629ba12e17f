//! Attacks on sessions, through the real binary: forged and mangled cookies, replayed IDs of
//! destroyed sessions, header injection through session values, and a flood of random cookies
//! against Redis.
//!
//! Related: `redis.rs` (`replayed_cookie_of_destroyed_session_gets_nothing`: a replay that tries
//! to write does not resurrect the key), `ops.rs` (cookie values never logged).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rand::Rng;
use session_proxy::session::store::cookie::CookieStore;
use session_proxy::session::store::Session;
use tokio::net::TcpStream;

const COOKIE: &str = "session_id";

async fn login(addr: SocketAddr) -> String {
    let answer = get(addr, "/login", &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let cookie = answer.cookie(COOKIE).expect("a session cookie");
    assert!(!cookie.is_empty());
    cookie
}

/// The request the upstream saw last carried no session at all, and the client was told to drop
/// its cookie.
fn assert_no_session(up: &TestUpstream, answer: &Answer, what: &str) {
    assert_eq!(answer.status, 200, "{what}: {}", answer.text());
    assert_eq!(answer.text(), "-", "{what}: the app was handed a session");
    let seen = up.last();
    let leaked: Vec<_> = seen
        .headers
        .keys()
        .filter(|n| n.as_str().starts_with("x-session-"))
        .collect();
    assert!(leaked.is_empty(), "{what}: {leaked:?}");
    assert_eq!(
        answer.cookie(COOKIE).as_deref(),
        Some(""),
        "{what}: the stale cookie is expired"
    );
}

/// A cookie sealed with the right layout and cookie name, under a secret the proxy does not know.
#[tokio::test]
async fn forged_cookie_under_another_secret_is_refused() {
    let up = path_driven_app().await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    // Control: a cookie the proxy sealed itself is accepted.
    let genuine = login(proxy.addr).await;
    let answer = get_with_cookie(proxy.addr, "/who", COOKIE, &genuine).await;
    assert_eq!(answer.text(), r#"{"user":"Ann"}"#);

    let forger = CookieStore::new(COOKIE, OTHER_SECRET, &[], None);
    let mut session = Session::new(
        session_proxy::session::store::SessionId::generate(),
        session_proxy::session::store::now_millis(),
        Duration::from_secs(3600),
    );
    std::sync::Arc::make_mut(&mut session.data).insert("user".into(), "admin".into());
    let forged = forger.seal(&session).unwrap();
    let answer = get_with_cookie(proxy.addr, "/who", COOKIE, &forged).await;
    assert_no_session(&up, &answer, "forged under OTHER_SECRET");
    proxy.assert_no_panic();
}

/// Variants of a genuine value that must all be refused: cut, padded, re-encoded between the
/// base64 alphabets, percent-encoded, with junk around it. Returns (name, variant) pairs that
/// differ from the original.
fn mangled(genuine: &str) -> Vec<(String, String)> {
    let std_b64: String = genuine
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    let url_b64: String = genuine
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    let url_no_pad = url_b64.trim_end_matches('=').to_owned();
    let percent: String = genuine
        .chars()
        .map(|c| match c {
            '+' | '/' | '=' | '-' | '_' => format!("%{:02X}", c as u32),
            c => c.to_string(),
        })
        .collect();
    let all_percent: String = genuine.bytes().map(|b| format!("%{b:02X}")).collect();
    let mut flipped = genuine.as_bytes().to_vec();
    let mid = flipped.len() / 2;
    flipped[mid] = if flipped[mid] == b'A' { b'B' } else { b'A' };
    let variants = [
        ("cut last char", genuine[..genuine.len() - 1].to_owned()),
        ("cut in half", genuine[..genuine.len() / 2].to_owned()),
        ("empty", String::new()),
        ("padded with =", format!("{genuine}=")),
        ("padded with ==", format!("{genuine}==")),
        ("extra char", format!("{genuine}A")),
        ("leading char", format!("A{genuine}")),
        ("one char flipped", String::from_utf8(flipped).unwrap()),
        ("re-encoded std alphabet", std_b64),
        ("re-encoded url alphabet", url_b64),
        ("url alphabet, padding stripped", url_no_pad),
        ("percent-encoded specials", percent),
        ("fully percent-encoded", all_percent),
        ("doubled", format!("{genuine}{genuine}")),
    ];
    variants
        .into_iter()
        .filter(|(_, v)| v != genuine)
        .map(|(n, v)| (n.to_owned(), v))
        .collect()
}

async fn mangled_cookies_are_refused(driver: &str) {
    let up = path_driven_app().await;
    let proxy = ProxyBuilder::new(&up.url()).driver(driver).start();
    let genuine = login(proxy.addr).await;
    let variants = mangled(&genuine);
    assert!(variants.len() >= 10, "{variants:?}");
    for (name, value) in &variants {
        let answer = get_with_cookie(proxy.addr, "/who", COOKIE, value).await;
        assert_no_session(&up, &answer, &format!("{driver}: {name}"));
    }
    // The genuine one still works afterwards.
    let answer = get_with_cookie(proxy.addr, "/who", COOKIE, &genuine).await;
    assert_eq!(answer.text(), r#"{"user":"Ann"}"#);
    eprintln!("{driver}: {} mangled variants refused", variants.len());
    proxy.assert_no_panic();
}

#[tokio::test]
async fn mangled_cookie_store_values_are_refused() {
    mangled_cookies_are_refused("cookie").await;
}

#[tokio::test]
async fn mangled_memory_ids_are_refused() {
    mangled_cookies_are_refused("memory").await;
}

/// The ID of a session destroyed by logout, or left behind by regenerate, gets nothing; a replay
/// that writes starts a fresh session under a new ID.
async fn destroyed_ids_are_refused(proxy: &TestProxy, up: &TestUpstream) {
    let cookie = login(proxy.addr).await;
    let answer = get_with_cookie(proxy.addr, "/clear", COOKIE, &cookie).await;
    assert_eq!(answer.cookie(COOKIE).as_deref(), Some(""));
    let replay = get_with_cookie(proxy.addr, "/who", COOKIE, &cookie).await;
    assert_no_session(up, &replay, "replayed after clear");
    let write = get_with_cookie(proxy.addr, "/set/x/1", COOKIE, &cookie).await;
    let fresh = write.cookie(COOKIE).unwrap();
    assert!(!fresh.is_empty() && fresh != cookie, "the old ID came back");

    let old = login(proxy.addr).await;
    let regen = get_with_cookie(proxy.addr, "/regen", COOKIE, &old).await;
    let new = regen.cookie(COOKIE).unwrap();
    assert_ne!(new, old);
    let replay = get_with_cookie(proxy.addr, "/who", COOKIE, &old).await;
    assert_no_session(up, &replay, "replayed after regenerate");
    let answer = get_with_cookie(proxy.addr, "/who", COOKIE, &new).await;
    assert_eq!(answer.text(), r#"{"user":"Ann"}"#);
    proxy.assert_no_panic();
}

#[tokio::test]
async fn replayed_destroyed_id_memory() {
    let up = path_driven_app().await;
    let proxy = ProxyBuilder::new(&up.url()).driver("memory").start();
    destroyed_ids_are_refused(&proxy, &up).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_destroyed_id_redis() {
    let redis = RedisServer::start();
    let up = path_driven_app().await;
    let proxy = ProxyBuilder::new(&up.url())
        .driver("redis")
        .set("redis.url", &format!("\"{}\"", redis.url()))
        .start();
    destroyed_ids_are_refused(&proxy, &up).await;
}

/// The app stores a value holding CR LF (sent as JSON escapes, the only way a header can carry
/// them). Reading it back, the app gets one `X-Session-Name` header whose value is the escaped
/// JSON, no header of the attacker's, and the client never sees `Set-Cookie: evil`.
async fn crlf_in_session_value_cannot_inject(driver: &str) {
    let up = path_driven_app().await;
    let proxy = ProxyBuilder::new(&up.url()).driver(driver).start();
    let set = get(proxy.addr, "/inject", &[]).await;
    assert_eq!(set.status, 200);
    let cookie = set.cookie(COOKIE).expect("the session was stored");
    assert!(
        set.set_cookies().iter().all(|c| !c.contains("evil")),
        "{:?}",
        set.set_cookies()
    );

    // Read back over raw TCP so nothing normalizes the client's view.
    let request = format!(
        "GET /who HTTP/1.1\r\nHost: app.test\r\nCookie: {COOKIE}={cookie}\r\nConnection: close\r\n\r\n"
    );
    let out = raw(proxy.addr, request.as_bytes(), Duration::from_secs(5)).await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    let head = out.split("\r\n\r\n").next().unwrap();
    assert!(
        head_headers(head, "set-cookie")
            .iter()
            .all(|c| !c.contains("evil")),
        "{head}"
    );
    assert!(!head.to_ascii_lowercase().contains("evil=1"), "{head}");

    let seen = up.last();
    let names: Vec<_> = seen.headers.get_all("x-session-name").iter().collect();
    assert_eq!(names.len(), 1, "{:?}", seen.headers);
    assert_eq!(names[0], r#""a\r\nSet-Cookie: evil=1""#);
    assert!(
        seen.headers.get("set-cookie").is_none(),
        "{:?}",
        seen.headers
    );
    let data = seen.header("x-session-data").unwrap();
    let parsed: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(parsed["name"], "a\r\nSet-Cookie: evil=1");
    assert!(
        !data.contains('\r') && !data.contains('\n'),
        "raw CR/LF in {data:?}"
    );
    proxy.assert_no_panic();
}

#[tokio::test]
async fn crlf_in_session_value_cookie_store() {
    crlf_in_session_value_cannot_inject("cookie").await;
}

#[tokio::test]
async fn crlf_in_session_value_memory_store() {
    crlf_in_session_value_cannot_inject("memory").await;
}

fn hgetall_calls(redis: &RedisServer) -> u64 {
    redis
        .cli(&["info", "commandstats"])
        .lines()
        .find_map(|l| {
            l.strip_prefix("cmdstat_hgetall:calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn random_cookie(rng: &mut impl Rng, shape_valid: bool) -> String {
    const URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const JUNK: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=%.~!*";
    if shape_valid {
        (0..43)
            .map(|_| URL[rng.gen_range(0..URL.len())] as char)
            .collect()
    } else {
        loop {
            let len = rng.gen_range(1..120);
            let s: String = (0..len)
                .map(|_| JUNK[rng.gen_range(0..JUNK.len())] as char)
                .collect();
            // Shape-invalid: wrong length or a character outside base64url.
            if s.len() != 43 || s.bytes().any(|b| !URL.contains(&b)) {
                return s;
            }
        }
    }
}

/// Sends every cookie in `cookies` over `connections` keep-alive connections; returns how many
/// got a 200.
async fn flood(addr: SocketAddr, cookies: Vec<String>, connections: usize) -> u64 {
    let cookies = Arc::new(cookies);
    let next = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (cookies, next, ok) = (cookies.clone(), next.clone(), ok.clone());
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await.unwrap();
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            tokio::spawn(conn);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(cookie) = cookies.get(i) else { return };
                let req = Request::get("/who")
                    .header("host", "app.test")
                    .header("cookie", format!("{COOKIE}={cookie}"))
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                let res = sender.send_request(req).await.unwrap();
                let status = res.status();
                let _ = res.into_body().collect().await;
                if status == 200 {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    ok.load(Ordering::Relaxed)
}

/// 10,000 random cookies: shape-invalid ones never reach Redis, shape-valid ones cost one HGETALL
/// each at most, none yields a session, and the proxy's peak memory stays put.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_cookie_flood_touches_redis_at_most_once_each_and_memory_stays_flat() {
    const VALID: usize = 5_000;
    const INVALID: usize = 5_000;
    let redis = RedisServer::start();
    let up = path_driven_app().await;
    let proxy = ProxyBuilder::new(&up.url())
        .driver("redis")
        .set("redis.url", &format!("\"{}\"", redis.url()))
        .env("RUST_LOG", "info,access=off")
        .start();
    let mut rng = rand::thread_rng();

    // Warm-up: connections, buffers and allocator arenas reach their working size.
    let warm: Vec<String> = (0..1_000)
        .map(|i| random_cookie(&mut rng, i % 2 == 0))
        .collect();
    assert_eq!(flood(proxy.addr, warm, 8).await, 1_000);
    let hwm_before = peak_rss(proxy.pid());

    redis.cli(&["config", "resetstat"]);
    let invalid: Vec<String> = (0..INVALID)
        .map(|_| random_cookie(&mut rng, false))
        .collect();
    let started = Instant::now();
    assert_eq!(flood(proxy.addr, invalid, 8).await, INVALID as u64);
    let after_invalid = hgetall_calls(&redis);
    let valid: Vec<String> = (0..VALID).map(|_| random_cookie(&mut rng, true)).collect();
    assert_eq!(flood(proxy.addr, valid, 8).await, VALID as u64);
    let elapsed = started.elapsed();
    let after_valid = hgetall_calls(&redis);
    let hwm_after = peak_rss(proxy.pid());

    eprintln!(
        "{} random cookies in {elapsed:?} ({:.0}/s); HGETALL: {after_invalid} for {INVALID} shape-invalid, {} for {VALID} shape-valid; VmHWM {} KiB -> {} KiB",
        VALID + INVALID,
        (VALID + INVALID) as f64 / elapsed.as_secs_f64(),
        after_valid - after_invalid,
        hwm_before / 1024,
        hwm_after / 1024,
    );
    assert_eq!(after_invalid, 0, "shape-invalid cookies reached Redis");
    assert!(
        after_valid <= VALID as u64,
        "{after_valid} HGETALLs for {VALID} cookies"
    );
    assert_eq!(
        redis.cli(&["dbsize"]).trim(),
        "0",
        "a random cookie created something"
    );
    assert!(
        up.seen().iter().all(|s| s.header("x-session-id").is_none()),
        "a random cookie yielded a session"
    );
    assert!(
        hwm_after <= hwm_before + 8 * 1024 * 1024,
        "peak memory grew by {} KiB",
        (hwm_after - hwm_before) / 1024
    );
    assert!(elapsed < Duration::from_secs(60), "flood took {elapsed:?}");
    proxy.assert_no_panic();
}
