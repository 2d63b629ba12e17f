//! The upstream client: HTTP/1.1 connections of hyper's own (`hyper::client::conn::http1`), kept
//! per worker thread in [`pool`], instead of hyper-util's legacy pooled `Client`.
//!
//! The workers are single-threaded runtimes, so the legacy client's machinery for sharing a pool
//! across threads (an `Arc<Mutex>` per checkout, a pool key built from each request's URI, a
//! waiter queue) was pure cost: here a request pops the most recently used connection off its own
//! thread's stack, sends, and its response body ([`Returning`]) pushes the connection back once
//! read to the end.

mod body;
mod pool;

use std::error::Error as StdError;

use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use tower_service::Service;

pub use body::Returning;

use super::connector::Connector;
use super::UpstreamBody;

type Sender = SendRequest<UpstreamBody>;

/// Why no response head came back. [`crate::proxy::Upstream`] classifies these (and what they
/// carry: a client body error, a size limit, an oversized head) into statuses.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// No connection: DNS, TCP (`io::ErrorKind::TimedOut` past `upstream.connect_timeout`) or TLS.
    #[error("cannot connect to the upstream")]
    Connect(#[source] Box<dyn StdError + Send + Sync>),
    /// The exchange failed on an open connection: reset, closed early, a malformed or oversized
    /// response head, or the request body failing while it was sent.
    #[error("the upstream exchange failed")]
    Exchange(#[source] hyper::Error),
}

/// The response header lines hyper's HTTP/1 client accepts when `max_headers` is not called
/// (`DEFAULT_MAX_HEADERS` in hyper's `proto/h1/role.rs`).
const HYPER_DEFAULT_MAX_HEADERS: usize = 100;

/// One upstream's connections: how to open one, and the per-thread idle stacks.
pub(super) struct Client {
    connector: Connector,
    /// Where the connector dials; built once (the connector wants a URI).
    dst: Uri,
    h1: http1::Builder,
    pool: pool::Pool,
}

impl Client {
    /// `max_headers` bounds the response head's header lines (`upstream.max_response_headers`).
    /// Everything else is hyper's default, as it was under the legacy client: header names go
    /// out lower case (no title case, no case preservation), no HTTP/0.9 responses, lenient
    /// parsing off.
    pub(super) fn new(connector: Connector, dst: Uri, max_headers: usize) -> Client {
        let mut h1 = http1::Builder::new();
        // Without a limit of its own hyper parses into two 100-entry arrays on the stack; with
        // one (the default `upstream.max_response_headers` is 256) it allocates and fills two
        // vectors of that many per response: 2,554 instructions per request under callgrind
        // (docs/performance.md §6). So 100 is not passed on: same limit, cheaper path.
        if max_headers != HYPER_DEFAULT_MAX_HEADERS {
            h1.max_headers(max_headers);
        }
        Client {
            connector,
            dst,
            h1,
            pool: pool::Pool::new(),
        }
    }

    /// Sends `req` (origin-form target, `Host` set) on an idle connection, or a new one. A pooled
    /// connection that turns out closed before the request went out (the upstream dropped it
    /// while idle) gets the request back from hyper, which is then sent once on a fresh
    /// connection: without this an upstream's keep-alive timeout would surface as 502s.
    pub(super) async fn send(
        &self,
        req: Request<UpstreamBody>,
    ) -> Result<(Response<Incoming>, Sender), SendError> {
        let req = match self.take().await {
            Some(mut pooled) => match pooled.try_send_request(req).await {
                Ok(res) => return Ok((res, pooled)),
                Err(mut e) => match e.take_message() {
                    Some(req) => req,
                    None => return Err(SendError::Exchange(e.into_error())),
                },
            },
            None => req,
        };
        let mut fresh = self.connect().await?;
        let res = fresh.send_request(req).await.map_err(SendError::Exchange)?;
        Ok((res, fresh))
    }

    /// An idle connection, if one is open. One that sat idle a while is checked after a yield:
    /// when the upstream closed it at about the moment this request arrived, its FIN is already
    /// in, but the connection's task (woken by the same poll of the reactor) has not run yet to
    /// see it; yielding once lets it run, so the request goes to a connection known to be open
    /// instead of being written into one being closed (which would end as a 502, as the request
    /// could not be sent again).
    async fn take(&self) -> Option<Sender> {
        let (pooled, stale) = self.pool.take()?;
        if !stale {
            return Some(pooled);
        }
        tokio::task::yield_now().await;
        if pooled.is_ready() {
            return Some(pooled);
        }
        self.pool.take().map(|(next, _)| next)
    }

    /// Wraps a response body so that its connection goes back to this thread's pool once the
    /// body has been read to the end. Not for a `101`: that connection now belongs to the tunnel.
    pub(super) fn returning(&self, body: Incoming, sender: Sender) -> Returning {
        Returning::new(body, self.pool.key(), sender)
    }

    /// Opens a connection (TCP, TLS for `https`, with the connector's timeout and nodelay) and
    /// starts its task on this thread's runtime, with upgrades so a `101` can become a tunnel.
    async fn connect(&self) -> Result<Sender, SendError> {
        let io = self
            .connector
            .clone()
            .call(self.dst.clone())
            .await
            .map_err(SendError::Connect)?;
        let (sender, conn) = self.h1.handshake(io).await.map_err(SendError::Exchange)?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }
}
