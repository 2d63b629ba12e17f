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
