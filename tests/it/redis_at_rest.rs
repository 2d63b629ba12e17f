//! Encryption at rest (`redis.encrypt`) against a real `redis-server`: a full dump after real
//! traffic holds no ID, no data and no key name; readable sessions are served and then sealed (and
//! back); altered ciphertext is no session, never an error.

use std::time::Duration;

use base64::Engine;
use serde_json::{json, Map, Value};

use crate::support::*;

const COOKIE: &str = "session_id";

/// The app: `/login/N` sets identifiable data, `/set/K/V`, `/del/K`, `/regen`; anything else
/// answers with the session data it was handed ("-" for none).
async fn app() -> TestUpstream {
    TestUpstream::with(|seen| {
        let path = seen.uri.path().to_owned();
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match parts.as_slice() {
            ["login", n] => Reply::ok().header(
                "X-Session-Set",
                &json!({
                    "user_id": format!("uid-{n}-7f3a9c"),
                    "email": format!("person.{n}@example.com"),
                    "roles": ["reader", format!("owner-of-{n}")],
                })
                .to_string(),
            ),
            ["set", k, v] => Reply::ok().header("X-Session-Set", &format!("{k}={v}")),
            ["del", k] => Reply::ok().header("X-Session-Delete", k),
            ["regen"] => Reply::ok().header("X-Session-Regenerate", "1"),
            _ => Reply::ok().body(seen.header("x-session-data").unwrap_or("-").to_owned()),
        }
    })
    .await
}

fn proxy(up: &TestUpstream, redis: &RedisServer, encrypt: bool) -> TestProxy {
    ProxyBuilder::new(&up.url())
        .driver("redis")
        .set("redis.url", &format!("\"{}\"", redis.url()))
        .set("redis.encrypt", &encrypt.to_string())
        .start()
}

async fn login(addr: std::net::SocketAddr, n: u32) -> String {
    let answer = get(addr, &format!("/login/{n}"), &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.cookie(COOKIE).expect("a session cookie")
}

/// The data the app is handed for `cookie`, or None.
async fn data(addr: std::net::SocketAddr, cookie: &str) -> Option<Map<String, Value>> {
    let answer = get_with_cookie(addr, "/who", COOKIE, cookie).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let text = answer.text();
    (text != "-").then(|| serde_json::from_str(&text).unwrap())
}

fn conn(redis: &RedisServer) -> ::redis::Connection {
    ::redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap()
}

fn keys(c: &mut ::redis::Connection) -> Vec<Vec<u8>> {
    let mut cursor = 0u64;
    let mut out = Vec::new();
    loop {
        let (next, batch): (u64, Vec<Vec<u8>>) = ::redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(100)
            .query(c)
            .unwrap();
        out.extend(batch);
        if next == 0 {
            return out;
        }
        cursor = next;
    }
}

fn hgetall(c: &mut ::redis::Connection, key: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    ::redis::cmd("HGETALL").arg(key).query(c).unwrap()
}

/// Every byte a thief with the whole Redis gets: `SCAN` + `HGETALL` + `DUMP` of every key.
fn dump_everything(redis: &RedisServer) -> (usize, Vec<u8>) {
    let mut c = conn(redis);
    let keys = keys(&mut c);
    let mut out = Vec::new();
    for key in &keys {
        out.extend_from_slice(key);
        for (f, v) in hgetall(&mut c, key) {
            out.extend(f);
            out.extend(v);
        }
        let dump: Vec<u8> = ::redis::cmd("DUMP").arg(key).query(&mut c).unwrap();
        out.extend(dump);
    }
    (keys.len(), out)
}

/// An ID as it might leak: the cookie text, and its 32 raw bytes as such, hex and base64.
fn id_forms(cookie: &str) -> Vec<Vec<u8>> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cookie)
        .unwrap();
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    vec![
        cookie.as_bytes().to_vec(),
        format!("{COOKIE}={cookie}").into_bytes(),
        raw.clone(),
        hex.clone().into_bytes(),
        hex.to_uppercase().into_bytes(),
        base64::engine::general_purpose::STANDARD
            .encode(&raw)
            .into_bytes(),
    ]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// THE test of the issue: after logins and writes through the real proxy, nothing in a full dump
/// names a session, a value or a key the app set; the metadata `cleanup` needs stays readable.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_dump_reveals_no_id_no_data_and_no_key_name() {
    let redis = RedisServer::start();
    let up = app().await;
    let proxy = proxy(&up, &redis, true);
    let mut cookies = Vec::new();
    let mut values = Vec::new();
    for n in 1..=6 {
        let cookie = login(proxy.addr, n).await;
        let theme = format!("midnight-blue-{n}");
        get_with_cookie(proxy.addr, &format!("/set/theme/{theme}"), COOKIE, &cookie).await;
        get_with_cookie(
            proxy.addr,
            &format!("/set/cart_total/{}", 4200 + n),
            COOKIE,
            &cookie,
        )
        .await;
        values.extend([
            format!("uid-{n}-7f3a9c"),
            format!("person.{n}@example.com"),
            format!("owner-of-{n}"),
            theme,
            (4200 + n).to_string(),
        ]);
        cookies.push(cookie);
    }
    // Regenerate one and delete a key of another: their old IDs must not linger either.
    let fresh = get_with_cookie(proxy.addr, "/regen", COOKIE, &cookies[0]).await;
    cookies.push(fresh.cookie(COOKIE).unwrap());
    get_with_cookie(proxy.addr, "/del/theme", COOKIE, &cookies[1]).await;

    let (count, dump) = dump_everything(&redis);
    assert_eq!(count, 6, "one key per live session");
    for cookie in &cookies {
        for form in id_forms(cookie) {
            assert!(!contains(&dump, &form), "an ID form leaked: {form:?}");
        }
    }
    for value in &values {
        assert!(!contains(&dump, value.as_bytes()), "value {value} leaked");
    }
    for name in ["user_id", "email", "roles", "theme", "cart_total", "reader"] {
        assert!(!contains(&dump, name.as_bytes()), "key name {name} leaked");
    }
    assert!(contains(&dump, b"m:e") && contains(&dump, b"m:v"));

    // Not vacuous: every session still reads back whole through the proxy.
    let d = data(proxy.addr, &cookies[6])
        .await
        .expect("regenerated session");
    assert_eq!(d["email"], json!("person.1@example.com"));
    assert_eq!(d["theme"], json!("midnight-blue-1"));
    let d = data(proxy.addr, &cookies[1]).await.expect("session 2");
    assert_eq!(d["roles"], json!(["reader", "owner-of-2"]));
    assert_eq!(d["cart_total"], json!(4202));
    assert!(d.get("theme").is_none());
    assert!(data(proxy.addr, &cookies[0]).await.is_none(), "old ID dead");
}

/// The data fields of a hash, by kind: readable (`d:`) and sealed (`s:`) names, and the marker.
fn layout(redis: &RedisServer, cookie: &str) -> (Vec<String>, usize, Option<Vec<u8>>) {
    let key = crate::redis::expected_key("session:", cookie);
    let fields = hgetall(&mut conn(redis), key.as_bytes());
    let readable = fields
        .iter()
        .filter_map(|(f, _)| f.strip_prefix(b"d:"))
        .map(|n| String::from_utf8(n.to_vec()).unwrap())
        .collect();
    let sealed = fields.iter().filter(|(f, _)| f.starts_with(b"s:")).count();
    let marker = fields
        .iter()
        .find(|(f, _)| f == b"m:v")
        .map(|(_, v)| v.clone());
    (readable, sealed, marker)
}

/// A store of readable sessions keeps serving them once `encrypt` is on, and each is sealed on its
/// next request (its first write, or the write-back of its first read). Turned off again, a sealed
/// session stays readable to the proxy and its next write stores it readable.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readable_sessions_are_served_then_sealed_and_back() {
    let redis = RedisServer::start();
    let up = app().await;
    let plain = proxy(&up, &redis, false);
    let sealing = proxy(&up, &redis, true);

    let cookie = login(plain.addr, 1).await;
    get_with_cookie(plain.addr, "/set/theme/dark", COOKIE, &cookie).await;
    let (mut names, sealed, marker) = layout(&redis, &cookie);
    names.sort();
    assert_eq!(names, ["email", "roles", "theme", "user_id"]);
    assert_eq!((sealed, marker), (0, None));

    let d = data(sealing.addr, &cookie).await.expect("served as before");
    assert_eq!(d["email"], json!("person.1@example.com"));
    let (names, sealed, marker) = layout(&redis, &cookie);
    assert!(names.is_empty(), "plaintext left: {names:?}");
    assert_eq!((sealed, marker.as_deref()), (4, Some(&b"2"[..])));
    get_with_cookie(sealing.addr, "/set/lang/de", COOKIE, &cookie).await;
    let d = data(sealing.addr, &cookie).await.unwrap();
    assert_eq!(
        (d["theme"].clone(), d["lang"].clone()),
        (json!("dark"), json!("de"))
    );
    assert_eq!(d.len(), 5);

    // Back to readable: read as is, rewritten readable by the next write.
    let d = data(plain.addr, &cookie)
        .await
        .expect("sealed is readable with encrypt off");
    assert_eq!(d["lang"], json!("de"));
    assert_eq!(layout(&redis, &cookie).1, 5);
    get_with_cookie(plain.addr, "/del/lang", COOKIE, &cookie).await;
    let (mut names, sealed, marker) = layout(&redis, &cookie);
    names.sort();
    assert_eq!(names, ["email", "roles", "theme", "user_id"]);
    assert_eq!((sealed, marker), (0, None));

    // A readable session regenerated by a sealing proxy moves sealed, under the new ID's keys.
    let answer = get_with_cookie(sealing.addr, "/regen", COOKIE, &cookie).await;
    let fresh = answer.cookie(COOKIE).unwrap();
    assert_ne!(fresh, cookie);
    let (names, sealed, marker) = layout(&redis, &fresh);
    assert!(names.is_empty());
    assert_eq!((sealed, marker.as_deref()), (4, Some(&b"2"[..])));
    assert_eq!(
        data(sealing.addr, &fresh).await.unwrap()["theme"],
        json!("dark")
    );
    assert!(data(sealing.addr, &cookie).await.is_none());
    assert_eq!(keys(&mut conn(&redis)).len(), 1);
}

/// A sealed value altered, cut, or moved to another field of the session is no session: the
/// cookie is expired, the request still answered 200, a warning logged without the ID.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_altered_sealed_field_is_no_session() {
    let redis = RedisServer::start();
    let up = app().await;
    let proxy = proxy(&up, &redis, true);
    type Alter = fn(&mut Vec<(Vec<u8>, Vec<u8>)>);
    let alterations: [(&str, Alter); 3] = [
        ("bit flipped", |f| f[0].1[20] ^= 1),
        ("cut", |f| f[0].1.truncate(20)),
        ("moved", |f| {
            let v = f[0].1.clone();
            f[0].1 = f[1].1.clone();
            f[1].1 = v;
        }),
    ];
    for (what, alter) in alterations {
        let cookie = login(proxy.addr, 9).await;
        let key = crate::redis::expected_key("session:", &cookie);
        let mut c = conn(&redis);
        let mut sealed: Vec<_> = hgetall(&mut c, key.as_bytes())
            .into_iter()
            .filter(|(f, _)| f.starts_with(b"s:"))
            .collect();
        alter(&mut sealed);
        for (f, v) in &sealed[..2] {
            let _: i64 = ::redis::cmd("HSET")
                .arg(&key)
                .arg(f)
                .arg(v)
                .query(&mut c)
                .unwrap();
        }
        let answer = get_with_cookie(proxy.addr, "/who", COOKIE, &cookie).await;
        assert_eq!(answer.status, 200, "{what}: {}", answer.text());
        assert_eq!(answer.text(), "-", "{what}");
        assert_eq!(
            answer.cookie(COOKIE).as_deref(),
            Some(""),
            "{what}: cookie expired"
        );
        assert!(proxy.wait_for_log("sealed data does not open", Duration::from_secs(2)));
        assert!(
            !proxy.logs_text().contains(&cookie),
            "{what}: the ID reached the logs"
        );
    }
    proxy.assert_no_panic();
}

/// Every JSON value type, written and read through the store's own calls against Redis, sealed:
/// create, a delta update, then regenerate to a new ID (whose keys differ).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_value_type_round_trips_sealed() {
    use session_proxy::config::RedisConfig;
    use session_proxy::session::store::redis::RedisStore;
    use session_proxy::session::store::{now_millis, Delta, Lookup, Session, SessionStore, Write};
    let redis = RedisServer::start();
    let mut cfg = RedisConfig::default();
    cfg.url = redis.url();
    let store = RedisStore::new(&cfg, None).unwrap();
    let values = json!({
        "null": null, "bool": false, "int": -7, "big": u64::MAX, "float": 0.1,
        "string": "José \u{1F600} \"quoted\"\r\n", "array": [1, [2, {"3": null}]],
        "object": {"deep": {"deeper": []}}, "": "empty name",
    });
    let Value::Object(data) = values else {
        unreachable!()
    };
    let now = now_millis();
    let mut session = Session::new(store.generate_id(None), now, Duration::from_secs(600));
    session.data = std::sync::Arc::new(data.clone());
    assert!(matches!(
        store.create(&session, now).await.unwrap(),
        Write::Stored(_)
    ));
    let load = |id: String| {
        let store = &store;
        async move {
            match store.load(&id, now_millis()).await.unwrap() {
                Lookup::Found { session, reseal } => {
                    assert!(!reseal, "a sealed session needs no write-back");
                    Some((*session.data).clone())
                }
                Lookup::Rejected(_) => None,
            }
        }
    };
    assert_eq!(
        load(session.id.as_str().to_owned()).await,
        Some(data.clone())
    );

    let set = [("added".to_string(), json!({"k": [true]}))];
    let delete = ["int".to_string()];
    let mut merged = data.clone();
    merged.remove("int");
    merged.insert("added".into(), json!({"k": [true]}));
    session.data = std::sync::Arc::new(merged.clone());
    let delta = Delta {
        set: &set,
        delete: &delete,
    };
    assert!(matches!(
        store.update(&session, delta, now_millis()).await.unwrap(),
        Write::Stored(_)
    ));
    assert_eq!(
        load(session.id.as_str().to_owned()).await,
        Some(merged.clone())
    );

    let old = session.id.clone();
    session.id = store.generate_id(Some(&old));
    let written = store
        .regenerate(&old, &session, Delta::default(), now_millis())
        .await;
    assert!(matches!(written.unwrap(), Write::Stored(_)));
    assert_eq!(load(session.id.as_str().to_owned()).await, Some(merged));
    assert_eq!(load(old.as_str().to_owned()).await, None);
}
