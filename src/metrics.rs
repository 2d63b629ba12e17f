//! Prometheus metrics (prometheus-client).
//!
//! Recording must cost a request nothing measurable, so every labelled series a request can touch
//! is resolved once at start-up into a plain handle (an `Arc` around an atomic): on the hot path a
//! counter is one atomic add, a histogram a bucket search and two atomic adds. No label hashing,
//! no lock, no allocation per request.
//!
//! Besides the `session_proxy_*` series: `session_proxy_build_info` (which build is running), the
//! configuration reloads, and the standard `process_*` series ([`process`], Linux only).

#[cfg(target_os = "linux")]
mod process;

use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{Method, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::error::UpstreamFailure;
use crate::session::store::Reject;

const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "OTHER",
];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
const FAILURES: [&str; 5] = ["connect", "connect_timeout", "timeout", "reset", "protocol"];
const REJECTS: [&str; 4] = ["tampered", "expired", "unknown", "too_large"];
/// Store operations, in the order of [`StoreOp`].
const STORE_OPS: [&str; 7] = [
    "load",
    "create",
    "update",
    "regenerate",
    "destroy",
    "cleanup",
    "ping",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    direction: &'static str,
}

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
const COMMIT: &str = match option_env!("SESSION_PROXY_GIT_COMMIT") {
    Some(commit) => commit,
    None => "unknown",
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    driver: &'static str,
    op: &'static str,
}

/// A store operation, for per-operation metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    Load = 0,
    Create,
    Update,
    Regenerate,
    Destroy,
    Cleanup,
    Ping,
}

pub struct Metrics {
    registry: Registry,
    requests: Vec<Counter>,
    request_duration: Histogram,
    upstream_duration: Histogram,
    upstream_errors: Vec<Counter>,
    sessions_created: Counter,
    sessions_destroyed: Counter,
    sessions_regenerated: Counter,
    cookie_rejections: Vec<Counter>,
    store_ops: Vec<Counter>,
    store_errors: Vec<Counter>,
    store_latency: Vec<Histogram>,
    active_connections: Gauge<i64, std::sync::atomic::AtomicI64>,
    tls_handshakes: Counter,
    tls_failures: Counter,
    tunnels_open: Gauge<i64, std::sync::atomic::AtomicI64>,
    /// Tunnel bytes relayed: client to upstream, upstream to client.
    tunnel_bytes: [Counter; 2],
    /// Configuration reloads: succeeded, failed.
    config_reloads: [Counter; 2],
    config_last_reload_success: Gauge<f64, AtomicU64>,
}

/// Seconds since the epoch, as Prometheus timestamps are.
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    // 100µs .. ~13s
    exponential_buckets(0.0001, 2.0, 18)
}

impl Metrics {
    pub fn new(driver: &'static str) -> Metrics {
        // The root holds the unprefixed standard `process_*` series; everything of ours is
        // registered under the `session_proxy` prefix.
        let mut root = Registry::default();
        #[cfg(target_os = "linux")]
        root.register_collector(Box::new(process::ProcessCollector));
        let registry = root.sub_registry_with_prefix("session_proxy");

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

        let requests_family = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by method and status class",
            requests_family.clone(),
        );
        let mut requests = Vec::with_capacity(METHODS.len() * CLASSES.len());
        for method in METHODS {
            for status in CLASSES {
                requests.push(
                    requests_family
                        .get_or_create(&RequestLabels { method, status })
                        .clone(),
                );
            }
        }

        let request_duration = Histogram::new(latency_buckets());
        registry.register(
            "request_duration_seconds",
            "Time from request head to response head",
            request_duration.clone(),
        );
        let upstream_duration = Histogram::new(latency_buckets());
        registry.register(
            "upstream_duration_seconds",
            "Time the upstream took to send its response head",
            upstream_duration.clone(),
        );

        let upstream_family = Family::<KindLabels, Counter>::default();
        registry.register(
            "upstream_errors",
            "Upstream failures by kind",
            upstream_family.clone(),
        );
        let upstream_errors = FAILURES
            .iter()
            .map(|kind| upstream_family.get_or_create(&KindLabels { kind }).clone())
            .collect();

        let sessions_created = Counter::default();
        registry.register(
            "sessions_created",
            "Sessions created",
            sessions_created.clone(),
        );
        let sessions_destroyed = Counter::default();
        registry.register(
            "sessions_destroyed",
            "Sessions destroyed by X-Session-Clear",
            sessions_destroyed.clone(),
        );
        let sessions_regenerated = Counter::default();
        registry.register(
            "sessions_regenerated",
            "Sessions given a new ID by X-Session-Regenerate",
            sessions_regenerated.clone(),
        );

        let reject_family = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "cookie_rejections",
            "Session cookies that yielded no session, by reason",
            reject_family.clone(),
        );
        let cookie_rejections = REJECTS
            .iter()
            .map(|reason| {
                reject_family
                    .get_or_create(&ReasonLabels { reason })
                    .clone()
            })
            .collect();

        let ops_family = Family::<StoreLabels, Counter>::default();
        registry.register(
            "store_operations",
            "Session store operations by driver and operation",
            ops_family.clone(),
        );
        let errors_family = Family::<StoreLabels, Counter>::default();
        registry.register(
            "store_errors",
            "Failed session store operations by driver and operation",
            errors_family.clone(),
        );
        let latency_family = Family::<StoreLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_buckets())
        });
        registry.register(
            "store_duration_seconds",
            "Session store operation latency by driver and operation",
            latency_family.clone(),
        );
        let labels = |op| StoreLabels { driver, op };
        let store_ops = STORE_OPS
            .iter()
            .map(|op| ops_family.get_or_create(&labels(op)).clone())
            .collect();
        let store_errors = STORE_OPS
            .iter()
            .map(|op| errors_family.get_or_create(&labels(op)).clone())
            .collect();
        let store_latency = STORE_OPS
            .iter()
            .map(|op| latency_family.get_or_create(&labels(op)).clone())
            .collect();

        let active_connections = Gauge::default();
        registry.register(
            "active_connections",
            "Client connections open now",
            active_connections.clone(),
        );
        let tls_handshakes = Counter::default();
        registry.register(
            "tls_handshakes",
            "Completed TLS handshakes",
            tls_handshakes.clone(),
        );
        let tls_failures = Counter::default();
        registry.register(
            "tls_handshake_failures",
            "TLS handshakes that failed or timed out",
            tls_failures.clone(),
        );

        let tunnels_open = Gauge::default();
        registry.register(
            "tunnels_open",
            "Upgraded connections (WebSocket tunnels) open now",
            tunnels_open.clone(),
        );
        let bytes_family = Family::<DirectionLabels, Counter>::default();
        registry.register(
            "tunnel_bytes",
            "Bytes relayed through upgraded connections, by direction",
            bytes_family.clone(),
        );
        let tunnel_bytes = ["client_to_upstream", "upstream_to_client"].map(|direction| {
            bytes_family
                .get_or_create(&DirectionLabels { direction })
                .clone()
        });

        let reloads_family = Family::<ResultLabels, Counter>::default();
        registry.register(
            "config_reloads",
            "Configuration reloads (SIGHUP), by result",
            reloads_family.clone(),
        );
        let config_reloads = ["success", "failure"].map(|result| {
            reloads_family
                .get_or_create(&ResultLabels { result })
                .clone()
        });
        let config_last_reload_success = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded successfully (start-up counts), seconds since the epoch",
            config_last_reload_success.clone(),
        );
        // The configuration this process started with was loaded just before: like Prometheus'
        // own `prometheus_config_last_reload_success_timestamp_seconds`, the series starts there,
        // so "no successful reload since start" and "config older than X" are both one query.
        config_last_reload_success.set(unix_now());

        Metrics {
            registry: root,
            requests,
            request_duration,
            upstream_duration,
            upstream_errors,
            sessions_created,
            sessions_destroyed,
            sessions_regenerated,
            cookie_rejections,
            store_ops,
            store_errors,
            store_latency,
            active_connections,
            tls_handshakes,
            tls_failures,
            tunnels_open,
            tunnel_bytes,
            config_reloads,
            config_last_reload_success,
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
        let m = METHODS
            .iter()
            .position(|m| *m == method.as_str())
            .unwrap_or(METHODS.len() - 1);
        let c = (status.as_u16() / 100).clamp(1, 5) as usize - 1;
        self.requests[m * CLASSES.len() + c].inc();
        self.request_duration.observe(elapsed.as_secs_f64());
    }

    pub fn upstream(&self, elapsed: Duration) {
        self.upstream_duration.observe(elapsed.as_secs_f64());
    }

    pub fn upstream_error(&self, kind: UpstreamFailure) {
        let i = FAILURES
            .iter()
            .position(|k| *k == kind.as_str())
            .unwrap_or(FAILURES.len() - 1);
        self.upstream_errors[i].inc();
    }

    pub fn session_created(&self) {
        self.sessions_created.inc();
    }
    pub fn session_destroyed(&self) {
        self.sessions_destroyed.inc();
    }
    pub fn session_regenerated(&self) {
        self.sessions_regenerated.inc();
    }

    pub fn cookie_rejected(&self, reason: Reject) {
        self.cookie_rejections[reason as usize].inc();
    }

    pub fn cookie_too_large(&self) {
        self.cookie_rejections[3].inc();
    }

    pub fn store_op(&self, op: StoreOp, elapsed: Duration, ok: bool) {
        let i = op as usize;
        self.store_ops[i].inc();
        if !ok {
            self.store_errors[i].inc();
        }
        self.store_latency[i].observe(elapsed.as_secs_f64());
    }

    pub fn connection_opened(&self) {
        self.active_connections.inc();
    }
    pub fn connection_closed(&self) {
        self.active_connections.dec();
    }

    pub fn tunnel_opened(&self) {
        self.tunnels_open.inc();
    }
    pub fn tunnel_closed(&self) {
        self.tunnels_open.dec();
    }
    /// The client-to-upstream byte counter, for the tunnel to add to as it writes.
    pub fn tunnel_bytes_up(&self) -> &Counter {
        &self.tunnel_bytes[0]
    }
    /// The upstream-to-client byte counter.
    pub fn tunnel_bytes_down(&self) -> &Counter {
        &self.tunnel_bytes[1]
    }

    /// A reload was attempted: counted by result; a success also moves the timestamp.
    pub fn config_reload(&self, ok: bool) {
        if ok {
            self.config_reloads[0].inc();
            self.config_last_reload_success.set(unix_now());
        } else {
            self.config_reloads[1].inc();
        }
    }

    pub fn tls_handshake(&self, ok: bool) {
        if ok {
            self.tls_handshakes.inc();
        } else {
            self.tls_failures.inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_known_series() {
        let m = Metrics::new("cookie");
        m.request(&Method::GET, StatusCode::OK, Duration::from_millis(3));
        m.request(
            &Method::from_bytes(b"PURGE").unwrap(),
            StatusCode::BAD_GATEWAY,
            Duration::ZERO,
        );
        m.cookie_rejected(Reject::Expired);
        m.store_op(StoreOp::Load, Duration::from_micros(50), false);
        let text = m.render();
        assert!(
            text.contains("session_proxy_requests_total{method=\"GET\",status=\"2xx\"} 1"),
            "{text}"
        );
        assert!(text.contains("session_proxy_requests_total{method=\"OTHER\",status=\"5xx\"} 1"));
        assert!(text.contains("session_proxy_cookie_rejections_total{reason=\"expired\"} 1"));
        assert!(text.contains("session_proxy_store_errors_total{driver=\"cookie\",op=\"load\"} 1"));
        m.tunnel_opened();
        m.tunnel_bytes_down().inc_by(5);
        let text = m.render();
        assert!(text.contains("session_proxy_tunnels_open 1"), "{text}");
        assert!(
            text.contains("session_proxy_tunnel_bytes_total{direction=\"upstream_to_client\"} 5")
        );
    }

    #[test]
    fn build_info_and_reloads() {
        let before = unix_now();
        let m = Metrics::new("memory");
        let text = m.render();
        let line = format!(
            "session_proxy_build_info{{version=\"{}\",commit=\"{COMMIT}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        assert!(text.contains(&line), "{line} in:\n{text}");
        assert!(text.contains("session_proxy_config_reloads_total{result=\"success\"} 0"));
        assert!(text.contains("session_proxy_config_reloads_total{result=\"failure\"} 0"));
        let stamp = |text: &str| -> f64 {
            text.lines()
                .find_map(|l| {
                    l.strip_prefix("session_proxy_config_last_reload_success_timestamp_seconds ")
                })
                .unwrap_or_else(|| panic!("no timestamp in:\n{text}"))
                .parse()
                .unwrap()
        };
        // Set at start-up, to the start.
        let started = stamp(&text);
        assert!(started >= before && started <= unix_now(), "{started}");

        m.config_reload(false);
        let text = m.render();
        assert!(text.contains("session_proxy_config_reloads_total{result=\"failure\"} 1"));
        assert_eq!(stamp(&text), started, "a failure leaves the timestamp");

        std::thread::sleep(Duration::from_millis(20));
        m.config_reload(true);
        let text = m.render();
        assert!(text.contains("session_proxy_config_reloads_total{result=\"success\"} 1"));
        assert!(stamp(&text) > started);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn process_series_are_unprefixed() {
        let text = Metrics::new("cookie").render();
        for name in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_max_fds ",
            "process_start_time_seconds ",
        ] {
            assert!(
                text.lines().any(|l| l.starts_with(name)),
                "{name} in:\n{text}"
            );
        }
        assert!(!text.contains("session_proxy_process_"));
        assert_eq!(text.matches("# EOF").count(), 1);
    }
}
