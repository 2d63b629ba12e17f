//! Why a configuration was refused, naming the field and, when the value came from the
//! environment or a flag, where it came from.

use std::path::PathBuf;

/// Why a configuration was refused. Every variant names the field so the operator can fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not YAML, or a field has the wrong type, or an unknown key is present.
    #[error("invalid config: {}: {message}", located(.origin.as_deref(), .field))]
    Field {
        field: String,
        message: String,
        /// The environment variable (or command-line flag) the value came from, when not the
        /// file: the operator looking for `sessions.max_age` in proxy.yaml would not find it.
        origin: Option<&'static str>,
    },
}

impl ConfigError {
    pub(crate) fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Field {
            field: field.into(),
            message: message.into(),
            origin: None,
        }
    }

    /// Names the variable or flag that set the offending field, if one did (the last one
    /// applied, as that is the value that was refused).
    pub(super) fn attributed(self, origins: &[(&'static str, &'static str)]) -> Self {
        match self {
            ConfigError::Field {
                field,
                message,
                origin: None,
            } => {
                let origin = origins
                    .iter()
                    .rev()
                    .find(|(set, _)| covers(set, &field))
                    .map(|(_, origin)| *origin);
                ConfigError::Field {
                    field,
                    message,
                    origin,
                }
            }
            other => other,
        }
    }
}

/// `SESSION_MAX_AGE (sessions.max_age)`, or the field alone when the file set it.
fn located(origin: Option<&str>, field: &str) -> String {
    match origin {
        Some(origin) => format!("{origin} ({field})"),
        None => field.to_owned(),
    }
}

/// Whether setting `set` wrote the value at `field` (itself, or an element or key below it:
/// `trusted_proxies` covers `trusted_proxies[2]`).
fn covers(set: &str, field: &str) -> bool {
    field
        .strip_prefix(set)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
}
