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

fn change<'a>(
    session: &'a Session,
    delta: Delta<'a>,
    now: Millis,
    idle: Option<Duration>,
    layout: Layout<'a>,
) -> Change<'a> {
    Change {
        session,
        delta,
        now,
        idle,
        layout,
    }
}

fn text(args: scripts::Args) -> Vec<String> {
    args.into_iter()
        .map(|a| String::from_utf8(a).unwrap())
        .collect()
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
    let readable = Layout::Readable;
    assert_eq!(
        text(change(&s, delta, 5_000, idle, readable).update_args()),
        ["1", "4000", "1000", "2", "d:b", "d:c", "d:a", r#"{"x":1}"#]
    );
    // Past its deadline: 0, and the script deletes it.
    assert_eq!(
        text(change(&s, Delta::default(), 9_000, idle, readable).update_args())[..4],
        ["1", "4000", "0", "0"]
    );
}

/// The sealed layout sends the same ARGV shape with opaque names and values: the scripts apply
/// the delta without knowing which layout they write.
#[test]
fn sealed_args_have_the_same_shape_and_hide_names_and_values() {
    let mut s = Session::new(SessionId::generate(), 1_000, Duration::from_secs(10));
    s.last_seen = 4_000;
    let keys = Keys::derive(&s.id);
    let set = [("email".to_string(), serde_json::json!("ann@example.com"))];
    let delete = ["user_id".to_string()];
    let delta = Delta {
        set: &set,
        delete: &delete,
    };
    let args = change(&s, delta, 5_000, None, Layout::Sealed(&keys)).update_args();
    assert_eq!(args.len(), 7);
    assert_eq!(text(args[..4].to_vec()), ["2", "4000", "6000", "1"]);
    assert_eq!(args[4], keys.field("user_id"));
    assert_eq!(args[5], keys.field("email"));
    assert_eq!(
        keys.open(&args[5], args[6].clone()).unwrap(),
        set[0].clone()
    );
    for arg in &args[4..] {
        for secret in ["user_id", "email", "ann@example.com", s.id.as_str()] {
            assert!(!arg.windows(secret.len()).any(|w| w == secret.as_bytes()));
        }
    }
}

#[test]
fn whole_args_carry_every_field_then_the_delta() {
    let mut s = Session::new(SessionId::generate(), 1_000, Duration::from_secs(10));
    let mut data = Data::new();
    data.insert("a".into(), serde_json::json!(1));
    data.insert("b".into(), serde_json::json!(2));
    s.data = std::sync::Arc::new(data);
    let set = [("b".to_string(), serde_json::json!(2))];
    let delta = Delta {
        set: &set,
        delete: &[],
    };
    assert_eq!(
        text(change(&s, delta, 1_000, None, Layout::Readable).whole_args()),
        ["1", "4", "d:a", "1", "d:b", "2", "1000", "10000", "0", "d:b", "2"]
    );
}

#[test]
fn create_args_never_ask_for_a_zero_ttl() {
    let s = Session::new(SessionId::generate(), 1_000, Duration::from_secs(10));
    assert_eq!(
        text(scripts::create_args(&s, 1_000, None, Layout::Readable)),
        ["10000", "1000", "1000", "11000"]
    );
    assert_eq!(
        text(scripts::create_args(&s, 20_000, None, Layout::Readable))[0],
        "1"
    );
    let keys = Keys::derive(&s.id);
    assert_eq!(
        text(scripts::create_args(&s, 1_000, None, Layout::Sealed(&keys))),
        ["10000", "1000", "1000", "11000", "m:v", "2"]
    );
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
