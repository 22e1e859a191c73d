//! A [`ProcessPool`](super::ProcessPool) whose workers run on other
//! machines, reached through Redis (cargo feature `redis`).
//!
//! The program that submits builds its pool with
//! [`Builder::redis`](super::Builder::redis); everything else — `submit`,
//! `submit_with`, `map`, `cancel`, `shutdown`, the futures and their errors
//! — is the local pool's. A worker machine runs **the same executable** as
//! a worker agent, taken over before `main` when its environment says so:
//!
//! ```sh
//! MULTIPROC_WORKER=redis://host:6379/ MULTIPROC_POOL=name \
//! MULTIPROC_AUTHKEY=secret MULTIPROC_SLOTS=8 ./app
//! ```
//!
//! or by calling [`serve`] from the program. An agent owns a local
//! `ProcessPool` of its slots, so a task that aborts, hangs past its
//! timeout or is cancelled while running is handled there as it is locally.
//!
//! # How tasks travel
//!
//! - A task is pushed, signed, to the pool's list. A worker takes tasks
//!   only for free slots, each moving atomically from the pool's list to
//!   the worker's own processing list (the reliable-queue pattern), and only
//!   while it holds its lease. An answer leaves the processing list and
//!   reaches the pool's answer list in one atomic step — the same script
//!   call that takes the next tasks, so a busy worker makes one round trip
//!   per task it ends. A worker started with
//!   [`ServeOptions::prefetch`] also takes that many tasks ahead, which
//!   start the moment a slot frees: many short tasks run several times
//!   faster, but a lost worker's tasks taken ahead count as started.
//! - A worker keeps a lease (a key with a time to live) by renewing it.
//!   When a lease lapses the pool *fences* the worker — it is no member any
//!   more, so it can neither renew nor answer — and takes its processing
//!   list: every task there had started, so it fails with
//!   [`TaskError::WorkerLost`](crate::futures::TaskError::WorkerLost), or
//!   runs again if it asked for
//!   [`retries`](super::TaskOptions::retries). Redelivery follows the lease,
//!   never a task's age: a long task is never run twice because it is long.
//!   A fenced worker that wakes up stops its children and registers afresh.
//! - Each future completes once: an answer is taken only for the current
//!   attempt of a task still outstanding.
//! - Cancelling a task still in the pool's list removes it; cancelling one
//!   that runs kills its process on the worker's machine.
//! - Redis going away: the pool keeps every outstanding task, reconnects,
//!   notices a Redis that lost its data and sends everything again; only
//!   after [`Builder::redis_deadline`](super::Builder::redis_deadline)
//!   without Redis does every task fail with `Broken`, saying why. A worker
//!   that loses Redis or its lease stops its children and registers again.
//!
//! # Trust
//!
//! A task names its function by its place in the executable, so it may only
//! run in the same build: workers compare the SHA-256 of their executable
//! with the pool's (a worker of another build refuses the pool and says
//! so: [`ProcessPool::remote_status`](super::ProcessPool::remote_status)).
//! Every message carries an HMAC-SHA256 under the pool's auth key, checked
//! (with the size cap) before anything in it is read: a message with a
//! wrong key, forged or too large is dropped and counted, never executed.
//! The Redis password or ACL user goes in the URL
//! (`redis://user:password@host/`).
//!
//! # Redis Cluster
//!
//! The same URL works for a standalone server and for a node of a Redis
//! Cluster (7.0+): the first connection asks, and a cluster is then reached
//! through the cluster client, following the slot of the pool wherever it
//! moves; several seed nodes may be given, separated by commas
//! (`redis://a:7000,redis://b:7001`). Every key of a pool shares one hash
//! tag, so a pool lives on one slot: pools spread over a cluster's nodes
//! by their names.

mod agent;
mod client;
mod connection;
mod envelope;
mod keys;

pub(crate) use agent::keep_agent;
pub use agent::{ServeOptions, serve};
pub(crate) use client::{Remote, start};

use std::time::Duration;

/// The settings of a Redis-backed pool (from the builder).
#[derive(Clone, Debug)]
pub(crate) struct RedisConfig {
    pub(crate) url: String,
    pub(crate) pool: String,
    pub(crate) key: Vec<u8>,
    pub(crate) max_message: usize,
    pub(crate) redis_deadline: Duration,
    /// How often the pool looks at leases, a restarted Redis, refusals.
    pub(crate) watch_every: Duration,
}

/// What the pool knows of its remote workers
/// ([`ProcessPool::remote_status`](super::ProcessPool::remote_status)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemoteStatus {
    /// Worker agents registered now.
    pub workers: usize,
    /// Their slots, together.
    pub slots: usize,
    /// Messages dropped: a wrong signature (another key, or forged), over
    /// the size cap, malformed, or not meant for this pool.
    pub dropped: u64,
    /// Workers that refused the pool, and why (another build, …).
    pub refusals: Vec<String>,
}

/// The default cap on one message through Redis.
pub const DEFAULT_MAX_MESSAGE: usize = 512 << 20;
