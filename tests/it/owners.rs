//! Sessions by owner (issue 16) through the real binary: `sessions.owner_key`, `X-Session-Clear:
//! others | everywhere` and the `X-Session-Created` / `X-Session-Last-Seen` request headers, on the
//! memory store (one process: its sessions live there) and on Redis, standalone and Cluster, with
//! two proxy processes sharing the store. Plus the race the index is built for: logins racing a
//! revocation by owner never leave a session that the owner's listing does not show.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use session_proxy::session::store::redis::RedisStore;
use session_proxy::session::store::{now_millis, Owner, OwnerKeys, SessionStore};

use crate::support::*;

const COOKIE: &str = "session_id";

/// `/login/<user>` signs in (Set + Regenerate), `/login-others/<user>` signs in and ends the
/// user's other sessions, `/others`, `/everywhere`, `/logout` are the three Clears, `/as/<user>`
/// changes the owner without a new session; anything else answers
/// `<X-Session-Id> <X-Session-User-Id> <X-Session-Created> <X-Session-Last-Seen>` (`-` for none).
async fn app() -> TestUpstream {
    TestUpstream::with(|seen| {
        let path = seen.uri.path().to_owned();
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let login = |user: &str| {
            Reply::ok()
                .header("X-Session-Set", &format!("user_id={user}"))
                .header("X-Session-Regenerate", "1")
        };
        match parts.as_slice() {
            ["login", user] => login(user),
            ["login-others", user] => login(user).header("X-Session-Clear", "others"),
            ["as", user] => Reply::ok().header("X-Session-Set", &format!("user_id={user}")),
            ["others"] => Reply::ok().header("X-Session-Clear", "others"),
            ["everywhere"] => Reply::ok().header("X-Session-Clear", "everywhere"),
            ["logout"] => Reply::ok().header("X-Session-Clear", "1"),
            _ => {
                let h = |n: &str| seen.header(n).unwrap_or("-").to_owned();
                Reply::ok().body(format!(
                    "{} {} {} {}",
                    h("x-session-id"),
                    h("x-session-user-id"),
                    h("x-session-created"),
                    h("x-session-last-seen")
                ))
            }
        }
    })
    .await
}

/// One browser on one proxy: holds its cookie, follows `Set-Cookie`.
struct Device {
    addr: SocketAddr,
    cookie: Option<String>,
}

/// What the app was told about a device's session.
#[derive(Debug)]
struct Seen {
    handle: Option<String>,
    user: Option<String>,
    created: Option<String>,
    last_seen: Option<String>,
}

impl Device {
    fn on(proxy: &TestProxy) -> Device {
        Device {
            addr: proxy.addr,
            cookie: None,
        }
    }

    async fn go(&mut self, path: &str) -> Answer {
        let answer = match &self.cookie {
            Some(c) => get_with_cookie(self.addr, path, COOKIE, c).await,
            None => get(self.addr, path, &[]).await,
        };
        assert_eq!(answer.status, 200, "{path}: {}", answer.text());
        if let Some(v) = answer.cookie(COOKIE) {
            self.cookie = (!v.is_empty()).then_some(v);
        }
        answer
    }

    async fn seen(&mut self) -> Seen {
        let text = self.go("/whoami").await.text();
        let f: Vec<Option<String>> = text
            .split(' ')
            .map(|s| (s != "-").then(|| s.to_owned()))
            .collect();
        Seen {
            handle: f[0].clone(),
            user: f[1].clone(),
            created: f[2].clone(),
            last_seen: f[3].clone(),
        }
    }

    async fn user(&mut self) -> Option<String> {
        self.seen().await.user
    }
}

enum Backend {
    Memory,
    Redis(RedisServer),
    Cluster(RedisCluster),
}

impl Backend {
    fn proxy(&self, up: &TestUpstream) -> ProxyBuilder {
        let b = ProxyBuilder::new(&up.url()).set("sessions.owner_key", "user_id");
        match self {
            Backend::Memory => b.driver("memory"),
            Backend::Redis(r) => b
                .driver("redis")
                .set("redis.url", &format!("\"{}\"", r.url())),
            Backend::Cluster(c) => b.driver("redis").set("redis.cluster", &c.yaml_list()),
        }
    }

    /// Two processes sharing the store; the memory store lives in one process, so one.
    fn proxies(&self, up: &TestUpstream) -> Vec<TestProxy> {
        let n = if matches!(self, Backend::Memory) {
            1
        } else {
            2
        };
        (0..n).map(|_| self.proxy(up).start()).collect()
    }

    /// The store the proxies use, built by the library as `session-proxy sessions` builds it.
    fn store(&self) -> RedisStore {
        let mut cfg = session_proxy::config::RedisConfig::default();
        match self {
            Backend::Redis(r) => cfg.url = r.url(),
            Backend::Cluster(c) => cfg.cluster = c.urls(),
            Backend::Memory => panic!("the memory store is inside the proxy"),
        }
        RedisStore::new(&cfg, None)
            .unwrap()
            .with_owner_keys(Some(OwnerKeys::new(SECRET, &[])))
    }
}

/// Three sessions of alice over the proxies, one of bob; `others` from one of alice's leaves
/// exactly that one; after signing in again, `everywhere` leaves none; bob is never touched.
async fn others_then_everywhere(backend: &Backend) {
    let up = app().await;
    let proxies = backend.proxies(&up);
    let on = |i: usize| Device::on(&proxies[i % proxies.len()]);
    let mut alice: Vec<Device> = (0..3).map(on).collect();
    let mut bob = on(1);
    for d in alice.iter_mut() {
        d.go("/login/alice").await;
    }
    bob.go("/login/bob").await;
    let mut handles = Vec::new();
    for d in alice.iter_mut() {
        let seen = d.seen().await;
        assert_eq!(seen.user.as_deref(), Some("alice"));
        handles.push(seen.handle.unwrap());
    }
    handles.sort();
    handles.dedup();
    assert_eq!(handles.len(), 3, "three distinct sessions");

    // A password change on the second device: the other two end, it stays.
    alice[1].go("/others").await;
    assert_eq!(alice[1].user().await.as_deref(), Some("alice"));
    for i in [0, 2] {
        let answer = alice[i].go("/whoami").await;
        assert_eq!(answer.text(), "- - - -", "device {i} still has a session");
        assert_eq!(
            answer.cookie(COOKIE).as_deref(),
            Some(""),
            "device {i} is told to forget its cookie"
        );
        assert!(alice[i].cookie.is_none());
    }
    assert_eq!(bob.user().await.as_deref(), Some("bob"));

    // Signed in again on both, then "sign out everywhere" from the first.
    alice[0].go("/login/alice").await;
    alice[2].go("/login/alice").await;
    alice[0].go("/everywhere").await;
    for (i, d) in alice.iter_mut().enumerate() {
        assert_eq!(d.user().await, None, "device {i} survived everywhere");
    }
    assert_eq!(bob.user().await.as_deref(), Some("bob"));
}

/// A session that changes owner leaves the old owner's index: alice's `everywhere` no longer
/// reaches it. A login that also says `others` ends the user's earlier sessions.
async fn owner_changes_and_login_with_others(backend: &Backend) {
    let up = app().await;
    let proxies = backend.proxies(&up);
    let on = |i: usize| Device::on(&proxies[i % proxies.len()]);
    let (mut first, mut switched, mut second) = (on(0), on(1), on(0));
    first.go("/login/alice").await;
    switched.go("/login/alice").await;
    switched.go("/as/carol").await;
    assert_eq!(switched.user().await.as_deref(), Some("carol"));
    first.go("/everywhere").await;
    assert_eq!(first.user().await, None);
    assert_eq!(switched.user().await.as_deref(), Some("carol"));

    first.go("/login/carol").await;
    second.go("/login-others/carol").await;
    assert_eq!(second.user().await.as_deref(), Some("carol"));
    assert_eq!(first.user().await, None, "an earlier session survived");
    assert_eq!(switched.user().await, None, "an earlier session survived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_others_and_everywhere() {
    others_then_everywhere(&Backend::Memory).await;
    owner_changes_and_login_with_others(&Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revocations_are_counted() {
    let up = app().await;
    let proxy = Backend::Memory
        .proxy(&up)
        .set("admin_listen", "127.0.0.1:0")
        .start();
    let mut devices: Vec<Device> = (0..3).map(|_| Device::on(&proxy)).collect();
    for d in devices.iter_mut() {
        d.go("/login/alice").await;
    }
    devices[0].go("/others").await;
    let metrics = get(proxy.admin_addr(), "/metrics", &[]).await.text();
    assert!(
        metrics.contains("session_proxy_sessions_revoked_total 2"),
        "{metrics}"
    );
    assert!(metrics.contains("op=\"revoke\""), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_others_and_everywhere_across_two_proxies() {
    let backend = Backend::Redis(RedisServer::start());
    others_then_everywhere(&backend).await;
    owner_changes_and_login_with_others(&backend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_others_and_everywhere_across_two_proxies() {
    let backend = Backend::Cluster(RedisCluster::start(3));
    others_then_everywhere(&backend).await;
    owner_changes_and_login_with_others(&backend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_app_sees_when_the_session_began_and_was_last_seen() {
    let up = app().await;
    let proxy = Backend::Memory.proxy(&up).start();
    let mut d = Device::on(&proxy);
    assert!(d.seen().await.created.is_none());
    d.go("/login/alice").await;
    let seen = d.seen().await;
    let parse = |s: &Option<String>| humantime::parse_rfc3339(s.as_deref().unwrap()).unwrap();
    let (created, last_seen) = (parse(&seen.created), parse(&seen.last_seen));
    assert!(seen.created.unwrap().ends_with('Z'));
    assert!(created <= last_seen);
    let age = SystemTime::now().duration_since(created).unwrap();
    assert!(age < Duration::from_secs(60), "created {age:?} ago");

    // A client cannot plant them, in any spelling, with or without a session.
    for cookie in [None, d.cookie.clone()] {
        let mut headers = vec![
            ("x-session-created", "1999-01-01T00:00:00Z"),
            ("X_Session_Last_Seen", "1999-01-01T00:00:00Z"),
        ];
        let c = cookie.as_ref().map(|c| format!("{COOKIE}={c}"));
        if let Some(c) = &c {
            headers.push(("cookie", c));
        }
        let text = get(proxy.addr, "/whoami", &headers).await.text();
        assert!(!text.contains("1999"), "{text}");
    }
}

/// Logins race a revocation by owner (what `session-proxy sessions revoke --owner` runs): after
/// it, every session that still works is in the owner's listing.
async fn logins_racing_a_revocation(backend: &Backend) {
    let up = app().await;
    let proxies = backend.proxies(&up);
    let store = std::sync::Arc::new(backend.store());
    let alice = Owner::new("alice").unwrap();
    for round in 0..3 {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Revokes over and over while the logins run.
        let revoker = {
            let (store, stop, alice) = (store.clone(), stop.clone(), alice.clone());
            tokio::spawn(async move {
                let mut revoked = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    revoked += store
                        .revoke_owner(&alice, None, now_millis())
                        .await
                        .unwrap()
                        .len();
                    tokio::task::yield_now().await;
                }
                revoked
            })
        };
        let logins: Vec<_> = (0..16)
            .map(|i| {
                let mut d = Device::on(&proxies[i % proxies.len()]);
                tokio::spawn(async move {
                    d.go("/login/alice").await;
                    d
                })
            })
            .collect();
        let mut devices = Vec::new();
        for login in logins {
            devices.push(login.await.unwrap());
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let revoked = revoker.await.unwrap();
        let listed: Vec<String> = store
            .owner_sessions(&alice, now_millis())
            .await
            .unwrap()
            .iter()
            .map(|s| s.handle.to_string())
            .collect();
        let mut alive = 0;
        for d in devices.iter_mut() {
            let seen = d.seen().await;
            if let Some(handle) = seen.handle {
                alive += 1;
                assert!(
                    listed.contains(&handle),
                    "round {round}: a live session is missing from the listing"
                );
            }
        }
        eprintln!(
            "round {round}: {revoked} revoked, {alive} alive, {} listed",
            listed.len()
        );
        assert_eq!(
            alive,
            listed.len(),
            "round {round}: the listing names a dead session"
        );
        store
            .revoke_owner(&alice, None, now_millis())
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_logins_racing_a_revocation_stay_listed() {
    logins_racing_a_revocation(&Backend::Redis(RedisServer::start())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_logins_racing_a_revocation_stay_listed() {
    logins_racing_a_revocation(&Backend::Cluster(RedisCluster::start(3))).await;
}

/// The index in Redis names no owner: one sorted set per owner under a keyed hash, members are
/// handles, and it expires no sooner than its longest-lived session.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_redis_index_holds_no_owner_value_and_expires() {
    let redis = RedisServer::start();
    let up = app().await;
    let backend = Backend::Redis(redis);
    let proxy = backend.proxy(&up).set("sessions.max_age", "1h").start();
    let mut d = Device::on(&proxy);
    d.go("/login/alice@example.com").await;
    let handle = d.seen().await.handle.unwrap();
    let Backend::Redis(redis) = &backend else {
        unreachable!()
    };
    let keys: Vec<String> = redis
        .cli(&["--scan", "--pattern", "*owner:*"])
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(!keys[0].contains("alice"), "{}", keys[0]);
    let dump = redis.cli(&["ZRANGE", &keys[0], "0", "-1"]);
    assert_eq!(dump.trim(), handle);
    let ttl: i64 = redis.cli(&["PTTL", &keys[0]]).trim().parse().unwrap();
    assert!(ttl > 3_500_000 && ttl <= 3_600_000, "{ttl}");
    // `cleanup` trims entries whose session is past its absolute expiry (the score), and keeps
    // the live one.
    redis.cli(&["ZADD", &keys[0], "1000", "an-old-entry"]);
    let yaml = std::fs::read_to_string(&proxy.config_path).unwrap();
    let (code, _, stderr) = run_cli(&yaml, &["cleanup"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(redis.cli(&["ZRANGE", &keys[0], "0", "-1"]).trim(), handle);
    // Logging out takes the entry out of the index.
    d.go("/logout").await;
    assert_eq!(redis.cli(&["ZCARD", &keys[0]]).trim(), "0");
}

/// The same race on the memory store, whose sessions live in the proxy: logins race
/// `DELETE /sessions?owner=` on the admin listener, and every session alive afterwards is in
/// `GET /sessions?owner=`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_logins_racing_a_revocation_stay_listed() {
    let up = app().await;
    let proxy = Backend::Memory
        .proxy(&up)
        .set("admin_listen", "127.0.0.1:0")
        .start();
    let (addr, admin) = (proxy.addr, proxy.admin_addr());
    let listed = || async move {
        let text = get(admin, "/sessions?owner=alice", &[]).await.text();
        let list: serde_json::Value = serde_json::from_str(&text).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .map(|s| s["handle"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    for round in 0..3 {
        send(admin, delete_alice(admin)).await;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let revoker = {
            let stop = stop.clone();
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    assert_eq!(send(admin, delete_alice(admin)).await.status, 200);
                }
            })
        };
        let logins: Vec<_> = (0..16u64)
            .map(|i| {
                let mut d = Device { addr, cookie: None };
                tokio::spawn(async move {
                    // Spread over a few milliseconds, so they straddle the revocations' end.
                    tokio::time::sleep(Duration::from_millis(i / 2)).await;
                    d.go("/login/alice").await;
                    d
                })
            })
            .collect();
        // The revocations stop while the logins are half done, so some sessions survive.
        let mut devices = Vec::new();
        let mut logins = logins.into_iter();
        for login in logins.by_ref().take(8) {
            devices.push(login.await.unwrap());
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        revoker.await.unwrap();
        for login in logins {
            devices.push(login.await.unwrap());
        }
        let listed = listed().await;
        let mut alive = 0;
        for d in devices.iter_mut() {
            if let Some(handle) = d.seen().await.handle {
                alive += 1;
                assert!(
                    listed.contains(&handle),
                    "round {round}: a live session is not listed"
                );
            }
        }
        assert_eq!(
            alive,
            listed.len(),
            "round {round}: the listing names a dead session"
        );
        eprintln!("round {round}: {alive} alive, {} listed", listed.len());
    }
}

fn delete_alice(admin: SocketAddr) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    http::Request::delete("/sessions?owner=alice")
        .header("host", admin.to_string())
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap()
}
