//! Environment overrides: which variable sets which field, and how its text becomes a value in
//! the file's tree before typed deserialization (so an error still names the field).

use std::collections::HashMap;

use serde_norway::Value;

/// How an environment variable's text becomes a YAML value.
#[derive(Clone, Copy)]
enum EnvKind {
    Text,
    /// Parsed as YAML so `true`/`false` become booleans and numbers numbers.
    Scalar,
    /// Comma-separated list.
    List,
}

/// Every environment variable that overrides the file, and the field it sets. The README's table is
/// generated from the same names; keep them in step.
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("SESSION_PROXY_LISTEN", "listen"),
    ("SESSION_PROXY_ADMIN_LISTEN", "admin_listen"),
    ("SESSION_PROXY_UPSTREAM", "upstream.url"),
    ("SESSION_DRIVER", "sessions.driver"),
    ("SESSION_COOKIE_NAME", "sessions.cookie_name"),
    ("SESSION_MAX_AGE", "sessions.max_age"),
    ("SESSION_IDLE_TIMEOUT", "sessions.idle_timeout"),
    ("SESSION_SECURE", "sessions.secure"),
    ("SESSION_HTTP_ONLY", "sessions.http_only"),
    ("SESSION_SAME_SITE", "sessions.same_site"),
    ("SESSION_DOMAIN", "sessions.domain"),
    ("SESSION_PATH", "sessions.path"),
    ("SESSION_SECRET", "sessions.secret"),
    ("SESSION_PREVIOUS_SECRETS", "sessions.previous_secrets"),
    ("SESSION_MAX_BYTES", "sessions.max_bytes"),
    ("REDIS_URL", "redis.url"),
    ("REDIS_CLUSTER", "redis.cluster"),
    ("SESSION_PROXY_UPSTREAM_UPGRADES", "upstream.upgrades"),
    ("SESSION_PROXY_TRUSTED_PROXIES", "trusted_proxies"),
    ("SESSION_ASSERTION_KEY", "assertion.key"),
    ("SESSION_ASSERTION_PREVIOUS_KEYS", "assertion.previous_keys"),
    ("SESSION_ASSERTION_ISSUER", "assertion.issuer"),
    ("SESSION_ASSERTION_AUDIENCE", "assertion.audience"),
    ("SESSION_ASSERTION_TTL", "assertion.ttl"),
    ("SESSION_ASSERTION_SUBJECT_KEY", "assertion.subject_key"),
    ("SESSION_ASSERTION_HEADER", "assertion.header"),
    ("SESSION_PROXY_IDLE_TIMEOUT", "limits.idle_timeout"),
    (
        "SESSION_PROXY_TUNNEL_IDLE_TIMEOUT",
        "limits.tunnel_idle_timeout",
    ),
];

fn env_kind(field: &str) -> EnvKind {
    match field {
        "sessions.secure" | "sessions.http_only" | "sessions.max_bytes" => EnvKind::Scalar,
        "sessions.previous_secrets"
        | "redis.cluster"
        | "upstream.upgrades"
        | "trusted_proxies"
        | "assertion.previous_keys" => EnvKind::List,
        _ => EnvKind::Text,
    }
}

/// Writes every variable of `env` that overrides a field into `tree`, and returns which field
/// each one set (for the error messages), in the order applied.
pub(super) fn apply(
    tree: &mut Value,
    env: &HashMap<String, String>,
) -> Vec<(&'static str, &'static str)> {
    let mut origins = Vec::new();
    for (var, field) in ENV_OVERRIDES {
        if let Some(raw) = env.get(*var) {
            origins.push((*field, *var));
            let value = match env_kind(field) {
                EnvKind::Text => Value::String(raw.clone()),
                EnvKind::Scalar => {
                    serde_norway::from_str(raw).unwrap_or_else(|_| Value::String(raw.clone()))
                }
                EnvKind::List => Value::Sequence(
                    raw.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| Value::String(s.to_owned()))
                        .collect(),
                ),
            };
            set_path(tree, field, value);
        }
    }
    origins
}

pub(super) fn set_path(tree: &mut Value, dotted: &str, value: Value) {
    let mut node = tree;
    let mut parts = dotted.split('.').peekable();
    while let Some(part) = parts.next() {
        if !node.is_mapping() {
            *node = Value::Mapping(Default::default());
        }
        let Some(map) = node.as_mapping_mut() else {
            return;
        };
        let key = Value::String(part.to_owned());
        if parts.peek().is_none() {
            map.insert(key, value);
            return;
        }
        node = map
            .entry(key)
            .or_insert_with(|| Value::Mapping(Default::default()));
    }
}

#[cfg(test)]
mod tests;
