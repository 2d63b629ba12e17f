//! Failover helpers for a [`RedisCluster`] with replicas: which node serves what, killing a
//! master, waiting for its replica's promotion. `redis.rs` starts and joins the processes; this
//! reads and changes a running cluster's topology.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{wait_until, RedisCluster};

/// One line of `CLUSTER NODES`, as far as the failover test needs it.
struct NodeLine {
    id: String,
    port: u16,
    master: bool,
    failed: bool,
    /// The master's ID, for a replica.
    of: String,
    slots: Vec<(u16, u16)>,
}

impl NodeLine {
    /// `<id> <ip:port@bus> <flags> <master|-> <ping> <pong> <epoch> <link> <slot ranges...>`
    fn parse(line: &str) -> Option<NodeLine> {
        let f: Vec<&str> = line.split_whitespace().collect();
        let port = f
            .get(1)?
            .split('@')
            .next()?
            .rsplit(':')
            .next()?
            .parse()
            .ok()?;
        let flags = f.get(2)?;
        let slots = f
            .iter()
            .skip(8)
            .filter(|r| !r.starts_with('['))
            .filter_map(|r| {
                let (a, b) = r.split_once('-').unwrap_or((r, r));
                Some((a.parse().ok()?, b.parse().ok()?))
            })
            .collect();
        Some(NodeLine {
            id: f[0].to_owned(),
            port,
            master: flags.contains("master"),
            failed: flags.contains("fail") && !flags.contains("fail?"),
            of: f.get(3)?.to_string(),
            slots,
        })
    }
}

/// Failover helpers: which node serves what, killing one, and waiting for the promotion.
impl RedisCluster {
    /// `CLUSTER NODES` as seen by node `at`.
    fn topology(&self, at: usize) -> Vec<NodeLine> {
        self.nodes[at]
            .cli(&["cluster", "nodes"])
            .lines()
            .filter_map(NodeLine::parse)
            .collect()
    }

    fn index_of(&self, port: u16) -> usize {
        self.nodes.iter().position(|n| n.port == port).unwrap()
    }

    /// Every node that is a replica now (as node 0 sees it).
    pub fn replicas(&self) -> Vec<usize> {
        let lines = self.topology(0);
        lines
            .iter()
            .filter(|l| !l.master)
            .map(|l| self.index_of(l.port))
            .collect()
    }

    /// The node serving `key`'s hash slot, asked of node `at`.
    pub fn master_of(&self, key: &str, at: usize) -> usize {
        let slot: u16 = self.nodes[at]
            .cli(&["cluster", "keyslot", key])
            .trim()
            .parse()
            .unwrap();
        let lines = self.topology(at);
        let owner = lines
            .iter()
            .find(|l| l.master && l.slots.iter().any(|&(a, b)| (a..=b).contains(&slot)))
            .unwrap();
        self.index_of(owner.port)
    }

    /// The replica of master `master`.
    pub fn replica_of(&self, master: usize) -> usize {
        let lines = self.topology(master);
        let id = &lines
            .iter()
            .find(|l| l.port == self.nodes[master].port)
            .unwrap()
            .id;
        let replica = lines.iter().find(|l| !l.master && &l.of == id).unwrap();
        self.index_of(replica.port)
    }

    /// Blocks until every replica has acknowledged every write its master took so far (a write
    /// then `WAIT 1` on each master's own connection), so nothing written before is lost when a
    /// master dies. Node indexes in `masters`.
    pub fn wait_replicated(&self, masters: &[usize]) {
        for &m in masters {
            let node = &self.nodes[m];
            // WAIT counts only this connection's writes, so it first writes a key this master owns.
            let key = (0..1000)
                .map(|i| format!("failover-probe:{{{i}}}"))
                .find(|k| self.master_of(k, m) == m)
                .unwrap();
            let mut child = Command::new("redis-cli")
                .args(["-p", &node.port.to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let script = format!("INCR {key}\nWAIT 1 5000\n");
            std::io::Write::write_all(child.stdin.as_mut().unwrap(), script.as_bytes()).unwrap();
            drop(child.stdin.take());
            let out = child.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert_eq!(text.lines().nth(1), Some("1"), "WAIT on node {m}: {text}");
        }
    }

    /// SIGKILLs node `i` (by PID) and waits for it to go.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].stop();
    }

    /// Polls node `at` until node `replica` is a master, the dead node is flagged `fail` and the
    /// cluster is `ok` again; returns when it saw that, or None after `within`.
    pub fn wait_promoted(&self, replica: usize, at: usize, within: Duration) -> Option<Instant> {
        let port = self.nodes[replica].port;
        let promoted = wait_until(within, || {
            let lines = self.topology(at);
            let info = self.nodes[at].cli(&["cluster", "info"]);
            info.contains("cluster_state:ok")
                && lines.iter().any(|l| l.port == port && l.master)
                && lines.iter().any(|l| l.failed)
        });
        promoted.then(Instant::now)
    }
}
