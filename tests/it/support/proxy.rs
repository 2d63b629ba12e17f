//! The real `session-proxy` binary, started with a generated `proxy.yaml` on a free port.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_norway::Value;

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_session-proxy")
}

/// Builds a config for the proxy under test. Starts from: listen on a free port, the given
/// upstream, the test secret, cookie store, `secure: false` so plain-HTTP clients keep the cookie.
pub struct ProxyBuilder {
    tree: Value,
    env: HashMap<String, String>,
    args: Vec<String>,
}

impl ProxyBuilder {
    pub fn new(upstream_url: &str) -> ProxyBuilder {
        let yaml = format!(
            "listen: 127.0.0.1:0\nupstream:\n  url: {upstream_url}\n  connect_timeout: 2s\n  timeout: 10s\nsessions:\n  driver: cookie\n  secret: \"{}\"\n  secure: false\nlimits:\n  shutdown_grace: 5s\n",
            super::SECRET
        );
        ProxyBuilder {
            tree: serde_norway::from_str(&yaml).unwrap(),
            env: HashMap::new(),
            args: Vec::new(),
        }
    }

    /// Sets a dotted key (`sessions.max_age`) to a YAML value written as text (`2s`, `true`, `[a]`).
    pub fn set(mut self, dotted: &str, yaml: &str) -> ProxyBuilder {
        let value: Value = serde_norway::from_str(yaml).unwrap();
        let mut node = &mut self.tree;
        let parts: Vec<&str> = dotted.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            let map = node.as_mapping_mut().unwrap();
            let key = Value::String(part.to_string());
            if i == parts.len() - 1 {
                map.insert(key, value);
                break;
            }
            node = map
                .entry(key)
                .or_insert_with(|| Value::Mapping(Default::default()));
        }
        self
    }

    pub fn driver(self, driver: &str) -> ProxyBuilder {
        self.set("sessions.driver", driver)
    }

    pub fn env(mut self, key: &str, value: &str) -> ProxyBuilder {
        self.env.insert(key.into(), value.into());
        self
    }

    pub fn arg(mut self, arg: &str) -> ProxyBuilder {
        self.args.push(arg.into());
        self
    }

    pub fn yaml(&self) -> String {
        serde_norway::to_string(&self.tree).unwrap()
    }

    /// Starts the proxy and waits until it is listening.
    pub fn start(self) -> TestProxy {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("proxy.yaml");
        std::fs::write(&config, self.yaml()).unwrap();
        TestProxy::spawn(dir, config, self.env, self.args)
    }
}

pub struct TestProxy {
    pub addr: SocketAddr,
    pub config_path: PathBuf,
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl TestProxy {
    fn spawn(
        dir: tempfile::TempDir,
        config: PathBuf,
        env: HashMap<String, String>,
        args: Vec<String>,
    ) -> TestProxy {
        let mut cmd = Command::new(binary());
        cmd.arg("--config")
            .arg(&config)
            .arg("--log-format")
            .arg("json")
            .arg("serve")
            .args(&args)
            .env_remove("SESSION_PROXY_CONFIG")
            .env(
                "RUST_LOG",
                "debug,hyper=info,h2=info,rustls=info,redis=info",
            )
            .envs(&env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start session-proxy");
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let logs2 = logs.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = listening_addr(&line) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr);
                    }
                }
                logs2.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "proxy did not start; logs:\n{}",
                    logs.lock().unwrap().join("\n")
                );
            }
        };
        TestProxy {
            addr,
            config_path: config,
            child,
            logs,
            _dir: dir,
        }
    }

    /// The address a log line with this message reported (e.g. the admin listener's).
    pub fn logged_addr(&self, message_prefix: &str) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            for line in self.logs() {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                let msg = v.get("message").and_then(|m| m.as_str()).unwrap_or("");
                if msg.starts_with(message_prefix) {
                    if let Some(addr) = v.get("addr").and_then(|a| a.as_str()) {
                        return addr.parse().unwrap();
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no log line {message_prefix:?} with an addr");
    }

    /// The admin listener's address (configure `admin_listen: 127.0.0.1:0`).
    pub fn admin_addr(&self) -> SocketAddr {
        self.logged_addr("admin listener")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every log line so far (JSON, one object per line).
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    pub fn logs_text(&self) -> String {
        self.logs().join("\n")
    }

    /// The log lines at `level` (e.g. "WARN"), parsed.
    pub fn logs_at(&self, level: &str) -> Vec<serde_json::Value> {
        self.logs()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v.get("level").and_then(|l| l.as_str()) == Some(level))
            .collect()
    }

    /// The access lines so far (target `access`), parsed.
    pub fn access_lines(&self) -> Vec<serde_json::Value> {
        self.logs()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["target"] == "access")
            .collect()
    }

    /// Waits up to `within` until at least `n` access lines are in. A request's access line is
    /// the last line it logs (at the end of its response body), so once the lines of the first
    /// `n` requests are in, so is everything they logged before: a test that counts warnings
    /// waits on this rather than sleeping for the log to catch up.
    pub fn wait_for_access_lines(&self, n: usize, within: Duration) -> bool {
        wait_until(within, || self.access_lines().len() >= n)
    }

    /// Fails the test if the proxy panicked anywhere so far.
    pub fn assert_no_panic(&self) {
        let text = self.logs_text();
        assert!(!text.contains("panicked"), "the proxy panicked:\n{text}");
    }

    /// Waits up to `within` for a log line containing `needle`.
    pub fn wait_for_log(&self, needle: &str, within: Duration) -> bool {
        wait_until(within, || self.logs().iter().any(|l| l.contains(needle)))
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit and returns its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `condition` every 20 ms until it holds (true) or `within` passes (false). Blocking: for
/// state another thread fills in (the proxy's log reader), not for the test's own runtime.
pub fn wait_until(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn listening_addr(line: &str) -> Option<SocketAddr> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    if v.get("message")?.as_str()? != "listening" {
        return None;
    }
    v.get("addr")?.as_str()?.parse().ok()
}

/// Runs the binary with `args` and a config file holding `yaml`; returns (exit code, stdout, stderr).
pub fn run_cli(yaml: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("proxy.yaml");
    std::fs::write(&config, yaml).unwrap();
    let out = Command::new(binary())
        .arg("--config")
        .arg(&config)
        .args(args)
        .env_remove("SESSION_PROXY_CONFIG")
        .env_remove("SESSION_SECRET")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
