//! Where the pool's Redis is — one server, or a Redis Cluster — and
//! connections to it with timeouts.
//!
//! The same URL serves both: the first connection asks the server
//! (`INFO cluster`) whether it is a cluster node, and from then on
//! connections go through the cluster client, seeded with the URL (or the
//! comma-separated URLs given). Every key of a pool carries one hash tag,
//! so every command, pipeline and script of a pool goes to the one node
//! that owns that slot, whichever it is after a failover.

use std::sync::OnceLock;
use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterConnection};
use redis::{Cmd, ConnectionLike, RedisResult, Value};

/// How long a connection may take to open, and a write to go out.
const OPEN: Duration = Duration::from_secs(5);
const WRITE: Duration = Duration::from_secs(10);

/// The Redis of a pool: its URL(s), and what kind of server answers there
/// (found out on the first connection).
#[derive(Clone, Debug)]
pub(crate) struct Target {
    urls: Vec<String>,
    cluster: OnceLock<bool>,
}

impl Target {
    /// `url` is one URL, or several separated by commas (seeds of a
    /// cluster). Checks their syntax only: nothing is reached yet.
    pub(crate) fn new(url: &str) -> RedisResult<Target> {
        let urls: Vec<String> = url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(String::from)
            .collect();
        if urls.is_empty() {
            return Err(redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "no Redis URL",
            )));
        }
        for u in &urls {
            redis::Client::open(u.as_str())?;
        }
        Ok(Target {
            cluster: if urls.len() > 1 {
                OnceLock::from(true)
            } else {
                OnceLock::new()
            },
            urls,
        })
    }

    /// A connection whose reads give up after `read` (the `redis` crate's
    /// sync connections have no timeout by default: a silent server would
    /// hang us).
    pub(crate) fn connect(&self, read: Duration) -> RedisResult<Con> {
        let cluster = match self.cluster.get() {
            Some(c) => *c,
            None => {
                let mut one = self.single(read)?;
                let info: String = redis::cmd("INFO").arg("cluster").query(&mut one)?;
                let cluster = info.lines().any(|l| l.trim() == "cluster_enabled:1");
                let _ = self.cluster.set(cluster);
                if !cluster {
                    return Ok(Con::One(one));
                }
                true
            }
        };
        if !cluster {
            return self.single(read).map(Con::One);
        }
        let con = ClusterClient::builder(self.urls.clone())
            .connection_timeout(OPEN)
            .response_timeout(read)
            .build()?
            .get_connection()?;
        con.set_read_timeout(Some(read))?;
        con.set_write_timeout(Some(WRITE))?;
        Ok(Con::Cluster(Box::new(con)))
    }

    fn single(&self, read: Duration) -> RedisResult<redis::Connection> {
        let con = redis::Client::open(self.urls[0].as_str())?.get_connection_with_timeout(OPEN)?;
        con.set_read_timeout(Some(read))?;
        con.set_write_timeout(Some(WRITE))?;
        Ok(con)
    }
}

/// A connection to one server or to a cluster: commands, pipelines and
/// scripts run on either.
pub(crate) enum Con {
    One(redis::Connection),
    Cluster(Box<ClusterConnection>),
}

impl Con {
    fn inner(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Con::One(c) => c,
            Con::Cluster(c) => c.as_mut(),
        }
    }
}

impl ConnectionLike for Con {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        self.inner().req_packed_command(cmd)
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        self.inner().req_packed_commands(cmd, offset, count)
    }

    fn req_command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        self.inner().req_command(cmd)
    }

    fn get_db(&self) -> i64 {
        match self {
            Con::One(c) => c.get_db(),
            Con::Cluster(c) => c.get_db(),
        }
    }

    /// Yes for a cluster too: the cluster connection sends a pipeline (and
    /// a MULTI/EXEC block) to the node of its first command's key, and every
    /// key of a pool lives in one slot. (The `redis` crate says no for a
    /// cluster in general, where a pipeline may span nodes.)
    fn supports_pipelining(&self) -> bool {
        true
    }

    fn check_connection(&mut self) -> bool {
        self.inner().check_connection()
    }

    fn is_open(&self) -> bool {
        match self {
            Con::One(c) => c.is_open(),
            Con::Cluster(c) => c.is_open(),
        }
    }
}
