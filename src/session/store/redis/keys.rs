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
    let d = hex(&digest(id));
    format!("{prefix}{{{}}}{}", &d[..2], &d[2..])
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
