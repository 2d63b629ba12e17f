//! The rules serde cannot express: ranges, cross-field rules, values other libraries must accept
//! later. One file per section; each names the field it refuses.

mod assertion;
mod limits;
mod redis;
mod sentinel;
mod sessions;
mod tls;
mod upstream;

use super::error::ConfigError;
use super::schema::{Driver, FileConfig};

/// Every section's rules. Listen addresses are checked when resolved, after these pass.
pub(super) fn sections(file: &FileConfig) -> Result<(), ConfigError> {
    upstream::validate(&file.upstream)?;
    sessions::validate(&file.sessions)?;
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

#[cfg(test)]
mod tests;
