//! The integration tests, one binary: the real `session-proxy` binary between real clients, a
//! real upstream and real `redis-server` processes. One binary rather than one per file, so the
//! crate and the harness are linked once.
//!
//! Each module is one area (`cargo test --test it sessions::` runs one). The 1 GiB streams and
//! the 1,000-connection slowloris are `#[ignore]`d here and run by `scripts/hardening`.

mod support;

mod assertion;
mod attacks;
mod cli;
mod clock;
mod edges;
mod errors;
mod forwarding;
mod lifecycle;
mod limits;
mod metrics;
mod ops;
mod owners;
mod owners_admin;
mod pooling;
mod redis;
mod redis_at_rest;
mod redis_failover;
mod redis_sentinel;
mod redis_tls;
mod sessions;
mod smoke;
mod smuggling;
mod tls;
mod trust_boundary;
mod trust_session;
