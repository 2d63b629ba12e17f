//! `session-proxy sessions list | revoke`: sessions by owner from a shell, straight to the store
//! (part of the binary, not the library). It reads the config like `cleanup` does, so it works
//! with no proxy running, against Redis only: the memory store lives inside a proxy process
//! (use the admin API there) and the cookie store keeps nothing server-side.
//!
//! Output: data on stdout, one line per session (`list`) or per ended session (`revoked
//! HANDLE`), so it pipes; the count goes to stderr.

use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{ArgGroup, Subcommand};
use session_proxy::config::{Config, Driver};
use session_proxy::session::protocol::rfc3339_text;
use session_proxy::session::store::{Handle, Owner};
use session_proxy::session::SessionLayer;

#[derive(Subcommand)]
pub enum SessionsCommand {
    /// List an owner's live sessions, oldest first: one line per session,
    /// `HANDLE  created=…  last_seen=…  expires=…` (RFC 3339, UTC). Needs `sessions.owner_key`.
    List {
        /// The owner: the value the app stores under `sessions.owner_key` (e.g. a user ID).
        #[arg(long, allow_hyphen_values = true)]
        owner: String,
    },
    /// End every session of an owner (`--owner`, needs `sessions.owner_key`) or one session
    /// (`--handle`, the X-Session-Id the app is given). Prints `revoked HANDLE` per session
    /// ended; the count goes to stderr. An unknown handle exits 1.
    #[command(group(ArgGroup::new("whose").required(true).args(["owner", "handle"])))]
    Revoke {
        /// End every session of this owner.
        #[arg(long, allow_hyphen_values = true)]
        owner: Option<String>,
        /// End the session with this handle. A handle may begin with `-` (base64url): taken as
        /// the value, not as an option.
        #[arg(long, allow_hyphen_values = true)]
        handle: Option<String>,
    },
}

pub async fn run(config: &Config, command: SessionsCommand) -> anyhow::Result<ExitCode> {
    let by_owner = match &command {
        SessionsCommand::List { .. } => true,
        SessionsCommand::Revoke { owner, .. } => owner.is_some(),
    };
    usable(config, by_owner)?;
    let layer = SessionLayer::from_config(&config.sessions, &config.redis)?;
    match command {
        SessionsCommand::List { owner } => list(&layer, &owner_arg(&owner)?).await,
        SessionsCommand::Revoke {
            owner: Some(owner), ..
        } => revoke_owner(&layer, &owner_arg(&owner)?).await,
        SessionsCommand::Revoke {
            handle: Some(handle),
            ..
        } => revoke_handle(&layer, &handle).await,
        // clap's group requires exactly one of the two.
        SessionsCommand::Revoke { .. } => bail!("name --owner or --handle"),
    }
}

/// Refuses, with what to do instead, a store or a config that cannot answer from here.
fn usable(config: &Config, by_owner: bool) -> anyhow::Result<()> {
    match config.sessions.driver {
        Driver::Memory => bail!(
            "the memory store lives inside the running proxy: use the admin API (DELETE /sessions?owner=… on admin_listen)"
        ),
        Driver::Cookie => bail!(
            "the cookie store keeps nothing server-side to list or revoke: cookies stay valid until they expire; to end every session at once, rotate sessions.secret"
        ),
        Driver::Redis => {}
    }
    if by_owner && config.sessions.owner_key.is_none() {
        bail!(
            "sessions.owner_key is not set, so sessions are not indexed by owner: set it to the data key that names the user (e.g. user_id); sessions are indexed as they are next written"
        );
    }
    Ok(())
}

fn owner_arg(text: &str) -> anyhow::Result<Owner> {
    Owner::new(text).context("--owner must be 1 to 512 bytes")
}

async fn list(layer: &SessionLayer, owner: &Owner) -> anyhow::Result<ExitCode> {
    let sessions = layer.owner_sessions(owner).await?;
    for s in &sessions {
        println!(
            "{}  created={}  last_seen={}  expires={}",
            s.handle.as_str(),
            rfc3339_text(s.created),
            rfc3339_text(s.last_seen),
            rfc3339_text(s.expires)
        );
    }
    eprintln!("{} session(s)", sessions.len());
    Ok(ExitCode::SUCCESS)
}

async fn revoke_owner(layer: &SessionLayer, owner: &Owner) -> anyhow::Result<ExitCode> {
    let revoked = layer.revoke_owner(owner).await?;
    for handle in &revoked {
        println!("revoked {}", handle.as_str());
    }
    eprintln!("revoked {} session(s)", revoked.len());
    Ok(ExitCode::SUCCESS)
}

async fn revoke_handle(layer: &SessionLayer, text: &str) -> anyhow::Result<ExitCode> {
    let handle = Handle::parse(text).with_context(|| {
        format!("--handle {text:?} is not a session handle (the 43-character X-Session-Id the app is given)")
    })?;
    if !layer.revoke_handle(&handle).await? {
        bail!(
            "no session has handle {} (ended, expired, or never existed)",
            handle.as_str()
        );
    }
    println!("revoked {}", handle.as_str());
    eprintln!("revoked 1 session(s)");
    Ok(ExitCode::SUCCESS)
}
