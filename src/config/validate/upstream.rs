//! `upstream`: where requests go and what may be tunnelled there.

use super::super::error::ConfigError;
use super::super::schema::UpstreamConfig;

pub(super) fn validate(up: &UpstreamConfig) -> Result<(), ConfigError> {
    match up.url.scheme_str() {
        Some("http") | Some("https") => {}
        _ => {
            return Err(ConfigError::field(
                "upstream.url",
                "must be an absolute http:// or https:// URL",
            ))
        }
    }
    if up.url.host().is_none() {
        return Err(ConfigError::field("upstream.url", "has no host"));
    }
    if up.url.query().is_some() {
        return Err(ConfigError::field(
            "upstream.url",
            "must not carry a query string",
        ));
    }
    if up.connect_timeout.is_zero() {
        return Err(ConfigError::field(
            "upstream.connect_timeout",
            "must be > 0",
        ));
    }
    if up.timeout.is_zero() {
        return Err(ConfigError::field("upstream.timeout", "must be > 0"));
    }
    upgrades(&up.upgrades)?;
    if !(1..=10_000).contains(&up.max_response_headers) {
        return Err(ConfigError::field(
            "upstream.max_response_headers",
            "must be between 1 and 10000",
        ));
    }
    Ok(())
}

fn upgrades(upgrades: &[String]) -> Result<(), ConfigError> {
    for (i, proto) in upgrades.iter().enumerate() {
        let field = || format!("upstream.upgrades[{i}]");
        if proto.is_empty() || !proto.bytes().all(is_token_byte) {
            return Err(ConfigError::field(
                field(),
                "must be a protocol token (e.g. websocket)",
            ));
        }
        if proto == "h2c" {
            return Err(ConfigError::field(
                field(),
                "h2c cannot be tunnelled: every later request on the connection would reach the app raw, past the session layer; clients get HTTP/2 from the proxy itself",
            ));
        }
    }
    Ok(())
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
