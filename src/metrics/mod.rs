//! Prometheus metrics (prometheus-client).
//!
//! Recording must cost a request nothing measurable, so every labelled series a request can touch
//! is resolved once at start-up into a plain handle (an `Arc` around an atomic): on the hot path a
//! counter is one atomic add, a histogram a bucket search and two atomic adds. No label hashing,
//! no lock, no allocation per request. Label values are enums declared once (`labels.rs`); a
//! recording takes the enum, never a string or a number.
//!
//! One file per group of series: `traffic.rs` (requests, upstream), `sessions.rs` (sessions, cookies,
//! the store), `connections.rs` (connections, TLS, tunnels), `build_info.rs` (the build and the
//! configuration reloads), and the standard `process_*` series (`process.rs`, Linux only).

mod build_info;
mod connections;
pub mod labels;
#[cfg(target_os = "linux")]
mod process;
mod sessions;
mod traffic;

use std::fmt::Debug;
use std::hash::Hash;
use std::time::Duration;

use http::{Method, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::error::UpstreamFailure;
use labels::{ByLabel, Label};
pub use labels::{Rejection, StoreOp};

pub struct Metrics {
    registry: Registry,
    traffic: traffic::Traffic,
    sessions: sessions::Sessions,
    connections: connections::Connections,
    build: build_info::Build,
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    // 100µs .. ~13s
    exponential_buckets(0.0001, 2.0, 18)
}

fn latency_histogram(registry: &mut Registry, name: &str, help: &str) -> Histogram {
    let histogram = Histogram::new(latency_buckets());
    registry.register(name, help, histogram.clone());
    histogram
}

fn counter(registry: &mut Registry, name: &str, help: &str) -> Counter {
    let counter = Counter::default();
    registry.register(name, help, counter.clone());
    counter
}

fn gauge(registry: &mut Registry, name: &str, help: &str) -> Gauge {
    let gauge = Gauge::default();
    registry.register(name, help, gauge.clone());
    gauge
}

/// A counter family with one label, every value of `L` resolved now.
fn counters<L, S>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    labels: impl Fn(L) -> S,
) -> ByLabel<L, Counter>
where
    L: Label,
    S: EncodeLabelSet + Clone + Hash + Eq + Debug + Send + Sync + 'static,
{
    let family = Family::<S, Counter>::default();
    registry.register(name, help, family.clone());
    ByLabel::new(|l| family.get_or_create(&labels(l)).clone())
}

impl Metrics {
    pub fn new(driver: &'static str) -> Metrics {
        // The root holds the unprefixed standard `process_*` series; everything of ours is
        // registered under the `session_proxy` prefix.
        let mut root = Registry::default();
        #[cfg(target_os = "linux")]
        root.register_collector(Box::new(process::ProcessCollector));
        let registry = root.sub_registry_with_prefix("session_proxy");
        let build = build_info::Build::register(registry);
        let traffic = traffic::Traffic::register(registry);
        let sessions = sessions::Sessions::register(registry, driver);
        let connections = connections::Connections::register(registry);
        Metrics {
            registry: root,
            traffic,
            sessions,
            connections,
            build,
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        // Writing to a String cannot fail; a failure would only mean a truncated scrape.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn request(&self, method: &Method, status: StatusCode, elapsed: Duration) {
        self.traffic.request(method, status, elapsed);
    }

    pub fn upstream(&self, elapsed: Duration) {
        self.traffic.upstream(elapsed);
    }

    pub fn upstream_error(&self, kind: UpstreamFailure) {
        self.traffic.upstream_error(kind);
    }

    pub fn session_created(&self) {
        self.sessions.created.inc();
    }
    pub fn session_destroyed(&self) {
        self.sessions.destroyed.inc();
    }
    pub fn session_regenerated(&self) {
        self.sessions.regenerated.inc();
    }
    pub fn sessions_revoked(&self, n: u64) {
        self.sessions.revoked.inc_by(n);
    }

    pub fn cookie_rejected(&self, reason: Rejection) {
        self.sessions.rejected(reason);
    }

    pub fn store_op(&self, op: StoreOp, elapsed: Duration, ok: bool) {
        self.sessions.store_op(op, elapsed, ok);
    }

    pub fn connection_opened(&self) {
        self.connections.active.inc();
    }
    pub fn connection_closed(&self) {
        self.connections.active.dec();
    }

    pub fn tunnel_opened(&self) {
        self.connections.tunnels_open.inc();
    }
    pub fn tunnel_closed(&self) {
        self.connections.tunnels_open.dec();
    }
    /// The client-to-upstream byte counter, for the tunnel to add to as it writes.
    pub fn tunnel_bytes_up(&self) -> &Counter {
        &self.connections.tunnel_up
    }
    /// The upstream-to-client byte counter.
    pub fn tunnel_bytes_down(&self) -> &Counter {
        &self.connections.tunnel_down
    }

    /// A reload was attempted: counted by result; a success also moves the timestamp.
    pub fn config_reload(&self, ok: bool) {
        self.build.reload(ok);
    }

    pub fn tls_handshake(&self, ok: bool) {
        if ok {
            self.connections.tls_handshakes.inc();
        } else {
            self.connections.tls_failures.inc();
        }
    }
}

#[cfg(test)]
mod tests;
