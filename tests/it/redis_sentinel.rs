//! Redis behind Sentinel through the real proxy binary: a primary, a replica and three sentinels,
//! all real `redis-server` processes on free ports. The primary is SIGKILLed under a steady stream
//! of session writes; Sentinel promotes the replica and the proxy must follow it without a restart.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

const COOKIE: &str = "session_id";
/// `down-after-milliseconds` of the test sentinels: no failover can start sooner after the kill.
const DOWN_AFTER: Duration = Duration::from_millis(1000);

fn proxy(set: &RedisSentinels, up: &TestUpstream, wait_replicas: bool) -> TestProxy {
    let mut b = ProxyBuilder::new(&up.url())
        .driver("redis")
        .set("redis.url", "\"redis://127.0.0.1:1/0\"")
        .set("redis.sentinel.master", SENTINEL_MASTER)
        .set("redis.sentinel.nodes", &set.yaml_nodes());
    if wait_replicas {
        b = b.set("redis.sentinel.wait_replicas", "1");
    }
    b.start()
}

async fn login(addr: std::net::SocketAddr) -> String {
    let answer = get(addr, "/login", &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.cookie(COOKIE).expect("a session cookie")
}

/// The session data the app was handed for `cookie`.
async fn data(addr: std::net::SocketAddr, cookie: &str) -> serde_json::Map<String, Value> {
    let answer = get_with_cookie(addr, "/who", COOKIE, cookie).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    serde_json::from_str(&answer.text()).expect("the session survived")
}

/// Mean time of a session write through each of `addrs`, over `n` rounds of one write to each
/// (interleaved, so that a busy machine slows both alike).
async fn mean_writes<const N: usize>(
    addrs: [std::net::SocketAddr; N],
    cookie: &str,
    n: u32,
) -> [Duration; N] {
    let mut total = [Duration::ZERO; N];
    for i in 0..n {
        for (addr, total) in addrs.iter().zip(&mut total) {
            let started = Instant::now();
            let answer = get_with_cookie(*addr, &format!("/set/w/{i}"), COOKIE, cookie).await;
            *total += started.elapsed();
            assert_eq!(answer.status, 200, "{}", answer.text());
        }
    }
    total.map(|t| t / n)
}

/// One write of the stream.
struct Shot {
    sent: Instant,
    answered: Instant,
    status: u16,
    value: u64,
    /// A session cookie the answer set, if any.
    cookie: Option<String>,
}

/// Writes `n=<i>` to the session every 50 ms until `stop`, recording every answer.
fn write_stream(
    addr: std::net::SocketAddr,
    cookie: String,
    stop: Arc<AtomicBool>,
    shots: Arc<Mutex<Vec<Shot>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut value = 0;
        while !stop.load(Ordering::Relaxed) {
            value += 1;
            let sent = Instant::now();
            let answer = get_with_cookie(addr, &format!("/set/n/{value}"), COOKIE, &cookie).await;
            shots.lock().unwrap().push(Shot {
                sent,
                answered: Instant::now(),
                status: answer.status.as_u16(),
                value,
                cookie: answer.cookie(COOKIE),
            });
            tokio::time::sleep_until((sent + Duration::from_millis(50)).into()).await;
        }
    })
}

/// Polls the sentinels until they name the replica as primary; returns when they first did.
async fn promoted(set: &RedisSentinels, within: Duration) -> Instant {
    let deadline = Instant::now() + within;
    let replica = set.replica.port;
    loop {
        let port = tokio::task::block_in_place(|| set.primary_port());
        if port == Some(replica) {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "Sentinel did not promote the replica"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn primary_killed_sentinel_promotes_the_replica_and_the_proxy_follows() {
    let mut set = tokio::task::block_in_place(RedisSentinels::start);
    let up = path_driven_app().await;
    let proxy = proxy(&set, &up, true);
    let plain = self::proxy(&set, &up, false);
    let addr = proxy.addr;

    // Sessions written before the failover; with `wait_replicas: 1` each acknowledged write is
    // already on the replica when the client hears of it.
    let mut before = Vec::new();
    for i in 0..5 {
        let cookie = login(addr).await;
        let answer = get_with_cookie(addr, &format!("/set/n/{i}"), COOKIE, &cookie).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        before.push(cookie);
    }
    let writer = login(addr).await;
    let on_replica = set.replica.cli(&["--scan", "--pattern", "session:*"]);
    assert_eq!(on_replica.lines().count(), 6, "{on_replica}");

    // What `WAIT 1 100` costs a write, against the same primary without it.
    let [with_wait, without] = mean_writes([addr, plain.addr], &writer, 200).await;
    println!(
        "sentinel: mean session write over 200: {}us with wait_replicas 1, {}us without",
        with_wait.as_micros(),
        without.as_micros()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let shots = Arc::new(Mutex::new(Vec::new()));
    let stream = write_stream(addr, writer.clone(), stop.clone(), shots.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    set.primary.stop();
    let killed = Instant::now();
    let promoted = promoted(&set, Duration::from_secs(30)).await;
    let recovered = |shots: &[Shot]| {
        shots
            .iter()
            .skip_while(|s| s.status != 503)
            .find(|s| s.status == 200)
            .map(|s| s.answered)
    };
    let deadline = promoted + Duration::from_secs(12);
    while recovered(&shots.lock().unwrap()).is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    stream.await.unwrap();
    let shots = std::mem::take(&mut *shots.lock().unwrap());

    check_stream(&shots, &writer, killed, promoted);
    let first_503 = shots.iter().find(|s| s.status == 503).unwrap().answered;
    let back = recovered(&shots).unwrap();
    let count = shots.iter().filter(|s| s.status == 503).count();
    println!(
        "sentinel failover: promotion {}ms after the kill; 503 window {}ms (first 503 -> first 2xx), \
         {count} 503s of {} writes; 2xx again {}ms after the promotion was seen",
        ms(promoted - killed),
        ms(back - first_503),
        shots.len(),
        ms(back.saturating_duration_since(promoted)),
    );

    // Sessions written before the failover are still there, with their last acknowledged write.
    for (i, cookie) in before.iter().enumerate() {
        let d = data(addr, cookie).await;
        assert_eq!(d.get("user"), Some(&Value::from("Ann")));
        assert_eq!(d.get("n"), Some(&Value::from(i)), "{d:?}");
    }
    let last = shots.iter().rev().find(|s| s.status == 200).unwrap().value;
    assert_eq!(data(addr, &writer).await.get("n"), Some(&Value::from(last)));
    assert!(proxy.wait_for_log("asking the sentinels again", Duration::from_secs(1)));
    // The new primary has no replica left: WAIT times out, is logged, and writes still answer.
    assert!(proxy.wait_for_log("fewer replicas", Duration::from_secs(1)));
    proxy.assert_no_panic();
}

/// The stream's answers: 200 until the kill, 503 (never another error, never a silent success)
/// while no primary can exist, 200 again within 10 s of the promotion and from then on.
fn check_stream(shots: &[Shot], writer: &str, killed: Instant, promoted: Instant) {
    for s in shots {
        assert!(
            s.status == 200 || s.status == 503,
            "write {} answered {}",
            s.value,
            s.status
        );
        if s.status == 200 {
            // A 2xx that had silently started a new session would set another cookie.
            assert!(s.cookie.as_deref().is_none_or(|c| c == writer));
        }
        if s.answered < killed {
            assert_eq!(s.status, 200, "write {} failed before the kill", s.value);
        }
        if s.sent >= killed && s.answered < killed + DOWN_AFTER {
            assert_eq!(s.status, 503, "write {} succeeded with no primary", s.value);
        }
    }
    let first_503 = shots.iter().position(|s| s.status == 503);
    let first_503 = first_503.expect("no 503 during the switch");
    let back = shots[first_503..].iter().position(|s| s.status == 200);
    let back = first_503 + back.expect("no 2xx after the switch");
    assert!(
        shots[back].answered <= promoted + Duration::from_secs(10),
        "2xx again only {}ms after the promotion",
        ms(shots[back].answered - promoted)
    );
    assert!(
        shots[back..].iter().all(|s| s.status == 200),
        "503s again after the recovery"
    );
}
