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
    let d = hex(digest);
    format!("{prefix}{{{}}}{}", &d[..2], &d[2..])
}

/// An owner's index: `prefix + "owner:" + hex(tag)`, the tag being the keyed hash of the owner
/// value ([`crate::session::store::OwnerKeys`]). Session keys all continue the prefix with `{`.
pub(super) fn owner_key(prefix: &str, tag: &[u8; 32]) -> String {
    format!("{prefix}owner:{}", hex(tag))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
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
