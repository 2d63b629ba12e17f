//! A runnable demo: a tiny app that has no idea what a cookie is, and session-proxy in front of it.
//!
//! ```text
//! cargo run --release --example demo        # then open http://127.0.0.1:8080/
//! DEMO_LISTEN=127.0.0.1:9000 cargo run --release --example demo
//! DEMO_STORE=memory cargo run --release --example demo   # + "Active sessions", "Sign out everywhere"
//! ```
//!
//! The app (plain hyper, on 127.0.0.1:3000 or any free port if that one is taken) only reads
//! `X-Session-*` request headers and answers with `X-Session-*` response headers:
//! - `POST /login` (form field `name`): `X-Session-Set: user="<name>"`, `X-Session-Set: visits=0`
//!   and `X-Session-Regenerate: 1` (a new session ID at the privilege change, against fixation);
//! - `GET /`: the login form, or "who am I" with every session header the app received ("signed
//!   in since" is `X-Session-Created`), and a visit counter bumped with `X-Session-Set: visits=<n+1>`;
//! - `POST /logout`: `X-Session-Clear: 1`;
//! - `POST /logout-everywhere`: `X-Session-Clear: everywhere` (every session of this user, this
//!   one included); `POST /logout-others`: `X-Session-Clear: others` (all but this one).
//!
//! The proxy runs in this same process through the library (`Config::from_yaml`, `Server::bind`,
//! `run`), with a secret generated at start-up (so sessions do not survive a restart of the demo),
//! on one of two stores (`DEMO_STORE`):
//! - `cookie` (the default): the session travels in the encrypted cookie, so the proxy keeps
//!   nothing it could list or end from elsewhere; the page says so instead of listing sessions.
//! - `memory`: the memory store with `sessions.owner_key: user`, so sessions are indexed by the
//!   name the app stores at login; that index is what `X-Session-Clear: everywhere | others`
//!   walks. The admin listener runs too, on a free loopback port with a token generated at
//!   start-up, and the app lists "Active sessions" from its `GET /sessions?owner=<user>`, marking
//!   the one whose handle is this request's `X-Session-Id` as "this device".

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Deserialize;
use serde_json::Value;
use session_proxy::config::{Config, Overrides};
use session_proxy::server::{self, Server};
use session_proxy::session::protocol::ascii_json;
use tokio::net::TcpListener;

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

const NO_SERVER_SIDE_STORE: &str = "Active sessions and sign-out-everywhere need a server-side \
                                    store: run with DEMO_STORE=memory";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    session_proxy::telemetry::init(session_proxy::telemetry::LogFormat::Text);

    let memory = match std::env::var("DEMO_STORE").as_deref() {
        Err(_) | Ok("" | "cookie") => false,
        Ok("memory") => true,
        Ok(other) => anyhow::bail!("DEMO_STORE={other}: expected cookie (the default) or memory"),
    };
    // The app: 127.0.0.1:3000 if free, otherwise any free port (only the proxy talks to it).
    let app = match TcpListener::bind("127.0.0.1:3000").await {
        Ok(l) => l,
        Err(_) => TcpListener::bind("127.0.0.1:0").await?,
    };
    let app_addr = app.local_addr()?;

    let listen = std::env::var("DEMO_LISTEN").unwrap_or_else(|_| DEFAULT_LISTEN.into());
    let admin_token = memory.then(random_secret);
    let yaml = config_yaml(&listen, app_addr, admin_token.as_deref());
    // An empty environment: the demo is self-contained and ignores any SESSION_* variables.
    let config = Config::from_yaml(&yaml, &HashMap::new(), &Overrides::default())?;
    let proxy = Server::bind(&config).await?;
    let addr = proxy.local_addr();

    // The app starts once the admin listener has its port (until then, connections to the app
    // wait in its listen backlog).
    let admin = proxy.admin_addr().zip(admin_token).map(|(addr, token)| {
        let client = Client::builder(TokioExecutor::new()).build_http();
        Arc::new(Admin {
            addr,
            token,
            client,
        })
    });
    tokio::spawn(serve_app(app, admin.clone()));

    println!("session-proxy demo");
    println!("  app (knows nothing about cookies): http://{app_addr}/");
    let store = if memory { "memory" } else { "cookie" };
    println!("  proxy ({store} store, secret generated at start-up): http://{addr}/");
    if let Some(admin) = &admin {
        println!("  admin API: http://{}/sessions?owner=NAME", admin.addr);
        println!(
            "    with `Authorization: Bearer {}` (this run's token)",
            admin.token
        );
    }
    println!(
        "  note: the session cookie is sent without `Secure` because this demo is plain HTTP;"
    );
    println!("        in production, serve over TLS and keep sessions.secure: true.");
    println!("open http://{addr}/");

    proxy.run(server::shutdown_signal()).await?;
    Ok(())
}

/// The proxy's config: the cookie store, or with an admin token the memory store indexed by
/// `user` and the admin listener on a free loopback port.
fn config_yaml(listen: &str, app: SocketAddr, admin_token: Option<&str>) -> String {
    let (store, admin) = match admin_token {
        None => ("driver: cookie", String::new()),
        Some(token) => (
            "driver: memory\n  owner_key: user",
            format!("admin_listen: 127.0.0.1:0\nadmin_token: \"{token}\"\n"),
        ),
    };
    // `secure: false` because this demo is plain HTTP: a browser never sends a `Secure` cookie back
    // over http://, so logging in would seem to do nothing. Behind TLS, keep the default (true).
    format!(
        "listen: {listen}\n{admin}\
         upstream:\n  url: http://{app}\n\
         sessions:\n  {store}\n  secret: \"{secret}\"\n  secure: false\n  max_age: 1h\n  idle_timeout: 15m\n\
         limits:\n  shutdown_grace: 2s\n",
        secret = random_secret(),
    )
}

/// 32 random bytes, hex: a fresh `sessions.secret` (or `admin_token`) for this run only.
fn random_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn serve_app(listener: TcpListener, admin: Option<Arc<Admin>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let admin = admin.clone();
        tokio::spawn(async move {
            let service = service_fn(|req| {
                let admin = admin.clone();
                async move { Ok::<_, Infallible>(app(req, admin.as_deref()).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The whole app. Everything it knows about the visitor comes from the proxy's headers.
async fn app(req: Request<Incoming>, admin: Option<&Admin>) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/") => home(req.headers(), admin).await,
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
        (&Method::POST, "/logout") => clear("1"),
        (&Method::POST, "/logout-everywhere") => clear("everywhere"),
        (&Method::POST, "/logout-others") => clear("others"),
        _ => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Full::from("not found\n"))
            .unwrap(),
    }
}

/// `GET /`: the login form, or who am I.
async fn home(headers: &HeaderMap, admin: Option<&Admin>) -> Response<Full<Bytes>> {
    let page = Response::builder().header(header::CONTENT_TYPE, "text/html; charset=utf-8");
    // X-Session-Data is the whole session as JSON: the easiest way to read typed values.
    let data: serde_json::Map<String, Value> = headers
        .get("x-session-data")
        .and_then(|v| serde_json::from_slice(v.as_bytes()).ok())
        .unwrap_or_default();
    let Some(user) = data.get("user").and_then(Value::as_str) else {
        return page.body(Full::from(login_page())).unwrap();
    };
    let visits = data.get("visits").and_then(Value::as_u64).unwrap_or(0) + 1;
    let sessions = match admin {
        Some(admin) => active_sessions(admin, user, header_text(headers, "x-session-id")).await,
        None => format!("<p id=\"no-store\">{NO_SERVER_SIDE_STORE}</p>"),
    };
    let body = who_am_i(user, visits, headers, &sessions);
    page.header("X-Session-Set", format!("visits={visits}"))
        .body(Full::from(body))
        .unwrap()
}

/// A request header's value as text ("" when absent).
fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Ends this session (`1`), every session of its user (`everywhere`) or all the others (`others`).
fn clear(scope: &str) -> Response<Full<Bytes>> {
    redirect()
        .header("X-Session-Clear", scope)
        .body(Full::from(Bytes::new()))
        .unwrap()
}

/// The proxy's admin API, as the app reaches it.
struct Admin {
    addr: SocketAddr,
    token: String,
    client: Client<HttpConnector, Empty<Bytes>>,
}

/// One entry of `GET /sessions?owner=` (RFC 3339 times; `expires` is there too, unused here).
#[derive(Deserialize)]
struct Listed {
    handle: String,
    created: String,
    last_seen: String,
}

impl Admin {
    /// The sessions of `owner`, oldest first.
    async fn sessions(&self, owner: &str) -> anyhow::Result<Vec<Listed>> {
        let uri = format!(
            "http://{}/sessions?owner={}",
            self.addr,
            query_escape(owner)
        );
        let req = Request::get(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .body(Empty::new())?;
        // A page must not hang on the admin API: two seconds is ample on loopback.
        let res = tokio::time::timeout(Duration::from_secs(2), self.client.request(req)).await??;
        let status = res.status();
        let body = res.into_body().collect().await?.to_bytes();
        anyhow::ensure!(status.is_success(), "the admin API answered {status}");
        Ok(serde_json::from_slice(&body)?)
    }
}

/// "Active sessions": `user`'s sessions, the one whose handle is `this` marked "this device",
/// and the buttons that end them.
async fn active_sessions(admin: &Admin, user: &str, this: &str) -> String {
    let rows: String = match admin.sessions(user).await {
        Ok(sessions) => sessions.iter().map(|s| session_row(s, this)).collect(),
        Err(e) => format!(
            "<tr><td colspan=\"4\">cannot list sessions: {}</td></tr>\n",
            escape(&format!("{e:#}"))
        ),
    };
    format!(
        "<h2>Active sessions</h2>\n<table id=\"sessions\">\
         <thead><tr><th>session</th><th>signed in</th><th>last seen</th><th></th></tr></thead>\n\
         <tbody>\n{rows}</tbody></table>\n\
         <form method=\"post\" action=\"/logout-others\">\
         <button type=\"submit\" id=\"logout-others\">Sign out other devices</button></form>\n\
         <form method=\"post\" action=\"/logout-everywhere\">\
         <button type=\"submit\" id=\"logout-everywhere\">Sign out everywhere</button></form>"
    )
}

/// One session: its handle shortened to 8 characters (enough to tell a user's sessions apart).
fn session_row(s: &Listed, this: &str) -> String {
    let mark = if s.handle == this { "this device" } else { "" };
    let short: String = s.handle.chars().take(8).collect();
    format!(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{mark}</td></tr>\n",
        escape(&short),
        escape(&s.created),
        escape(&s.last_seen),
    )
}

/// A query-string value: every byte but RFC 3986's unreserved ones as `%XX`.
fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
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

/// Who am I: the name, the visit count, since when, `sessions` (the list or the note saying why
/// there is none), and every `X-Session-*` header the app received.
fn who_am_i(user: &str, visits: u64, headers: &HeaderMap, sessions: &str) -> String {
    let rows: String = headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("x-session-"))
        .map(|(n, v)| {
            let value = String::from_utf8_lossy(v.as_bytes());
            format!(
                "<tr><th>{}</th><td>{}</td></tr>\n",
                escape(n.as_str()),
                escape(&value)
            )
        })
        .collect();
    page(
        "session-proxy demo",
        &format!(
            "<p id=\"status\">Signed in as <strong id=\"user\">{}</strong>. \
             Visits this session: <span id=\"visits\">{visits}</span>.</p>\n\
             <p>Signed in since <span id=\"since\">{}</span>.</p>\n\
             <form method=\"post\" action=\"/logout\">\
             <button type=\"submit\" id=\"logout\">Sign out</button></form>\n\
             {sessions}\n\
             <p>The app got these headers from the proxy (it never sees the cookie):</p>\n\
             <table id=\"headers\">\n{rows}</table>",
            escape(user),
            escape(header_text(headers, "x-session-created")),
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
