//! The optional plain-HTTP listener that redirects every request to the HTTPS one.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;

use super::accept::{ConnContext, Listen};
use super::conn::serve_http;
use crate::error::{permanent_redirect, ProxyError, ResponseBody};
use crate::proxy::target;

/// The plain listener that sends every request to the HTTPS one.
#[derive(Clone)]
pub(super) struct RedirectTo {
    pub(super) https_port: u16,
    /// `tls.redirect_host`: every `Location` names this host instead of the request's.
    pub(super) pinned_host: Option<Arc<str>>,
}

impl Listen for RedirectTo {
    async fn serve(self, ctx: ConnContext, stream: tokio::net::TcpStream, peer: SocketAddr) {
        let RedirectTo {
            https_port,
            pinned_host,
        } = self;
        serve_http(&ctx, stream, peer, None, move |req| {
            let res = redirect(&req, https_port, pinned_host.as_deref());
            async move { (res, None) }
        })
        .await
    }
}

/// 308 keeps the method and body, unlike 301/302. The request passes the public listener's
/// target checks first: an open redirect to a foreign authority (absolute-form, a doubled or
/// malformed `Host`, `CONNECT`) is a 400 here as it is there.
fn redirect(
    req: &Request<Incoming>,
    https_port: u16,
    pinned_host: Option<&str>,
) -> Response<ResponseBody> {
    if let Err(e) = target::check(req.method(), req.uri(), req.version(), req.headers()) {
        return ProxyError::BadTarget(e).into_response();
    }
    let authority = match pinned_host {
        Some(pinned) => pinned.to_owned(),
        None => {
            let host = target::host_of(req.uri(), req.headers())
                .and_then(|h| h.to_str().ok()?.parse::<http::uri::Authority>().ok());
            let Some(host) = host else {
                return ProxyError::BadTarget(target::TargetError::MissingHost).into_response();
            };
            if https_port == 443 {
                host.host().to_owned()
            } else {
                format!("{}:{https_port}", host.host())
            }
        }
    };
    let pq = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let Ok(location) = HeaderValue::try_from(format!("https://{authority}{pq}")) else {
        return ProxyError::BadRequest("the target cannot be redirected").into_response();
    };
    permanent_redirect(location)
}
