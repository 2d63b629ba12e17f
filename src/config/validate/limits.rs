//! `limits`: a zero would turn a defence off (or stop the proxy accepting anything), so every
//! limit must be positive.

use super::super::error::ConfigError;
use super::super::schema::LimitsConfig;

pub(super) fn validate(l: &LimitsConfig) -> Result<(), ConfigError> {
    if l.max_connections == 0 {
        return Err(ConfigError::field("limits.max_connections", "must be >= 1"));
    }
    for (field, d) in [
        ("limits.header_read_timeout", l.header_read_timeout),
        ("limits.tls_handshake_timeout", l.tls_handshake_timeout),
        ("limits.idle_timeout", l.idle_timeout),
        ("limits.tunnel_idle_timeout", l.tunnel_idle_timeout),
    ] {
        if d.is_zero() {
            return Err(ConfigError::field(field, "must be > 0"));
        }
    }
    Ok(())
}
