//! `proxy.yaml` + environment → one validated [`Config`].
//!
//! Loading happens in four steps so that every error can name the field it is about:
//! 1. the YAML file is read into a generic tree;
//! 2. environment overrides (from an injectable map, so tests never touch the real environment) are
//!    written into that tree at the field they override ([`env::SETTINGS`], the one table of
//!    settings, which also renders the docs' table);
//! 3. the tree is deserialized into strict structs (`schema`: `deny_unknown_fields`, so a typo is
//!    an error) and then checked, section by section, for the rules serde cannot express
//!    (`validate`);
//! 4. last, the listen addresses are resolved (`listen`), the only step that leaves the process.
//!
//! serde_path_to_error gives the dotted path of the offending field for type and syntax errors; the
//! semantic checks name their field by hand.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use serde::Serialize;
use serde_norway::Value;

mod defaults;
mod duration;
pub mod env;
mod error;
mod listen;
mod parse;
mod redact;
mod schema;
mod validate;

#[cfg(test)]
mod testing;

pub use duration::{format_duration, parse_duration};
pub use env::{Setting, SETTINGS};
pub use error::ConfigError;
pub use listen::resolve_socket_addr;
pub use redact::redact_url_str;
pub use schema::{
    AdminToken, AssertionConfig, Driver, LimitsConfig, RedisConfig, SameSite, SentinelConfig,
    SessionConfig, TlsConfig, UpstreamConfig,
};

use listen::Listeners;
use schema::FileConfig;

/// Minimum length of a session secret. AES-256-GCM keys are derived from it, and anything shorter is
/// guessable enough that refusing to start is kinder than running.
pub const MIN_SECRET_LEN: usize = 32;

/// The validated configuration the server runs with.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Resolved when loaded (`localhost:8080` becomes an IP), so `check` shows what will be bound.
    pub listen: SocketAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_listen: Option<SocketAddr>,
    pub upstream: UpstreamConfig,
    pub sessions: SessionConfig,
    pub redis: RedisConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    pub limits: LimitsConfig,
    /// Peers whose `X-Forwarded-*` / `Forwarded` headers are believed (load balancers in front of
    /// the proxy). Everyone else's are replaced.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The signed session assertion; off when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assertion: Option<AssertionConfig>,
    /// Bearer token for every admin path but the probes; required when `admin_listen` is not on
    /// loopback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<AdminToken>,
}

/// Command-line overrides, applied after the environment (the most specific source wins).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub upstream: Option<String>,
}

impl Config {
    /// Loads `path` with overrides from the process environment.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Self::load_with_env(path, &env, overrides)
    }

    pub fn load_with_env(
        path: &Path,
        env: &HashMap<String, String>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config = Self::from_yaml(&text, env, overrides)?;
        for (setting, why) in config.deprecations() {
            tracing::warn!(setting, path = %path.display(), "deprecated setting: {why}");
        }
        for (setting, why) in config.ignored() {
            tracing::warn!(setting, path = %path.display(), "setting ignored: {why}");
        }
        Ok(config)
    }

    /// Settings the file still sets that no longer do anything, and why, for a warning at start
    /// (`serve`, `check`, a reload) rather than an error that would break an existing file.
    pub fn deprecations(&self) -> Vec<(&'static str, &'static str)> {
        let mut found = Vec::new();
        if self.redis.pool_size_set {
            found.push((
                "redis.pool_size",
                "ignored and safe to remove: one multiplexed connection per Redis node serves every request",
            ));
        }
        found
    }

    /// Settings the file (or environment) sets that another setting overrides, for the same
    /// warning: an operator who set both should learn which one is used.
    pub fn ignored(&self) -> Vec<(&'static str, &'static str)> {
        let mut found = Vec::new();
        let redis = self.sessions.driver == Driver::Redis;
        if redis && self.redis.sentinel.is_some() && self.redis.url != defaults::redis_url() {
            found.push((
                "redis.url",
                "redis.sentinel is set: the sentinels name the primary",
            ));
        }
        found
    }

    /// Parses YAML text, applies `env` and `overrides`, validates.
    pub fn from_yaml(
        text: &str,
        env: &HashMap<String, String>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let mut tree: Value = if text.trim().is_empty() {
            Value::Mapping(Default::default())
        } else {
            serde_norway::from_str(text).map_err(|e| ConfigError::field("(file)", e.to_string()))?
        };
        if !tree.is_mapping() {
            return Err(ConfigError::field("(file)", "expected a mapping of keys"));
        }
        // Which variable or flag set which field, for the error messages.
        let mut origins = env::apply(&mut tree, env);
        if let Some(listen) = overrides.listen {
            origins.push(("listen", "--listen"));
            env::set_path(&mut tree, "listen", Value::String(listen.to_string()));
        }
        if let Some(url) = &overrides.upstream {
            origins.push(("upstream.url", "--upstream"));
            env::set_path(&mut tree, "upstream.url", Value::String(url.clone()));
        }
        Self::from_tree(tree).map_err(|e| e.attributed(&origins))
    }

    /// The merged tree → the validated config.
    fn from_tree(tree: Value) -> Result<Config, ConfigError> {
        let mut file: FileConfig = serde_path_to_error::deserialize(tree).map_err(|e| {
            let field = e.path().to_string();
            let field = if field == "." { "(file)".into() } else { field };
            ConfigError::field(field, strip_location(&e.into_inner().to_string()))
        })?;
        for proto in &mut file.upstream.upgrades {
            *proto = proto.trim().to_ascii_lowercase();
        }
        validate::sections(&file)?;
        let listeners = Listeners::resolve(
            &file.listen,
            file.admin_listen.as_ref(),
            file.tls.as_ref().and_then(|t| t.redirect_http.as_ref()),
        )?;
        validate::admin_token(file.admin_token.as_ref(), listeners.admin_listen)?;
        Ok(Config::assemble(file, listeners))
    }

    fn assemble(file: FileConfig, listeners: Listeners) -> Config {
        Config {
            listen: listeners.listen,
            admin_listen: listeners.admin_listen,
            upstream: file.upstream,
            sessions: file.sessions,
            redis: file.redis,
            tls: file.tls.map(|t| TlsConfig {
                cert: t.cert,
                key: t.key,
                redirect_http: listeners.redirect_http,
                redirect_host: t.redirect_host,
            }),
            limits: file.limits,
            trusted_proxies: file.trusted_proxies,
            assertion: file.assertion,
            admin_token: file.admin_token,
        }
    }

    /// Whether this config's `admin_token` may guard an admin listener bound to `admin` (a
    /// reload keeps the listener where it was bound, so the rule must follow that address, not
    /// the new file's `admin_listen`).
    pub fn check_admin_token(&self, admin: Option<SocketAddr>) -> Result<(), ConfigError> {
        validate::admin_token(self.admin_token.as_ref(), admin)
    }

    /// The effective configuration as YAML, every secret and password replaced by `<redacted>`.
    pub fn to_redacted_yaml(&self) -> String {
        serde_norway::to_string(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

/// serde_norway appends "at line X column Y" of the re-serialized tree, which is meaningless to the
/// user after the env merge; the field path already says where.
fn strip_location(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

#[cfg(test)]
mod tests;
