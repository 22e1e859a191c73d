//! [`ThreadPool`]: Python's `ThreadPoolExecutor`, with a [`Future`] per task.

mod map;
mod worker;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::process::RemoteFn;
pub use map::ThreadMap;
use serde::Serialize;
use serde::de::DeserializeOwned;
use worker::{Config, Inner, Task};

use super::contract::{Executor, MapOptions};
use crate::futures::state::Promise;
use crate::futures::{Future, TaskError};

/// A pool of threads that runs closures and gives a [`Future`] for each —
/// Python's `ThreadPoolExecutor`.
///
/// ```
/// use multiproc::executor::ThreadPool;
///
/// let pool = ThreadPool::new(4);
/// let futures: Vec<_> = (0..10u64).map(|x| pool.submit(move || x * x)).collect();
/// let total: u64 = futures.iter().map(|f| f.result().unwrap()).sum();
/// assert_eq!(total, 285);
/// ```
///
/// Threads start on demand, up to `max_workers`, and are reused: a
/// submission starts a new thread only when no worker is idle. An idle pool
/// sleeps; it burns no CPU.
///
/// Tasks that wait for other tasks of the same pool can deadlock once every
/// worker is waiting (as in Python): give such pools enough workers, or
/// chain work with [`add_done_callback`](crate::futures::Future::add_done_callback).
///
/// # Panic handling
///
/// A panicking task fails only its own future, with
/// [`TaskError::Panicked`](crate::futures::TaskError::Panicked) (message and
/// location); the worker thread lives on and the panic is not printed (the
/// crate chains a panic hook in front of yours the first time it runs a
/// task; if the program replaces the hook later, locations become `None`). A
/// panicking [initializer](Builder::initializer) breaks the pool, as in
/// Python: queued and later tasks fail with
/// [`TaskError::Broken`](crate::futures::TaskError::Broken).
///
/// # Differences from Python and rayon
///
/// - `submit` after [`shutdown`](Self::shutdown) does not raise: it returns a
///   future that has already failed with
///   [`TaskError::ShutDown`](crate::futures::TaskError::ShutDown).
/// - [`map`](Self::map) is lazy: it keeps a bounded number of tasks in flight
///   instead of submitting the whole input at once, so it works on endless
///   iterators.
/// - rayon's `spawn` gives no result and aborts the process on a panic by
///   default; every task here has a future.
pub struct ThreadPool {
    inner: Arc<Inner>,
}

/// Configures a [`ThreadPool`]; from [`ThreadPool::builder`].
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use multiproc::executor::ThreadPool;
///
/// let started = Arc::new(AtomicUsize::new(0));
/// let counter = started.clone();
/// let pool = ThreadPool::builder()
///     .max_workers(2)
///     .thread_name_prefix("crunch")
///     .initializer(move || { counter.fetch_add(1, Ordering::SeqCst); })
///     .build()?;
/// let name = pool.submit(|| std::thread::current().name().unwrap().to_string());
/// assert!(name.result().unwrap().starts_with("crunch_"));
/// assert!(started.load(Ordering::SeqCst) >= 1);
/// # Ok::<(), std::io::Error>(())
/// ```
#[must_use]
pub struct Builder {
    max_workers: Option<usize>,
    name_prefix: Option<String>,
    initializer: Option<Arc<dyn Fn() + Send + Sync>>,
}

static POOLS: AtomicUsize = AtomicUsize::new(0);

impl Builder {
    /// The most threads the pool runs at once (at least 1). Default:
    /// `min(32, cpu_count + 4)`, as in Python.
    pub fn max_workers(mut self, n: usize) -> Self {
        self.max_workers = Some(n.max(1));
        self
    }

    /// Names the threads `PREFIX_0`, `PREFIX_1`, …; default
    /// `ThreadPool-N` for the N-th pool of the program.
    pub fn thread_name_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.name_prefix = Some(prefix.into());
        self
    }

    /// Runs `init` in each worker thread before its first task. If it
    /// panics, the pool is broken (see [`ThreadPool`]'s panic handling).
    pub fn initializer(mut self, init: impl Fn() + Send + Sync + 'static) -> Self {
        self.initializer = Some(Arc::new(init));
        self
    }

    /// The pool; its threads start with the first tasks. (Starting a thread
    /// pool cannot fail today; the `Result` is every executor's builder's,
    /// so code can start either kind of pool the same way.)
    pub fn build(self) -> io::Result<ThreadPool> {
        let id = POOLS.fetch_add(1, Ordering::Relaxed);
        Ok(ThreadPool {
            inner: Inner::new(Config {
                max_workers: self
                    .max_workers
                    .unwrap_or_else(|| (crate::process::cpu_count() + 4).min(32)),
                name_prefix: self
                    .name_prefix
                    .unwrap_or_else(|| format!("ThreadPool-{id}")),
                initializer: self.initializer,
            }),
        })
    }
}

impl ThreadPool {
    /// A pool of at most `max_workers` threads (at least 1).
    ///
    /// # Panics
    ///
    /// Like [`std::thread::spawn`], if the pool cannot be started; use
    /// [`builder`](Self::builder)`().build()` for an `io::Result`.
    pub fn new(max_workers: usize) -> ThreadPool {
        Self::builder()
            .max_workers(max_workers)
            .build()
            .expect("cannot start a thread pool")
    }

    /// A [`Builder`] with Python's defaults.
    pub fn builder() -> Builder {
        Builder {
            max_workers: None,
            name_prefix: None,
            initializer: None,
        }
    }

    /// Runs `task` on a worker thread; returns at once with its future.
    ///
    /// ```
    /// use multiproc::executor::ThreadPool;
    /// use multiproc::futures::TaskError;
    ///
    /// let pool = ThreadPool::new(2);
    /// let bad = pool.submit(|| -> u8 { panic!("boom") });
    /// let good = pool.submit(|| 1);
    /// assert!(matches!(bad.result(), Err(TaskError::Panicked { message, .. }) if message == "boom"));
    /// assert_eq!(good.result(), Ok(1));
    /// ```
    pub fn submit<F, R>(&self, task: F) -> Future<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let (promise, future) = Promise::new();
        self.inner.push(Box::new(Task { f: task, promise }));
        future
    }

    /// Applies `f` to every item on the pool and yields the results in
    /// order, as they become available. Lazy: at most `2 × max_workers`
    /// tasks are in flight; see [`map_with`](Self::map_with).
    ///
    /// ```
    /// use multiproc::executor::ThreadPool;
    ///
    /// let pool = ThreadPool::new(4);
    /// let squares: Vec<u64> = pool.map(|x: u64| x * x, 0..5).map(Result::unwrap).collect();
    /// assert_eq!(squares, [0, 1, 4, 9, 16]);
    /// ```
    pub fn map<I, F, R>(&self, f: F, items: I) -> ThreadMap<'_, I::IntoIter, F, R>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> R + Send + Sync + 'static,
        R: Send + 'static,
    {
        self.map_with(f, items, MapOptions::default())
    }

    /// [`map`](Self::map) with options: at most
    /// [`buffersize`](MapOptions::buffersize) tasks in flight (Python
    /// 3.14's `buffersize`). Dropping the iterator cancels the tasks that
    /// have not started. Threads run one item per task (`chunksize` is for
    /// process pools, as in Python).
    ///
    /// ```
    /// use multiproc::executor::{MapOptions, ThreadPool};
    ///
    /// let pool = ThreadPool::new(2);
    /// let mut naturals = pool.map_with(|x: u64| x + 1, 0.., MapOptions::default().buffersize(3));
    /// assert_eq!(naturals.next(), Some(Ok(1))); // an endless input is fine
    /// ```
    pub fn map_with<I, F, R>(
        &self,
        f: F,
        items: I,
        options: MapOptions,
    ) -> ThreadMap<'_, I::IntoIter, F, R>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> R + Send + Sync + 'static,
        R: Send + 'static,
    {
        ThreadMap::new(
            self,
            Arc::new(f),
            items.into_iter(),
            options.ahead(2, self.max_workers()),
        )
    }

    /// Stops accepting tasks. With `cancel_futures`, the tasks that have not
    /// started are cancelled; the others run to the end. With `wait`, returns
    /// once every worker thread has finished (a task that shuts its own pool
    /// down does not wait for itself). Calling it again is harmless.
    ///
    /// ```
    /// use multiproc::executor::ThreadPool;
    /// use multiproc::futures::TaskError;
    ///
    /// let pool = ThreadPool::new(1);
    /// let first = pool.submit(|| std::thread::sleep(std::time::Duration::from_millis(100)));
    /// let queued = pool.submit(|| ());
    /// while !first.running() && !first.done() {}
    /// pool.shutdown(true, true);
    /// assert_eq!(first.result(), Ok(()));
    /// assert_eq!(queued.result(), Err(TaskError::Cancelled));
    /// assert_eq!(pool.submit(|| ()).result(), Err(TaskError::ShutDown));
    /// ```
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        self.inner.shutdown(wait, cancel_futures);
    }

    /// The most threads this pool runs at once.
    pub fn max_workers(&self) -> usize {
        self.inner.max_workers()
    }

    /// The worker threads alive now.
    pub fn threads(&self) -> usize {
        self.inner.threads()
    }
}

impl Drop for ThreadPool {
    /// `shutdown(true, false)`: queued tasks still run, then the threads end.
    ///
    /// Dropped while its thread panics, the queued tasks are cancelled
    /// instead of run (`shutdown(true, true)`), as the process pool does.
    fn drop(&mut self) {
        self.inner.shutdown(true, std::thread::panicking());
    }
}

impl std::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadPool")
            .field("max_workers", &self.max_workers())
            .field("threads", &self.threads())
            .finish()
    }
}

/// The thread pool as an [`Executor`]: a task is `f(arg)` run on a thread.
impl Executor for ThreadPool {
    fn submit<F, A, R>(&self, f: F, arg: A) -> Future<R>
    where
        F: RemoteFn<A, R> + Sync + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        ThreadPool::submit(self, move || f(arg))
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
        // `F` is only `FnOnce + Copy`: the closure copies it for each call,
        // which the thread map (wanting `Fn`) cannot do with `f` itself.
        #[allow(clippy::redundant_closure)]
        ThreadPool::map_with(self, move |a| f(a), items, options)
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        ThreadPool::shutdown(self, wait, cancel_futures)
    }
}
