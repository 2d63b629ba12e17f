//! A session's Redis hash: its field names in either layout, encoding the app's keys for a write
//! and turning an `HGETALL` answer back into a session.
//!
//! Two layouts share the meta fields (`m:c`, `m:s`, `m:e`, which `cleanup` reads): the readable
//! one (`d:<name>` = JSON) and the sealed one ([`super::seal`]: `s:<HMAC>` = ciphertext, marked by
//! `m:v` = `2`). Reads take either; writes produce the configured one.

use std::sync::Arc;

use serde_json::Value;

use super::seal::{self, Keys, OpenError, SEALED_PREFIX};
use crate::session::store::{Data, Millis, Session, SessionId};

pub(super) const F_CREATED: &[u8] = b"m:c";
pub(super) const F_SEEN: &[u8] = b"m:s";
pub(super) const F_EXPIRES: &[u8] = b"m:e";
/// The layout marker: present with [`SEALED`] on a sealed hash, absent on a readable one.
pub(super) const F_LAYOUT: &[u8] = b"m:v";
pub(super) const SEALED: &[u8] = b"2";
/// What the scripts are told to write when the layout is the readable one (no marker).
const READABLE: &[u8] = b"1";
/// Prefix of the fields that hold the app's keys, so that no app key can collide with a meta field.
pub(super) const DATA_PREFIX: &str = "d:";

/// The layout a write produces: readable, or sealed under one session's keys.
#[derive(Clone, Copy)]
pub(super) enum Layout<'a> {
    Readable,
    Sealed(&'a Keys),
}

impl Layout<'_> {
    /// The layout's name for the scripts (`m:v`'s value when sealed).
    pub(super) fn marker(self) -> &'static [u8] {
        match self {
            Layout::Readable => READABLE,
            Layout::Sealed(_) => SEALED,
        }
    }

    /// The stored field name of the app's key `name`.
    pub(super) fn field(self, name: &str) -> Vec<u8> {
        match self {
            Layout::Readable => [DATA_PREFIX.as_bytes(), name.as_bytes()].concat(),
            Layout::Sealed(keys) => keys.field(name),
        }
    }

    /// Appends field/value pairs for `HSET`; `len` is how many `pairs` yields (one nonce each).
    pub(super) fn push_pairs<'v>(
        self,
        args: &mut Vec<Vec<u8>>,
        len: usize,
        pairs: impl Iterator<Item = (&'v String, &'v Value)>,
    ) {
        match self {
            Layout::Readable => {
                for (name, value) in pairs {
                    args.push(self.field(name));
                    args.push(value.to_string().into_bytes());
                }
            }
            Layout::Sealed(keys) => {
                for ((name, value), nonce) in pairs.zip(seal::nonces(len)) {
                    let field = keys.field(name);
                    let sealed = keys.seal(&field, name, value, nonce);
                    args.push(field);
                    args.push(sealed);
                }
            }
        }
    }
}

/// What an `HGETALL` answer holds.
pub(super) enum Decoded {
    /// A whole record; `sealed` says whether it carries the sealed layout's marker.
    Found { session: Session, sealed: bool },
    /// A meta field is missing or not a number: not a record we wrote whole, never served.
    Incomplete,
    /// A sealed field did not open: forged, cut, or moved from elsewhere. Never served.
    Tampered(OpenError),
}

/// The session stored in `fields`. A readable data field that is not JSON is dropped with a
/// warning rather than failing the whole session (as before sealing); a sealed one that does not
/// open fails it, since it was altered by someone without the ID, and so does a readable field in
/// a hash marked sealed. The session's keys are derived only when a sealed field is met.
pub(super) fn decode(id: SessionId, fields: Vec<(Vec<u8>, Vec<u8>)>) -> Decoded {
    let mut data = Data::new();
    let (mut created, mut last_seen, mut expires, mut sealed) = (None, None, None, false);
    let mut keys: Option<Keys> = None;
    let mut any_readable = false;
    for (field, value) in fields {
        if field.starts_with(SEALED_PREFIX) {
            let keys = keys.get_or_insert_with(|| Keys::derive(&id));
            match keys.open(&field, value) {
                Ok((name, v)) => data.insert(name, v),
                Err(e) => return Decoded::Tampered(e),
            };
            continue;
        }
        if let Some(name) = field.strip_prefix(DATA_PREFIX.as_bytes()) {
            any_readable = true;
            readable(&id, &mut data, name, &value);
            continue;
        }
        let n = || std::str::from_utf8(&value).ok()?.parse::<Millis>().ok();
        match field.as_slice() {
            F_CREATED => created = n(),
            F_SEEN => last_seen = n(),
            F_EXPIRES => expires = n(),
            F_LAYOUT => sealed = value == SEALED,
            _ => {}
        }
    }
    if sealed && any_readable {
        return Decoded::Tampered(OpenError::Readable);
    }
    let (Some(created), Some(last_seen), Some(expires)) = (created, last_seen, expires) else {
        return Decoded::Incomplete;
    };
    let session = Session {
        id,
        data: Arc::new(data),
        created,
        last_seen,
        expires,
    };
    Decoded::Found { session, sealed }
}

/// One `d:<name>` field of the readable layout into `data`, or a warning.
fn readable(id: &SessionId, data: &mut Data, name: &[u8], value: &[u8]) {
    let parsed = std::str::from_utf8(name)
        .ok()
        .zip(serde_json::from_slice::<Value>(value).ok());
    match parsed {
        Some((name, v)) => {
            data.insert(name.to_owned(), v);
        }
        None => tracing::warn!(
            session = %id.fingerprint(),
            "ignored a session field that is not JSON"
        ),
    }
}
