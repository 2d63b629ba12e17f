use super::*;
use http::header::COOKIE;

fn layer() -> SessionLayer {
    let cfg: SessionConfig =
        serde_norway::from_str("driver: memory\nsecret: 0123456789abcdef0123456789abcdef").unwrap();
    SessionLayer::new(
        Arc::new(Store::Memory(store::memory::MemoryStore::new(None))),
        &cfg,
    )
}

/// One round trip: the request carries `cookie`, the app answers `controls`. Returns the
/// response headers the client would see.
async fn round(layer: &SessionLayer, cookie: Option<&str>, controls: &[(&str, &str)]) -> HeaderMap {
    visit(layer, cookie, controls).await.1
}

/// [`round`], also returning the request headers as the app received them.
async fn visit(
    layer: &SessionLayer,
    cookie: Option<&str>,
    controls: &[(&str, &str)],
) -> (HeaderMap, HeaderMap) {
    let mut req = HeaderMap::new();
    if let Some(c) = cookie {
        req.insert(
            COOKIE,
            HeaderValue::from_str(&format!("session_id={c}")).unwrap(),
        );
    }
    let state = layer.on_request(&mut req).await.unwrap();
    let mut res = HeaderMap::new();
    for (n, v) in controls {
        res.append(
            http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    layer.on_response(state, &mut res).await.unwrap();
    (req, res)
}

fn cookie_value(res: &HeaderMap) -> Option<String> {
    let line = res.get(SET_COOKIE)?.to_str().unwrap();
    let pair = line.split(';').next().unwrap();
    Some(pair.split_once('=').unwrap().1.to_owned())
}

#[tokio::test]
async fn writes_that_change_nothing_send_no_cookie() {
    let layer = layer();
    let res = round(&layer, None, &[("x-session-set", "a=1")]).await;
    let id = cookie_value(&res).expect("created");
    for noop in [
        ("x-session-delete", "missing"),
        ("x-session-set", "a=1"),
        ("x-session-set", "{\"a\":1}"),
    ] {
        let res = round(&layer, Some(&id), &[noop]).await;
        assert!(res.get(SET_COOKIE).is_none(), "{noop:?}");
        assert!(res.get(CACHE_CONTROL).is_none(), "{noop:?}");
    }
    let res = round(&layer, Some(&id), &[("x-session-set", "a=2")]).await;
    assert_eq!(cookie_value(&res).as_deref(), Some(id.as_str()));
    assert_eq!(res[CACHE_CONTROL], "no-store");
    let res = round(&layer, Some(&id), &[("x-session-delete", "a")]).await;
    assert_eq!(cookie_value(&res).as_deref(), Some(id.as_str()));
    // Regenerate changes no data but always sends the new ID.
    let res = round(&layer, Some(&id), &[("x-session-regenerate", "1")]).await;
    let new_id = cookie_value(&res).expect("regenerated");
    assert_ne!(new_id, id);
}

// -------------------------------------------------------------------------------------------------
// Time: every expiry rule against a manual clock, to the millisecond, without sleeping.

mod time {
    use super::*;
    use crate::config::AssertionConfig;
    use crate::session::clock::{system_time, ManualClock};
    use std::time::Duration;

    /// A whole second, so assertion `iat`s (whole seconds) line up with the test's arithmetic.
    const T0: Millis = 1_700_000_000_000;

    /// A layer on `driver` (memory or cookie) with `extra` session settings, reading `clock`.
    fn clocked(driver: &str, extra: &str, clock: &ManualClock) -> SessionLayer {
        let cfg: SessionConfig = serde_norway::from_str(&format!(
            "driver: {driver}\nsecret: 0123456789abcdef0123456789abcdef\n{extra}"
        ))
        .unwrap();
        let store = match cfg.driver {
            Driver::Memory => Store::Memory(store::memory::MemoryStore::new(cfg.idle_timeout)),
            _ => Store::Cookie(store::cookie::CookieStore::new(
                &cfg.cookie_name,
                &cfg.secret,
                &cfg.previous_secrets,
                cfg.idle_timeout,
            )),
        };
        SessionLayer::new(Arc::new(store), &cfg).with_clock(clock.clock())
    }

    /// A browser that sets the clock before each visit: it sends its cookie and keeps what
    /// `Set-Cookie` says.
    struct Browser<'a> {
        layer: &'a SessionLayer,
        clock: &'a ManualClock,
        cookie: Option<String>,
    }

    impl<'a> Browser<'a> {
        fn new(layer: &'a SessionLayer, clock: &'a ManualClock) -> Browser<'a> {
            Browser {
                layer,
                clock,
                cookie: None,
            }
        }

        /// At `at` the session is over: the app sees none and the browser is told to forget it.
        async fn gone(&mut self, at: Millis, driver: &str) {
            let (seen, line) = self.at(at, &[]).await;
            assert!(!seen, "{driver}: alive at {at}");
            let line = line.expect("an expiring Set-Cookie");
            assert!(
                line.starts_with("session_id=; Max-Age=0; Expires=Thu, 01 Jan 1970"),
                "{line}"
            );
        }

        /// Visits at `at`: whether the app saw the session, and our `Set-Cookie` line if any.
        async fn at(&mut self, at: Millis, controls: &[(&str, &str)]) -> (bool, Option<String>) {
            self.clock.set(at);
            let (req, res) = visit(self.layer, self.cookie.as_deref(), controls).await;
            if let Some(value) = cookie_value(&res) {
                self.cookie = (!value.is_empty()).then_some(value);
            }
            let line = res.get(SET_COOKIE).map(|v| v.to_str().unwrap().to_owned());
            (req.contains_key("x-session-user"), line)
        }
    }

    fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
        line.split("; ")
            .skip(1)
            .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
    }

    /// Our cookie lives `secs` from `now`: Max-Age and the Expires date both say so.
    fn assert_lives(line: &str, secs: u64, now: Millis) {
        assert_eq!(
            attr(line, "Max-Age"),
            Some(secs.to_string().as_str()),
            "{line}"
        );
        let expires = system_time(now) + Duration::from_secs(secs);
        let want = httpdate::fmt_http_date(expires);
        assert_eq!(attr(line, "Expires"), Some(want.as_str()), "{line}");
    }

    #[tokio::test]
    async fn absolute_expiry_ends_the_session() {
        for driver in ["memory", "cookie"] {
            let clock = ManualClock::new(T0);
            let layer = clocked(driver, "max_age: 10s", &clock);
            let mut b = Browser::new(&layer, &clock);
            let (_, line) = b.at(T0, &[("x-session-set", "user=Ann")]).await;
            assert_lives(&line.unwrap(), 10, T0);
            let kept = b.cookie.clone();
            assert_eq!(b.at(T0 + 9_999, &[]).await, (true, None), "{driver}");
            // A client that keeps the cookie past its Max-Age gains nothing.
            b.gone(T0 + 10_000, driver).await;
            assert_eq!(b.cookie, None);
            b.cookie = kept;
            assert!(!b.at(T0 + 60_000, &[]).await.0, "{driver}");
        }
    }

    #[tokio::test]
    async fn idle_expiry_without_activity() {
        for driver in ["memory", "cookie"] {
            let clock = ManualClock::new(T0);
            let layer = clocked(driver, "idle_timeout: 2s\nmax_age: 4s", &clock);
            let mut b = Browser::new(&layer, &clock);
            let (_, line) = b.at(T0, &[("x-session-set", "user=Ann")]).await;
            assert_lives(&line.unwrap(), 2, T0);
            // Within a quarter of the idle timeout: not refreshed, so no Set-Cookie, and the
            // idle clock still runs from the login.
            assert_eq!(b.at(T0 + 499, &[]).await, (true, None), "{driver}");
            b.gone(T0 + 2_000, driver).await;
        }
    }

    #[tokio::test]
    async fn activity_refreshes_the_idle_expiry_but_not_past_max_age() {
        for driver in ["memory", "cookie"] {
            let clock = ManualClock::new(T0);
            let layer = clocked(driver, "idle_timeout: 2s\nmax_age: 4s", &clock);
            let mut b = Browser::new(&layer, &clock);
            b.at(T0, &[("x-session-set", "user=Bob")]).await;
            // Every 800 ms: each visit is over a quarter of the idle timeout after the last
            // refresh, so each refreshes; the cookie never outlives max_age.
            for (at, max_age) in [(800, 2), (1_600, 2), (2_400, 1), (3_200, 1)] {
                let (seen, line) = b.at(T0 + at, &[]).await;
                assert!(seen, "{driver}: alive at {at} ms");
                assert_lives(&line.expect("refreshed"), max_age, T0 + at);
            }
            // 3.2 s since login (more than the idle timeout): only the refreshes kept it alive.
            assert!(b.at(T0 + 3_999, &[]).await.0, "{driver}");
            b.gone(T0 + 4_000, driver).await;
        }
    }

    #[tokio::test]
    async fn a_refresh_waits_for_a_quarter_of_the_idle_timeout() {
        for driver in ["memory", "cookie"] {
            let clock = ManualClock::new(T0);
            let layer = clocked(driver, "idle_timeout: 2s\nmax_age: 1h", &clock);
            let mut b = Browser::new(&layer, &clock);
            b.at(T0, &[("x-session-set", "user=Ann")]).await;
            assert_eq!(b.at(T0 + 499, &[]).await, (true, None), "{driver}");
            let (seen, line) = b.at(T0 + 500, &[]).await;
            assert!(seen, "{driver}");
            assert_lives(&line.expect("refreshed"), 2, T0 + 500);
            // The refresh moved the idle deadline to 2.5 s; the next one is due at 1 s.
            assert_eq!(b.at(T0 + 999, &[]).await, (true, None), "{driver}");
            assert!(b.at(T0 + 1_000, &[]).await.1.is_some(), "{driver}");
            b.gone(T0 + 3_000, driver).await;
        }
    }

    #[tokio::test]
    async fn the_memory_sweep_removes_exactly_the_expired_sessions() {
        let clock = ManualClock::new(T0);
        let layer = clocked("memory", "idle_timeout: 2s\nmax_age: 3s", &clock);
        let mut idle = Browser::new(&layer, &clock);
        idle.at(T0, &[("x-session-set", "user=Ann")]).await;
        let mut busy = Browser::new(&layer, &clock);
        busy.at(T0 + 1_000, &[("x-session-set", "user=Bob")]).await;
        let Store::Memory(memory) = layer.store() else {
            unreachable!()
        };
        let sweep = |at: Millis| {
            clock.set(at);
            layer.store().cleanup(layer.clock().now())
        };
        let report = sweep(T0 + 1_999).await.unwrap();
        assert_eq!((report.scanned, report.removed), (2, 0));
        let report = sweep(T0 + 2_000).await.unwrap();
        assert_eq!((report.scanned, report.removed), (2, 1), "the idle one");
        assert!(busy.at(T0 + 2_500, &[]).await.0, "kept alive by activity");
        // Refreshed at 2.5 s, but born at 1 s with a 3 s max_age.
        let report = sweep(T0 + 3_999).await.unwrap();
        assert_eq!((report.scanned, report.removed), (1, 0));
        let report = sweep(T0 + 4_000).await.unwrap();
        assert_eq!((report.scanned, report.removed), (1, 1), "past max_age");
        assert!(memory.is_empty());
    }

    /// A layer that signs assertions with a 6 s TTL (reused for 3 s).
    fn asserting(driver: &str, clock: &ManualClock, dir: &std::path::Path) -> SessionLayer {
        let key = dir.join("k.pem");
        std::fs::write(&key, assertion::generate_ed25519_pem().unwrap()).unwrap();
        let cfg = AssertionConfig {
            key,
            previous_keys: Vec::new(),
            issuer: "session-proxy".into(),
            audience: None,
            ttl: Duration::from_secs(6),
            subject_key: Some("user".into()),
            header: "X-Session-Assertion".into(),
        };
        let signer = assertion::Assertion::load(&cfg, "http://app").unwrap();
        clocked(driver, "max_age: 1h", clock).with_assertion(Some(Arc::new(signer)))
    }

    /// The assertion the app receives at `at` for `cookie`.
    async fn token_at(
        layer: &SessionLayer,
        clock: &ManualClock,
        at: Millis,
        cookie: &str,
    ) -> String {
        clock.set(at);
        let (req, _) = visit(layer, Some(cookie), &[]).await;
        req["x-session-assertion"].to_str().unwrap().to_owned()
    }

    fn claims(token: &str) -> serde_json::Value {
        jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(token)
            .unwrap()
            .claims
    }

    #[tokio::test]
    async fn an_assertion_is_reused_until_half_its_ttl() {
        for driver in ["memory", "cookie"] {
            let dir = tempfile::tempdir().unwrap();
            let clock = ManualClock::new(T0);
            let layer = asserting(driver, &clock, dir.path());
            let res = round(&layer, None, &[("x-session-set", "user=Ann")]).await;
            let cookie = cookie_value(&res).unwrap();
            // First signed at 0.5 s: `iat` is the whole second, and the window counts from it.
            let first = token_at(&layer, &clock, T0 + 500, &cookie).await;
            assert_eq!(claims(&first)["iat"], T0 / 1000);
            assert_eq!(claims(&first)["exp"], T0 / 1000 + 6);
            let again = token_at(&layer, &clock, T0 + 2_999, &cookie).await;
            assert_eq!(
                again, first,
                "{driver}: same session, same data: the cached token"
            );
            let later = token_at(&layer, &clock, T0 + 3_000, &cookie).await;
            assert_ne!(later, first, "{driver}");
            assert_eq!(claims(&later)["iat"], T0 / 1000 + 3);
        }
    }

    #[tokio::test]
    async fn an_assertion_is_signed_again_when_the_data_changes() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(T0);
        let layer = asserting("memory", &clock, dir.path());
        let res = round(&layer, None, &[("x-session-set", "user=Ann")]).await;
        let cookie = cookie_value(&res).unwrap();
        let first = token_at(&layer, &clock, T0, &cookie).await;
        clock.set(T0 + 1_000);
        round(&layer, Some(&cookie), &[("x-session-set", "cart=3")]).await;
        let changed = token_at(&layer, &clock, T0 + 1_000, &cookie).await;
        assert_ne!(changed, first);
        assert_eq!(claims(&changed)["session"]["cart"], 3);
        assert_eq!(claims(&changed)["iat"], T0 / 1000 + 1);
    }
}
