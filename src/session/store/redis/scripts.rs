//! The Lua scripts every write and the sweep run as, and the ARGV they take.
//!
//! Each script is one `EVALSHA` ([`Script`] falls back to loading it on `NOSCRIPT`), so a write is
//! atomic and one round trip. The sources live in `scripts/*.lua`; the shared functions
//! (`batched`, `apply`) are prepended to the scripts that call them, as Redis scripts cannot
//! import one another.

use std::sync::LazyLock;

use ::redis::Script;

use super::record::DATA_PREFIX;
use crate::session::store::{Delta, Millis, Session};

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

/// ARGV for the shared `apply` Lua function (layout in `scripts/apply.lua`).
pub(super) fn apply_args(
    session: &Session,
    delta: Delta<'_>,
    now: Millis,
    idle_ms: u64,
) -> Vec<String> {
    let mut args = Vec::with_capacity(4 + delta.delete.len() + 2 * delta.set.len());
    args.push(now.to_string());
    args.push(session.last_seen.to_string());
    args.push(idle_ms.to_string());
    args.push(delta.delete.len().to_string());
    args.extend(delta.delete.iter().map(|k| format!("{DATA_PREFIX}{k}")));
    for (k, v) in delta.set {
        args.push(format!("{DATA_PREFIX}{k}"));
        args.push(v.to_string());
    }
    args
}
