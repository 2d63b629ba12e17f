//! The rules serde cannot express: ranges, cross-field rules, values other libraries must accept
//! later. One file per section; each names the field it refuses.

mod assertion;
mod limits;
mod redis;
mod sentinel;
mod sessions;
mod tls;
mod upstream;

use std::net::SocketAddr;

use super::error::ConfigError;
use super::schema::{AdminToken, Driver, FileConfig};

/// Every section's rules. Listen addresses are checked when resolved, after these pass.
pub(super) fn sections(file: &FileConfig) -> Result<(), ConfigError> {
    upstream::validate(&file.upstream)?;
    sessions::validate(&file.sessions)?;
    sessions::owner_key(&file.sessions)?;
    if file.sessions.driver == Driver::Redis {
        redis::validate(&file.redis)?;
    }
    limits::validate(&file.limits)?;
    if let Some(tls) = &file.tls {
        tls::validate(tls)?;
    }
    if let Some(assertion) = &file.assertion {
        assertion::validate(assertion)?;
    }
    Ok(())
}

/// The admin listener serves the session API (list and revoke), so off loopback it must be
/// guarded: anyone who can reach it could end every user's sessions.
pub(super) fn admin_token(
    token: Option<&AdminToken>,
    admin: Option<SocketAddr>,
) -> Result<(), ConfigError> {
    if let Some(token) = token {
        if token.len() < AdminToken::MIN_LEN {
            return Err(ConfigError::field(
                "admin_token",
                format!(
                    "must be at least {} bytes (got {}); `session-proxy keygen` makes one",
                    AdminToken::MIN_LEN,
                    token.len()
                ),
            ));
        }
        return Ok(());
    }
    match admin {
        Some(addr) if !addr.ip().is_loopback() => Err(ConfigError::field(
            "admin_token",
            format!(
                "is required when admin_listen ({addr}) is not a loopback address \
                 (env SESSION_PROXY_ADMIN_TOKEN); `session-proxy keygen` makes one"
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
