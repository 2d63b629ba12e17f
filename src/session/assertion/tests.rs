//! Unit tests of the signer and its per-worker cache.

use super::*;
use serde_json::json;
use std::path::Path;

fn signer(dir: &Path, ttl: Duration) -> Assertion {
    let key = dir.join("k.pem");
    std::fs::write(&key, generate_ed25519_pem().unwrap()).unwrap();
    let cfg = AssertionConfig {
        key,
        previous_keys: Vec::new(),
        issuer: "session-proxy".into(),
        audience: None,
        ttl,
        subject_key: Some("user".into()),
        header: "X-Session-Assertion".into(),
    };
    Assertion::load(&cfg, "http://app").unwrap()
}

fn session(user: Value) -> Session {
    let mut s = Session::new(
        crate::session::store::SessionId::generate(),
        0,
        Duration::from_secs(3600),
    );
    Arc::make_mut(&mut s.data).insert("user".into(), user);
    s
}

fn cached(a: &Assertion) -> usize {
    a.cache
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entries
        .len()
}

#[test]
fn the_cache_stays_within_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = signer(dir.path(), Duration::from_secs(60));
    a.capacity = 8;
    let now = 1_000_000;
    // All live: when full, the cache starts over rather than grow.
    for i in 0..20 {
        let s = session(json!(i));
        a.inject(&mut HeaderMap::new(), &s, &s.id.handle(), now);
        assert!(cached(&a) <= 8, "{}", cached(&a));
    }
    // Entries past their reuse window make room first; live ones stay.
    let later = now + 30_000;
    let live = session(json!("live"));
    let mut first = HeaderMap::new();
    a.inject(&mut first, &live, &live.id.handle(), later);
    while cached(&a) < 8 {
        let s = session(json!("filler"));
        a.inject(&mut HeaderMap::new(), &s, &s.id.handle(), later);
    }
    let stale = a
        .cache
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entries
        .values()
        .filter(|e| e.signed < later)
        .count();
    assert!(stale > 0);
    let s = session(json!("one more"));
    a.inject(&mut HeaderMap::new(), &s, &s.id.handle(), later);
    assert_eq!(cached(&a), 8 - stale + 1, "only the stale entries went");
    // A second later a new signature would differ (iat): the live entry was kept.
    let mut again = HeaderMap::new();
    a.inject(&mut again, &live, &live.id.handle(), later + 1_500);
    assert_eq!(again["x-session-assertion"], first["x-session-assertion"]);
}

#[test]
fn sub_is_a_string_or_absent() {
    assert_eq!(subject(&json!("Ann")).as_deref(), Some("Ann"));
    assert_eq!(subject(&json!(42)).as_deref(), Some("42"));
    assert_eq!(subject(&json!(true)).as_deref(), Some("true"));
    assert_eq!(subject(&json!(null)), None);
    assert_eq!(subject(&json!({"id": 1})), None);
    assert_eq!(subject(&json!([1])), None);
}

#[test]
fn no_session_data_no_sub_and_claims_are_in_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let a = signer(dir.path(), Duration::from_secs(60));
    let token = a.sign(&Data::new(), "h", 1_700_000_000_999).unwrap();
    let claims: Value = jsonwebtoken::dangerous::insecure_decode(token.to_str().unwrap())
        .unwrap()
        .claims;
    assert_eq!(claims["iat"], 1_700_000_000u64);
    assert_eq!(claims["exp"], 1_700_000_060u64);
    assert!(claims.get("sub").is_none());
    assert_eq!(claims["aud"], "http://app");
}
