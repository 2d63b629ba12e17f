//! The integration-test harness: a real upstream HTTP server, real `redis-server` processes and the
//! real `session-proxy` binary (or, for expiry tests, the real server in-process on a manual clock:
//! `clocked`), all on free loopback ports, all torn down on drop.

pub mod client;
pub mod clocked;
mod cluster_failover;
pub mod proxy;
pub mod raw;
pub mod redis;
pub mod stream;
pub mod tls;
pub mod upstream;

pub use client::*;
pub use clocked::*;
pub use proxy::*;
pub use raw::*;
pub use redis::*;
pub use stream::*;
pub use upstream::*;

/// A 32+ byte secret for tests. Never a real one.
pub const SECRET: &str = "test-secret-0123456789abcdefghijklmnopqrstuvwxyz";
pub const OTHER_SECRET: &str = "another-secret-0123456789abcdefghijklmnopqrstuv";
