//! Binding the listening sockets, with one SO_REUSEPORT socket per extra worker.

use std::net::SocketAddr;

use tokio::net::TcpListener;

use super::ServeError;

/// A listening socket that other sockets may share (SO_REUSEPORT): one per worker thread.
fn reuseport_listener(addr: SocketAddr) -> Result<std::net::TcpListener, ServeError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let err = |source| ServeError::Bind {
        setting: "listen",
        addr,
        source,
    };
    let socket =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(err)?;
    socket.set_reuse_address(true).map_err(err)?;
    #[cfg(unix)]
    socket.set_reuse_port(true).map_err(err)?;
    socket.set_nonblocking(true).map_err(err)?;
    socket.bind(&addr.into()).map_err(err)?;
    socket.listen(4096).map_err(err)?;
    Ok(socket.into())
}

/// SO_REUSEPORT lets any process of the same user join a port: a second session-proxy started on
/// the same `listen` would bind silently and split the traffic. A plain socket (no
/// SO_REUSEPORT) cannot bind where anyone listens, so one trial bind tells, as nginx would,
/// "address already in use" before the worker sockets are made.
fn ensure_unused(addr: SocketAddr) -> Result<(), ServeError> {
    if addr.port() == 0 {
        return Ok(());
    }
    std::net::TcpListener::bind(addr)
        .map(drop)
        .map_err(|source| ServeError::Bind {
            setting: "listen",
            addr,
            source,
        })
}

pub(super) async fn bind(
    setting: &'static str,
    addr: SocketAddr,
) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind {
            setting,
            addr,
            source,
        })
}

/// The public listening socket and where it is bound, plus one more socket on the same address
/// per extra worker (SO_REUSEPORT), so the kernel spreads connections and a connection's whole
/// life stays on one thread.
pub(super) struct PublicSockets {
    pub(super) listener: TcpListener,
    pub(super) addr: SocketAddr,
    pub(super) extra: Vec<std::net::TcpListener>,
}

pub(super) async fn bind_public(
    listen: SocketAddr,
    workers: usize,
) -> Result<PublicSockets, ServeError> {
    let err = |source| ServeError::Bind {
        setting: "listen",
        addr: listen,
        source,
    };
    let (listener, extra) = if workers <= 1 {
        (bind("listen", listen).await?, Vec::new())
    } else {
        ensure_unused(listen)?;
        let first = reuseport_listener(listen)?;
        let addr = first.local_addr().map_err(err)?;
        let extra = (1..workers)
            .map(|_| reuseport_listener(addr))
            .collect::<Result<Vec<_>, _>>()?;
        (TcpListener::from_std(first).map_err(err)?, extra)
    };
    let addr = listener.local_addr().map_err(err)?;
    Ok(PublicSockets {
        listener,
        addr,
        extra,
    })
}
