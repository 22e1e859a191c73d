//! The lazy, ordered iterator of [`ThreadPool::map`].

use std::collections::VecDeque;
use std::sync::Arc;

use super::ThreadPool;
use crate::futures::{Future, TaskError};

/// Results of [`ThreadPool::map`], in input order. Keeps a bounded number of
/// tasks in flight: each result taken submits the next item.
///
/// Dropping it cancels the tasks that have not started. It borrows the
/// pool, so the pool cannot be dropped (shut down) under it:
///
/// ```compile_fail
/// use multiproc::executor::ThreadPool;
///
/// let results = {
///     let pool = ThreadPool::new(1);
///     pool.map(|x: u32| x + 1, 0..3) // error: `pool` does not live long enough
/// };
/// ```
pub struct ThreadMap<'p, I, F, R> {
    pool: &'p ThreadPool,
    f: Arc<F>,
    items: I,
    in_flight: VecDeque<Future<R>>,
}

impl<'p, I, F, R> ThreadMap<'p, I, F, R>
where
    I: Iterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> R + Send + Sync + 'static,
    R: Send + 'static,
{
    pub(super) fn new(pool: &'p ThreadPool, f: Arc<F>, items: I, buffer: usize) -> Self {
        let mut map = ThreadMap {
            pool,
            f,
            items,
            in_flight: VecDeque::with_capacity(buffer),
        };
        for _ in 0..buffer {
            if !map.submit_next() {
                break;
            }
        }
        map
    }

    fn submit_next(&mut self) -> bool {
        let Some(item) = self.items.next() else {
            return false;
        };
        let f = self.f.clone();
        self.in_flight.push_back(self.pool.submit(move || f(item)));
        true
    }
}

impl<I, F, R> Iterator for ThreadMap<'_, I, F, R>
where
    I: Iterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> R + Send + Sync + 'static,
    R: Send + 'static,
{
    type Item = Result<R, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        let first = self.in_flight.pop_front()?;
        self.submit_next();
        Some(first.result())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let (lo, hi) = self.items.size_hint();
        let n = self.in_flight.len();
        (lo.saturating_add(n), hi.and_then(|h| h.checked_add(n)))
    }
}

impl<I, F, R> Drop for ThreadMap<'_, I, F, R> {
    fn drop(&mut self) {
        for f in &self.in_flight {
            f.cancel();
        }
    }
}
