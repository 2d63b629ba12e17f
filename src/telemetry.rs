//! Logging setup, and the access line. `RUST_LOG` picks levels (default `info`); `--log-format
//! json` gives one JSON object per line for log shippers. The access log uses the target
//! `access`, so `RUST_LOG=info,access=off` silences it.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::{header, HeaderValue, Method, Request, StatusCode, Uri};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Installs the global subscriber. Logs go to stderr; stdout is left for command output.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}

/// One request's access line, gathered while the request runs and written once its response
/// body has ended or been dropped (`server::Tracked` does both): the body's size and the whole
/// duration are only known then, and a body that is never polled (HEAD, 204, 304, a 101 whose
/// connection became a tunnel) is still dropped exactly once.
///
/// It exists only when the `access` target is enabled ([`AccessLog::begin`]), so with the log off
/// a request copies nothing for it. The copies it does make are reference-counted (`Uri` and
/// `HeaderValue` share the request's buffers): no allocation, and the line itself is formatted
/// by the subscriber from tracing fields, without an intermediate `String`.
pub struct AccessLog {
    start: Instant,
    method: Method,
    uri: Uri,
    client: SocketAddr,
    host: Option<HeaderValue>,
    user_agent: Option<HeaderValue>,
    pub(crate) status: StatusCode,
    pub(crate) upstream: Option<Duration>,
    /// A short fingerprint of the session ID, never the ID.
    pub(crate) session: Option<String>,
    pub(crate) request_id: Option<HeaderValue>,
    bytes: u64,
}

impl AccessLog {
    /// `None` when the access log is off, so the request pays for nothing below. Boxed: the
    /// record rides in the handler's future and in hyper's per-connection body slot, which would
    /// otherwise grow by its size on every connection, idle ones included.
    pub fn begin<B>(
        start: Instant,
        req: &Request<B>,
        client: SocketAddr,
    ) -> Option<Box<AccessLog>> {
        if !tracing::enabled!(target: "access", tracing::Level::INFO) {
            return None;
        }
        Some(Box::new(AccessLog {
            start,
            method: req.method().clone(),
            uri: req.uri().clone(),
            client,
            host: req.headers().get(header::HOST).cloned(),
            user_agent: req.headers().get(header::USER_AGENT).cloned(),
            status: StatusCode::OK,
            upstream: None,
            session: None,
            request_id: None,
            bytes: 0,
        }))
    }

    /// Counts response body bytes handed to the connection.
    pub fn sent(&mut self, bytes: usize) {
        self.bytes = self.bytes.saturating_add(bytes as u64);
    }

    /// Writes the line. `total_ms` runs from the request head to now (the body's end).
    pub fn write(&self) {
        // HTTP/2 carries the host in `:authority`, which lands in the URI, not in a header.
        let host = self
            .host
            .as_ref()
            .and_then(|h| h.to_str().ok())
            .or_else(|| self.uri.authority().map(|a| a.as_str()));
        tracing::info!(
            target: "access",
            method = self.method.as_str(),
            path = self.uri.path(),
            status = self.status.as_u16(),
            bytes = self.bytes,
            client = %self.client,
            host,
            user_agent = self.user_agent.as_ref().and_then(|v| v.to_str().ok()),
            upstream_ms = self.upstream.map(millis),
            total_ms = millis(self.start.elapsed()),
            session = self.session.as_deref(),
            request_id = self
                .request_id
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-"),
        );
    }
}

/// Milliseconds rounded to the microsecond: `1.234`, not `1.2345678900000001`. A float, so JSON
/// logs keep a number a log shipper can aggregate.
fn millis(d: Duration) -> f64 {
    let micros = d.as_nanos().saturating_add(500) / 1000;
    // Exact below 2^53 µs (285 years); the cast only loses precision beyond that.
    micros as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn millis_round_to_the_microsecond() {
        assert_eq!(millis(Duration::from_nanos(1_234_499)), 1.234);
        assert_eq!(millis(Duration::from_nanos(1_234_500)), 1.235);
        assert_eq!(millis(Duration::ZERO), 0.0);
        assert_eq!(millis(Duration::from_secs(2)), 2000.0);
        // What a subscriber prints: the shortest form that reads back as the same number.
        assert_eq!(
            format!("{:?}", millis(Duration::from_nanos(1_234_000))),
            "1.234"
        );
        assert_eq!(format!("{:?}", millis(Duration::from_micros(7))), "0.007");
    }

    /// A subscriber writing JSON lines into a buffer, as `--log-format json` does to stderr.
    fn capture(filter: &str) -> (impl tracing::Subscriber, Arc<Mutex<Vec<u8>>>) {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&buf);
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new(filter))
            .json()
            .flatten_event(true)
            .with_writer(move || Sink(Arc::clone(&sink)))
            .finish();
        (subscriber, buf)
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn request() -> Request<()> {
        Request::get("http://app.test/a/b?token=secret")
            .header("host", "app.test")
            .header("user-agent", "curl/8.5.0")
            .body(())
            .unwrap()
    }

    #[test]
    fn nothing_is_gathered_when_the_access_log_is_off() {
        let (subscriber, buf) = capture("info,access=off");
        let client: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        tracing::subscriber::with_default(subscriber, || {
            assert!(AccessLog::begin(Instant::now(), &request(), client).is_none());
        });
        assert!(buf.lock().unwrap().is_empty());
    }

    #[test]
    fn the_line_has_every_field() {
        let (subscriber, buf) = capture("info");
        let client: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        tracing::subscriber::with_default(subscriber, || {
            let mut log = AccessLog::begin(Instant::now(), &request(), client).unwrap();
            log.status = StatusCode::NOT_FOUND;
            log.upstream = Some(Duration::from_nanos(1_500_400));
            log.sent(10);
            log.sent(5);
            log.write();
        });
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["target"], "access");
        assert_eq!(line["method"], "GET");
        assert_eq!(line["path"], "/a/b", "no query string: {text}");
        assert_eq!(line["status"], 404);
        assert_eq!(line["bytes"], 15);
        assert_eq!(line["client"], "192.0.2.1:5000");
        assert_eq!(line["host"], "app.test");
        assert_eq!(line["user_agent"], "curl/8.5.0");
        assert_eq!(line["upstream_ms"], 1.5);
        assert!(line["total_ms"].as_f64().is_some(), "{text}");
        assert_eq!(line["request_id"], "-");
        assert!(line.get("session").is_none());
        assert!(!text.contains("secret"));
    }

    #[test]
    fn an_http2_host_comes_from_the_authority() {
        let (subscriber, buf) = capture("info");
        let client: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
        tracing::subscriber::with_default(subscriber, || {
            let req = Request::get("https://h2.test/").body(()).unwrap();
            AccessLog::begin(Instant::now(), &req, client)
                .unwrap()
                .write();
        });
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["host"], "h2.test");
        assert_eq!(line["client"], "[2001:db8::1]:443");
        assert!(line.get("user_agent").is_none());
        assert_eq!(line["bytes"], 0);
    }
}
