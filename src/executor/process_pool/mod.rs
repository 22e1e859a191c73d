//! `ProcessPool`: tasks in worker processes, each with its own `Future`;
//! a worker that dies fails only the task it was running.

mod bell_ring;
mod claims;
mod dispatch;
mod manager;
mod map;
#[cfg(feature = "progress")]
mod progress;
mod protocol;
#[cfg(feature = "redis")]
pub mod redis;
mod state;
mod task;
mod worker;

pub use map::{ProcessMap, ProcessMapUnordered};
#[cfg(feature = "progress")]
pub use progress::WithProgress;

use std::fmt;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use manager::{Config, Init};
use state::{Counts, Pending, Shared, Sink, State};

use crate::blocking::lock;
use crate::codec::CodecError;
use crate::futures::state::{Promise, Stopper};
use crate::futures::{Future, TaskError};
use crate::ipc::Pipe;
use crate::process::{RemoteFn, StartMethod};

use super::contract::{Executor, MapOptions};

/// What a [`ProcessPool`] has done so far ([`ProcessPool::stats`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// The pids of the worker processes now (empty for a Redis-backed
    /// pool).
    pub workers: Vec<u32>,
    /// Tasks waiting for a worker.
    pub queued: usize,
    /// Tasks handed on and not done: running, or next in a worker's batch
    /// (on a Redis-backed pool: pushed to Redis).
    pub running: usize,
    /// Tasks that returned a value.
    pub succeeded: u64,
    /// Tasks that failed: a panic, a dead worker, a deadline, a broken
    /// pool, a shutdown.
    pub failed: u64,
    /// Tasks cancelled.
    pub cancelled: u64,
    /// Worker processes started since the pool began: beyond
    /// `max_workers`, replacements (of workers that died, were killed, or
    /// were recycled) and the spare. Once a worker has ended, the pool keeps
    /// one worker started ahead, idle, which takes the place of the next
    /// one to end at once (no wait for a process to start), and starts the
    /// next spare after the jobs went out; a pool whose workers never end
    /// starts no spare.
    pub workers_started: u64,
}

/// Options of one task ([`ProcessPool::submit_with`]).
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct TaskOptions {
    /// Kill the task's worker when the task runs longer than this; the
    /// future fails with [`TaskError::DeadlineExceeded`].
    pub timeout: Option<Duration>,
    /// How many times a task whose worker died under it runs again (on a
    /// fresh worker, first in line) before it fails: with
    /// [`TaskError::WorkerDied`] when a local worker died (a signal, an
    /// abort, an exit), with [`TaskError::WorkerLost`] when a worker
    /// machine of a Redis-backed pool was lost. As Ray's and Dask's
    /// retries. Default 0: a task that had started is never run twice
    /// unless it asks. A task killed at its deadline or cancelled is not
    /// retried.
    pub retries: u32,
}

impl TaskOptions {
    /// Options with a timeout.
    pub fn timeout(timeout: Duration) -> TaskOptions {
        TaskOptions {
            timeout: Some(timeout),
            ..TaskOptions::default()
        }
    }

    /// These options with `n` retries after the death of the task's worker
    /// (see [`retries`](Self::retries)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use multiproc::executor::{ProcessPool, TaskOptions};
    /// use multiproc::futures::TaskError;
    ///
    /// let pool = ProcessPool::new(1);
    /// let dies = |()| -> u8 { std::process::abort() };
    /// let f = pool.submit_with(dies, (), TaskOptions::default().retries(2));
    /// let after_3_runs = f.result_timeout(Duration::from_secs(60));
    /// assert!(matches!(after_3_runs, Err(TaskError::WorkerDied { .. })));
    /// ```
    pub fn retries(mut self, n: u32) -> TaskOptions {
        self.retries = n;
        self
    }
}

/// Configures a [`ProcessPool`].
#[derive(Debug, Clone)]
pub struct Builder {
    workers: usize,
    method: StartMethod,
    name: String,
    max_tasks_per_child: Option<usize>,
    max_memory: Option<u64>,
    timeout: Option<Duration>,
    init: Option<Result<Init, String>>,
    #[cfg(feature = "redis")]
    redis: Option<(String, String)>,
    #[cfg(feature = "redis")]
    auth_key: crate::ipc::AuthKey,
    #[cfg(feature = "redis")]
    redis_deadline: Duration,
    #[cfg(feature = "redis")]
    max_message: usize,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// The defaults: one worker per CPU, workers started by the fork
    /// server ([`start_method`](Self::start_method)), no recycling, no
    /// timeout.
    pub fn new() -> Builder {
        Builder {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            method: StartMethod::ForkServer,
            name: "ProcessPoolWorker".into(),
            max_tasks_per_child: None,
            max_memory: None,
            timeout: None,
            init: None,
            #[cfg(feature = "redis")]
            redis: None,
            #[cfg(feature = "redis")]
            auth_key: crate::ipc::AuthKey::NONE,
            #[cfg(feature = "redis")]
            redis_deadline: Duration::from_secs(30),
            #[cfg(feature = "redis")]
            max_message: redis::DEFAULT_MAX_MESSAGE,
        }
    }

    /// Runs the tasks on worker agents that serve the pool `pool` through
    /// the Redis at `url` (`redis://[user:password@]host[:port]/`,
    /// `unix:///path/to/redis.sock`), instead of on local worker processes;
    /// see [`redis`](self::redis) for how tasks travel and how to start
    /// workers. Needs [`auth_key`](Self::auth_key). `max_workers` is then
    /// how far maps look ahead until the workers have announced their
    /// slots; the initializer, `max_tasks_per_child` and `max_memory` are
    /// the agents' business (they run local pools).
    ///
    /// Cargo feature `redis`.
    #[cfg(feature = "redis")]
    pub fn redis(mut self, url: impl Into<String>, pool: impl Into<String>) -> Builder {
        redis::keep_agent();
        self.redis = Some((url.into(), pool.into()));
        self
    }

    /// The key that signs every message of a Redis-backed pool (required
    /// there): workers must be started with the same key.
    #[cfg(feature = "redis")]
    pub fn auth_key(mut self, key: impl Into<crate::ipc::AuthKey>) -> Builder {
        self.auth_key = key.into();
        self
    }

    /// How long a Redis-backed pool keeps its tasks while Redis cannot be
    /// reached before it fails them all with [`TaskError::Broken`]
    /// (default 30 s).
    #[cfg(feature = "redis")]
    pub fn redis_deadline(mut self, deadline: Duration) -> Builder {
        self.redis_deadline = deadline;
        self
    }

    /// The largest message a Redis-backed pool sends or accepts (default
    /// 512 MiB); larger ones are refused (a task) or dropped (an answer).
    #[cfg(feature = "redis")]
    pub fn max_message(mut self, bytes: usize) -> Builder {
        self.max_message = bytes;
        self
    }

    /// The number of worker processes (at least 1; default: one per CPU).
    /// The same name as the thread pool's (and Python's `max_workers`);
    /// a process pool keeps exactly this many running.
    pub fn max_workers(mut self, n: usize) -> Builder {
        self.workers = n.max(1);
        self
    }

    /// How workers are started; default [`StartMethod::ForkServer`], as in
    /// CPython 3.14: a worker — the first ones and each that replaces one
    /// that died or was recycled — is forked from the clean server process
    /// in a fraction of a millisecond, where a re-executed (`Spawn`) one
    /// takes about a millisecond of a core (measured: `pool_crash_recovery`
    /// 10–12 ms with `Spawn`, 5–6 ms with `ForkServer`). It still starts
    /// with the environment, working directory and standard streams the
    /// pool's process has at that moment, as a `Spawn` worker would; other
    /// attributes (resource limits, umask, user) are those of when the fork
    /// server started — choose `Spawn` for a program that changes them.
    pub fn start_method(mut self, method: StartMethod) -> Builder {
        self.method = method;
        self
    }

    /// A worker is replaced by a fresh one after this many tasks (at least 1).
    pub fn max_tasks_per_child(mut self, n: usize) -> Builder {
        self.max_tasks_per_child = Some(n.max(1));
        self
    }

    /// A worker whose resident memory (RSS) exceeds `bytes` after a task
    /// ends and is replaced by a fresh one, like loky's and Celery's memory
    /// limits: a task that leaks or fragments memory does not grow a worker
    /// forever. The worker checks itself after each task; a task is never
    /// interrupted for it (the OOM killer still may, and then only that task
    /// fails).
    pub fn max_memory(mut self, bytes: u64) -> Builder {
        self.max_memory = Some(bytes);
        self
    }

    /// Runs `f(arg)` once in every worker before its first task (say, to
    /// open a database or load a model). A worker whose initializer panics
    /// is not used; when three starts in a row fail, the pool is broken and
    /// every task fails with [`TaskError::Broken`] saying why.
    pub fn initializer<F, A>(mut self, _f: F, arg: A) -> Builder
    where
        F: RemoteFn<A, ()>,
        A: Serialize + DeserializeOwned,
    {
        self.init = Some(
            protocol::encode_arg(&arg)
                .map(|(bytes, fds)| Init {
                    entry: task::entry_for::<F, A, ()>().to_wire(),
                    arg: bytes,
                    fds: Arc::new(fds),
                })
                .map_err(|e| e.to_string()),
        );
        self
    }

    /// The timeout of every task that does not set its own.
    pub fn timeout(mut self, timeout: Duration) -> Builder {
        self.timeout = Some(timeout);
        self
    }

    /// Starts the pool (its workers start in the background).
    pub fn build(self) -> io::Result<ProcessPool> {
        let init = match self.init {
            None => None,
            Some(Ok(init)) => Some(init),
            Some(Err(why)) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("cannot send the initializer's argument: {why}"),
                ));
            }
        };
        let (wake, wake_rx) = Pipe::duplex()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new()),
            counts: Arc::default(),
            wake,
            ended: Condvar::new(),
        });
        let workers = self.workers;
        let cfg = Config {
            workers: self.workers,
            method: self.method,
            name: self.name,
            max_tasks_per_child: self.max_tasks_per_child,
            max_memory: self.max_memory,
            init,
        };
        #[cfg(feature = "redis")]
        if let Some((url, pool)) = self.redis {
            let key = self
                .auth_key
                .required("a Redis-backed pool needs an auth key (Builder::auth_key)")?
                .to_vec();
            let rc = redis::RedisConfig {
                url,
                pool,
                key,
                max_message: self.max_message,
                redis_deadline: self.redis_deadline,
                watch_every: Duration::from_millis(100),
            };
            let (remote, sender) = redis::start(shared.clone(), wake_rx, rc)?;
            return Ok(ProcessPool {
                shared,
                workers,
                manager: Mutex::new(Some(sender)),
                timeout: self.timeout,
                backend: Backend::Redis(remote),
            });
        }
        let manager = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("multiproc-pool".into())
                .spawn(move || manager::run(shared, wake_rx, cfg))?
        };
        Ok(ProcessPool {
            shared,
            workers,
            manager: Mutex::new(Some(manager)),
            timeout: self.timeout,
            backend: Backend::Local,
        })
    }
}

/// A pool of worker processes; Python's `ProcessPoolExecutor`, without its
/// traps.
///
/// `submit` takes a fn item or a closure that captures nothing (Python's
/// pools refuse lambdas) and a serde argument, and returns the same
/// [`Future`] as the thread pool: `result`, `result_timeout`, `cancel`,
/// `wait`, `as_completed` and `.await` work unchanged.
///
/// ```
/// use std::time::Duration;
/// use multiproc::executor::{ProcessPool, TaskOptions};
/// use multiproc::futures::TaskError;
///
/// let pool = ProcessPool::new(2);
/// let square = pool.submit(|x: u64| x * x, 12);
/// let crash = pool.submit(|()| -> u64 { std::process::abort() }, ());
/// let stuck = pool.submit_with(|()| -> u64 { loop { std::thread::sleep(Duration::from_secs(1)) } }, (),
///                              TaskOptions::timeout(Duration::from_millis(200)));
/// assert_eq!(square.result(), Ok(144));
/// assert!(matches!(crash.result(), Err(TaskError::WorkerDied { .. })));
/// assert!(matches!(stuck.result(), Err(TaskError::DeadlineExceeded(_))));
/// assert_eq!(pool.submit(|x: u64| x + 1, 1).result(), Ok(2)); // the pool lives on
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A closure that captures something cannot run in another process; it is
/// a compile error that says to pass the data as the argument:
///
/// ```compile_fail
/// let pool = multiproc::executor::ProcessPool::new(1);
/// let factor = 3;
/// pool.submit(move |x: u32| x * factor, 2);
/// ```
///
/// # Failures
///
/// - A panic fails that task ([`TaskError::Panicked`]); the worker lives.
/// - A worker that dies (a signal, `abort`, `exit`, the OOM killer) fails
///   only the task it was running ([`TaskError::WorkerDied`] with the exit
///   status); the other tasks run on, a new worker takes its place.
/// - A task past its timeout has its worker killed and replaced
///   ([`TaskError::DeadlineExceeded`]).
/// - [`Future::cancel`] of a task that is running kills its worker (a
///   new one takes its place); of one that waits, takes it back.
/// - The pool breaks ([`TaskError::Broken`]) only when workers cannot be
///   started at all.
///
/// # How tasks travel
///
/// A manager thread hands each worker a batch of up to 16 tasks in one
/// message and refills it at half, so a busy worker never waits for its
/// next task; every task is claimed on a board in shared memory before it
/// runs, so the pool always knows which one a dead worker was running, can
/// take back the ones it never started (and give them to a worker that ran
/// dry), and cancel exactly one. A task with a timeout goes to an idle
/// worker alone (its clock starts when it is sent), and so does a task
/// whose argument is over 16 KiB (it must not fill a busy worker's pipe):
/// a pool with a default timeout hands out one task at a time.
///
/// # Seeing what it does
///
/// [`worker_pids`](Self::worker_pids) lists the workers (`ps` shows them
/// as `ProcessPoolWo-N`), [`stats`](Self::stats) counts the tasks and the
/// workers started, and the pool tells what happens to them as
/// [`tracing`](https://docs.rs/tracing) events, target `multiproc::pool`:
/// a worker started, ready, killed (`why`: a timeout, a cancel, recycling),
/// died (`pid`, `status`, whether it was `running` a task) or ended; a task
/// retried; the pool broken (`why`). A Redis-backed pool adds
/// `multiproc::redis`: a worker fenced, a refusal, Redis given up on.
///
/// # Differences from Python
///
/// Python's pool turns every pending future into `BrokenProcessPool` when
/// one worker dies, has no per-task timeout, cannot cancel a running task,
/// and refuses lambdas.
pub struct ProcessPool {
    shared: Arc<Shared>,
    workers: usize,
    manager: Mutex<Option<JoinHandle<()>>>,
    timeout: Option<Duration>,
    backend: Backend,
}

/// Who serves the pool's queue. `submit`, `map` and `shutdown` only touch
/// the [`Shared`] state and never ask: this is the seam.
enum Backend {
    /// The manager thread and its worker processes (`manager`).
    Local,
    /// Worker agents reached through Redis (`redis`).
    #[cfg(feature = "redis")]
    Redis(Arc<redis::Remote>),
}

impl fmt::Debug for ProcessPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = lock(&self.shared.state);
        f.debug_struct("ProcessPool")
            .field("queued", &st.queue.len())
            .field("shutdown", &st.shutdown)
            .finish_non_exhaustive()
    }
}

struct Typed<R> {
    /// Taken when the task is answered.
    promise: Option<Promise<R>>,
    counts: Arc<Counts>,
    /// Makes the future's value of the task's.
    decode: fn(protocol::Value) -> Result<R, CodecError>,
}

impl<R: Send + 'static> Sink for Typed<R> {
    fn start(&self, stopper: Stopper) -> bool {
        self.promise
            .as_ref()
            .is_some_and(|p| p.start_stoppable(stopper))
    }

    fn is_done(&self) -> bool {
        self.promise.as_ref().is_none_or(Promise::is_done)
    }

    fn complete(&mut self, outcome: Result<protocol::Value, TaskError>) {
        let value = outcome.and_then(|value| (self.decode)(value).map_err(protocol::undecodable));
        if let Some(promise) = self.promise.take() {
            self.counts.ended(&value);
            promise.complete(value);
        }
    }
}

impl<R> Drop for Typed<R> {
    /// Dropped unanswered: cancelled before it ran, or left over at a
    /// shutdown (the promise ends its future with `ShutDown`).
    fn drop(&mut self) {
        if let Some(promise) = self.promise.take() {
            let outcome: Result<(), TaskError> = Err(if promise.is_cancelled() {
                TaskError::Cancelled
            } else {
                TaskError::ShutDown
            });
            self.counts.ended(&outcome);
        }
    }
}

impl ProcessPool {
    /// A pool of `max_workers` processes with the defaults of [`Builder`].
    ///
    /// # Panics
    ///
    /// Like [`std::thread::spawn`], if the pool's manager thread cannot be
    /// started; use [`builder`](Self::builder)`().build()` for an
    /// `io::Result`. (The workers start in the background: a worker that
    /// cannot start is the pool's [`TaskError::Broken`], not a panic.)
    pub fn new(max_workers: usize) -> ProcessPool {
        Builder::new()
            .max_workers(max_workers)
            .build()
            .expect("cannot start a process pool")
    }

    /// The number of worker processes the pool keeps running.
    pub fn max_workers(&self) -> usize {
        self.workers
    }

    /// How many tasks run at once: the local workers, or the slots the
    /// remote workers announced (at least `max_workers`). Maps look ahead
    /// by this.
    pub(crate) fn parallelism(&self) -> usize {
        match &self.backend {
            Backend::Local => self.workers,
            #[cfg(feature = "redis")]
            Backend::Redis(r) => r.slots().max(self.workers),
        }
    }

    /// What the pool knows of its remote workers (registered agents, their
    /// slots, messages dropped, refusals); `None` for a local pool.
    ///
    /// Cargo feature `redis`.
    #[cfg(feature = "redis")]
    pub fn remote_status(&self) -> Option<redis::RemoteStatus> {
        match &self.backend {
            Backend::Local => None,
            Backend::Redis(r) => Some(r.status()),
        }
    }

    /// The pids of the pool's worker processes now (running, starting, or
    /// about to be replaced); empty for a Redis-backed pool, whose workers
    /// are other machines' (its `remote_status` counts them). Workers die
    /// with the program however it ends: they are
    /// [daemons](crate::process::Builder::daemon).
    pub fn worker_pids(&self) -> Vec<u32> {
        lock(&self.shared.state).worker_pids.clone()
    }

    /// What the pool has done so far: a snapshot, each number read on its
    /// own (the totals may be a task apart while tasks end).
    ///
    /// ```
    /// use std::time::Duration;
    /// use multiproc::executor::ProcessPool;
    /// let pool = ProcessPool::new(2);
    /// let fs: Vec<_> = (0..10u64).map(|x| pool.submit(|x: u64| x * 2, x)).collect();
    /// fs.iter().for_each(|f| { f.result_timeout(Duration::from_secs(60)).unwrap(); });
    /// let s = pool.stats();
    /// assert_eq!((s.succeeded, s.failed, s.queued, s.running), (10, 0, 0, 0));
    /// assert!(s.workers_started >= 2);
    /// ```
    pub fn stats(&self) -> PoolStats {
        let (queued, workers) = {
            let st = lock(&self.shared.state);
            (st.queue.len(), st.worker_pids.clone())
        };
        let c = &self.shared.counts;
        let read = |n: &std::sync::atomic::AtomicU64| n.load(std::sync::atomic::Ordering::Relaxed);
        let (succeeded, failed, cancelled) =
            (read(&c.succeeded), read(&c.failed), read(&c.cancelled));
        let open = read(&c.submitted).saturating_sub(succeeded + failed + cancelled);
        PoolStats {
            workers,
            queued,
            running: (open as usize).saturating_sub(queued),
            succeeded,
            failed,
            cancelled,
            workers_started: read(&c.workers_started),
        }
    }

    /// A [`Builder`].
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// Runs `f(arg)` in a worker; returns at once.
    ///
    /// `arg` may hold handles — an [`ipc::Queue`](crate::ipc::Queue), a
    /// lock, a [`shared::Value`](crate::shared::Value) or
    /// [`Array`](crate::shared::Array) — which reach the worker as they
    /// reach a [`Process`](crate::process::Process) (not on a Redis-backed
    /// pool: another machine cannot share them). The result is plain data.
    ///
    /// ```
    /// use std::time::Duration;
    /// use multiproc::{executor::ProcessPool, ipc::Queue};
    /// let pool = ProcessPool::new(1);
    /// let q: Queue<String> = Queue::new(8)?;
    /// pool.submit(|q: Queue<String>| q.put(&"from a worker".into()).unwrap(), q.clone())
    ///     .result_timeout(Duration::from_secs(60))?;
    /// assert_eq!(q.get_timeout(Duration::from_secs(60))?, "from a worker");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit<F, A, R>(&self, f: F, arg: A) -> Future<R>
    where
        F: RemoteFn<A, R>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.submit_with(f, arg, TaskOptions::default())
    }

    /// [`submit`](Self::submit) with options (a timeout).
    pub fn submit_with<F, A, R>(&self, _f: F, arg: A, options: TaskOptions) -> Future<R>
    where
        F: RemoteFn<A, R>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.submit_decoding::<F, A, R, R>(arg, options, protocol::decode_result::<R>)
    }

    /// [`submit`](Self::submit), whose future holds the value as it
    /// arrived, to be decoded by whoever takes it ([`map`](Self::map)
    /// decodes its chunks in the consumer's thread, not the manager's).
    pub(crate) fn submit_undecoded<F, A, R>(&self, _f: F, arg: A) -> Future<protocol::Value>
    where
        F: RemoteFn<A, R>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + 'static,
    {
        self.submit_decoding::<F, A, R, protocol::Value>(arg, TaskOptions::default(), Ok)
    }

    /// Submits `F` with `arg`; the future's value is `decode` of the
    /// task's value.
    fn submit_decoding<F, A, R, T>(
        &self,
        arg: A,
        options: TaskOptions,
        decode: fn(protocol::Value) -> Result<T, CodecError>,
    ) -> Future<T>
    where
        F: RemoteFn<A, R>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + 'static,
        T: Send + 'static,
    {
        let (promise, future) = Promise::new();
        let (arg, fds) = match protocol::encode_arg(&arg) {
            Ok(a) => a,
            Err(e) => {
                promise.complete(Err(TaskError::Broken(format!(
                    "cannot send the argument: {e}"
                ))));
                return future;
            }
        };
        let counts = self.shared.counts.clone();
        counts
            .submitted
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let sink = Box::new(Typed {
            promise: Some(promise),
            counts,
            decode,
        });
        let entry = task::entry_for::<F, A, R>().to_wire();
        self.enqueue(entry, arg, fds, options, sink);
        future
    }

    /// Queues a task already encoded: its entry, its argument, where its
    /// outcome goes. (`submit` and a Redis worker agent, which hands the
    /// tasks it takes to a local pool, both come here.)
    pub(crate) fn enqueue(
        &self,
        entry: i64,
        arg: Vec<u8>,
        fds: Vec<OwnedFd>,
        options: TaskOptions,
        sink: Box<dyn Sink>,
    ) {
        let mut st = lock(&self.shared.state);
        if st.shutdown {
            drop(st);
            sink.finish(Err(TaskError::ShutDown));
            return;
        }
        if let Some(why) = st.broken.clone() {
            drop(st);
            sink.finish(Err(TaskError::Broken(why)));
            return;
        }
        let id = st.next_id;
        st.next_id += 1;
        st.queue.push_back(Pending {
            id,
            entry,
            arg,
            fds,
            timeout: options.timeout.or(self.timeout),
            retries: options.retries,
            sink,
            started: false,
        });
        let wake = st.must_wake();
        let answered = st.take_answered();
        drop(st);
        if wake {
            self.shared.poke();
        }
        drop(answered);
    }

    /// `f` over every item, in worker processes, one item per task; the
    /// results in the order of the items. See [`map_with`](Self::map_with)
    /// for chunks, which a map of small items wants.
    ///
    /// ```
    /// let pool = multiproc::executor::ProcessPool::new(2);
    /// let squares: Vec<u64> = pool.map(|x: u64| x * x, 0..4).map(Result::unwrap).collect();
    /// assert_eq!(squares, [0, 1, 4, 9]);
    /// ```
    pub fn map<'a, F, A, R>(
        &'a self,
        f: F,
        items: impl IntoIterator<Item = A, IntoIter: 'a>,
    ) -> ProcessMap<'a, A, R>
    where
        F: RemoteFn<A, R>,
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.map_with(f, items, MapOptions::default())
    }

    /// `f` over every item, in worker processes, in chunks of
    /// [`chunksize`](MapOptions::chunksize) items (one task each); the
    /// results in the order of the items. Lazy: chunks are submitted as the
    /// results are consumed, [`buffersize`](MapOptions::buffersize) ahead
    /// (default eight per worker), so an endless iterator works. A chunk
    /// whose task fails (a panic, a dead worker, a timeout) gives its error
    /// for each of its items.
    ///
    /// With the cargo feature `progress`, `.progress()` on the result draws
    /// a progress bar (indicatif) as the results come.
    ///
    /// ```
    /// use multiproc::executor::{MapOptions, ProcessPool};
    /// let pool = ProcessPool::new(2);
    /// let squares: Vec<u64> = pool
    ///     .map_with(|x: u64| x * x, 0..10, MapOptions::default().chunksize(3))
    ///     .map(Result::unwrap)
    ///     .collect();
    /// assert_eq!(squares, [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
    /// ```
    pub fn map_with<'a, F, A, R>(
        &'a self,
        _f: F,
        items: impl IntoIterator<Item = A, IntoIter: 'a>,
        options: MapOptions,
    ) -> ProcessMap<'a, A, R>
    where
        F: RemoteFn<A, R>,
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        ProcessMap::new::<F>(self, items.into_iter(), options)
    }

    /// [`map`](Self::map), with the results in the order the tasks finish
    /// (Python's `imap_unordered`): a slow one does not hold back the
    /// others.
    pub fn map_unordered<'a, F, A, R>(
        &'a self,
        f: F,
        items: impl IntoIterator<Item = A, IntoIter: 'a>,
    ) -> ProcessMapUnordered<'a, A, R>
    where
        F: RemoteFn<A, R>,
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.map_unordered_with(f, items, MapOptions::default())
    }

    /// [`map_with`](Self::map_with), with the results in the order the
    /// chunks finish. The items of one chunk stay together, in their order.
    ///
    /// ```
    /// use multiproc::executor::{MapOptions, ProcessPool};
    /// let pool = ProcessPool::new(2);
    /// let mut cubes: Vec<u64> = pool
    ///     .map_unordered_with(|x: u64| x * x * x, 0..10, MapOptions::default().chunksize(2))
    ///     .map(Result::unwrap)
    ///     .collect();
    /// cubes.sort();
    /// assert_eq!(cubes, [0, 1, 8, 27, 64, 125, 216, 343, 512, 729]);
    /// ```
    pub fn map_unordered_with<'a, F, A, R>(
        &'a self,
        _f: F,
        items: impl IntoIterator<Item = A, IntoIter: 'a>,
        options: MapOptions,
    ) -> ProcessMapUnordered<'a, A, R>
    where
        F: RemoteFn<A, R>,
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        ProcessMapUnordered::new::<F>(self, items.into_iter(), options)
    }

    /// Stops taking tasks. With `cancel_futures`, the tasks that have not
    /// started are cancelled — their futures say
    /// [`cancelled()`](Future::cancelled) and [`TaskError::Cancelled`], as
    /// on the thread pool and in Python — including those handed to a
    /// worker ahead of time and not yet claimed; running ones finish. With
    /// `wait`, returns when every worker has exited.
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        let cancelled: Vec<Pending> = {
            let mut st = lock(&self.shared.state);
            st.shutdown = true;
            if cancel_futures {
                st.cancel_unstarted = true;
                st.queue.drain(..).collect()
            } else {
                Vec::new()
            }
        };
        for p in cancelled {
            p.sink.finish(Err(TaskError::Cancelled));
        }
        self.shared.poke();
        if wait {
            let handle = lock(&self.manager).take();
            if let Some(h) = handle {
                let _ = h.join();
            } else {
                let st = lock(&self.shared.state);
                let _st = self
                    .shared
                    .ended
                    .wait_while(st, |s| s.running)
                    .unwrap_or_else(|e| e.into_inner());
            }
        }
    }
}

impl Drop for ProcessPool {
    /// Shuts down and waits: queued tasks run, workers exit, none is left.
    ///
    /// Dropped while its thread panics (the pool goes with the stack that
    /// unwinds), the tasks that have not started are cancelled instead of
    /// run — `shutdown(true, true)` — so that a pool whose tasks wait for a
    /// worker that will never come (a Redis-backed pool whose workers are
    /// gone) does not hold the unwinding thread for ever.
    fn drop(&mut self) {
        self.shutdown(true, std::thread::panicking());
    }
}

/// The process pool as an [`Executor`]: its own `submit`, `map_with` and
/// `shutdown`.
impl Executor for ProcessPool {
    fn submit<F, A, R>(&self, f: F, arg: A) -> Future<R>
    where
        F: RemoteFn<A, R> + Sync + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        ProcessPool::submit(self, f, arg)
    }

    fn map_with<'a, F, A, R>(
        &'a self,
        f: F,
        items: impl IntoIterator<Item = A, IntoIter: 'a>,
        options: MapOptions,
    ) -> impl Iterator<Item = Result<R, TaskError>> + 'a
    where
        F: RemoteFn<A, R> + Sync + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        ProcessPool::map_with(self, f, items, options)
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        ProcessPool::shutdown(self, wait, cancel_futures)
    }
}
