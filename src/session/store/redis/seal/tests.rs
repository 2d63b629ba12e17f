use serde_json::json;

use super::*;

fn keys() -> (SessionId, Keys) {
    let id = SessionId::generate();
    let keys = Keys::derive(&id);
    (id, keys)
}

#[test]
fn every_value_type_round_trips() {
    let (_, k) = keys();
    let values = [
        json!(null),
        json!(true),
        json!(-12.5),
        json!(u64::MAX),
        json!("ann@example.com"),
        json!([1, "two", {"three": 3}]),
        json!({"nested": {"list": [], "empty": ""}}),
    ];
    let nonces = nonces(values.len());
    for (value, nonce) in values.iter().zip(nonces) {
        let field = k.field("email");
        let sealed = k.seal(&field, "email", value, nonce);
        assert_eq!(
            k.open(&field, sealed).unwrap(),
            ("email".to_owned(), value.clone())
        );
    }
}

#[test]
fn names_and_values_hide_the_plaintext() {
    let (id, k) = keys();
    let field = k.field("user_id");
    assert_eq!(field.len(), 34);
    assert!(field.starts_with(b"s:"));
    assert_eq!(field, k.field("user_id"), "one name, one field");
    assert_ne!(field, k.field("user_ie"));
    assert_ne!(field, Keys::derive(&SessionId::generate()).field("user_id"));
    let sealed = k.seal(&field, "user_id", &json!("ann@example.com"), nonces(1)[0]);
    for secret in [&b"user_id"[..], b"ann@example.com", id.as_str().as_bytes()] {
        assert!(!sealed.windows(secret.len()).any(|w| w == secret));
        assert!(!field.windows(secret.len()).any(|w| w == secret));
    }
}

#[test]
fn a_random_nonce_per_seal() {
    let (_, k) = keys();
    let field = k.field("a");
    let n = nonces(2);
    assert_ne!(n[0], n[1]);
    assert_ne!(
        k.seal(&field, "a", &json!(1), n[0]),
        k.seal(&field, "a", &json!(1), n[1])
    );
}

#[test]
fn tampered_moved_cut_or_foreign_fields_do_not_open() {
    let (_, k) = keys();
    let field = k.field("role");
    let sealed = k.seal(&field, "role", &json!("user"), nonces(1)[0]);
    for i in [0, 12, 20, sealed.len() - 1] {
        let mut bad = sealed.clone();
        bad[i] ^= 1;
        assert!(
            matches!(k.open(&field, bad), Err(OpenError::Forged)),
            "byte {i}"
        );
    }
    let other = k.field("admin");
    assert!(matches!(
        k.open(&other, sealed.clone()),
        Err(OpenError::Forged)
    ));
    let (_, stranger) = keys();
    assert!(matches!(
        stranger.open(&field, sealed.clone()),
        Err(OpenError::Forged)
    ));
    assert!(matches!(
        k.open(&field, sealed[..31].to_vec()),
        Err(OpenError::Short)
    ));
    assert!(matches!(k.open(&field, Vec::new()), Err(OpenError::Short)));
}

/// What sealing costs on this CPU (SHA-NI, AES-NI: unlike under callgrind), for docs/redis.md.
/// Run: `CARGO_PROFILE_RELEASE_LTO=thin CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 cargo test --release
/// --lib sealing_cost -- --ignored --nocapture`.
#[test]
#[ignore]
fn sealing_cost_per_call() {
    let id = SessionId::generate();
    let k = Keys::derive(&id);
    let field = k.field("user");
    let sealed = k.seal(&field, "user", &json!("bench"), nonces(1)[0]);
    let n = 200_000;
    let t = std::time::Instant::now();
    for _ in 0..n {
        let k = Keys::derive(std::hint::black_box(&id));
        let _ = std::hint::black_box(k.open(&field, sealed.clone()));
    }
    eprintln!("derive+open: {:?} per read", t.elapsed() / n);
    let t = std::time::Instant::now();
    for _ in 0..n {
        let k = Keys::derive(std::hint::black_box(&id));
        let f = k.field("user");
        let _ = std::hint::black_box(k.seal(&f, "user", &json!("bench"), nonces(1)[0]));
    }
    eprintln!("derive+field+seal+nonce: {:?} per write", t.elapsed() / n);
    let t = std::time::Instant::now();
    for _ in 0..n {
        let _ = std::hint::black_box(std::hint::black_box(&id).handle());
    }
    eprintln!("one SHA-256 of the ID (handle): {:?}", t.elapsed() / n);
}
