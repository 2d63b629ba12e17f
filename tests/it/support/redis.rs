//! Real `redis-server` processes on free ports, stopped by PID on drop. Never the machine's 6379.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::wait_until;

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    extra: Vec<String>,
    /// Set for a TLS-only server: `port` is then its `--tls-port` and there is no plain port.
    tls: Option<RedisTlsFiles>,
}

/// The files of a TLS `redis-server` and of a client it accepts, all issued by one test CA.
#[derive(Clone)]
pub struct RedisTlsFiles {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl RedisTlsFiles {
    /// Writes a server leaf (localhost, 127.0.0.1) and a client leaf from `ca` into `dir`.
    pub fn issue(ca: &super::tls::TestCa, dir: &Path) -> RedisTlsFiles {
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let (server_cert, server_key, _) = ca.leaf("redis-server");
        let (client_cert, client_key, _) = ca.leaf("session-proxy");
        RedisTlsFiles {
            ca: write("ca.pem", &ca.pem()),
            server_cert: write("server-cert.pem", &server_cert),
            server_key: write("server-key.pem", &server_key),
            client_cert: write("client-cert.pem", &client_cert),
            client_key: write("client-key.pem", &client_key),
        }
    }

    fn server_args(&self, auth_clients: bool) -> Vec<String> {
        let mut args = Vec::new();
        for (flag, path) in [
            ("--tls-cert-file", &self.server_cert),
            ("--tls-key-file", &self.server_key),
            ("--tls-ca-cert-file", &self.ca),
        ] {
            args.push(flag.to_string());
            args.push(path.display().to_string());
        }
        args.push("--tls-auth-clients".into());
        args.push(if auth_clients { "yes" } else { "no" }.into());
        args
    }

    /// `redis-cli`'s flags to reach a server with these files (presenting the client cert).
    fn cli_args(&self) -> Vec<String> {
        let mut args = vec!["--tls".to_string()];
        for (flag, path) in [
            ("--cacert", &self.ca),
            ("--cert", &self.client_cert),
            ("--key", &self.client_key),
        ] {
            args.push(flag.to_string());
            args.push(path.display().to_string());
        }
        args
    }
}

/// Whether this machine's `redis-server` can serve TLS (Debian's is built with it): one is
/// started on a free port with `files` and must listen. `Err` carries what it printed, for a test
/// to say why it skipped. (A build without TLS may still accept `--tls-port 0`, so only a real
/// TLS port tells.)
pub fn redis_server_has_tls(files: &RedisTlsFiles) -> Result<(), String> {
    let port = free_port();
    let mut child = Command::new("redis-server")
        .args(["--port", "0", "--tls-port", &port.to_string()])
        .args(["--bind", "127.0.0.1", "--save", ""])
        .args(files.server_args(false))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run redis-server: {e}"))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut up = false;
    while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
        up = wait_for_port(addr, Duration::from_millis(100));
        if up {
            break;
        }
    }
    let _ = child.kill();
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if up {
        return Ok(());
    }
    Err(format!(
        "no TLS port came up: {}{}",
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

/// A free port whose cluster-bus port (+10000, which a cluster node also binds, or exits) is
/// free too: with thousands of loopback connections open, a bare free port often is not.
fn free_port() -> u16 {
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let bus_free = port
            .checked_add(10_000)
            .is_some_and(|bus| std::net::TcpListener::bind(("127.0.0.1", bus)).is_ok());
        if bus_free {
            return port;
        }
    }
}

impl RedisServer {
    pub fn start() -> RedisServer {
        Self::start_with(&[])
    }

    /// Starts `redis-server` with extra arguments (e.g. `["--appendonly", "yes"]`).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        Self::start_inner(extra.iter().map(|s| s.to_string()).collect(), None)
    }

    /// Starts a TLS-only `redis-server` (`--port 0 --tls-port P`) with the certificates in
    /// `files`; with `auth_clients` it requires a client certificate from the same CA
    /// (`--tls-auth-clients yes`). Extra arguments as for [`RedisServer::start_with`].
    pub fn start_tls(files: &RedisTlsFiles, auth_clients: bool, extra: &[&str]) -> RedisServer {
        let mut args = files.server_args(auth_clients);
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::start_inner(args, Some(files.clone()))
    }

    fn start_inner(extra: Vec<String>, tls: Option<RedisTlsFiles>) -> RedisServer {
        let dir = tempfile::tempdir().unwrap();
        let mut server = RedisServer {
            port: 0,
            child: None,
            dir,
            extra,
            tls,
        };
        for _ in 0..5 {
            server.port = free_port();
            if server.launch() {
                return server;
            }
        }
        panic!("could not start redis-server");
    }

    /// Starts `redis-server` on `self.port` and waits until its own log says it listens. A port
    /// picked free can be taken again before the server binds it (`--port 0` means "no TCP" to
    /// Redis, so the port cannot be left to the kernel): then the server exits, this returns
    /// false and the caller tries another port. Waiting on the log, not on a connect, keeps a
    /// process that took the port from passing for this server.
    fn launch(&mut self) -> bool {
        let port = self.port.to_string();
        let ports: &[&str] = match self.tls {
            None => &["--port", &port],
            Some(_) => &["--port", "0", "--tls-port", &port],
        };
        let log = self.dir.path().join("redis.log");
        let _ = std::fs::remove_file(&log);
        let mut child = Command::new("redis-server")
            .args(ports)
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(&log)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (apt-get install redis-server)");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("Ready to accept connections") {
                self.child = Some(child);
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// `redis://`, or `rediss://` for a TLS server.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}/0", self.port)
    }

    /// Stops the server (SIGKILL, by PID) and waits for it to go.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same data directory.
    pub fn restart(&mut self) {
        self.stop();
        assert!(self.launch(), "redis-server did not come back");
    }

    /// Runs a `redis-cli` command against this server and returns its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(self.tls.iter().flat_map(RedisTlsFiles::cli_args))
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn wait_for_port(addr: SocketAddr, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A Redis Cluster of `redis-server --cluster-enabled yes` processes on free ports, joined with
/// `redis-cli --cluster create`, no replicas (or one per master: [`RedisCluster::start_replicated`]).
/// Stopped by PID on drop, like [`RedisServer`].
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
    tls: Option<RedisTlsFiles>,
}

/// A relative config file lands in the node's own `--dir`.
const CLUSTER_ARGS: [&str; 6] = [
    "--cluster-enabled",
    "yes",
    "--cluster-config-file",
    "nodes.conf",
    "--cluster-node-timeout",
    "2000",
];

/// For the failover cluster: a master that stops answering is marked failed after 1 s, not the
/// default 15 s, so its replica is promoted within a test's patience.
const FAILOVER_NODE_TIMEOUT: &str = "1000";

impl RedisCluster {
    pub fn start(masters: usize) -> RedisCluster {
        let nodes = (0..masters)
            .map(|_| RedisServer::start_with(&CLUSTER_ARGS))
            .collect();
        Self::join(nodes, None, 0)
    }

    /// `masters` masters with one replica each (`--cluster-replicas 1`, so `2 * masters`
    /// processes), a 1 s `cluster-node-timeout` and `extra` server arguments, returned once every
    /// replica is in sync.
    pub fn start_replicated(masters: usize, extra: &[&str]) -> RedisCluster {
        let mut args = CLUSTER_ARGS.to_vec();
        args[5] = FAILOVER_NODE_TIMEOUT;
        args.extend(extra);
        let nodes = (0..2 * masters)
            .map(|_| RedisServer::start_with(&args))
            .collect();
        let cluster = Self::join(nodes, None, 1);
        let synced = wait_until(Duration::from_secs(20), || {
            cluster.replicas().iter().all(|&r| {
                cluster.nodes[r]
                    .cli(&["info", "replication"])
                    .contains("master_link_status:up")
            })
        });
        assert!(synced, "replicas did not sync with their masters");
        cluster
    }

    /// The same over TLS only: clients, the cluster bus (`--tls-cluster yes`) and the addresses
    /// `CLUSTER SLOTS` announces are all TLS, with the certificates in `files`.
    pub fn start_tls(masters: usize, files: &RedisTlsFiles) -> RedisCluster {
        let mut extra = CLUSTER_ARGS.to_vec();
        extra.extend(["--tls-cluster", "yes"]);
        let nodes = (0..masters)
            .map(|_| RedisServer::start_tls(files, false, &extra))
            .collect();
        Self::join(nodes, Some(files.clone()), 0)
    }

    fn join(nodes: Vec<RedisServer>, tls: Option<RedisTlsFiles>, replicas: u8) -> RedisCluster {
        let out = Command::new("redis-cli")
            .args(tls.iter().flat_map(RedisTlsFiles::cli_args))
            .arg("--cluster")
            .arg("create")
            .args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)))
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = RedisCluster { nodes, tls };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let known = format!("cluster_known_nodes:{}", cluster.nodes.len());
            let ready = cluster.nodes.iter().all(|n| {
                let info = n.cli(&["cluster", "info"]);
                info.contains("cluster_state:ok")
                    && info.contains("cluster_slots_ok:16384")
                    && info.contains(&known)
            });
            if ready {
                return cluster;
            }
            assert!(
                Instant::now() < deadline,
                "cluster did not reach cluster_state:ok"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Seed URLs for `redis.cluster`.
    pub fn urls(&self) -> Vec<String> {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        self.nodes
            .iter()
            .map(|n| format!("{scheme}://127.0.0.1:{}", n.port))
            .collect()
    }

    /// The seed URLs as a YAML flow list, for `ProxyBuilder::set("redis.cluster", ..)`.
    pub fn yaml_list(&self) -> String {
        let quoted: Vec<String> = self.urls().iter().map(|u| format!("\"{u}\"")).collect();
        format!("[{}]", quoted.join(", "))
    }

    /// Every key matching `pattern`, on every node.
    pub fn scan(&self, pattern: &str) -> Vec<String> {
        self.nodes
            .iter()
            .flat_map(|n| {
                n.cli(&["--scan", "--pattern", pattern])
                    .lines()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Runs a command against whichever node answers it, following redirects.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(self.tls.iter().flat_map(RedisTlsFiles::cli_args))
            .args(["-c", "-p", &self.nodes[0].port.to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Redis behind Sentinel: a primary, one replica (`--replicaof`) and three `redis-server
/// --sentinel` processes (quorum 2, `down-after-milliseconds 1000`, `failover-timeout 5000`), all
/// on free ports, stopped by PID on drop. [`RedisSentinels::start`] returns once the sentinels see
/// each other and the replica, so a failover can be authorised.
pub struct RedisSentinels {
    pub primary: RedisServer,
    pub replica: RedisServer,
    pub sentinels: Vec<SentinelProcess>,
}

/// The name the sentinels monitor the primary under.
pub const SENTINEL_MASTER: &str = "sp-primary";

impl RedisSentinels {
    pub fn start() -> RedisSentinels {
        let primary = RedisServer::start();
        let port = primary.port.to_string();
        let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &port]);
        let linked = wait_until(Duration::from_secs(10), || {
            replica
                .cli(&["info", "replication"])
                .contains("master_link_status:up")
        });
        assert!(linked, "the replica did not sync with the primary");
        let sentinels = (0..3)
            .map(|_| SentinelProcess::start(primary.port))
            .collect();
        let set = RedisSentinels {
            primary,
            replica,
            sentinels,
        };
        // Sentinels find each other and the replica through the primary (hello messages every
        // 2 s); a failover needs a majority of them to know each other.
        let ready = wait_until(Duration::from_secs(20), || {
            set.sentinels.iter().all(|s| {
                let master = s.cli(&["sentinel", "master", SENTINEL_MASTER]);
                s.cli(&["sentinel", "ckquorum", SENTINEL_MASTER])
                    .starts_with("OK 3 ")
                    && field(&master, "num-slaves") == Some("1")
            })
        });
        assert!(
            ready,
            "the sentinels did not find each other and the replica"
        );
        set
    }

    /// `redis.sentinel.nodes` as a YAML flow list.
    pub fn yaml_nodes(&self) -> String {
        let nodes: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("\"127.0.0.1:{}\"", s.port))
            .collect();
        format!("[{}]", nodes.join(", "))
    }

    /// The primary's port as the first sentinel that answers names it (`None`: none answers).
    pub fn primary_port(&self) -> Option<u16> {
        self.sentinels.iter().find_map(|s| {
            let out = s.cli(&["sentinel", "get-master-addr-by-name", SENTINEL_MASTER]);
            out.lines().nth(1)?.trim().parse().ok()
        })
    }
}

/// The value of `name` in a `redis-cli` answer that lists a map as alternating lines.
fn field<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    let lines: Vec<&str> = answer.lines().map(str::trim).collect();
    let at = lines.iter().position(|l| *l == name)?;
    lines.get(at + 1).copied()
}

/// One `redis-server --sentinel`, its config file in a tempdir (Sentinel rewrites it).
pub struct SentinelProcess {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl SentinelProcess {
    fn start(primary: u16) -> SentinelProcess {
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let port = free_port();
            let conf = dir.path().join("sentinel.conf");
            let log = dir.path().join("sentinel.log");
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {dir}\nlogfile {log}\n\
                     sentinel resolve-hostnames no\n\
                     sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {primary} 2\n\
                     sentinel down-after-milliseconds {SENTINEL_MASTER} 1000\n\
                     sentinel failover-timeout {SENTINEL_MASTER} 5000\n",
                    dir = dir.path().display(),
                    log = log.display(),
                ),
            )
            .unwrap();
            let mut child = Command::new("redis-server")
                .arg(&conf)
                .arg("--sentinel")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server is installed (apt-get install redis-server)");
            let up = wait_until(Duration::from_secs(5), || {
                matches!(child.try_wait(), Ok(None))
                    && std::fs::read_to_string(&log)
                        .unwrap_or_default()
                        .contains("+monitor master")
            });
            if up {
                return SentinelProcess {
                    port,
                    child,
                    _dir: dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("could not start redis-server --sentinel");
    }

    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for SentinelProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
