//! The Lua scripts every write and the sweep run as, and the ARGV they take.
//!
//! Each script is one `EVALSHA` ([`Script`] falls back to loading it on `NOSCRIPT`), so a write is
//! atomic and one round trip. The sources live in `scripts/*.lua`; the shared functions
//! (`batched`, `apply`, `layout`) are prepended to the scripts that call them, as Redis scripts
//! cannot import one another. ARGV are bytes: a sealed layout's names and values are binary.

use std::sync::LazyLock;

use std::time::Duration;

use ::redis::Script;

use super::record::{Layout, F_LAYOUT, SEALED};
use crate::session::store::{expiry, Delta, Millis, Session};

/// Compiled once per process: `Script::new` hashes the source for `EVALSHA`.
pub(super) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    create: Script::new(CREATE),
    update: Script::new(UPDATE),
    rewrite: Script::new(REWRITE),
    regenerate: Script::new(REGENERATE),
    sweep: Script::new(SWEEP),
    owner_add: Script::new(include_str!("scripts/owner_add.lua")),
});

pub(super) struct Scripts {
    pub create: Script,
    pub update: Script,
    pub rewrite: Script,
    pub regenerate: Script,
    pub sweep: Script,
    pub owner_add: Script,
}

/// `update`'s answer when the hash holds the other layout: send the whole session to `rewrite`.
pub(super) const OTHER_LAYOUT: i64 = 3;

pub(super) type Args = Vec<Vec<u8>>;

const CREATE: &str = concat!(
    include_str!("scripts/batched.lua"),
    include_str!("scripts/create.lua"),
);

const UPDATE: &str = concat!(
    include_str!("scripts/batched.lua"),
    include_str!("scripts/apply.lua"),
    include_str!("scripts/layout.lua"),
    include_str!("scripts/update.lua"),
);

const REWRITE: &str = concat!(
    include_str!("scripts/batched.lua"),
    include_str!("scripts/apply.lua"),
    include_str!("scripts/layout.lua"),
    include_str!("scripts/rewrite.lua"),
);

const REGENERATE: &str = concat!(
    include_str!("scripts/batched.lua"),
    include_str!("scripts/apply.lua"),
    include_str!("scripts/layout.lua"),
    include_str!("scripts/regenerate.lua"),
);

const SWEEP: &str = include_str!("scripts/sweep.lua");

fn num(n: impl ToString) -> Vec<u8> {
    n.to_string().into_bytes()
}

/// ARGV for `create.lua`. The TTL is at least 1 ms: `PEXPIRE 0` would delete the key at once,
/// and a session created dead is refused by its first load anyway.
pub(super) fn create_args(
    session: &Session,
    now: Millis,
    idle: Option<Duration>,
    layout: Layout<'_>,
) -> Args {
    let ttl = expiry::remaining(now, session.expires, session.last_seen, idle).max(1);
    let mut args = Vec::with_capacity(6 + 2 * session.data.len());
    args.push(num(ttl));
    args.push(num(session.created));
    args.push(num(session.last_seen));
    args.push(num(session.expires));
    if let Layout::Sealed(_) = layout {
        args.push(F_LAYOUT.to_vec());
        args.push(SEALED.to_vec());
    }
    layout.push_pairs(&mut args, session.data.len(), session.data.iter());
    args
}

/// One write's inputs, from which the ARGV of `update`, `rewrite` and `regenerate` are built.
pub(super) struct Change<'a> {
    pub session: &'a Session,
    pub delta: Delta<'a>,
    pub now: Millis,
    pub idle: Option<Duration>,
    pub layout: Layout<'a>,
}

impl Change<'_> {
    /// ARGV for `update.lua`: the layout, then [`Change::push_apply`].
    pub(super) fn update_args(&self) -> Args {
        let delta = &self.delta;
        let mut args = Vec::with_capacity(4 + delta.delete.len() + 2 * delta.set.len());
        args.push(self.layout.marker().to_vec());
        self.push_apply(&mut args);
        args
    }

    /// ARGV for `rewrite.lua` and `regenerate.lua`: the layout, the whole session in it, then
    /// [`Change::push_apply`].
    pub(super) fn whole_args(&self) -> Args {
        let (data, delta) = (&self.session.data, &self.delta);
        let whole = 2 * data.len();
        let mut args = Vec::with_capacity(5 + whole + delta.delete.len() + 2 * delta.set.len());
        args.push(self.layout.marker().to_vec());
        args.push(num(whole));
        self.layout.push_pairs(&mut args, data.len(), data.iter());
        self.push_apply(&mut args);
        args
    }

    /// ARGV of the shared `apply` function, appended to `args`.
    fn push_apply(&self, args: &mut Args) {
        let (s, delta, layout) = (self.session, &self.delta, self.layout);
        let ttl = expiry::remaining(self.now, s.expires, s.last_seen, self.idle);
        args.push(num(s.last_seen));
        args.push(num(ttl));
        args.push(num(delta.delete.len()));
        args.extend(delta.delete.iter().map(|k| layout.field(k)));
        layout.push_pairs(args, delta.set.len(), delta.set.iter().map(|(k, v)| (k, v)));
    }
}

/// ARGV for `sweep.lua`: the expiry rule's cut-offs at `now`, -1 for "no `last_seen` is dead".
pub(super) fn sweep_args(now: Millis, idle: Option<Duration>) -> [i64; 2] {
    let cut = expiry::Cutoffs::at(now, idle);
    let signed = |ms: Millis| i64::try_from(ms).unwrap_or(i64::MAX);
    [signed(cut.expires), cut.last_seen.map_or(-1, signed)]
}
