//! The `session-proxy` binary: parse arguments, load the config, call into the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use session_proxy::config::{Config, Overrides};
use session_proxy::server::{self, Server};
use session_proxy::session::store::{now_millis, SessionStore};
use session_proxy::session::SessionLayer;
use session_proxy::telemetry::{self, LogFormat};

/// mimalloc: glibc's malloc spent ~9% of a request's CPU in malloc/free bookkeeping under load
/// (perf, loopback wrk); mimalloc's thread-local free lists suit a thread-per-core server.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A reverse proxy that owns the session cookie, so the app behind it never has to.
///
/// It loads the session for every request, hands it to the app as X-Session-* request headers, and
/// applies the app's X-Session-Set / -Delete / -Clear / -Regenerate response headers.
#[derive(Parser)]
#[command(version, propagate_version = true)]
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
        /// Address to accept on, overriding `listen` (e.g. 0.0.0.0:8080).
        #[arg(long)]
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
        Command::Keygen {
            assertion: false, ..
        } => {
            println!("{}", keygen());
            Ok(ExitCode::SUCCESS)
        }
        Command::Keygen {
            assertion: true,
            out,
        } => {
            let pem = session_proxy::session::assertion::generate_ed25519_pem()?;
            match out {
                None => print!("{pem}"),
                Some(path) => write_private(&path, pem.as_bytes())
                    .with_context(|| format!("cannot write {}", path.display()))?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Check => {
            let config = Config::load(&cli.config, &Overrides::default())?;
            // The files a config points at are part of it: fail now, not at deploy time.
            if let Some(tls) = &config.tls {
                session_proxy::tls::Tls::load(tls)?;
            }
            session_proxy::proxy::Upstream::new(&config.upstream)?;
            session_proxy::session::assertion::Assertion::from_config(&config)?;
            print!("{}", config.to_redacted_yaml());
            eprintln!("session-proxy: {} is valid", cli.config.display());
            if config.sessions.driver == session_proxy::config::Driver::Redis {
                runtime()?.block_on(warn_if_store_unreachable(&config));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Cleanup => {
            let config = Config::load(&cli.config, &Overrides::default())?;
            runtime()?.block_on(cleanup(&config))
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

async fn serve(config: Config, path: PathBuf, overrides: Overrides) -> anyhow::Result<()> {
    let server = Server::bind_workers(&config, 0).await?;
    tracing::info!(
        addr = %server.local_addr(),
        upstream = %config.upstream.url,
        driver = ?config.sessions.driver,
        "listening"
    );
    if let Some(addr) = server.admin_addr() {
        tracing::info!(%addr, "admin listener: /metrics /healthz /readyz");
    }
    if let Some(addr) = server.redirect_addr() {
        tracing::info!(%addr, "redirecting plain HTTP to HTTPS");
    }
    #[cfg(unix)]
    {
        let reloader = server.reloader(path, overrides, config);
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                return;
            };
            while hup.recv().await.is_some() {
                match reloader.reload() {
                    Ok(done) => {
                        tracing::info!("SIGHUP: configuration reloaded");
                        if done.tls_reloaded {
                            tracing::info!("SIGHUP: TLS certificate reloaded");
                        }
                        for setting in done.needs_restart {
                            tracing::warn!(setting, "SIGHUP: this setting changed but needs a restart; the running value stays");
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %session_proxy::error::chain(&e), "SIGHUP: reload failed; keeping the previous configuration and certificate")
                    }
                }
            }
        });
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
        .cleanup(now_millis())
        .await
        .context("cleanup failed: the session store is unreachable")?;
    println!(
        "removed {} expired sessions (scanned {})",
        report.removed, report.scanned
    );
    Ok(ExitCode::SUCCESS)
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
