//! The rules serde cannot express: ranges, cross-field rules, values other libraries must accept
//! later. One file per section; each names the field it refuses.

mod assertion;
mod limits;
mod redis;
mod sessions;
mod tls;
mod upstream;

use super::error::ConfigError;
use super::schema::Driver;
use super::Config;

impl Config {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        self.check_listeners_apart()?;
        upstream::validate(&self.upstream)?;
        sessions::validate(&self.sessions)?;
        if self.sessions.driver == Driver::Redis {
            redis::validate(&self.redis)?;
        }
        limits::validate(&self.limits)?;
        if let Some(tls) = &self.tls {
            tls::validate(tls)?;
        }
        if let Some(assertion) = &self.assertion {
            assertion::validate(assertion)?;
        }
        Ok(())
    }
}
