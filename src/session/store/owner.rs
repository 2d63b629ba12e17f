//! Sessions by owner (`sessions.owner_key`): who a session belongs to, and what a listing says
//! about one.
//!
//! The owner is the value the app stored under `owner_key` (`user_id`, say): a string as is, a
//! number as its JSON text, so that `user_id=42` and `?owner=42` name the same owner. Anything
//! else (an object, a list, `null`, an empty string) names no one and the session is not indexed.
//!
//! A store that keeps an index outside the process (Redis) never stores the owner value: it stores
//! [`OwnerKeys::tag`], an HMAC of it under a key derived from `sessions.secret`, so a dump of the
//! store does not list the users.

use hkdf::Hkdf;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::{Data, Handle, Millis};

/// The longest owner value accepted: an owner names a user, not a document.
pub const MAX_OWNER_LEN: usize = 512;

/// Who a session belongs to: the text of its `owner_key` value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Owner(String);

impl Owner {
    /// The owner of a session with `data`, when `key` holds a usable value.
    pub fn of(data: &Data, key: &str) -> Option<Owner> {
        match data.get(key)? {
            Value::String(s) => Owner::new(s),
            Value::Number(n) => Owner::new(&n.to_string()),
            _ => None,
        }
    }

    /// An owner named from outside a session (the admin API's `?owner=`, the CLI's `--owner`).
    pub fn new(text: &str) -> Option<Owner> {
        (!text.is_empty() && text.len() <= MAX_OWNER_LEN).then(|| Owner(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The keys an owner's index name is computed under: the current one (written) and those of
/// `sessions.previous_secrets` (still read), so rotating the secret does not orphan the index of
/// sessions created before it.
#[derive(Clone)]
pub struct OwnerKeys {
    /// Keyed HMAC states (SHA-256's block size as the key: used as is), cloned per tag.
    keys: Vec<Hmac<Sha256>>,
}

const OWNER_INFO: &[u8] = b"session-proxy/owner-index/v1";

impl OwnerKeys {
    pub fn new(secret: &str, previous: &[String]) -> OwnerKeys {
        let keys = std::iter::once(secret)
            .chain(previous.iter().map(String::as_str))
            .map(|s| {
                let mut key = [0u8; 64];
                // 64 bytes is far below HKDF-SHA256's 8160-byte limit: expand cannot fail.
                let _ = Hkdf::<Sha256>::new(None, s.as_bytes()).expand(OWNER_INFO, &mut key);
                <Hmac<Sha256> as KeyInit>::new(&key.into())
            })
            .collect();
        OwnerKeys { keys }
    }

    /// HMAC-SHA256 of the owner value under the current key: the name a new index entry goes to.
    pub fn tag(&self, owner: &Owner) -> [u8; 32] {
        self.tags(owner).next().unwrap_or([0; 32])
    }

    /// The owner's tag under every key, current first: where a listing looks.
    pub fn tags<'a>(&'a self, owner: &'a Owner) -> impl Iterator<Item = [u8; 32]> + 'a {
        self.keys.iter().map(move |key| {
            let mut mac = key.clone();
            mac.update(owner.as_str().as_bytes());
            mac.finalize().into_bytes().into()
        })
    }
}

/// One live session as a listing shows it: its public handle and its times, never its ID or data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    pub handle: Handle,
    pub created: Millis,
    pub last_seen: Millis,
    /// When it ends if nothing happens: the earlier of its absolute and idle deadlines.
    pub expires: Millis,
}

/// The result of revoking by owner: the handles of the sessions that were ended.
pub type Revoked = Vec<Handle>;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_and_numbers_name_owners_and_nothing_else_does() {
        let data: Data = serde_json::from_value(json!({
            "s": "alice", "n": 42, "f": 1.5, "e": "", "o": {}, "a": [1], "z": null, "b": true
        }))
        .unwrap();
        assert_eq!(Owner::of(&data, "s").unwrap().as_str(), "alice");
        assert_eq!(Owner::of(&data, "n"), Owner::new("42"));
        assert_eq!(Owner::of(&data, "f").unwrap().as_str(), "1.5");
        for key in ["e", "o", "a", "z", "b", "missing"] {
            assert_eq!(Owner::of(&data, key), None, "{key}");
        }
        assert!(Owner::new(&"x".repeat(MAX_OWNER_LEN + 1)).is_none());
    }

    #[test]
    fn tags_are_keyed_and_follow_rotation() {
        let alice = Owner::new("alice").unwrap();
        let a = OwnerKeys::new("first secret .................", &[]);
        let b = OwnerKeys::new(
            "second secret ................",
            &["first secret .................".into()],
        );
        assert_ne!(a.tag(&alice), b.tag(&alice));
        let tags: Vec<_> = b.tags(&alice).collect();
        assert_eq!(tags, vec![b.tag(&alice), a.tag(&alice)]);
        assert_ne!(a.tag(&alice), a.tag(&Owner::new("bob").unwrap()));
    }
}
