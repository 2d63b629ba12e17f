//! The Lua scripts every write and the sweep run as, and the ARGV they take.
//!
//! Each script is one `EVALSHA` ([`Script`] falls back to loading it on `NOSCRIPT`), so a write is
//! atomic and one round trip. The sources live in `scripts/*.lua`; the shared functions
//! (`batched`, `apply`) are prepended to the scripts that call them, as Redis scripts cannot
//! import one another.

use std::sync::LazyLock;

use std::time::Duration;

use ::redis::Script;
use serde_json::Value;

use super::record::DATA_PREFIX;
use crate::session::store::{expiry, Delta, Millis, Session};

/// Compiled once per process: `Script::new` hashes the source for `EVALSHA`.
pub(super) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    create: Script::new(CREATE),
    update: Script::new(UPDATE),
    regenerate: Script::new(REGENERATE),
    sweep: Script::new(SWEEP),
});

pub(super) struct Scripts {
    pub create: Script,
    pub update: Script,
    pub regenerate: Script,
    pub sweep: Script,
}

const CREATE: &str = concat!(
    include_str!("scripts/batched.lua"),
    include_str!("scripts/create.lua"),
);

const UPDATE: &str = concat!(
    include_str!("scripts/batched.lua"),
    include_str!("scripts/apply.lua"),
    include_str!("scripts/update.lua"),
);

const REGENERATE: &str = concat!(
    include_str!("scripts/batched.lua"),
    include_str!("scripts/apply.lua"),
    include_str!("scripts/regenerate.lua"),
);

const SWEEP: &str = include_str!("scripts/sweep.lua");

/// ARGV for `create.lua`. The TTL is at least 1 ms: `PEXPIRE 0` would delete the key at once,
/// and a session created dead is refused by its first load anyway.
pub(super) fn create_args(session: &Session, now: Millis, idle: Option<Duration>) -> Vec<String> {
    let ttl = expiry::remaining(now, session.expires, session.last_seen, idle).max(1);
    let mut args = Vec::with_capacity(4 + 2 * session.data.len());
    args.push(ttl.to_string());
    args.push(session.created.to_string());
    args.push(session.last_seen.to_string());
    args.push(session.expires.to_string());
    push_set(&mut args, session.data.iter());
    args
}

/// ARGV for the shared `apply` function of `update.lua` and `regenerate.lua`.
pub(super) fn apply_args(
    session: &Session,
    delta: Delta<'_>,
    now: Millis,
    idle: Option<Duration>,
) -> Vec<String> {
    let ttl = expiry::remaining(now, session.expires, session.last_seen, idle);
    let mut args = Vec::with_capacity(3 + delta.delete.len() + 2 * delta.set.len());
    args.push(session.last_seen.to_string());
    args.push(ttl.to_string());
    args.push(delta.delete.len().to_string());
    args.extend(delta.delete.iter().map(|k| format!("{DATA_PREFIX}{k}")));
    push_set(&mut args, delta.set.iter().map(|(k, v)| (k, v)));
    args
}

/// ARGV for `sweep.lua`: the expiry rule's cut-offs at `now`, -1 for "no `last_seen` is dead".
pub(super) fn sweep_args(now: Millis, idle: Option<Duration>) -> [i64; 2] {
    let cut = expiry::Cutoffs::at(now, idle);
    let signed = |ms: Millis| i64::try_from(ms).unwrap_or(i64::MAX);
    [signed(cut.expires), cut.last_seen.map_or(-1, signed)]
}

/// Field/value pairs for `HSET`: the prefixed field name, then the JSON value.
fn push_set<'a>(args: &mut Vec<String>, pairs: impl Iterator<Item = (&'a String, &'a Value)>) {
    for (k, v) in pairs {
        args.push(format!("{DATA_PREFIX}{k}"));
        args.push(v.to_string());
    }
}
