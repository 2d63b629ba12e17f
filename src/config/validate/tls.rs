//! `tls`: the redirect listener must not become an open redirect. (The certificate files are
//! checked when loaded, by `tls`, which names the setting too.)

use super::super::error::ConfigError;
use super::super::schema::TlsFile;

pub(super) fn validate(tls: &TlsFile) -> Result<(), ConfigError> {
    if let Some(host) = tls.redirect_host.as_deref() {
        if !crate::proxy::target::is_valid(host.as_bytes()) {
            return Err(ConfigError::field(
                "tls.redirect_host",
                "must be a host name or IP literal with an optional :port",
            ));
        }
    }
    Ok(())
}
