//! Helpers the config unit tests share: a minimal valid file and loaders that return the field
//! an error names.

use super::{Config, ConfigError, Overrides};

pub(super) const SECRET: &str = "0123456789abcdef0123456789abcdef";

pub(super) fn base() -> String {
    format!(
        "listen: 127.0.0.1:8080\nupstream:\n  url: http://127.0.0.1:3000\nsessions:\n  secret: \"{SECRET}\"\n"
    )
}

pub(super) fn load(yaml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_yaml(yaml, &env, &Overrides::default())
}

pub(super) fn err_field(yaml: &str, env: &[(&str, &str)]) -> String {
    match load(yaml, env) {
        Err(ConfigError::Field { field, .. }) => field,
        other => panic!("expected a field error, got {other:?}"),
    }
}

pub(super) fn err_text(yaml: &str, env: &[(&str, &str)]) -> String {
    match load(yaml, env) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("expected an error"),
    }
}
