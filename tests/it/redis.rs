//! The Redis store through the real proxy binary, against real `redis-server` processes (standalone
//! and a 3-master Cluster) on free ports.

use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub(crate) const COOKIE: &str = "session_id";

/// Where the test's sessions live: one server or a cluster, inspected with `redis-cli`.
enum Db {
    Single(RedisServer),
    Cluster(RedisCluster),
}

impl Db {
    fn single() -> Db {
        Db::Single(RedisServer::start())
    }

    fn cluster() -> Db {
        Db::Cluster(RedisCluster::start(3))
    }

    fn proxy(&self, up: &TestUpstream) -> ProxyBuilder {
        let b = ProxyBuilder::new(&up.url()).driver("redis");
        match self {
            Db::Single(r) => b.set("redis.url", &format!("\"{}\"", r.url())),
            Db::Cluster(c) => b.set("redis.cluster", &c.yaml_list()),
        }
    }

    fn cli(&self, args: &[&str]) -> String {
        match self {
            Db::Single(r) => r.cli(args),
            Db::Cluster(c) => c.cli(args),
        }
    }

    fn keys(&self, pattern: &str) -> Vec<String> {
        let mut keys = match self {
            Db::Single(r) => r
                .cli(&["--scan", "--pattern", pattern])
                .lines()
                .map(str::to_owned)
                .collect(),
            Db::Cluster(c) => c.scan(pattern),
        };
        keys.sort();
        keys.dedup();
        keys
    }

    /// The store the proxy would build, for reading sealed sessions back in the test.
    fn store(&self) -> session_proxy::session::store::redis::RedisStore {
        let mut cfg = session_proxy::config::RedisConfig::default();
        match self {
            Db::Single(r) => cfg.url = r.url(),
            Db::Cluster(c) => cfg.cluster = c.urls(),
        }
        session_proxy::session::store::redis::RedisStore::new(&cfg, None).unwrap()
    }

    fn server(&mut self) -> &mut RedisServer {
        match self {
            Db::Single(r) => r,
            Db::Cluster(_) => panic!("a standalone server was expected"),
        }
    }
}

/// What the upstream was told the session holds, or None when it was handed no session.
pub(crate) async fn data(addr: std::net::SocketAddr, cookie: &str) -> Option<Map<String, Value>> {
    let answer = get_with_cookie(addr, "/who", COOKIE, cookie).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let text = answer.text();
    (text != "-").then(|| serde_json::from_str(&text).unwrap())
}

pub(crate) async fn login(addr: std::net::SocketAddr) -> String {
    let answer = get(addr, "/login", &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let cookie = answer.cookie(COOKIE).expect("a session cookie");
    assert!(!cookie.is_empty());
    cookie
}

pub(crate) fn expected_key(prefix: &str, id: &str) -> String {
    let d: String = Sha256::digest(id.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{prefix}{{{}}}{}", &d[..2], &d[2..])
}

fn pttl(db: &Db, key: &str) -> i64 {
    db.cli(&["pttl", key]).trim().parse().unwrap()
}

/// The session data the store holds for `cookie`, read through the store (sealed or not).
async fn stored(db: &Db, cookie: &str) -> Map<String, Value> {
    use session_proxy::session::store::{now_millis, Lookup, SessionStore};
    match db.store().load(cookie, now_millis()).await.unwrap() {
        Lookup::Found { session, .. } => (*session.data).clone(),
        other => panic!("no session: {other:?}"),
    }
}

/// Set, read, delete, regenerate, clear: the whole protocol, plus what lands in Redis, in the
/// readable layout (`encrypt` false) or the sealed one.
async fn core_flows(db: &Db, encrypt: bool) {
    let up = path_driven_app().await;
    let proxy = db
        .proxy(&up)
        .set("redis.encrypt", &encrypt.to_string())
        .set("sessions.max_age", "1h")
        .set("sessions.idle_timeout", "10m")
        .start();
    let addr = proxy.addr;

    let cookie = login(addr).await;
    let d = data(addr, &cookie).await.expect("session");
    assert_eq!(d.get("user"), Some(&Value::from("Ann")));

    // Redis holds prefix + digest, never the ID, with TTL = remaining lifetime (idle 10m < 1h).
    let keys = db.keys("session:*");
    assert_eq!(keys, vec![expected_key("session:", &cookie)]);
    let key = &keys[0];
    let dump = db.cli(&["hgetall", key]);
    assert!(!dump.contains(&cookie) && !key.contains(&cookie));
    if encrypt {
        assert!(!dump.contains("user") && !dump.contains("Ann"), "{dump}");
        assert_eq!(db.cli(&["hget", key, "m:v"]).trim(), "2");
    } else {
        assert!(dump.contains("d:user"), "{dump}");
        assert_eq!(db.cli(&["hexists", key, "m:v"]).trim(), "0");
    }
    let ttl = pttl(db, key);
    assert!((590_000..=600_000).contains(&ttl), "pttl {ttl}");

    // Set and delete are applied.
    get_with_cookie(addr, "/set/color/blue", COOKIE, &cookie).await;
    get_with_cookie(addr, "/del/user", COOKIE, &cookie).await;
    let d = data(addr, &cookie).await.expect("session");
    assert_eq!(d.get("color"), Some(&Value::from("blue")));
    assert!(d.get("user").is_none());

    // Regenerate: new ID, same data, old ID dead, still one key, same hash tag.
    let answer = get_with_cookie(addr, "/regen", COOKIE, &cookie).await;
    let fresh = answer.cookie(COOKIE).expect("a new cookie");
    assert!(!fresh.is_empty() && fresh != cookie);
    assert!(data(addr, &cookie).await.is_none(), "old ID still works");
    let d = data(addr, &fresh).await.expect("regenerated session");
    assert_eq!(d.get("color"), Some(&Value::from("blue")));
    let keys = db.keys("session:*");
    assert_eq!(keys, vec![expected_key("session:", &fresh)]);
    assert_eq!(keys[0][..11], key[..11], "hash tag kept");
    assert!(pttl(db, &keys[0]) > 590_000);

    // Clear: cookie expired, key gone, replayed cookie yields nothing.
    let answer = get_with_cookie(addr, "/clear", COOKIE, &fresh).await;
    assert_eq!(answer.cookie(COOKIE).as_deref(), Some(""));
    assert!(db.keys("session:*").is_empty());
    let replay = get_with_cookie(addr, "/who", COOKIE, &fresh).await;
    assert_eq!(replay.text(), "-");
    assert_eq!(
        replay.cookie(COOKIE).as_deref(),
        Some(""),
        "stale cookie expired"
    );
}

/// 100 concurrent requests of one session, each setting its own key: no lost update, in either
/// layout.
async fn concurrent_keys(db: &Db, encrypt: bool) {
    let up = path_driven_app().await;
    let proxy = db
        .proxy(&up)
        .set("redis.encrypt", &encrypt.to_string())
        .start();
    let addr = proxy.addr;
    let cookie = login(addr).await;
    let mut tasks = Vec::new();
    for i in 0..100 {
        let cookie = cookie.clone();
        tasks.push(tokio::spawn(async move {
            get_with_cookie(addr, &format!("/set/k{i}/{i}"), COOKIE, &cookie)
                .await
                .status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    // Read back from Redis: the test upstream (hyper, 100 headers at most) cannot take the 100+
    // X-Session-<key> headers the proxy would send it for this session.
    let key = expected_key("session:", &cookie);
    if encrypt {
        let data = stored(db, &cookie).await;
        for i in 0..100 {
            assert_eq!(
                data.get(&format!("k{i}")),
                Some(&Value::from(i)),
                "k{i} lost"
            );
        }
        assert_eq!(data.get("user"), Some(&Value::from("Ann")));
        assert_eq!(data.len(), 101);
        assert_eq!(
            db.cli(&["hlen", &key]).trim(),
            "105",
            "101 sealed + 3 meta + m:v"
        );
        return;
    }
    let dump = db.cli(&["hgetall", &key]);
    let lines: Vec<&str> = dump.lines().collect();
    let fields: std::collections::HashMap<&str, &str> =
        lines.chunks(2).map(|p| (p[0], p[1])).collect();
    for i in 0..100 {
        let field = format!("d:k{i}");
        let expected = i.to_string();
        assert_eq!(
            fields.get(field.as_str()),
            Some(&expected.as_str()),
            "k{i} lost"
        );
    }
    assert_eq!(fields.get("d:user"), Some(&"\"Ann\""));
    assert_eq!(fields.len(), 104, "101 data fields + 3 meta");
}

/// Two sessions that expire in 2s but linger (TTL pushed out), one live session, one key with no
/// TTL: cleanup removes three and scans four.
async fn cleanup_counts(db: &Db) {
    let up = path_driven_app().await;
    let short = db.proxy(&up).set("sessions.max_age", "2s").start();
    let long = db.proxy(&up).set("sessions.max_age", "1h").start();
    let a = login(short.addr).await;
    let b = login(short.addr).await;
    let live = login(long.addr).await;
    for c in [&a, &b] {
        let key = expected_key("session:", c);
        assert_eq!(db.cli(&["pexpire", &key, "3600000"]).trim(), "1");
    }
    db.cli(&["set", "session:debris", "x"]);
    std::thread::sleep(Duration::from_millis(2300));

    // Lingering but expired by its own timestamps: never served.
    assert!(data(short.addr, &a).await.is_none());

    let yaml = short.yaml_for_cli();
    let (code, stdout, stderr) = run_cli(&yaml, &["cleanup"], &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("removed 3 expired sessions (scanned 4)"),
        "{stdout}{stderr}"
    );
    assert_eq!(db.keys("session:*"), vec![expected_key("session:", &live)]);
    assert!(data(long.addr, &live).await.is_some());
}

trait CliYaml {
    fn yaml_for_cli(&self) -> String;
}

impl CliYaml for TestProxy {
    fn yaml_for_cli(&self) -> String {
        std::fs::read_to_string(&self.config_path).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn standalone_set_read_delete_regenerate_clear() {
    let db = Db::single();
    core_flows(&db, false).await;
    core_flows(&db, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn standalone_concurrent_updates_all_land() {
    concurrent_keys(&Db::single(), false).await;
    concurrent_keys(&Db::single(), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn standalone_cleanup_counts() {
    cleanup_counts(&Db::single()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_core_concurrency_and_cleanup() {
    let db = Db::cluster();
    core_flows(&db, false).await;
    core_flows(&db, true).await;
    concurrent_keys(&db, false).await;
    concurrent_keys(&db, true).await;
    // Leave only what cleanup_counts creates.
    for key in db.keys("session:*") {
        db.cli(&["del", &key]);
    }
    cleanup_counts(&db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn regenerate_many_times_in_cluster_keeps_the_slot() {
    let db = Db::cluster();
    let up = path_driven_app().await;
    let proxy = db.proxy(&up).start();
    let mut cookie = login(proxy.addr).await;
    for _ in 0..10 {
        let answer = get_with_cookie(proxy.addr, "/regen", COOKIE, &cookie).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        cookie = answer.cookie(COOKIE).unwrap();
        assert!(data(proxy.addr, &cookie).await.is_some());
    }
    assert_eq!(db.keys("session:*").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_but_lingering_key_is_not_served() {
    let db = Db::single();
    let up = path_driven_app().await;
    let proxy = db.proxy(&up).set("sessions.max_age", "2s").start();
    let cookie = login(proxy.addr).await;
    let key = expected_key("session:", &cookie);
    let ttl = pttl(&db, &key);
    assert!((1_000..=2_000).contains(&ttl), "pttl {ttl}");
    assert_eq!(db.cli(&["persist", &key]).trim(), "1");
    std::thread::sleep(Duration::from_millis(2200));
    assert_eq!(db.cli(&["exists", &key]).trim(), "1", "key lingers");
    let answer = get_with_cookie(proxy.addr, "/who", COOKIE, &cookie).await;
    assert_eq!(answer.text(), "-");
    assert_eq!(answer.cookie(COOKIE).as_deref(), Some(""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replayed_cookie_of_destroyed_session_gets_nothing() {
    let db = Db::single();
    let up = path_driven_app().await;
    let proxy = db.proxy(&up).start();
    let cookie = login(proxy.addr).await;
    get_with_cookie(proxy.addr, "/clear", COOKIE, &cookie).await;
    // A replay that tries to write must not resurrect it either.
    let answer = get_with_cookie(proxy.addr, "/set/x/1", COOKIE, &cookie).await;
    let new_cookie = answer.cookie(COOKIE).unwrap();
    assert_ne!(new_cookie, cookie, "the old ID came back");
    assert!(data(proxy.addr, &cookie).await.is_none());
    assert_eq!(
        db.cli(&["exists", &expected_key("session:", &cookie)])
            .trim(),
        "0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_proxies_share_sessions() {
    let db = Db::single();
    let up = path_driven_app().await;
    let a = db.proxy(&up).start();
    let b = db.proxy(&up).start();
    let cookie = login(a.addr).await;
    assert_eq!(
        data(b.addr, &cookie).await.unwrap().get("user"),
        Some(&Value::from("Ann"))
    );
    get_with_cookie(b.addr, "/set/cart/3", COOKIE, &cookie).await;
    assert_eq!(
        data(a.addr, &cookie).await.unwrap().get("cart"),
        Some(&Value::from(3))
    );
    get_with_cookie(b.addr, "/clear", COOKIE, &cookie).await;
    assert!(data(a.addr, &cookie).await.is_none());
}

/// Polls until a request with `cookie` (or without, when None) to `path` answers 200.
async fn until_ok(addr: std::net::SocketAddr, path: &str, within: Duration) -> Answer {
    let deadline = Instant::now() + within;
    loop {
        let answer = get(addr, path, &[]).await;
        if answer.status == 200 || Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_killed_then_restarted_recovers_without_proxy_restart() {
    let mut db = Db::single();
    let up = path_driven_app().await;
    let proxy = db.proxy(&up).start();
    let cookie = login(proxy.addr).await;

    db.server().stop();
    let started = Instant::now();
    let answer = get_with_cookie(proxy.addr, "/who", COOKIE, &cookie).await;
    assert_eq!(answer.status, 503, "{}", answer.text());
    assert!(answer.header("retry-after").is_some());
    assert!(started.elapsed() < Duration::from_secs(3));
    let login_down = get(proxy.addr, "/login", &[]).await;
    assert_eq!(login_down.status, 503);
    let plain = get(proxy.addr, "/plain", &[]).await;
    assert_eq!(plain.status, 200, "no cookie, nothing set: store untouched");
    assert!(proxy.wait_for_log("session store unavailable", Duration::from_secs(2)));
    let logs = proxy.logs_text();
    assert!(!logs.contains(&cookie), "a session ID reached the logs");

    db.server().restart();
    let answer = until_ok(proxy.addr, "/login", Duration::from_secs(5)).await;
    assert_eq!(answer.status, 200, "did not recover: {}", answer.text());
    let fresh = answer.cookie(COOKIE).unwrap();
    assert!(data(proxy.addr, &fresh).await.is_some());
    // The old session died with the unpersisted server: no session, no error.
    assert!(data(proxy.addr, &cookie).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn proxy_starts_with_redis_down_and_recovers() {
    let mut db = Db::single();
    db.server().stop();
    let up = path_driven_app().await;
    let proxy = db.proxy(&up).start();
    let answer = get(proxy.addr, "/login", &[]).await;
    assert_eq!(answer.status, 503, "{}", answer.text());
    assert!(answer.header("retry-after").is_some());
    assert_eq!(get(proxy.addr, "/plain", &[]).await.status, 200);

    db.server().restart();
    // The first request after Redis returns already succeeds: a refused connection is retried.
    let answer = get(proxy.addr, "/login", &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let cookie = answer.cookie(COOKIE).unwrap();
    assert!(data(proxy.addr, &cookie).await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn check_with_redis_down_warns_and_exits_zero() {
    let up = path_driven_app().await;
    let dead = dead_addr();
    // It also says which layout writes produce (docs/redis.md, Encryption at rest).
    for (encrypt, layout) in [
        ("true", "Redis layout: sealed (redis.encrypt: true)"),
        ("false", "Redis layout: readable (redis.encrypt: false)"),
    ] {
        let yaml = ProxyBuilder::new(&up.url())
            .driver("redis")
            .set("redis.url", &format!("\"redis://app:hunter2@{dead}/0\""))
            .set("redis.encrypt", encrypt)
            .yaml();
        let (code, stdout, stderr) = run_cli(&yaml, &["check"], &[]);
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert!(
            stderr.contains("warning: session store unreachable"),
            "{stderr}"
        );
        assert!(!stdout.contains("hunter2") && !stderr.contains("hunter2"));
        assert!(stderr.contains(layout), "{stderr}");
        assert!(stdout.contains(&format!("encrypt: {encrypt}")), "{stdout}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cleanup_with_redis_down_fails_clearly() {
    let up = path_driven_app().await;
    let dead = dead_addr();
    let yaml = ProxyBuilder::new(&up.url())
        .driver("redis")
        .set("redis.url", &format!("\"redis://{dead}/0\""))
        .yaml();
    let started = Instant::now();
    let (code, stdout, stderr) = run_cli(&yaml, &["cleanup"], &[]);
    assert_ne!(code, 0, "{stdout}{stderr}");
    assert!(
        stderr.contains("cleanup failed: the session store is unreachable"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

fn commandstats(db: &Db) -> Vec<(String, u64)> {
    db.cli(&["info", "commandstats"])
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .filter(|(name, _)| name != "info" && name != "config|resetstat")
        .collect()
}

/// Commands our scripts run inside Redis; INFO commandstats counts them too, but they cost no
/// round trip.
const IN_SCRIPT: &[&str] = &[
    "exists", "hset", "hdel", "hmget", "pexpire", "rename", "del",
];

/// Commands the proxy sent over the network: everything else.
fn round_trips(stats: &[(String, u64)]) -> u64 {
    stats
        .iter()
        .filter(|(name, _)| !IN_SCRIPT.contains(&name.as_str()))
        .map(|(_, c)| c)
        .sum()
}

/// Round trips per request, counted by Redis itself: a read is one HGETALL, a write one EVALSHA
/// on top of it, and a request with no cookie that sets nothing sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn round_trips_per_request() {
    const N: u64 = 50;
    let db = Db::single();
    let up = path_driven_app().await;
    let proxy = db.proxy(&up).start();
    let cookie = login(proxy.addr).await; // also loads the scripts on the way
    get_with_cookie(proxy.addr, "/set/warm/1", COOKIE, &cookie).await;
    get_with_cookie(proxy.addr, "/regen", COOKIE, &cookie).await;

    db.cli(&["config", "resetstat"]);
    for _ in 0..N {
        assert_eq!(get(proxy.addr, "/plain", &[]).await.status, 200);
    }
    let none = commandstats(&db);
    assert!(none.is_empty(), "{none:?}");

    let cookie = login(proxy.addr).await;
    db.cli(&["config", "resetstat"]);
    for _ in 0..N {
        data(proxy.addr, &cookie).await.unwrap();
    }
    let reads = commandstats(&db);
    eprintln!("{N} reads: {reads:?}");
    assert_eq!(round_trips(&reads), N, "{reads:?}");
    assert!(reads.contains(&("hgetall".to_owned(), N)), "{reads:?}");

    db.cli(&["config", "resetstat"]);
    for i in 0..N {
        get_with_cookie(proxy.addr, &format!("/set/n/{i}"), COOKIE, &cookie).await;
    }
    let writes = commandstats(&db);
    eprintln!("{N} writes: {writes:?}");
    assert_eq!(round_trips(&writes), 2 * N, "{writes:?}");
    assert!(writes.contains(&("evalsha".to_owned(), N)), "{writes:?}");
    assert!(writes.contains(&("hgetall".to_owned(), N)), "{writes:?}");
}

/// `user:password@` in the URL authenticates as an ACL user; a wrong password is a 503, and the
/// password never reaches the logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acl_user_from_the_url() {
    let redis = RedisServer::start_with(&[
        "--user",
        "app",
        "on",
        ">s3cret-pw",
        "~session:*",
        "&*",
        "+@all",
    ]);
    let up = path_driven_app().await;
    let url = |pw: &str| format!("\"redis://app:{pw}@127.0.0.1:{}/0\"", redis.port);
    let good = ProxyBuilder::new(&up.url())
        .driver("redis")
        .set("redis.url", &url("s3cret-pw"))
        .start();
    let cookie = login(good.addr).await;
    assert!(data(good.addr, &cookie).await.is_some());

    let bad = ProxyBuilder::new(&up.url())
        .driver("redis")
        .set("redis.url", &url("wrong-pw"))
        .start();
    let answer = get(bad.addr, "/login", &[]).await;
    assert_eq!(answer.status, 503, "{}", answer.text());
    assert!(bad.wait_for_log("session store unavailable", Duration::from_secs(2)));
    assert!(!bad.logs_text().contains("wrong-pw") && !good.logs_text().contains("s3cret-pw"));
}

/// Redis answering slower than `redis.timeout` is a 503 after about that long, not a hung request;
/// once Redis answers again, so does the proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_redis_is_a_503_after_the_timeout() {
    let redis = RedisServer::start_with(&["--enable-debug-command", "yes"]);
    let up = path_driven_app().await;
    let proxy = ProxyBuilder::new(&up.url())
        .driver("redis")
        .set("redis.url", &format!("\"{}\"", redis.url()))
        .set("redis.timeout", "300ms")
        .start();
    let cookie = login(proxy.addr).await;
    let mut sleeper = std::process::Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "debug", "sleep", "1.5"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let answer = get_with_cookie(proxy.addr, "/who", COOKIE, &cookie).await;
    let took = started.elapsed();
    assert_eq!(answer.status, 503, "{}", answer.text());
    assert!(answer.header("retry-after").is_some());
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_millis(1200),
        "{took:?}"
    );
    sleeper.wait().unwrap();
    let answer = until_ok(proxy.addr, "/login", Duration::from_secs(5)).await;
    assert_eq!(answer.status, 200);
    assert!(
        data(proxy.addr, &cookie).await.is_some(),
        "session survived the stall"
    );
}

/// The store's scripts against Redis, fed the expiry rule's numbers from Rust: an update that
/// carries an older `last_seen` (a slower concurrent request) never shortens the TTL a newer one
/// set, a newer one moves it on, and cleanup removes the session once its idle timeout has run out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_writes_and_sweep_follow_the_expiry_rule() {
    use session_proxy::config::RedisConfig;
    use session_proxy::session::store::redis::RedisStore;
    use session_proxy::session::store::{
        now_millis, CleanupReport, Delta, Session, SessionStore, Write,
    };
    let mut db = Db::single();
    let mut cfg = RedisConfig::default();
    cfg.url = db.server().url();
    let store = RedisStore::new(&cfg, Some(Duration::from_secs(600))).unwrap();
    let now = now_millis();
    let session = Session::new(store.generate_id(None), now, Duration::from_secs(3600));
    let key = store.key(&session.id);
    assert!(matches!(
        store.create(&session, now).await.unwrap(),
        Write::Stored(_)
    ));

    let mut stale = session.clone();
    stale.last_seen = now - 300_000;
    assert!(matches!(
        store
            .update(&stale, Delta::default(), now_millis())
            .await
            .unwrap(),
        Write::Stored(_)
    ));
    let ttl = pttl(&db, &key);
    assert!((590_000..=600_000).contains(&ttl), "pttl {ttl}");
    assert_eq!(db.cli(&["hget", &key, "m:s"]).trim(), now.to_string());

    let mut newer = session.clone();
    newer.last_seen = now + 60_000;
    store
        .update(&newer, Delta::default(), now_millis())
        .await
        .unwrap();
    let ttl = pttl(&db, &key);
    assert!((650_000..=660_000).contains(&ttl), "pttl {ttl}");

    let report = store.cleanup(now + 659_000).await.unwrap();
    assert_eq!(report.removed, 0, "{report:?}");
    let report = store.cleanup(now + 660_000).await.unwrap();
    assert_eq!(
        report,
        CleanupReport {
            scanned: 1,
            removed: 1
        }
    );
}
