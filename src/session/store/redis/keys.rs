//! Where a session lives in Redis: the key layout described in the module docs of [`super`].

use sha2::{Digest, Sha256};

use crate::session::store::SessionId;

pub(super) fn digest(id: &SessionId) -> [u8; 32] {
    Sha256::digest(id.as_str().as_bytes()).into()
}

/// The Cluster hash tag of a session's key: the first digest byte.
pub(super) fn tag(id: &SessionId) -> u8 {
    digest(id)[0]
}

/// `prefix + "{" + hex(d[0]) + "}" + hex(d[1..])` with `d = SHA-256(id)`.
pub(super) fn key(prefix: &str, id: &SessionId) -> String {
    key_of_digest(prefix, &digest(id))
}

/// [`key`] from the digest, which is what a handle holds.
pub(super) fn key_of_digest(prefix: &str, digest: &[u8; 32]) -> String {
    let mut buf = [0u8; 64];
    let d = hex(digest, &mut buf);
    let mut key = String::with_capacity(prefix.len() + d.len() + 2);
    key.push_str(prefix);
    key.push('{');
    key.push_str(&d[..2]);
    key.push('}');
    key.push_str(&d[2..]);
    key
}

/// An owner's index: `prefix + "owner:" + hex(tag)`, the tag being the keyed hash of the owner
/// value ([`crate::session::store::OwnerKeys`]). Session keys all continue the prefix with `{`.
pub(super) fn owner_key(prefix: &str, tag: &[u8; 32]) -> String {
    let mut buf = [0u8; 64];
    format!("{prefix}owner:{}", hex(tag, &mut buf))
}

/// Lower-case hex of a digest, into `buf`. Every Redis request builds a key this way: a `write!`
/// per byte measured 7,800 instructions per request under callgrind (docs/performance.md §6).
fn hex<'a>(bytes: &[u8; 32], buf: &'a mut [u8; 64]) -> &'a str {
    // Cannot fail: `buf` holds exactly two digits per byte.
    base16ct::lower::encode_str(bytes, buf).unwrap_or_default()
}

/// `SCAN MATCH` takes a glob: escape the prefix so `*`, `?`, `[` in it match only themselves.
pub(super) fn glob_escape(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('*');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_documented_layout() {
        let mut digest = [0u8; 32];
        for (i, b) in digest.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(0xa5);
        }
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            key_of_digest("sp:", &digest),
            format!("sp:{{{}}}{}", &hex[..2], &hex[2..])
        );
        assert_eq!(owner_key("sp:", &digest), format!("sp:owner:{hex}"));
    }
}
