//! The `session-proxy` binary: parse arguments, load the config, call into the library.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![warn(clippy::too_many_lines)]

mod cli_sessions;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};
use session_proxy::config::{Config, Overrides, TlsConfig};
use session_proxy::server::{self, ServeError, Server};
use session_proxy::session::store::SessionStore;
use session_proxy::session::SessionLayer;
use session_proxy::telemetry::{self, LogFormat};
use session_proxy::tls::TlsError;

/// What `--version` prints after the name: the commit and target come from build.rs, so a bug
/// report that quotes it says exactly which build it is about.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("SESSION_PROXY_GIT_COMMIT"),
    ", ",
    env!("SESSION_PROXY_TARGET"),
    ")"
);

/// mimalloc: glibc's malloc spent ~9% of a request's CPU in malloc/free bookkeeping under load
/// (perf, loopback wrk); mimalloc's thread-local free lists suit a thread-per-core server.
/// Built with its `no_thp` feature: otherwise it madvises its arenas for transparent huge pages,
/// and the untouched parts of every idle connection's buffers become resident in 2 MiB pages
/// (43.4 instead of 30.6 KiB per idle keep-alive connection, docs/performance.md). On hosts
/// whose THP mode is `always`, also set MIMALLOC_ALLOW_THP=0 in the service's environment.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A reverse proxy that owns the session cookie, so the app behind it never has to.
///
/// It loads the session for every request, hands it to the app as X-Session-* request headers, and
/// applies the app's X-Session-Set / -Delete / -Clear / -Regenerate response headers.
#[derive(Parser)]
#[command(version = VERSION, propagate_version = true)]
struct Cli {
    /// Path to the configuration file.
    #[arg(
        long,
        short,
        global = true,
        env = "SESSION_PROXY_CONFIG",
        default_value = "proxy.yaml"
    )]
    config: PathBuf,

    /// Log format on stderr (levels come from RUST_LOG, default info).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy (the default when no command is given).
    Serve {
        /// Address to accept on, overriding `listen` (e.g. 0.0.0.0:8080; a host name is
        /// resolved once, at start).
        #[arg(long, value_parser = session_proxy::config::resolve_socket_addr)]
        listen: Option<SocketAddr>,
        /// URL of the app to front, overriding `upstream.url` (e.g. http://127.0.0.1:3000).
        #[arg(long)]
        upstream: Option<String>,
    },
    /// Validate the configuration and print the effective settings, secrets redacted.
    Check,
    /// Print a fresh random secret for `sessions.secret` (or SESSION_SECRET).
    Keygen {
        /// Write a new Ed25519 private key (PEM PKCS#8) for `assertion.key` instead.
        #[arg(long)]
        assertion: bool,
        /// Write the key to this file (created with mode 0600; an existing file is never
        /// overwritten) instead of stdout.
        #[arg(long, requires = "assertion")]
        out: Option<PathBuf>,
    },
    /// Remove expired sessions from the store, then exit. Meant for cron.
    Cleanup,
    /// List or end sessions by owner (`sessions.owner_key`) or by handle, straight in the
    /// store (Redis; a memory store is reached through the admin API instead).
    Sessions {
        #[command(subcommand)]
        command: cli_sessions::SessionsCommand,
    },
    /// Ask a running proxy's admin listener whether it is ready (`/readyz`): exit 0 when it
    /// answers 200, 1 otherwise. For container HEALTHCHECKs and scripts.
    Health {
        /// The admin listener to ask, e.g. http://127.0.0.1:9901 (path /readyz unless one is
        /// given). Default: `admin_listen` of the loaded config, a wildcard address read as loopback.
        #[arg(long)]
        url: Option<http::Uri>,
        /// How long to wait for the answer (the proxy itself gives the store and the upstream 2s).
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Print a shell completion script, e.g.
    /// `session-proxy completions bash > /usr/share/bash-completion/completions/session-proxy`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g.
    /// `session-proxy man > /usr/local/share/man/man1/session-proxy.1`.
    Man {
        /// Print this command's page instead (`session-proxy man check > session-proxy-check.1`):
        /// the pages the main one lists under SUBCOMMANDS.
        command: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("session-proxy: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command.unwrap_or(Command::Serve {
        listen: None,
        upstream: None,
    }) {
        Command::Keygen { assertion, out } => keygen_command(assertion, out),
        Command::Completions { shell } => completions(shell),
        Command::Man { command } => man_page(command),
        Command::Check => check(&cli.config),
        Command::Cleanup => {
            let config = Config::load(&cli.config, &Overrides::default())?;
            runtime()?.block_on(cleanup(&config))
        }
        Command::Sessions { command } => {
            let config = Config::load(&cli.config, &Overrides::default())?;
            runtime()?.block_on(cli_sessions::run(&config, command))
        }
        Command::Health { url, timeout } => {
            let url = health_url(url, &cli.config)?;
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?
                .block_on(health::check(&url, timeout))
        }
        Command::Serve { listen, upstream } => {
            let overrides = Overrides { listen, upstream };
            let config = Config::load(&cli.config, &overrides)?;
            // The main thread is worker 0 on a single-threaded runtime; `Server` starts the other
            // workers, each with its own single-threaded runtime (thread-per-core).
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?
                .block_on(serve(config, cli.config, overrides))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn keygen_command(assertion: bool, out: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    if !assertion {
        println!("{}", keygen());
        return Ok(ExitCode::SUCCESS);
    }
    let pem = session_proxy::session::assertion::generate_ed25519_pem()?;
    match out {
        None => print!("{pem}"),
        Some(path) => write_private(&path, pem.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?,
    }
    Ok(ExitCode::SUCCESS)
}

fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    let mut script = Vec::new();
    let mut command = Cli::command();
    let name = command.get_name().to_owned();
    clap_complete::generate(shell, &mut command, name.clone(), &mut script);
    if shell == clap_complete::Shell::Bash {
        script = fix_bash_case_labels(&script, &name);
    }
    write_stdout(&script)?;
    Ok(ExitCode::SUCCESS)
}

fn man_page(command: Option<String>) -> anyhow::Result<ExitCode> {
    let mut cli = Cli::command().disable_help_subcommand(true);
    // Built first, so that a subcommand carries its full name (session-proxy-check).
    cli.build();
    let page_of = match command {
        None => cli,
        Some(name) => cli.find_subcommand(&name).cloned().with_context(|| {
            let names: Vec<_> = cli.get_subcommands().map(|c| c.get_name()).collect();
            format!("no command {name:?}; one of: {}", names.join(", "))
        })?,
    };
    let mut page = Vec::new();
    clap_mangen::Man::new(page_of)
        .render(&mut page)
        .context("cannot render the man page")?;
    write_stdout(&page)?;
    Ok(ExitCode::SUCCESS)
}

fn check(path: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(path, &Overrides::default())?;
    // The files a config points at are part of it: fail now, not at deploy time.
    if let Some(tls) = &config.tls {
        session_proxy::tls::Tls::load(tls).map_err(|e| tls_error(tls, e))?;
    }
    session_proxy::proxy::Upstream::new(&config.upstream, &config.trusted_proxies)?;
    session_proxy::session::assertion::Assertion::from_config(&config)?;
    print!("{}", config.to_redacted_yaml());
    eprintln!("session-proxy: {} is valid", path.display());
    if config.sessions.driver == session_proxy::config::Driver::Redis {
        eprintln!("session-proxy: {}", redis_layout(config.redis.encrypt));
        runtime()?.block_on(warn_if_store_unreachable(&config));
    }
    Ok(ExitCode::SUCCESS)
}

/// What `check` says of the Redis layout: operators migrating to or from sealing need to know
/// which one writes will produce (docs/redis.md, Encryption at rest).
fn redis_layout(encrypt: bool) -> &'static str {
    if encrypt {
        "Redis layout: sealed (redis.encrypt: true): session data and key names are encrypted; readable sessions are sealed on their next request"
    } else {
        "Redis layout: readable (redis.encrypt: false): session data is stored as JSON; sealed sessions are rewritten readable on their next write"
    }
}

/// The `/readyz` URL `health` asks. With `--url` the config is not needed (nor loaded): a probe
/// should not fail because, say, SESSION_SECRET is missing from the prober's environment.
fn health_url(url: Option<http::Uri>, path: &Path) -> anyhow::Result<http::Uri> {
    match url {
        Some(url) => health::readyz_url(url),
        None => {
            let config = Config::load(path, &Overrides::default())?;
            let admin = config.admin_listen.with_context(|| {
                format!(
                    "{} has no admin_listen (nor SESSION_PROXY_ADMIN_LISTEN): nothing to ask; set one or pass --url",
                    path.display()
                )
            })?;
            health::url_for(admin)
        }
    }
}

async fn serve(config: Config, path: PathBuf, overrides: Overrides) -> anyhow::Result<()> {
    let server = Server::bind_workers(&config, 0)
        .await
        .map_err(|e| match (e, &config.tls) {
            (ServeError::Tls(e), Some(tls)) => tls_error(tls, e),
            (e, _) => e.into(),
        })?;
    tracing::info!(
        addr = %server.local_addr(),
        upstream = %config.upstream.url,
        driver = config.sessions.driver.as_str(),
        "listening"
    );
    if let Some(addr) = server.admin_addr() {
        tracing::info!(%addr, "admin listener: /metrics /livez /readyz /sessions");
    }
    if let Some(addr) = server.redirect_addr() {
        tracing::info!(%addr, "redirecting plain HTTP to HTTPS");
    }
    #[cfg(unix)]
    {
        tokio::spawn(server.reloader(path, overrides, config).on_sighup());
    }
    server.run(server::shutdown_signal()).await?;
    Ok(())
}

async fn warn_if_store_unreachable(config: &Config) {
    match SessionLayer::from_config(&config.sessions, &config.redis) {
        Ok(layer) => {
            if let Err(e) = layer.store().ping().await {
                eprintln!("warning: session store unreachable: {e}");
            }
        }
        Err(e) => eprintln!("warning: session store unusable: {e}"),
    }
}

async fn cleanup(config: &Config) -> anyhow::Result<ExitCode> {
    use session_proxy::config::Driver;
    if config.sessions.driver == Driver::Cookie {
        println!(
            "the cookie store keeps nothing server-side: sessions expire inside their sealed cookies; nothing to clean up"
        );
        return Ok(ExitCode::SUCCESS);
    }
    if config.sessions.driver == Driver::Memory {
        println!("the memory store lives inside each running proxy and is swept there; nothing to clean up from outside");
        return Ok(ExitCode::SUCCESS);
    }
    let layer = SessionLayer::from_config(&config.sessions, &config.redis)?;
    let report = layer
        .store()
        .cleanup(layer.clock().now())
        .await
        .context("cleanup failed: the session store is unreachable")?;
    println!(
        "removed {} expired sessions (scanned {})",
        report.removed, report.scanned
    );
    Ok(ExitCode::SUCCESS)
}

/// `session-proxy health`: one GET to the admin listener's `/readyz`, nothing else.
mod health {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    use std::process::ExitCode;
    use std::time::Duration;

    use anyhow::{bail, Context};
    use bytes::Bytes;
    use http::{header, Request, Uri};
    use http_body_util::{BodyExt, Empty, Limited};
    use hyper_util::rt::TokioIo;

    /// More than any admin answer (a `/readyz` body is one line); a stranger on the port cannot
    /// make the probe read forever.
    const MAX_BODY: usize = 64 * 1024;

    /// The `/readyz` URL of an admin listener bound to `addr`. A wildcard bind (`0.0.0.0`, `::`,
    /// the usual choice in a container) is reached over loopback.
    pub fn url_for(addr: SocketAddr) -> anyhow::Result<Uri> {
        let ip = match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let authority = SocketAddr::new(ip, addr.port());
        Uri::builder()
            .scheme("http")
            .authority(authority.to_string())
            .path_and_query("/readyz")
            .build()
            .with_context(|| format!("admin_listen {addr} as a URL"))
    }

    /// `--url`: `http://host:port` means its `/readyz`; a URL with a path is taken as it is.
    pub fn readyz_url(url: Uri) -> anyhow::Result<Uri> {
        if url.scheme_str() != Some("http") || url.authority().is_none() {
            bail!("--url {url}: expected http://HOST:PORT[/PATH] (the admin listener speaks plain HTTP)");
        }
        if url.path() != "/" {
            return Ok(url);
        }
        let mut parts = url.into_parts();
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/readyz"));
        Uri::from_parts(parts).context("--url")
    }

    /// Prints the answer's status and body; exit 0 on 200, 1 on anything else or no answer.
    pub async fn check(url: &Uri, within: Duration) -> anyhow::Result<ExitCode> {
        let (status, body) = tokio::time::timeout(within, get(url))
            .await
            .with_context(|| format!("{url}: no answer within {within:?}"))??;
        let body = String::from_utf8_lossy(&body);
        println!("{} {}", status.as_u16(), body.trim_end());
        Ok(if status == http::StatusCode::OK {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }

    async fn get(url: &Uri) -> anyhow::Result<(http::StatusCode, Bytes)> {
        let authority = url.authority().context("the URL has no host")?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = authority.port_u16().unwrap_or(80);
        let stream = tokio::net::TcpStream::connect((host, port))
            .await
            .with_context(|| format!("cannot connect to {authority}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .with_context(|| format!("{authority}: HTTP handshake"))?;
        tokio::spawn(conn);
        let path = url.path_and_query().map_or("/readyz", |p| p.as_str());
        let req = Request::get(path)
            .header(header::HOST, authority.as_str())
            .header(header::USER_AGENT, "session-proxy-health")
            .body(Empty::<Bytes>::new())
            .context("building the request")?;
        let res = sender
            .send_request(req)
            .await
            .with_context(|| format!("{url}: no response"))?;
        let status = res.status();
        let body = Limited::new(res.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("{url}: reading the body: {e}"))?
            .to_bytes();
        Ok((status, body))
    }
}

/// A certificate error, led by the setting that names the file (`tls.cert: cannot read
/// /x.pem: ...`): the operator edits a setting, and the path alone does not say which one.
fn tls_error(tls: &TlsConfig, e: TlsError) -> anyhow::Error {
    let field = e.setting(tls);
    anyhow::Error::new(e).context(field)
}

/// clap_complete (4.6.12 and before) spells the bash `case` labels of a hyphenated binary's
/// subcommands `session__subcmd__proxy__subcmd__check` while its dispatch loop arrives at
/// `session__proxy__subcmd__check`, so nothing after a subcommand ever completed
/// (clap-rs/clap#6421). Respelling the labels the loop's way fixes it; once clap_complete does,
/// the wrong spelling is absent and this changes nothing.
fn fix_bash_case_labels(script: &[u8], bin_name: &str) -> Vec<u8> {
    let wrong = format!("{}__subcmd__", bin_name.replace('-', "__subcmd__"));
    let right = format!("{}__subcmd__", bin_name.replace('-', "__"));
    String::from_utf8_lossy(script)
        .replace(&wrong, &right)
        .into_bytes()
}

/// Output for a pipe: `session-proxy man | head` closing early is not an error worth a message.
fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => result.context("cannot write to stdout"),
    }
}

/// A private key file: mode 0600 from the moment it exists, and never over an existing file (a
/// key in use must not vanish by a mistyped `--out`).
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// 32 random bytes from the OS CSPRNG, base64url: 43 characters, 256 bits.
fn keygen() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
