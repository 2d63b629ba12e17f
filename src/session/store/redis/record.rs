//! A session's Redis hash: its field names, and turning an `HGETALL` answer back into a session.

use std::collections::HashMap;
use std::sync::Arc;

use crate::session::store::{Data, Millis, Session, SessionId};

pub(super) const F_CREATED: &str = "m:c";
pub(super) const F_SEEN: &str = "m:s";
pub(super) const F_EXPIRES: &str = "m:e";
/// Prefix of the fields that hold the app's keys, so that no app key can collide with a meta field.
pub(super) const DATA_PREFIX: &str = "d:";

/// The session stored in `fields`, or `None` if it is not a record we wrote whole (a meta field is
/// missing or not a number): such a record is never served. A data field that is not JSON is
/// dropped with a warning rather than failing the whole session.
pub(super) fn decode(id: SessionId, fields: HashMap<String, String>) -> Option<Session> {
    let mut data = Data::new();
    let (mut created, mut last_seen, mut expires) = (None, None, None);
    for (field, value) in fields {
        if let Some(name) = field.strip_prefix(DATA_PREFIX) {
            match serde_json::from_str(&value) {
                Ok(v) => {
                    data.insert(name.to_owned(), v);
                }
                Err(_) => tracing::warn!(
                    session = %id.fingerprint(),
                    "ignored a session field that is not JSON"
                ),
            }
            continue;
        }
        let n = value.parse::<Millis>().ok();
        match field.as_str() {
            F_CREATED => created = n,
            F_SEEN => last_seen = n,
            F_EXPIRES => expires = n,
            _ => {}
        }
    }
    Some(Session {
        id,
        data: Arc::new(data),
        created: created?,
        last_seen: last_seen?,
        expires: expires?,
    })
}
