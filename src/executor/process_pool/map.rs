//! `ProcessPool::map`: a lazy, ordered map in chunks.

use std::collections::VecDeque;
use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ProcessPool;
use crate::futures::{Future, TaskError};
use crate::os::image::zero_sized_fn;

/// The task that runs one chunk in a worker: `f` over every item.
pub(crate) fn run_chunk<F, A, R>(items: Vec<A>) -> Vec<R>
where
    F: FnOnce(A) -> R + Copy + 'static,
{
    let f = zero_sized_fn::<F>();
    // `F` is only `FnOnce + Copy`: the closure copies it for each call,
    // which `map(f)` (wanting `FnMut`) cannot do.
    #[allow(clippy::redundant_closure)]
    items.into_iter().map(|a| f(a)).collect()
}

/// The results of [`ProcessPool::map`], in the order of the items.
///
/// Chunks are submitted as the iterator is consumed, at most a few per
/// worker ahead of it; dropping the iterator cancels the chunks that have
/// not started.
pub struct ProcessMap<'a, A, R> {
    pool: &'a ProcessPool,
    items: Box<dyn Iterator<Item = A> + 'a>,
    chunksize: usize,
    ahead: usize,
    submit: fn(&ProcessPool, Vec<A>) -> Future<Vec<R>>,
    in_flight: VecDeque<(usize, Future<Vec<R>>)>,
    current: std::vec::IntoIter<R>,
    /// Items left of a chunk that failed: each gets the chunk's error.
    failed: Option<(usize, TaskError)>,
}

impl<A, R> fmt::Debug for ProcessMap<'_, A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessMap")
            .field("chunksize", &self.chunksize)
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

impl<'a, A, R> ProcessMap<'a, A, R>
where
    A: Serialize + DeserializeOwned + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
{
    pub(crate) fn new<F>(
        pool: &'a ProcessPool,
        items: impl Iterator<Item = A> + 'a,
        chunksize: usize,
    ) -> Self
    where
        F: FnOnce(A) -> R + Copy + Send + 'static,
    {
        fn submit<F, A, R>(pool: &ProcessPool, chunk: Vec<A>) -> Future<Vec<R>>
        where
            F: FnOnce(A) -> R + Copy + Send + 'static,
            A: Serialize + DeserializeOwned + 'static,
            R: Serialize + DeserializeOwned + Send + 'static,
        {
            pool.submit(run_chunk::<F, A, R>, chunk)
        }
        ProcessMap {
            pool,
            items: Box::new(items),
            chunksize: chunksize.max(1),
            ahead: 2 * pool.workers,
            submit: submit::<F, A, R>,
            in_flight: VecDeque::new(),
            current: Vec::new().into_iter(),
            failed: None,
        }
    }

    fn fill(&mut self) {
        while self.in_flight.len() < self.ahead {
            let chunk: Vec<A> = self.items.by_ref().take(self.chunksize).collect();
            if chunk.is_empty() {
                return;
            }
            let n = chunk.len();
            self.in_flight
                .push_back((n, (self.submit)(self.pool, chunk)));
        }
    }
}

impl<A, R> Iterator for ProcessMap<'_, A, R>
where
    A: Serialize + DeserializeOwned + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
{
    type Item = Result<R, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(r) = self.current.next() {
                return Some(Ok(r));
            }
            if let Some((left, e)) = self.failed.take() {
                if left > 1 {
                    self.failed = Some((left - 1, e.clone()));
                }
                return Some(Err(e));
            }
            self.fill();
            let (n, future) = self.in_flight.pop_front()?;
            self.fill();
            match future.result() {
                Ok(values) => self.current = values.into_iter(),
                Err(e) => self.failed = Some((n, e)),
            }
        }
    }
}

impl<A, R> Drop for ProcessMap<'_, A, R> {
    fn drop(&mut self) {
        for (_, f) in &self.in_flight {
            f.cancel();
        }
    }
}
