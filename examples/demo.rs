//! A runnable demo: a tiny app that has no idea what a cookie is, and session-proxy in front of it.
//!
//! ```text
//! cargo run --release --example demo        # then open http://127.0.0.1:8080/
//! DEMO_LISTEN=127.0.0.1:9000 cargo run --release --example demo
//! ```
//!
//! The app (plain hyper, on 127.0.0.1:3000 or any free port if that one is taken) only reads
//! `X-Session-*` request headers and answers with `X-Session-*` response headers:
//! - `POST /login` (form field `name`): `X-Session-Set: user="<name>"`, `X-Session-Set: visits=0`
//!   and `X-Session-Regenerate: 1` (a new session ID at the privilege change, against fixation);
//! - `GET /`: the login form, or "who am I" with every session header the app received, and a visit
//!   counter bumped with `X-Session-Set: visits=<n+1>`;
//! - `POST /logout`: `X-Session-Clear: 1`.
//!
//! The proxy runs in this same process through the library (`Config::from_yaml`, `Server::bind`,
//! `run`), with the cookie store and a secret generated at start-up (so sessions do not survive a
//! restart of the demo).

use std::collections::HashMap;
use std::convert::Infallible;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use session_proxy::config::{Config, Overrides};
use session_proxy::server::{self, Server};
use session_proxy::session::protocol::ascii_json;
use tokio::net::TcpListener;

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    session_proxy::telemetry::init(session_proxy::telemetry::LogFormat::Text);

    // The app: 127.0.0.1:3000 if free, otherwise any free port (only the proxy talks to it).
    let app = match TcpListener::bind("127.0.0.1:3000").await {
        Ok(l) => l,
        Err(_) => TcpListener::bind("127.0.0.1:0").await?,
    };
    let app_addr = app.local_addr()?;
    tokio::spawn(serve_app(app));

    let listen = std::env::var("DEMO_LISTEN").unwrap_or_else(|_| DEFAULT_LISTEN.into());
    // `secure: false` because this demo is plain HTTP: a browser never sends a `Secure` cookie back
    // over http://, so logging in would seem to do nothing. Behind TLS, keep the default (true).
    let yaml = format!(
        "listen: {listen}\n\
         upstream:\n  url: http://{app_addr}\n\
         sessions:\n  driver: cookie\n  secret: \"{secret}\"\n  secure: false\n  max_age: 1h\n  idle_timeout: 15m\n\
         limits:\n  shutdown_grace: 2s\n",
        secret = random_secret(),
    );
    // An empty environment: the demo is self-contained and ignores any SESSION_* variables.
    let config = Config::from_yaml(&yaml, &HashMap::new(), &Overrides::default())?;
    let proxy = Server::bind(&config).await?;
    let addr = proxy.local_addr();

    println!("session-proxy demo");
    println!("  app (knows nothing about cookies): http://{app_addr}/");
    println!("  proxy (cookie store, secret generated at start-up): http://{addr}/");
    println!(
        "  note: the session cookie is sent without `Secure` because this demo is plain HTTP;"
    );
    println!("        in production, serve over TLS and keep sessions.secure: true.");
    println!("open http://{addr}/");

    proxy.run(server::shutdown_signal()).await?;
    Ok(())
}

/// 32 random bytes, hex: a fresh `sessions.secret` for this run only.
fn random_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn serve_app(listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let service = service_fn(|req| async move { Ok::<_, Infallible>(app(req).await) });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The whole app. Everything it knows about the visitor comes from the proxy's headers.
async fn app(req: Request<Incoming>) -> Response<Full<Bytes>> {
    let session: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("x-session-"))
        .map(|(n, v)| {
            let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
            (n.as_str().to_owned(), value)
        })
        .collect();
    // X-Session-Data is the whole session as JSON: the easiest way to read typed values.
    let data: serde_json::Map<String, Value> = req
        .headers()
        .get("x-session-data")
        .and_then(|v| serde_json::from_slice(v.as_bytes()).ok())
        .unwrap_or_default();

    match (req.method(), req.uri().path()) {
        (&Method::GET, "/") => {
            let page = Response::builder().header(header::CONTENT_TYPE, "text/html; charset=utf-8");
            match data.get("user").and_then(Value::as_str) {
                Some(user) => {
                    let visits = data.get("visits").and_then(Value::as_u64).unwrap_or(0) + 1;
                    page.header("X-Session-Set", format!("visits={visits}"))
                        .body(Full::from(who_am_i(user, visits, &session)))
                        .unwrap()
                }
                None => page.body(Full::from(login_page())).unwrap(),
            }
        }
        (&Method::POST, "/login") => {
            let body = req.into_body().collect().await.map(|b| b.to_bytes());
            let form = body.map(|b| parse_form(&b)).unwrap_or_default();
            let name = form.get("name").map(|n| n.trim()).unwrap_or("");
            if name.is_empty() {
                return redirect().body(Full::from(Bytes::new())).unwrap();
            }
            // A JSON string, so that a name like `42` or `true` stays text; ASCII-escaped JSON is
            // always a legal header value.
            redirect()
                .header(
                    "X-Session-Set",
                    format!("user={}", ascii_json(&name.into())),
                )
                .header("X-Session-Set", "visits=0")
                .header("X-Session-Regenerate", "1")
                .body(Full::from(Bytes::new()))
                .unwrap()
        }
        (&Method::POST, "/logout") => redirect()
            .header("X-Session-Clear", "1")
            .body(Full::from(Bytes::new()))
            .unwrap(),
        _ => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Full::from("not found\n"))
            .unwrap(),
    }
}

/// After a form POST, back to the page with a GET (so a reload does not resubmit the form).
fn redirect() -> http::response::Builder {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, "/")
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:sans-serif;max-width:40em;margin:2em auto}}\
         td,th{{text-align:left;padding:.2em .6em;font-family:monospace}}</style></head>\n\
         <body><h1>{title}</h1>\n{body}\n</body></html>\n"
    )
}

fn login_page() -> String {
    page(
        "session-proxy demo",
        "<p id=\"status\">You are not signed in.</p>\n\
         <form method=\"post\" action=\"/login\">\
         <label>Name <input name=\"name\" id=\"name\" autofocus required></label> \
         <button type=\"submit\" id=\"login\">Sign in</button></form>",
    )
}

fn who_am_i(user: &str, visits: u64, session: &[(String, String)]) -> String {
    let rows: String = session
        .iter()
        .map(|(n, v)| format!("<tr><th>{}</th><td>{}</td></tr>\n", escape(n), escape(v)))
        .collect();
    page(
        "session-proxy demo",
        &format!(
            "<p id=\"status\">Signed in as <strong id=\"user\">{}</strong>. \
             Visits this session: <span id=\"visits\">{visits}</span>.</p>\n\
             <p>The app got these headers from the proxy (it never sees the cookie):</p>\n\
             <table id=\"headers\">\n{rows}</table>\n\
             <form method=\"post\" action=\"/logout\">\
             <button type=\"submit\" id=\"logout\">Sign out</button></form>",
            escape(user)
        ),
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// `application/x-www-form-urlencoded` → map (`+` is a space, `%XX` a byte, UTF-8 assumed).
fn parse_form(body: &[u8]) -> HashMap<String, String> {
    body.split(|&b| b == b'&')
        .filter_map(|pair| {
            let mut it = pair.splitn(2, |&b| b == b'=');
            let key = decode(it.next()?);
            let value = decode(it.next().unwrap_or(b""));
            Some((key, value))
        })
        .collect()
}

fn decode(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => {
                let hex = std::str::from_utf8(&s[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
