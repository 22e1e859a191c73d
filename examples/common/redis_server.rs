//! A `redis-server` of our own on a Unix socket in a fresh directory, for
//! the cluster example, the benchmark and the tests (which include this
//! file): nothing persists, and it goes with its handle.
#![allow(dead_code)]

use std::io;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    child: Option<Child>,
    pub dir: PathBuf,
}

impl RedisServer {
    /// Starts one; `tag` names its directory.
    pub fn start(tag: &str) -> io::Result<RedisServer> {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "multiproc-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        let mut r = RedisServer { child: None, dir };
        r.restart()?;
        Ok(r)
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("redis.sock")
    }

    pub fn url(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// Starts the server (again) on the same socket; waits (10 s at most)
    /// until it listens.
    pub fn restart(&mut self) -> io::Result<()> {
        let _ = std::fs::remove_file(self.socket());
        let child = redis_server(
            Command::new("redis-server")
                .args(["--port", "0", "--save", "", "--appendonly", "no"])
                .arg("--unixsocket")
                .arg(self.socket())
                .arg("--dir")
                .arg(&self.dir),
        )?;
        self.child = Some(child);
        let t = Instant::now();
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
            if t.elapsed() > Duration::from_secs(10) {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "redis-server did not start",
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    /// Kills the server (SIGKILL): everything in it is lost.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster of our own: three masters on loopback TCP ports (a
/// cluster's nodes find each other over TCP), made into one cluster by
/// `redis-cli --cluster create`; it goes with its handle.
pub struct RedisCluster {
    nodes: Vec<(Child, u16)>,
    pub dir: PathBuf,
}

impl RedisCluster {
    /// Starts one; waits (30 s at most) until every slot is served.
    pub fn start(tag: &str) -> io::Result<RedisCluster> {
        let dir =
            std::env::temp_dir().join(format!("multiproc-{tag}-cluster-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let mut c = RedisCluster {
            nodes: Vec::new(),
            dir,
        };
        for i in 0..3 {
            let port = free_port()?;
            let node_dir = c.dir.join(format!("node{i}"));
            std::fs::create_dir_all(&node_dir)?;
            let child = redis_server(
                Command::new("redis-server")
                    .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                    .args([
                        "--cluster-enabled",
                        "yes",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                    ])
                    .arg("--cluster-config-file")
                    .arg(node_dir.join("nodes.conf"))
                    .arg("--dir")
                    .arg(&node_dir),
            )?;
            c.nodes.push((child, port));
        }
        let t = Instant::now();
        for (_, port) in &c.nodes {
            while std::net::TcpStream::connect(("127.0.0.1", *port)).is_err() {
                if t.elapsed() > Duration::from_secs(10) {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "a cluster node did not start",
                    ));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let status = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(c.nodes.iter().map(|(_, p)| format!("127.0.0.1:{p}")))
            .args(["--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if !status.success() {
            return Err(io::Error::other(format!(
                "redis-cli --cluster create: {status}"
            )));
        }
        while !c
            .nodes
            .iter()
            .all(|(_, p)| c.info(*p).contains("cluster_state:ok"))
        {
            if t.elapsed() > Duration::from_secs(30) {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the cluster did not form",
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(c)
    }

    fn info(&self, port: u16) -> String {
        Command::new("redis-cli")
            .args(["-p", &port.to_string(), "cluster", "info"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// The URL of each node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|(_, p)| format!("redis://127.0.0.1:{p}/"))
            .collect()
    }
}

/// Starts `redis-server` as `cmd` says, saying where to get it if missing.
fn redis_server(cmd: &mut Command) -> io::Result<Child> {
    cmd.stdout(Stdio::null()).spawn().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("redis-server is needed (Debian package redis-server): {e}"),
        )
    })
}

/// A loopback port nobody listens on now, whose cluster-bus port (+10000)
/// is free too.
fn free_port() -> io::Result<u16> {
    for _ in 0..100 {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = l.local_addr()?.port();
        if port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return Ok(port);
        }
    }
    Err(io::Error::other("no free port pair"))
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for (c, _) in &mut self.nodes {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
