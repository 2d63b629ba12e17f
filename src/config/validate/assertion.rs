//! `assertion`: the token must be verifiable (whole seconds, an issuer) and its header one the
//! proxy strips from clients.

use std::time::Duration;

use super::super::error::ConfigError;
use super::super::schema::AssertionConfig;

pub(super) fn validate(a: &AssertionConfig) -> Result<(), ConfigError> {
    if a.ttl < Duration::from_secs(2) {
        return Err(ConfigError::field(
            "assertion.ttl",
            "must be at least 2s (whole seconds: iat and exp are in seconds)",
        ));
    }
    if a.issuer.is_empty() {
        return Err(ConfigError::field("assertion.issuer", "must not be empty"));
    }
    if a.audience.as_deref() == Some("") {
        return Err(ConfigError::field(
            "assertion.audience",
            "must not be empty",
        ));
    }
    let lower = a.header.to_ascii_lowercase().replace('_', "-");
    let fixed = [
        "x-session-id",
        "x-session-data",
        "x-session-set",
        "x-session-delete",
        "x-session-clear",
        "x-session-regenerate",
    ];
    if !lower.starts_with("x-session-")
        || lower.len() == "x-session-".len()
        || fixed.contains(&lower.as_str())
        || http::HeaderName::from_bytes(a.header.as_bytes()).is_err()
    {
        return Err(ConfigError::field(
            "assertion.header",
            "must be a header name starting with X-Session- (so a client's copy is always stripped) other than X-Session-Id, -Data, -Set, -Delete, -Clear, -Regenerate",
        ));
    }
    Ok(())
}
