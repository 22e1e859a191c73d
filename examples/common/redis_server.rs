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
        let child = Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--appendonly", "no"])
            .arg("--unixsocket")
            .arg(self.socket())
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("redis-server is needed (Debian package redis-server): {e}"),
                )
            })?;
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
