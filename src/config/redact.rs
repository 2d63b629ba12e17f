//! What `check`, `Debug` and the logs may show of a secret: nothing. Session secrets become
//! `<redacted>`; a Redis URL keeps its host and user but not its password.

use std::fmt;

use serde::Serializer;

use super::schema::{RedisConfig, SentinelConfig, SessionConfig};

pub(super) fn redact<S: Serializer>(secret: &str, s: S) -> Result<S::Ok, S::Error> {
    if secret.is_empty() {
        s.serialize_str("")
    } else {
        s.serialize_str("<redacted>")
    }
}

pub(super) fn redact_all<S: Serializer>(secrets: &[String], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(secrets.iter().map(|_| "<redacted>"))
}

pub(super) fn redact_opt<S: Serializer>(secret: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    redact(secret.as_deref().unwrap_or(""), s)
}

/// Hides the password (and ACL user's password) of a Redis URL.
pub fn redact_url_str(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((creds, host)) = rest.rsplit_once('@') {
            let user = creds.split_once(':').map(|(u, _)| u).unwrap_or("");
            return format!("{scheme}://{user}:<redacted>@{host}");
        }
    }
    url.to_owned()
}

pub(super) fn redact_url<S: Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_url_str(url))
}

pub(super) fn redact_urls<S: Serializer>(urls: &[String], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(urls.iter().map(|u| redact_url_str(u)))
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field("driver", &self.driver)
            .field("cookie_name", &self.cookie_name)
            .field("max_age", &self.max_age)
            .field("idle_timeout", &self.idle_timeout)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact_url_str(&self.url))
            .field("cluster_nodes", &self.cluster.len())
            .field("sentinel", &self.sentinel)
            .field("key_prefix", &self.key_prefix)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for SentinelConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentinelConfig")
            .field("master", &self.master)
            .field("nodes", &self.nodes)
            .field("wait_replicas", &self.wait_replicas)
            .finish_non_exhaustive()
    }
}
