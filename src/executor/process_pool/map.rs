//! `ProcessPool::map` and `map_unordered`: lazy maps in chunks, one task
//! per chunk, at most `buffersize` chunks (eight per worker) ahead of the
//! consumer.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::mpsc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ProcessPool;
use super::protocol::{Value, decode_result, undecodable};
use crate::codec::numbers::Block;
use crate::executor::MapOptions;
use crate::futures::{Future, TaskError};
use crate::os::image::zero_sized_fn;

/// The task that runs one chunk in a worker: `f` over every item. Items
/// and results travel as [`Block`]s: a chunk of numbers is one copy each
/// way, not a serde call per number.
pub(crate) fn run_chunk<F, A, R>(items: Block<A>) -> Block<R>
where
    F: FnOnce(A) -> R + Copy,
{
    let f = zero_sized_fn::<F>();
    // `F` is only `FnOnce + Copy`: the closure copies it for each call,
    // which `map(f)` (wanting `FnMut`) cannot do.
    #[allow(clippy::redundant_closure)]
    Block(items.0.into_iter().map(|a| f(a)).collect())
}

/// The items not yet submitted, taken a chunk at a time: one dynamic call
/// per chunk, not one per item.
trait Items<A> {
    fn chunk(&mut self, n: usize) -> Vec<A>;
    fn size_hint(&self) -> (usize, Option<usize>);
}

impl<A, I: Iterator<Item = A>> Items<A> for I {
    fn chunk(&mut self, n: usize) -> Vec<A> {
        self.by_ref().take(n).collect()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        Iterator::size_hint(self)
    }
}

/// What both maps share: the items not yet submitted, and the results of
/// the chunk being handed out.
struct Feed<'a, A, R> {
    pool: &'a ProcessPool,
    items: Box<dyn Items<A> + 'a>,
    chunksize: usize,
    /// Chunks in flight, at most.
    ahead: usize,
    submit: fn(&ProcessPool, Vec<A>) -> Future<Value>,
    current: std::vec::IntoIter<R>,
    /// Items left of a chunk that failed: each gets the chunk's error.
    failed: Option<(usize, TaskError)>,
}

impl<'a, A, R> Feed<'a, A, R>
where
    A: Serialize + DeserializeOwned + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
{
    fn new<F>(
        pool: &'a ProcessPool,
        items: impl Iterator<Item = A> + 'a,
        options: MapOptions,
    ) -> Self
    where
        F: FnOnce(A) -> R + Copy + Send,
    {
        fn submit<F, A, R>(pool: &ProcessPool, chunk: Vec<A>) -> Future<Value>
        where
            F: FnOnce(A) -> R + Copy + Send,
            A: Serialize + DeserializeOwned + 'static,
            R: Serialize + DeserializeOwned + Send + 'static,
        {
            pool.submit_undecoded(run_chunk::<F, A, R>, Block(chunk))
        }
        Feed {
            pool,
            items: Box::new(items),
            chunksize: options.chunksize.max(1),
            ahead: options.ahead(8, pool.parallelism()),
            submit: submit::<F, A, R>,
            current: Vec::new().into_iter(),
            failed: None,
        }
    }

    /// Submits the next chunk, if there are items left: its length and
    /// future.
    fn next_chunk(&mut self) -> Option<(usize, Future<Value>)> {
        let chunk: Vec<A> = self.items.chunk(self.chunksize);
        (!chunk.is_empty()).then(|| (chunk.len(), (self.submit)(self.pool, chunk)))
    }

    /// The next result of the chunk at hand, if any is left.
    fn take(&mut self) -> Option<Result<R, TaskError>> {
        if let Some(r) = self.current.next() {
            return Some(Ok(r));
        }
        let (left, e) = self.failed.take()?;
        if left > 1 {
            self.failed = Some((left - 1, e.clone()));
        }
        Some(Err(e))
    }

    /// A chunk of `n` items has its outcome: it is decoded (here, in the
    /// consumer's thread) and handed out next.
    fn land(&mut self, n: usize, outcome: Result<Value, TaskError>) {
        let decoded =
            outcome.and_then(|value| decode_result::<Block<R>>(value).map_err(undecodable));
        match decoded {
            Ok(Block(values)) => self.current = values.into_iter(),
            Err(e) => self.failed = Some((n, e)),
        }
    }

    /// The exact number of items not handed out yet, when known.
    fn remaining(&self, in_flight: usize) -> Option<usize> {
        let (lo, hi) = self.items.size_hint();
        let rest = (hi == Some(lo)).then_some(lo)?;
        Some(rest + in_flight + self.current.len() + self.failed.as_ref().map_or(0, |f| f.0))
    }
}

/// The results of [`ProcessPool::map`], in the order of the items.
///
/// Chunks are submitted as the iterator is consumed, at most
/// [`buffersize`](MapOptions::buffersize) ahead of it; dropping the iterator cancels the chunks not yet
/// handed to a worker (the running ones finish; no worker is killed).
pub struct ProcessMap<'a, A, R> {
    feed: Feed<'a, A, R>,
    in_flight: VecDeque<(usize, Future<Value>)>,
}

impl<A, R> fmt::Debug for ProcessMap<'_, A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessMap")
            .field("chunksize", &self.feed.chunksize)
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
        options: MapOptions,
    ) -> Self
    where
        F: FnOnce(A) -> R + Copy + Send,
    {
        ProcessMap {
            feed: Feed::new::<F>(pool, items, options),
            in_flight: VecDeque::new(),
        }
    }

    fn fill(&mut self) {
        while self.in_flight.len() < self.feed.ahead {
            let Some(chunk) = self.feed.next_chunk() else {
                return;
            };
            self.in_flight.push_back(chunk);
        }
    }

    /// The number of results still to come, when the items' iterator knows
    /// its length.
    pub fn remaining(&self) -> Option<usize> {
        self.feed
            .remaining(self.in_flight.iter().map(|(n, _)| n).sum())
    }
}

impl<A, R> Iterator for ProcessMap<'_, A, R>
where
    A: Serialize + DeserializeOwned + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
{
    type Item = Result<R, TaskError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        // The chunk at hand, inlined into the caller's loop; the rest once
        // per chunk.
        match self.feed.current.next() {
            Some(r) => Some(Ok(r)),
            None => self.next_chunk_result(),
        }
    }
}

impl<A, R> ProcessMap<'_, A, R>
where
    A: Serialize + DeserializeOwned + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
{
    #[inline(never)]
    fn next_chunk_result(&mut self) -> Option<Result<R, TaskError>> {
        loop {
            if let Some(r) = self.feed.take() {
                return Some(r);
            }
            self.fill();
            let (n, future) = self.in_flight.pop_front()?;
            self.fill();
            self.feed.land(n, future.result());
        }
    }
}

impl<A, R> Drop for ProcessMap<'_, A, R> {
    fn drop(&mut self) {
        for (_, f) in &self.in_flight {
            f.cancel_if_pending();
        }
    }
}

/// The results of [`ProcessPool::map_unordered`], chunk by chunk in the
/// order the chunks finish (the items of one chunk in their order).
///
/// Like [`ProcessMap`], lazy and bounded: chunks are submitted as the
/// results are consumed, and dropping the iterator cancels the chunks not
/// yet handed to a worker.
pub struct ProcessMapUnordered<'a, A, R> {
    feed: Feed<'a, A, R>,
    in_flight: HashMap<u64, (usize, Future<Value>)>,
    next_key: u64,
    /// Each chunk's future says here when it is done.
    done_tx: mpsc::Sender<u64>,
    done_rx: mpsc::Receiver<u64>,
}

impl<A, R> fmt::Debug for ProcessMapUnordered<'_, A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessMapUnordered")
            .field("chunksize", &self.feed.chunksize)
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

impl<'a, A, R> ProcessMapUnordered<'a, A, R>
where
    A: Serialize + DeserializeOwned + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
{
    pub(crate) fn new<F>(
        pool: &'a ProcessPool,
        items: impl Iterator<Item = A> + 'a,
        options: MapOptions,
    ) -> Self
    where
        F: FnOnce(A) -> R + Copy + Send,
    {
        let (done_tx, done_rx) = mpsc::channel();
        ProcessMapUnordered {
            feed: Feed::new::<F>(pool, items, options),
            in_flight: HashMap::new(),
            next_key: 0,
            done_tx,
            done_rx,
        }
    }

    fn fill(&mut self) {
        while self.in_flight.len() < self.feed.ahead {
            let Some((n, future)) = self.feed.next_chunk() else {
                return;
            };
            let key = self.next_key;
            self.next_key += 1;
            let tx = self.done_tx.clone();
            future.add_done_callback(move |_| {
                let _ = tx.send(key);
            });
            self.in_flight.insert(key, (n, future));
        }
    }

    /// The number of results still to come, when the items' iterator knows
    /// its length.
    pub fn remaining(&self) -> Option<usize> {
        self.feed
            .remaining(self.in_flight.values().map(|(n, _)| n).sum())
    }
}

impl<A, R> Iterator for ProcessMapUnordered<'_, A, R>
where
    A: Serialize + DeserializeOwned + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
{
    type Item = Result<R, TaskError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        // As `ProcessMap::next`: the chunk at hand inlined, the rest not.
        match self.feed.current.next() {
            Some(r) => Some(Ok(r)),
            None => self.next_chunk_result(),
        }
    }
}

impl<A, R> ProcessMapUnordered<'_, A, R>
where
    A: Serialize + DeserializeOwned + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
{
    #[inline(never)]
    fn next_chunk_result(&mut self) -> Option<Result<R, TaskError>> {
        loop {
            if let Some(r) = self.feed.take() {
                return Some(r);
            }
            self.fill();
            if self.in_flight.is_empty() {
                return None;
            }
            // Every future in flight calls back once it is done (a pool
            // that shuts down ends it too), and `done_tx` keeps the channel
            // open: this returns.
            let Ok(key) = self.done_rx.recv() else {
                return None;
            };
            let Some((n, future)) = self.in_flight.remove(&key) else {
                continue;
            };
            self.fill();
            self.feed.land(n, future.result());
        }
    }
}

impl<A, R> Drop for ProcessMapUnordered<'_, A, R> {
    fn drop(&mut self) {
        for (_, f) in self.in_flight.values() {
            f.cancel_if_pending();
        }
    }
}
