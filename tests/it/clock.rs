//! Expiry end to end, without sleeping: the real server runs in this process with a manual session
//! clock ([`ProxyBuilder::start_clocked`]), real TCP on loopback and a real upstream; each test moves
//! the clock past a deadline and checks what the browser and the app see. (Redis keeps its own
//! real-time TTLs: its expiry tests stay in `redis.rs`.)

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use crate::support::*;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;
use session_proxy::session::clock::system_time;

const COOKIE: &str = "session_id";

/// A one-cookie browser: sends the cookie it holds, keeps what `Set-Cookie` says.
struct Browser {
    addr: SocketAddr,
    cookie: Option<String>,
}

impl Browser {
    fn new(proxy: &ClockedProxy) -> Browser {
        Browser {
            addr: proxy.addr,
            cookie: None,
        }
    }

    async fn get(&mut self, path: &str) -> Answer {
        let answer = match &self.cookie {
            Some(c) => get_with_cookie(self.addr, path, COOKIE, c).await,
            None => get(self.addr, path, &[]).await,
        };
        if let Some(v) = answer.cookie(COOKIE) {
            self.cookie = (!v.is_empty()).then_some(v);
        }
        answer
    }
}

/// The value of attribute `name` (lowercase) on our one `Set-Cookie` line, if there is a line.
fn cookie_attr(a: &Answer, name: &str) -> Option<String> {
    let ours: Vec<String> = a
        .set_cookies()
        .into_iter()
        .filter(|c| c.starts_with(&format!("{COOKIE}=")))
        .collect();
    assert!(ours.len() <= 1, "several Set-Cookie lines: {ours:?}");
    let line = ours.into_iter().next()?;
    line.split("; ").skip(1).find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.eq_ignore_ascii_case(name).then(|| v.to_owned())
    })
}

/// Our cookie lives `secs` from the proxy's now: Max-Age and Expires agree, and it is private.
fn assert_lives(a: &Answer, proxy: &ClockedProxy, secs: u64) {
    assert_eq!(
        cookie_attr(a, "max-age"),
        Some(secs.to_string()),
        "{:?}",
        a.set_cookies()
    );
    let expires = system_time(proxy.clock.now()) + Duration::from_secs(secs);
    assert_eq!(
        cookie_attr(a, "expires"),
        Some(httpdate::fmt_http_date(expires))
    );
    assert_eq!(a.header("cache-control"), Some("no-store"));
}

/// `a` tells the browser to forget our cookie.
fn assert_forgets_cookie(a: &Answer) {
    assert_eq!(a.status, 200);
    assert_eq!(
        a.cookie(COOKIE).as_deref(),
        Some(""),
        "{:?}",
        a.set_cookies()
    );
    assert_eq!(cookie_attr(a, "max-age").as_deref(), Some("0"));
    let expires = httpdate::parse_http_date(&cookie_attr(a, "expires").unwrap()).unwrap();
    assert!(expires < SystemTime::now());
    assert_eq!(a.header("cache-control"), Some("no-store"));
}

/// The app's last request carried no session headers at all.
fn assert_no_session_seen(up: &TestUpstream) {
    let seen = up.last();
    let names: Vec<_> = seen
        .headers
        .keys()
        .filter(|n| n.as_str().starts_with("x-session-"))
        .collect();
    assert!(names.is_empty(), "the app saw session headers: {names:?}");
}

#[tokio::test]
async fn absolute_expiry_ends_the_session() {
    let up = path_driven_app().await;
    let proxy = ProxyBuilder::new(&up.url())
        .set("sessions.max_age", "2s")
        .start_clocked();
    let mut b = Browser::new(&proxy);
    let a = b.get("/login").await;
    assert_lives(&a, &proxy, 2);
    let cookie = b.cookie.clone().unwrap();

    proxy.advance(Duration::from_millis(1_999));
    let a = b.get("/").await;
    assert_eq!(up.last().header("x-session-user"), Some("Ann"));
    assert!(a.set_cookies().is_empty());

    proxy.advance(Duration::from_millis(1));
    // A client that keeps the cookie past its Max-Age gains nothing: expiry is enforced server-side.
    let a = get_with_cookie(proxy.addr, "/", COOKIE, &cookie).await;
    assert_no_session_seen(&up);
    assert_forgets_cookie(&a);
}

/// Idle expiry (2 s) with an absolute limit (4 s), for either store.
async fn idle_expiry(driver: &str) {
    let up = path_driven_app().await;
    let proxy = ProxyBuilder::new(&up.url())
        .driver(driver)
        .set("sessions.idle_timeout", "2s")
        .set("sessions.max_age", "4s")
        .start_clocked();

    // Idle past the window: gone.
    let mut b = Browser::new(&proxy);
    let a = b.get("/login").await;
    assert_lives(&a, &proxy, 2);
    // Within a quarter of the idle timeout: not refreshed, so no Set-Cookie.
    proxy.advance(Duration::from_millis(499));
    let a = b.get("/").await;
    assert_eq!(up.last().header("x-session-user"), Some("Ann"));
    assert!(a.set_cookies().is_empty(), "{:?}", a.set_cookies());
    proxy.advance(Duration::from_millis(1_501));
    let a = b.get("/").await;
    assert_no_session_seen(&up);
    assert_forgets_cookie(&a);

    // Activity keeps it alive past the idle window, but not past max_age.
    let mut b = Browser::new(&proxy);
    b.get("/set/user/Bob").await;
    for (step, max_age) in [2, 2, 1, 1].into_iter().enumerate() {
        proxy.advance(Duration::from_millis(800));
        let a = b.get("/").await;
        let at = 800 * (step + 1);
        assert_eq!(
            up.last().header("x-session-user"),
            Some("Bob"),
            "alive at {at} ms"
        );
        assert_lives(&a, &proxy, max_age);
    }
    // 3.2 s in: more than the idle timeout since login, so only the refreshes kept it alive.
    proxy.advance(Duration::from_millis(799));
    b.get("/").await;
    assert_eq!(up.last().header("x-session-user"), Some("Bob"));
    proxy.advance(Duration::from_millis(1));
    let a = b.get("/").await;
    assert_no_session_seen(&up);
    assert_forgets_cookie(&a);
}

#[tokio::test]
async fn idle_expiry_cookie_store() {
    idle_expiry("cookie").await;
}

#[tokio::test]
async fn idle_expiry_memory_store() {
    idle_expiry("memory").await;
}

#[tokio::test]
async fn memory_store_absolute_expiry() {
    let up = path_driven_app().await;
    let proxy = ProxyBuilder::new(&up.url())
        .driver("memory")
        .set("sessions.max_age", "1s")
        .start_clocked();
    let mut b = Browser::new(&proxy);
    b.get("/login").await;
    let id = b.cookie.clone().unwrap();
    proxy.advance(Duration::from_millis(1_000));
    let a = get_with_cookie(proxy.addr, "/", COOKIE, &id).await;
    assert_no_session_seen(&up);
    assert_forgets_cookie(&a);
}

// ---------------------------------------------------------------------------------------------
// The assertion's lifetime

/// A proxy on `driver` signing assertions with a fresh Ed25519 key and `ttl`.
fn asserting(up: &TestUpstream, dir: &tempfile::TempDir, driver: &str, ttl: &str) -> ClockedProxy {
    let key = dir.path().join("k.pem");
    let pem = session_proxy::session::assertion::generate_ed25519_pem().unwrap();
    std::fs::write(&key, pem).unwrap();
    ProxyBuilder::new(&up.url())
        .driver(driver)
        .set("assertion.key", &format!("\"{}\"", key.display()))
        .set("assertion.ttl", ttl)
        .start_clocked()
}

/// The assertion and the `X-Session-Data` the app received on a request with `cookie`.
async fn assertion_for(proxy: &ClockedProxy, up: &TestUpstream, cookie: &str) -> (String, Value) {
    let res = get_with_cookie(proxy.addr, "/", COOKIE, cookie).await;
    assert_eq!(res.status, 200);
    let seen = up.last();
    let token = seen.header("x-session-assertion").expect("an assertion");
    let data = serde_json::from_str(seen.header("x-session-data").unwrap()).unwrap();
    (token.to_owned(), data)
}

async fn jwks(proxy: &ClockedProxy) -> JwkSet {
    let res = get(proxy.addr, "/.well-known/session-proxy/jwks.json", &[]).await;
    assert_eq!(res.status, 200);
    serde_json::from_slice(&res.body).unwrap()
}

/// Verifies `token` as an app would (key by `kid`, signature, `iss`, `aud`), with `exp` and
/// `nbf` checked with no leeway against the proxy's clock, by jsonwebtoken's rules: expired once
/// `exp` < now, immature while `nbf` > now.
fn verify(token: &str, set: &JwkSet, aud: &str, proxy: &ClockedProxy) -> Result<Value, String> {
    use jsonwebtoken::errors::ErrorKind;
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = set.find(&kid).ok_or(format!("kid {kid} not in the JWKS"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut v = Validation::new(header.alg);
    v.validate_exp = false;
    v.set_issuer(&["session-proxy"]);
    v.set_audience(&[aud]);
    v.set_required_spec_claims(&["exp", "iat", "nbf", "iss", "aud"]);
    let claims = jsonwebtoken::decode::<Value>(token, &key, &v)
        .map_err(|e| e.to_string())?
        .claims;
    let now = proxy.clock.now() / 1000;
    if claims["exp"].as_u64().unwrap() < now {
        return Err(format!("{:?}", ErrorKind::ExpiredSignature));
    }
    if claims["nbf"].as_u64().unwrap() > now {
        return Err(format!("{:?}", ErrorKind::ImmatureSignature));
    }
    Ok(claims)
}

fn iat(claims: &Value) -> u64 {
    claims["iat"].as_u64().unwrap()
}

#[tokio::test]
async fn an_assertion_is_reused_until_half_its_ttl_then_expires() {
    let (up, dir) = (path_driven_app().await, tempfile::tempdir().unwrap());
    let proxy = asserting(&up, &dir, "memory", "6s");
    let cookie = get(proxy.addr, "/login", &[]).await.cookie(COOKIE).unwrap();
    let set = jwks(&proxy).await;
    let (first, _) = assertion_for(&proxy, &up, &cookie).await;
    // Over a second later a fresh signature would carry a later iat: the same token means the
    // worker's cache answered (the reuse window is 3 s from iat).
    proxy.advance(Duration::from_millis(1_100));
    let (again, _) = assertion_for(&proxy, &up, &cookie).await;
    assert_eq!(first, again, "same session, same data: the cached token");

    // Different data: a new token at once, carrying the new data.
    get_with_cookie(proxy.addr, "/set/cart/3", COOKIE, &cookie).await;
    let (changed, data) = assertion_for(&proxy, &up, &cookie).await;
    assert_ne!(changed, first);
    assert_eq!(
        verify(&changed, &set, &up.url(), &proxy).unwrap()["session"],
        data
    );

    // Another session: its own token.
    let other = get(proxy.addr, "/login", &[]).await.cookie(COOKIE).unwrap();
    let (theirs, _) = assertion_for(&proxy, &up, &other).await;
    assert_ne!(theirs, changed);

    // Past half the ttl: signed again, with a later iat, so an app always gets >= ttl/2 of life.
    proxy.advance(Duration::from_millis(3_100));
    let (later, _) = assertion_for(&proxy, &up, &cookie).await;
    assert_ne!(later, changed);
    let (a, b) = (
        verify(&changed, &set, &up.url(), &proxy).unwrap(),
        verify(&later, &set, &up.url(), &proxy).unwrap(),
    );
    assert!(iat(&b) >= iat(&a) + 3);

    // `exp` is honoured: the token is refused once its 6 s are over (a verifier accepts it up
    // to the second `exp` itself, so one more).
    proxy.advance(Duration::from_millis(4_100));
    let err = verify(&changed, &set, &up.url(), &proxy).unwrap_err();
    assert!(err.contains("Expired"), "{err}");
}

/// The cookie store decodes the session afresh on every request: equal data still hits the cache.
#[tokio::test]
async fn the_cookie_store_reuses_the_token_for_equal_data() {
    let (up, dir) = (path_driven_app().await, tempfile::tempdir().unwrap());
    let proxy = asserting(&up, &dir, "cookie", "60s");
    let cookie = get(proxy.addr, "/login", &[]).await.cookie(COOKIE).unwrap();
    let (first, data) = assertion_for(&proxy, &up, &cookie).await;
    // A second later a fresh signature would differ (iat): equal means the cache answered.
    proxy.advance(Duration::from_millis(1_100));
    let (again, _) = assertion_for(&proxy, &up, &cookie).await;
    assert_eq!(first, again);
    let claims = verify(&first, &jwks(&proxy).await, &up.url(), &proxy).unwrap();
    assert_eq!(claims["session"], data);
    // The sealed cookie is not the ID, but sid is still a 43-character handle.
    assert_eq!(claims["sid"].as_str().unwrap().len(), 43);
}
