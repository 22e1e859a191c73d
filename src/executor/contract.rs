//! What every executor promises: the [`Executor`] trait, and the options of
//! a map ([`MapOptions`]).

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::futures::{Future, TaskError};
use crate::process::RemoteFn;

/// How a `map` cuts its items into tasks and how far it runs ahead of the
/// consumer; Python's `chunksize` and `buffersize` arguments of
/// `Executor.map`.
///
/// ```
/// use multiproc::executor::MapOptions;
/// let options = MapOptions::default().chunksize(1000).buffersize(16);
/// assert_eq!((options.chunksize, options.buffersize), (1000, Some(16)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MapOptions {
    /// Items per task (at least 1; default 1, as in Python). A process pool
    /// sends a chunk as one task, which is what makes a map of small items
    /// fast; a thread pool runs one item per task whatever this says (as
    /// Python's `ThreadPoolExecutor` ignores it).
    pub chunksize: usize,
    /// Tasks in flight ahead of the consumer, at most (Python 3.14's
    /// `buffersize`); each result taken submits the next. Default: two per
    /// thread for a thread pool, eight per worker for a process pool.
    pub buffersize: Option<usize>,
}

impl Default for MapOptions {
    fn default() -> Self {
        MapOptions {
            chunksize: 1,
            buffersize: None,
        }
    }
}

impl MapOptions {
    /// Sets [`chunksize`](Self::chunksize) (0 counts as 1).
    pub fn chunksize(mut self, n: usize) -> Self {
        self.chunksize = n.max(1);
        self
    }

    /// Sets [`buffersize`](Self::buffersize) (0 counts as 1).
    pub fn buffersize(mut self, n: usize) -> Self {
        self.buffersize = Some(n.max(1));
        self
    }

    /// The buffer size, or `per_worker × workers` by default.
    pub(crate) fn ahead(&self, per_worker: usize, workers: usize) -> usize {
        self.buffersize
            .unwrap_or(per_worker.saturating_mul(workers))
            .max(1)
    }
}

/// What every pool does — Python's `concurrent.futures.Executor`: code
/// written against it runs on a [`ThreadPool`](super::ThreadPool) or a
/// [`ProcessPool`](super::ProcessPool) unchanged.
///
/// Its tasks are what both can run: a fn item or a closure that captures
/// nothing, with a serde argument and result (a thread pool could run more
/// — any `FnOnce + Send` closure, through its own `submit`).
///
/// ```
/// use multiproc::executor::{Executor, MapOptions, ProcessPool, ThreadPool};
///
/// fn sum_of_squares(pool: &impl Executor) -> u64 {
///     let one = pool.submit(|x: u64| x * x, 3).result().unwrap();
///     let rest: u64 = pool
///         .map_with(|x: u64| x * x, 4..=5, MapOptions::default().chunksize(2))
///         .map(Result::unwrap)
///         .sum();
///     one + rest
/// }
///
/// assert_eq!(sum_of_squares(&ThreadPool::new(2)), 50);
/// assert_eq!(sum_of_squares(&ProcessPool::new(2)), 50);
/// ```
pub trait Executor {
    /// Runs `f(arg)` on the pool; returns at once with its future.
    fn submit<F, A, R>(&self, f: F, arg: A) -> Future<R>
    where
        F: RemoteFn<A, R> + Sync + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static;

    /// `f` over every item, the results in the order of the items, lazily
    /// (see [`MapOptions`]). A task that fails gives its error for each of
    /// its items.
    fn map_with<'a, F, A, R>(
        &'a self,
        f: F,
        items: impl IntoIterator<Item = A, IntoIter: 'a>,
        options: MapOptions,
    ) -> impl Iterator<Item = Result<R, TaskError>> + 'a
    where
        F: RemoteFn<A, R> + Sync + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static;

    /// [`map_with`](Self::map_with) the default options.
    fn map<'a, F, A, R>(
        &'a self,
        f: F,
        items: impl IntoIterator<Item = A, IntoIter: 'a>,
    ) -> impl Iterator<Item = Result<R, TaskError>> + 'a
    where
        F: RemoteFn<A, R> + Sync + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.map_with(f, items, MapOptions::default())
    }

    /// Stops taking tasks; with `cancel_futures`, cancels the ones not
    /// started; with `wait`, returns once every worker has ended.
    fn shutdown(&self, wait: bool, cancel_futures: bool);
}
