//! session-proxy: a reverse proxy that owns the session cookie so the app behind it never has to.
//!
//! # Layout
//! A request flows one way through these modules:
//!
//! - [`server`] accepts connections (plain TCP or TLS), speaks HTTP/1.1 and HTTP/2 to clients,
//!   enforces connection limits and timeouts, and shuts down gracefully: `server/workers.rs` (one
//!   runtime per core), `accept.rs`, `conn.rs` (hyper's builder), `activity.rs` (idle timers),
//!   `shutdown.rs` (one signal to stop, one drain to wait for every connection and task).
//! - [`session`] is the two session phases around forwarding: on the way in it strips spoofed
//!   `X-Session-*` headers, takes the cookie, loads the session and hands it to the app as headers; on
//!   the way out it reads the app's `X-Session-*` control headers, applies them to the store and
//!   writes the cookie. [`session::protocol`] is the header grammar (pure functions: `inbound`
//!   headers for the app, `controls` read from it, `json_text` checks on values),
//!   [`session::store`] the storage back ends behind one trait, [`session::assertion`] the signed
//!   `X-Session-Assertion` (JWS) and its JWKS (key files in `assertion/keys.rs`), [`session::clock`]
//!   the one source of "now" for every expiry decision (a manual clock in tests),
//!   [`session::sweeper`] the periodic cleanup while serving, metered like every store call.
//! - [`handler`] is one request's life: prepare → session in → forward → session out; the access
//!   line is written when the response body ends ([`telemetry::AccessLog`]).
//! - [`proxy`] forwards the request to the upstream over HTTP/1.1 connections pooled per worker
//!   thread ([`proxy::client`]): hop-by-hop headers, `Via`, upgrades, timeouts. [`proxy::target`]
//!   decides which request targets and `Host`s are acceptable and removes dot-segments, [`proxy::forwarded`] writes the client-address headers
//!   (`X-Forwarded-*`, `Forwarded`, `X-Real-IP`), [`proxy::trailers`] filters trailer sections;
//!   `proxy/hop_by_hop.rs` removes hop-by-hop headers, `proxy/connector.rs` builds TCP and TLS.
//! - [`bare_lf`] sits between the socket and hyper and refuses request heads with bare LF line
//!   endings (400), following the HTTP/1 framing so that bodies are left alone:
//!   `bare_lf/scanner.rs` follows the stream by hyper's rules (`framing.rs`), `mod.rs` is the guard.
//! - [`tunnel`] relays upgraded connections (WebSocket) and carries the connection's slot,
//!   shutdown and idle limits over to them.
//! - [`error`] classifies each failure in one place (HTTP status, log level, metric) and answers it.
//! - [`metrics`] holds the Prometheus series; [`admin`] serves them with the probes (`/livez`,
//!   `/readyz`, `/healthz`), `/jwks.json` and the session API (`admin/sessions.rs`: sessions by
//!   owner, listed and ended) on a separate listener, all but the probes behind `admin_token`
//!   (`admin/auth.rs`). The binary's `sessions` command (`src/cli_sessions.rs`) does the same
//!   from a shell, straight to Redis.
//! - [`reload`] applies a changed `proxy.yaml` on SIGHUP without dropping connections.
//! - [`config`] turns `proxy.yaml` plus the environment into a validated [`config::Config`].
//! - [`tls`] loads and hot-reloads the certificate for HTTPS listeners and holds the one crypto
//!   provider (aws-lc-rs, the X25519MLKEM768 hybrid offered first).
//! - [`worker`] knows which worker thread is running, for per-worker caches (the upstream
//!   pool is per thread by itself: see `proxy::client::pool`).
//! - [`telemetry`] sets up logging and writes the access line.
// The admin and request futures hold `&App` across awaits; proving them `Send` walks the whole
// pipeline type (hyper, rustls, redis, prometheus) and needs more than the default 128 steps.
#![recursion_limit = "256"]
#![forbid(unsafe_code)]
// Nothing reachable from a request may panic: an invariant that does not hold must become an error
// or a safe skip (the last round's DEL panic came from an `expect` whose invariant did not hold).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Issue 12: no function over 80 lines (the threshold is in clippy.toml), so each one fits a screen.
#![warn(clippy::too_many_lines)]

pub mod admin;
pub mod bare_lf;
pub mod config;
pub mod error;
pub mod handler;
pub mod metrics;
pub mod proxy;
pub mod reload;
pub mod server;
pub mod session;
pub mod telemetry;
pub mod tls;
pub mod tunnel;
pub mod worker;
