//! Sessions by owner from outside (issue 16): the admin API (`/sessions` on `admin_listen`,
//! behind `admin_token`) against the memory store, the `session-proxy sessions` CLI against
//! Redis shared by two proxies, and the refusals of both where the store cannot answer.

use std::net::SocketAddr;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use serde_json::Value;

use crate::support::*;

const COOKIE: &str = "session_id";
const TOKEN: &str = "admin-token-0123456789abcdefghijklmnop";

/// `/login/<user>` makes the session `<user>`'s (a login: new ID); anything else echoes the
/// X-Session-Id the app was handed (`-` without a session).
async fn app() -> TestUpstream {
    TestUpstream::with(|seen| match seen.uri.path().strip_prefix("/login/") {
        Some(user) => Reply::ok()
            .header("X-Session-Set", &format!("user_id={user}"))
            .header("X-Session-Regenerate", "1"),
        None => Reply::ok().body(seen.header("x-session-id").unwrap_or("-").to_owned()),
    })
    .await
}

/// A client logged in as `user` through `proxy`: its cookie and the handle the app saw.
async fn login(proxy: SocketAddr, user: &str) -> (String, String) {
    let res = get(proxy, &format!("/login/{user}"), &[]).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let cookie = res.cookie(COOKIE).expect("the login set a cookie");
    let handle = whoami(proxy, &cookie).await.text();
    assert_eq!(handle.len(), 43, "{handle}");
    (cookie, handle)
}

async fn whoami(proxy: SocketAddr, cookie: &str) -> Answer {
    get_with_cookie(proxy, "/whoami", COOKIE, cookie).await
}

/// One admin request; `token` goes in `Authorization: Bearer`.
async fn admin(addr: SocketAddr, method: &str, path: &str, token: Option<&str>) -> Answer {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    send(addr, req.body(Full::new(Bytes::new())).unwrap()).await
}

fn json(res: &Answer) -> Value {
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("content-type"), Some("application/json"));
    serde_json::from_slice(&res.body).unwrap()
}

fn handles(listing: &Value) -> Vec<String> {
    listing
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["handle"].as_str().unwrap().to_owned())
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// `2026-12-02T01:02:03Z`.
fn is_rfc3339(text: &str) -> bool {
    text.len() == 20 && text.ends_with('Z') && humantime::parse_rfc3339(text).is_ok()
}

fn memory_proxy(up: &TestUpstream) -> TestProxy {
    ProxyBuilder::new(&up.url())
        .driver("memory")
        .set("admin_listen", "127.0.0.1:0")
        .set("admin_token", &format!("\"{TOKEN}\""))
        .set("sessions.owner_key", "user_id")
        .start()
}

#[tokio::test]
async fn the_admin_api_lists_and_ends_an_owners_sessions() {
    let up = app().await;
    let proxy = memory_proxy(&up);
    let admin_addr = proxy.admin_addr();
    let mut alice = Vec::new();
    for _ in 0..3 {
        alice.push(login(proxy.addr, "alice").await);
    }
    let bob = login(proxy.addr, "bob").await;

    let listing = json(&admin(admin_addr, "GET", "/sessions?owner=alice", Some(TOKEN)).await);
    let alice_handles: Vec<String> = alice.iter().map(|(_, h)| h.clone()).collect();
    assert_eq!(sorted(handles(&listing)), sorted(alice_handles.clone()));
    for s in listing.as_array().unwrap() {
        let fields: Vec<&String> = s.as_object().unwrap().keys().collect();
        assert_eq!(fields.len(), 4, "handle and three times only: {s}");
        for time in ["created", "last_seen", "expires"] {
            assert!(is_rfc3339(s[time].as_str().unwrap()), "{time}: {s}");
        }
    }
    let created: Vec<&str> = listing
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["created"].as_str().unwrap())
        .collect();
    assert!(
        created.windows(2).all(|w| w[0] <= w[1]),
        "oldest first: {created:?}"
    );

    // One alice session by handle: that client is signed out, the cookie expired.
    let (cookie, handle) = &alice[0];
    let res = admin(
        admin_addr,
        "DELETE",
        &format!("/sessions/{handle}"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(json(&res), serde_json::json!({"revoked": 1}));
    let res = whoami(proxy.addr, cookie).await;
    assert_eq!(res.text(), "-", "the app still saw a session");
    assert_eq!(
        res.cookie(COOKIE).as_deref(),
        Some(""),
        "{:?}",
        res.set_cookies()
    );
    let again = admin(
        admin_addr,
        "DELETE",
        &format!("/sessions/{handle}"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(again.status, 404, "{}", again.text());

    // The rest of alice's by owner; bob keeps his.
    let res = json(&admin(admin_addr, "DELETE", "/sessions?owner=alice", Some(TOKEN)).await);
    assert_eq!(res["revoked"], 2, "{res}");
    let ended: Vec<String> = res["handles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sorted(ended), sorted(alice_handles[1..].to_vec()));
    for (cookie, _) in &alice[1..] {
        assert_eq!(whoami(proxy.addr, cookie).await.text(), "-");
    }
    assert_eq!(whoami(proxy.addr, &bob.0).await.text(), bob.1);
    let listing = json(&admin(admin_addr, "GET", "/sessions?owner=alice", Some(TOKEN)).await);
    assert_eq!(listing, serde_json::json!([]));
    let listing = json(&admin(admin_addr, "GET", "/sessions?owner=bob", Some(TOKEN)).await);
    assert_eq!(handles(&listing), std::slice::from_ref(&bob.1));
    // Counted with every other store operation.
    let metrics = admin(admin_addr, "GET", "/metrics", Some(TOKEN))
        .await
        .text();
    for op in ["list", "revoke"] {
        let counted = metrics.lines().any(|l| {
            l.starts_with("session_proxy_store_operations_total{")
                && l.contains(&format!("op=\"{op}\""))
                && !l.ends_with(" 0")
        });
        assert!(counted, "op={op}:\n{metrics}");
    }
    proxy.assert_no_panic();
    assert!(
        !proxy.logs_text().contains(TOKEN),
        "the token reached the log"
    );
}

#[tokio::test]
async fn the_admin_token_guards_all_but_the_probes() {
    let up = app().await;
    let proxy = memory_proxy(&up);
    let admin_addr = proxy.admin_addr();
    for path in [
        "/sessions?owner=alice",
        "/metrics",
        "/nowhere",
        "/sessions/x",
    ] {
        for token in [None, Some("wrong-token-0123456789abcdefghijklmn")] {
            let res = admin(admin_addr, "GET", path, token).await;
            assert_eq!(res.status, 401, "{path} {token:?}: {}", res.text());
            assert_eq!(
                res.header("www-authenticate"),
                Some(r#"Bearer realm="session-proxy admin""#)
            );
            assert!(!res.text().is_empty());
        }
    }
    for path in ["/livez", "/readyz", "/healthz"] {
        let res = admin(admin_addr, "GET", path, None).await;
        assert_eq!(res.status, 200, "{path}: {}", res.text());
    }
    assert_eq!(
        admin(admin_addr, "GET", "/metrics", Some(TOKEN))
            .await
            .status,
        200
    );

    // Methods, arguments.
    let res = admin(admin_addr, "POST", "/sessions?owner=alice", Some(TOKEN)).await;
    assert_eq!(res.status, 405);
    assert_eq!(res.header("allow"), Some("GET, HEAD, DELETE"));
    let res = admin(admin_addr, "GET", "/sessions/x", Some(TOKEN)).await;
    assert_eq!(
        (res.status.as_u16(), res.header("allow")),
        (405, Some("DELETE"))
    );
    let res = admin(admin_addr, "DELETE", "/metrics", Some(TOKEN)).await;
    assert_eq!(
        (res.status.as_u16(), res.header("allow")),
        (405, Some("GET, HEAD"))
    );
    for path in ["/sessions", "/sessions?owner=", "/sessions?owner=a&owner=b"] {
        let res = admin(admin_addr, "GET", path, Some(TOKEN)).await;
        assert_eq!(res.status, 400, "{path}: {}", res.text());
    }
    let res = admin(admin_addr, "DELETE", "/sessions/not-a-handle", Some(TOKEN)).await;
    assert_eq!(res.status, 400, "{}", res.text());
    // The owner is form-decoded.
    let (_, handle) = login(proxy.addr, "a+b@x.org").await;
    let listing = json(
        &admin(
            admin_addr,
            "GET",
            "/sessions?owner=a%2Bb%40x.org",
            Some(TOKEN),
        )
        .await,
    );
    assert_eq!(handles(&listing), [handle]);
}

#[tokio::test]
async fn the_admin_api_says_why_it_cannot_answer() {
    let up = app().await;
    let no_owner_key = ProxyBuilder::new(&up.url())
        .driver("memory")
        .set("admin_listen", "127.0.0.1:0")
        .start();
    let admin_addr = no_owner_key.admin_addr();
    let res = admin(admin_addr, "GET", "/sessions?owner=alice", None).await;
    assert_eq!(res.status, 404);
    assert!(res.text().contains("sessions.owner_key"), "{}", res.text());
    // By handle needs no owner index.
    let (cookie, handle) = login(no_owner_key.addr, "alice").await;
    let res = admin(admin_addr, "DELETE", &format!("/sessions/{handle}"), None).await;
    assert_eq!(json(&res), serde_json::json!({"revoked": 1}));
    assert_eq!(whoami(no_owner_key.addr, &cookie).await.text(), "-");

    // (owner_key with the cookie store is a config error: `check` says so.)
    let cookies = ProxyBuilder::new(&up.url())
        .set("admin_listen", "127.0.0.1:0")
        .start();
    let admin_addr = cookies.admin_addr();
    for (method, path) in [
        ("GET", "/sessions?owner=alice"),
        ("DELETE", "/sessions?owner=alice"),
        (
            "DELETE",
            "/sessions/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ),
    ] {
        let res = admin(admin_addr, method, path, None).await;
        assert_eq!(res.status, 404, "{method} {path}");
        assert!(res.text().contains("cookie store"), "{}", res.text());
    }
}

/// A proxy on Redis (`store`: `redis.url` or `redis.cluster` and its YAML value), sessions
/// indexed by `user_id`.
fn redis_proxy(up: &TestUpstream, store: (&str, &str)) -> ProxyBuilder {
    ProxyBuilder::new(&up.url())
        .driver("redis")
        .set(store.0, store.1)
        .set("sessions.owner_key", "user_id")
}

/// Three sessions of alice over the two proxies, one of bob: (cookie, handle) each.
async fn alice_thrice_bob_once(
    a: &TestProxy,
    b: &TestProxy,
) -> (Vec<(String, String)>, (String, String)) {
    let alice = vec![
        login(a.addr, "alice").await,
        login(b.addr, "alice").await,
        login(a.addr, "alice").await,
    ];
    (alice, login(b.addr, "bob").await)
}

fn cli_lines(out: &str) -> Vec<String> {
    out.lines().map(str::to_owned).collect()
}

#[tokio::test]
async fn the_cli_lists_and_revokes_in_redis_shared_by_two_proxies() {
    let redis = RedisServer::start();
    let up = app().await;
    let url = format!("\"{}\"", redis.url());
    let builder = || redis_proxy(&up, ("redis.url", &url));
    let yaml = builder().yaml();
    let (a, b) = (builder().start(), builder().start());
    let (alice, bob) = alice_thrice_bob_once(&a, &b).await;

    let (code, out, err) = run_cli(&yaml, &["sessions", "list", "--owner", "alice"], &[]);
    assert_eq!(code, 0, "{err}");
    let lines = cli_lines(&out);
    let mut listed = Vec::new();
    for line in &lines {
        let parts: Vec<&str> = line.split("  ").collect();
        assert_eq!(parts.len(), 4, "{line}");
        for (part, name) in parts[1..]
            .iter()
            .zip(["created=", "last_seen=", "expires="])
        {
            let time = part.strip_prefix(name).unwrap_or_else(|| panic!("{line}"));
            assert!(is_rfc3339(time), "{line}");
        }
        listed.push(parts[0].to_owned());
    }
    let alice_handles: Vec<String> = alice.iter().map(|(_, h)| h.clone()).collect();
    assert_eq!(sorted(listed), sorted(alice_handles.clone()));
    assert!(err.contains("3 session(s)"), "{err}");

    // One by handle: gone through both proxies.
    let (cookie, handle) = &alice[0];
    let (code, out, err) = run_cli(&yaml, &["sessions", "revoke", "--handle", handle], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("revoked {handle}\n"));
    assert!(err.contains("revoked 1 session(s)"), "{err}");
    for proxy in [&a, &b] {
        assert_eq!(whoami(proxy.addr, cookie).await.text(), "-");
    }
    let (code, _, err) = run_cli(&yaml, &["sessions", "revoke", "--handle", handle], &[]);
    assert_eq!(code, 1, "an unknown handle: {err}");
    assert!(err.contains("no session has handle"), "{err}");

    // The rest by owner.
    let (code, out, err) = run_cli(&yaml, &["sessions", "revoke", "--owner", "alice"], &[]);
    assert_eq!(code, 0, "{err}");
    let revoked: Vec<String> = cli_lines(&out)
        .iter()
        .map(|l| {
            l.strip_prefix("revoked ")
                .unwrap_or_else(|| panic!("{l}"))
                .to_owned()
        })
        .collect();
    assert_eq!(sorted(revoked), sorted(alice_handles[1..].to_vec()));
    assert!(err.contains("revoked 2 session(s)"), "{err}");
    for (cookie, _) in &alice {
        for proxy in [&a, &b] {
            assert_eq!(whoami(proxy.addr, cookie).await.text(), "-");
        }
    }
    let (code, out, _) = run_cli(&yaml, &["sessions", "list", "--owner", "alice"], &[]);
    assert_eq!((code, out.as_str()), (0, ""));
    // Bob untouched, through either proxy.
    for proxy in [&a, &b] {
        assert_eq!(whoami(proxy.addr, &bob.0).await.text(), bob.1);
    }
    let (code, out, _) = run_cli(&yaml, &["sessions", "list", "--owner", "bob"], &[]);
    assert_eq!(code, 0);
    assert!(out.starts_with(&bob.1), "{out}");
}

#[test]
fn the_cli_refuses_stores_and_configs_that_cannot_answer() {
    let base = || ProxyBuilder::new("http://127.0.0.1:1").set("sessions.owner_key", "user_id");
    let list = ["sessions", "list", "--owner", "alice"];
    let revoke = ["sessions", "revoke", "--owner", "alice"];
    // Nothing answers on this Redis: every refusal comes before a connection.
    let no_owner_key = ProxyBuilder::new("http://127.0.0.1:1")
        .driver("redis")
        .set("redis.url", "\"redis://127.0.0.1:1\"")
        .yaml();
    for (yaml, args, needle) in [
        (
            base().driver("memory").yaml(),
            &list,
            "the memory store lives inside the running proxy: use the admin API (DELETE /sessions?owner=… on admin_listen)",
        ),
        (
            base().driver("memory").yaml(),
            &revoke,
            "the memory store lives inside the running proxy",
        ),
        (
            ProxyBuilder::new("http://127.0.0.1:1").yaml(),
            &list,
            "the cookie store keeps nothing server-side to list or revoke: cookies stay valid until they expire; to end every session at once, rotate sessions.secret",
        ),
        (no_owner_key.clone(), &list, "sessions.owner_key"),
        (no_owner_key.clone(), &revoke, "sessions.owner_key"),
    ] {
        let (code, out, err) = run_cli(&yaml, args, &[]);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(out, "", "{args:?}");
    }
    // A value may begin with `-` (a handle is base64url): it is the value, not an option.
    let (code, _, err) = run_cli(
        &no_owner_key,
        &["sessions", "revoke", "--handle", "-6abc"],
        &[],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("\"-6abc\" is not a session handle"), "{err}");
    // Exactly one of --owner and --handle: clap's usage error.
    for args in [
        &["sessions", "revoke"][..],
        &["sessions", "revoke", "--owner", "a", "--handle", "b"],
    ] {
        let (code, _, err) = run_cli(&no_owner_key, args, &[]);
        assert_eq!(code, 2, "{args:?}: {err}");
    }
}

#[test]
fn an_admin_listener_off_loopback_needs_a_token() {
    let yaml = ProxyBuilder::new("http://127.0.0.1:1")
        .set("admin_listen", "0.0.0.0:0")
        .yaml();
    let (code, _, err) = run_cli(&yaml, &["check"], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("admin_token"), "{err}");
    let (code, _, err) = run_cli(&yaml, &["check"], &[("SESSION_PROXY_ADMIN_TOKEN", TOKEN)]);
    assert_eq!(code, 0, "{err}");
}

/// Rewrites the running proxy's config file: `edit` gets the top-level mapping.
fn edit_config(proxy: &TestProxy, edit: impl FnOnce(&mut serde_norway::Mapping)) {
    let text = std::fs::read_to_string(&proxy.config_path).unwrap();
    let mut tree: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    edit(tree.as_mapping_mut().unwrap());
    std::fs::write(&proxy.config_path, serde_norway::to_string(&tree).unwrap()).unwrap();
}

#[tokio::test]
async fn a_reload_changes_the_token_but_cannot_drop_it_off_loopback() {
    let up = app().await;
    let proxy = ProxyBuilder::new(&up.url())
        .driver("memory")
        .set("admin_listen", "0.0.0.0:0")
        .set("admin_token", &format!("\"{TOKEN}\""))
        .start();
    let admin_addr = SocketAddr::from(([127, 0, 0, 1], proxy.admin_addr().port()));
    let path = "/sessions/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert_eq!(
        admin(admin_addr, "DELETE", path, Some(TOKEN)).await.status,
        404
    );

    // The file moves admin_listen to loopback and drops the token: the listener stays where it
    // was bound, so the reload is refused and the token still guards it.
    edit_config(&proxy, |c| {
        c.insert("admin_listen".into(), "127.0.0.1:0".into());
        c.remove("admin_token");
    });
    proxy.signal("HUP");
    assert!(proxy.wait_for_log("reload failed", std::time::Duration::from_secs(5)));
    assert!(proxy.logs_text().contains("admin_token"));
    assert_eq!(admin(admin_addr, "DELETE", path, None).await.status, 401);

    // A new token applies to the next request.
    let new = "another-admin-token-0123456789abcdefghij";
    edit_config(&proxy, |c| {
        c.insert("admin_listen".into(), "0.0.0.0:0".into());
        c.insert("admin_token".into(), new.into());
    });
    proxy.signal("HUP");
    assert!(proxy.wait_for_log("configuration reloaded", std::time::Duration::from_secs(5)));
    assert_eq!(
        admin(admin_addr, "DELETE", path, Some(TOKEN)).await.status,
        401
    );
    assert_eq!(
        admin(admin_addr, "DELETE", path, Some(new)).await.status,
        404
    );
    assert!(
        !proxy.logs_text().contains(new),
        "the token reached the log"
    );
}

/// The admin API of either proxy and the CLI over one Redis (standalone or Cluster): listed on
/// one proxy, ended by handle on the other, the rest by owner from the command line; gone
/// through both, and bob untouched.
async fn admin_and_cli_share_one_redis(store: (&str, String)) {
    let up = app().await;
    let builder = || {
        redis_proxy(&up, (store.0, &store.1))
            .set("admin_listen", "127.0.0.1:0")
            .set("admin_token", &format!("\"{TOKEN}\""))
    };
    let yaml = builder().yaml();
    let (a, b) = (builder().start(), builder().start());
    let (alice, bob) = alice_thrice_bob_once(&a, &b).await;
    let alice_handles: Vec<String> = alice.iter().map(|(_, h)| h.clone()).collect();

    let listing = json(&admin(a.admin_addr(), "GET", "/sessions?owner=alice", Some(TOKEN)).await);
    assert_eq!(sorted(handles(&listing)), sorted(alice_handles.clone()));

    let (cookie, handle) = &alice[0];
    let gone = admin(
        b.admin_addr(),
        "DELETE",
        &format!("/sessions/{handle}"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(gone.status, 200, "{}", gone.text());
    for proxy in [&a, &b] {
        assert_eq!(whoami(proxy.addr, cookie).await.text(), "-");
    }

    let (code, out, err) = run_cli(&yaml, &["sessions", "list", "--owner", "alice"], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(cli_lines(&out).len(), 2, "{out}");
    let (code, _, err) = run_cli(&yaml, &["sessions", "revoke", "--owner", "alice"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("revoked 2 session(s)"), "{err}");
    for (cookie, _) in &alice {
        for proxy in [&a, &b] {
            assert_eq!(whoami(proxy.addr, cookie).await.text(), "-");
        }
    }
    let listing = json(&admin(b.admin_addr(), "GET", "/sessions?owner=alice", Some(TOKEN)).await);
    assert!(handles(&listing).is_empty(), "{listing}");
    for proxy in [&a, &b] {
        assert_eq!(whoami(proxy.addr, &bob.0).await.text(), bob.1);
    }
    let listing = json(&admin(a.admin_addr(), "GET", "/sessions?owner=bob", Some(TOKEN)).await);
    assert_eq!(handles(&listing), vec![bob.1.clone()]);
}

#[tokio::test]
async fn admin_api_and_cli_on_standalone_redis() {
    let redis = RedisServer::start();
    admin_and_cli_share_one_redis(("redis.url", format!("\"{}\"", redis.url()))).await;
}

#[tokio::test]
async fn admin_api_and_cli_on_redis_cluster() {
    let cluster = RedisCluster::start(3);
    admin_and_cli_share_one_redis(("redis.cluster", cluster.yaml_list())).await;
}
