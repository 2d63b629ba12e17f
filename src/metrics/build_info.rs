//! Which build is running and which configuration is in force.

use std::sync::atomic::AtomicU64;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::counters;
use super::labels::{ByLabel, ReloadResult};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    commit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// The commit this binary was built from, when the build knew it (`build.rs` sets the variable
/// from git; a build from a source tarball has none).
pub(super) const COMMIT: &str = match option_env!("SESSION_PROXY_GIT_COMMIT") {
    Some(commit) => commit,
    None => "unknown",
};

/// Seconds since the epoch, as Prometheus timestamps are.
pub(super) fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

pub(super) struct Build {
    reloads: ByLabel<ReloadResult, Counter>,
    last_reload_success: Gauge<f64, AtomicU64>,
}

impl Build {
    pub(super) fn register(registry: &mut Registry) -> Build {
        let build_info = Family::<BuildLabels, Gauge>::default();
        registry.register(
            "build_info",
            "The running build: version and git commit; always 1",
            build_info.clone(),
        );
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                commit: COMMIT,
            })
            .set(1);

        let reloads = counters(
            registry,
            "config_reloads",
            "Configuration reloads (SIGHUP), by result",
            |result: ReloadResult| ResultLabels {
                result: result.as_str(),
            },
        );
        let last_reload_success = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded successfully (start-up counts), seconds since the epoch",
            last_reload_success.clone(),
        );
        // The configuration this process started with was loaded just before: like Prometheus'
        // own `prometheus_config_last_reload_success_timestamp_seconds`, the series starts there,
        // so "no successful reload since start" and "config older than X" are both one query.
        last_reload_success.set(unix_now());
        Build {
            reloads,
            last_reload_success,
        }
    }

    /// A reload was attempted: counted by result; a success also moves the timestamp.
    pub(super) fn reload(&self, ok: bool) {
        let result = if ok {
            self.last_reload_success.set(unix_now());
            ReloadResult::Success
        } else {
            ReloadResult::Failure
        };
        self.reloads.get(result).map(Counter::inc);
    }
}
