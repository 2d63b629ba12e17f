//! `sessions`: the secrets, the cookie's attributes (browsers silently drop a cookie that breaks
//! their rules, so those are refused here) and the lifetimes.

use std::time::Duration;

use super::super::error::ConfigError;
use super::super::schema::{SameSite, SessionConfig};
use super::super::MIN_SECRET_LEN;

pub(super) fn validate(s: &SessionConfig) -> Result<(), ConfigError> {
    secrets(s)?;
    cookie(s)?;
    cookie_prefix(s)?;
    lifetimes(s)
}

/// The messages never echo a secret, only its length.
fn secrets(s: &SessionConfig) -> Result<(), ConfigError> {
    let keygen_hint = "generate one with `session-proxy keygen`";
    if s.secret.is_empty() {
        return Err(ConfigError::field(
            "sessions.secret",
            format!("is required (env SESSION_SECRET); {keygen_hint}"),
        ));
    }
    if s.secret.len() < MIN_SECRET_LEN {
        return Err(ConfigError::field(
            "sessions.secret",
            format!(
                "must be at least {MIN_SECRET_LEN} bytes (got {}); {keygen_hint}",
                s.secret.len()
            ),
        ));
    }
    for (i, old) in s.previous_secrets.iter().enumerate() {
        if old.len() < MIN_SECRET_LEN {
            return Err(ConfigError::field(
                format!("sessions.previous_secrets[{i}]"),
                format!("must be at least {MIN_SECRET_LEN} bytes"),
            ));
        }
    }
    Ok(())
}

/// `owner_key` names a data key, and needs a store that keeps sessions server-side to index.
pub(super) fn owner_key(s: &SessionConfig) -> Result<(), ConfigError> {
    let Some(key) = &s.owner_key else {
        return Ok(());
    };
    let max = crate::session::protocol::MAX_KEY_LEN;
    if key.is_empty() || key.len() > max {
        return Err(ConfigError::field(
            "sessions.owner_key",
            format!("must be a session key of 1 to {max} bytes"),
        ));
    }
    if s.driver == super::super::Driver::Cookie {
        return Err(ConfigError::field(
            "sessions.owner_key",
            "needs a server-side store (sessions.driver: memory or redis): the cookie store keeps \
             nothing to index or revoke; to end every cookie session at once, rotate sessions.secret",
        ));
    }
    Ok(())
}

fn cookie(s: &SessionConfig) -> Result<(), ConfigError> {
    if !is_cookie_name(&s.cookie_name) {
        return Err(ConfigError::field(
            "sessions.cookie_name",
            "must be a non-empty cookie token (letters, digits, !#$%&'*+-.^_`|~)",
        ));
    }
    if s.same_site == SameSite::None && !s.secure {
        return Err(ConfigError::field(
            "sessions.same_site",
            "None requires sessions.secure: true (browsers reject it otherwise)",
        ));
    }
    if !s.path.starts_with('/')
        || !s
            .path
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
    {
        return Err(ConfigError::field(
            "sessions.path",
            "must start with / and be printable ASCII without spaces, ';' or ','",
        ));
    }
    if !s.domain.is_empty()
        && !s
            .domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return Err(ConfigError::field(
            "sessions.domain",
            "must be a host name (letters, digits, '.', '-')",
        ));
    }
    Ok(())
}

/// The `__Host-` and `__Secure-` name prefixes come with rules of their own (RFC 6265bis).
fn cookie_prefix(s: &SessionConfig) -> Result<(), ConfigError> {
    if s.cookie_name.starts_with("__Host-") {
        if !s.domain.is_empty() {
            return Err(ConfigError::field(
                "sessions.domain",
                "must be empty for a __Host- cookie name",
            ));
        }
        if s.path != "/" {
            return Err(ConfigError::field(
                "sessions.path",
                "must be / for a __Host- cookie name",
            ));
        }
        if !s.secure {
            return Err(ConfigError::field(
                "sessions.secure",
                "must be true for a __Host- cookie name",
            ));
        }
    }
    if s.cookie_name.starts_with("__Secure-") && !s.secure {
        return Err(ConfigError::field(
            "sessions.secure",
            "must be true for a __Secure- cookie name",
        ));
    }
    Ok(())
}

fn lifetimes(s: &SessionConfig) -> Result<(), ConfigError> {
    if s.max_age < Duration::from_secs(1) {
        return Err(ConfigError::field(
            "sessions.max_age",
            "must be at least 1s",
        ));
    }
    if s.idle_timeout
        .is_some_and(|idle| idle < Duration::from_secs(1))
    {
        return Err(ConfigError::field(
            "sessions.idle_timeout",
            "must be at least 1s",
        ));
    }
    if s.max_bytes == 0 {
        return Err(ConfigError::field("sessions.max_bytes", "must be > 0"));
    }
    if s.cleanup_interval.is_some_and(|d| d.is_zero()) {
        return Err(ConfigError::field(
            "sessions.cleanup_interval",
            "must be > 0 (leave it out, or write off, for no sweep)",
        ));
    }
    Ok(())
}

/// RFC 6265 cookie-name token.
fn is_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
