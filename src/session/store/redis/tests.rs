use super::keys::glob_escape;
use super::*;

fn store() -> RedisStore {
    let cfg = RedisConfig {
        url: "redis://127.0.0.1:1/0".into(),
        ..RedisConfig::default()
    };
    RedisStore::new(&cfg, None).unwrap()
}

#[tokio::test]
async fn key_is_prefix_tag_digest_and_hides_the_id() {
    let s = store();
    let id = SessionId::generate();
    let key = s.key(&id);
    assert!(key.starts_with("session:{"));
    assert_eq!(key.len(), "session:".len() + 2 + 64);
    assert!(!key.contains(id.as_str()));
    assert_eq!(key, s.key(&id));
}

#[tokio::test]
async fn regenerated_ids_keep_the_hash_tag() {
    let s = store();
    let old = SessionId::generate();
    for _ in 0..5 {
        let new = s.generate_id(Some(&old));
        assert_ne!(new, old);
        assert_eq!(s.key(&new)[..12], s.key(&old)[..12]);
    }
}

#[test]
fn scan_pattern_escapes_globs() {
    assert_eq!(glob_escape("session:"), "session:*");
    assert_eq!(glob_escape("a*b?[c]"), "a\\*b\\?\\[c\\]*");
}

#[test]
fn apply_args_carry_the_rules_ttl_then_the_delta() {
    let mut s = Session::new(SessionId::generate(), 1_000, Duration::from_secs(10));
    s.last_seen = 4_000;
    let set = [("a".to_string(), serde_json::json!({"x": 1}))];
    let delete = ["b".to_string(), "c".to_string()];
    let delta = Delta {
        set: &set,
        delete: &delete,
    };
    let idle = Some(Duration::from_secs(2));
    assert_eq!(
        scripts::apply_args(&s, delta, 5_000, idle),
        ["4000", "1000", "2", "d:b", "d:c", "d:a", r#"{"x":1}"#]
    );
    // Past its deadline: 0, and the script deletes it.
    assert_eq!(
        scripts::apply_args(&s, Delta::default(), 9_000, idle)[..3],
        ["4000", "0", "0"]
    );
}

#[test]
fn create_args_never_ask_for_a_zero_ttl() {
    let s = Session::new(SessionId::generate(), 1_000, Duration::from_secs(10));
    assert_eq!(
        scripts::create_args(&s, 1_000, None),
        ["10000", "1000", "1000", "11000"]
    );
    assert_eq!(scripts::create_args(&s, 20_000, None)[0], "1");
}

#[test]
fn sweep_args_are_the_rules_cutoffs() {
    assert_eq!(scripts::sweep_args(10_000, None), [10_000, -1]);
    assert_eq!(
        scripts::sweep_args(10_000, Some(Duration::from_secs(3))),
        [10_000, 7_000]
    );
    assert_eq!(
        scripts::sweep_args(1_000, Some(Duration::from_secs(3))),
        [1_000, -1]
    );
}
