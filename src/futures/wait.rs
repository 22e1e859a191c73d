//! Waiting on many futures at once: [`wait`] and [`as_completed`].
//!
//! Both register one waiter with every future that is not done yet and
//! sleep until a future reports to it: no polling loop, no thread per
//! future. They accept futures by value or by reference (anything that
//! [`Borrow`]s a [`Future`]), so `wait(&futures, ..)` and
//! `as_completed(futures)` both work, and give back what they were given.

use std::borrow::Borrow;
use std::collections::{HashSet, VecDeque};
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Future;
use super::error::TaskError;
use super::state::Waiter;

/// When [`wait`] returns (Python's `FIRST_COMPLETED`, `FIRST_EXCEPTION`,
/// `ALL_COMPLETED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReturnWhen {
    /// As soon as any future is done (or was cancelled).
    FirstCompleted,
    /// As soon as any future fails (a cancellation is not a failure); like
    /// `AllCompleted` if none fails.
    FirstException,
    /// When every future is done.
    AllCompleted,
}

/// What [`wait`] returns: the futures that are done and those that are not,
/// each in the order they were given.
#[derive(Debug)]
pub struct Waited<F> {
    /// Done (finished, failed or cancelled).
    pub done: Vec<F>,
    /// Still pending or running (the timeout passed first).
    pub not_done: Vec<F>,
}

/// Futures given once, duplicates removed, registered with one waiter.
struct Registration<T, F: Borrow<Future<T>>> {
    futures: Vec<Option<F>>,
    waiter: Arc<Waiter>,
    /// Keys done when registering, in input order; then as they complete.
    ready: VecDeque<(usize, bool)>,
    /// Keys still registered with their future.
    pending: HashSet<usize>,
    _t: PhantomData<fn() -> T>,
}

impl<T, F: Borrow<Future<T>>> Registration<T, F> {
    fn new(futures: impl IntoIterator<Item = F>) -> Self {
        let mut seen = HashSet::new();
        let futures: Vec<Option<F>> = futures
            .into_iter()
            .filter(|f| seen.insert(Arc::as_ptr(f.borrow().shared()) as usize))
            .map(Some)
            .collect();
        let waiter = Waiter::new();
        let mut ready = VecDeque::new();
        let mut pending = HashSet::new();
        for (key, f) in futures.iter().enumerate() {
            let f = f.as_ref().expect("just filled").borrow();
            match f.shared().add_waiter(&waiter, key) {
                Some(failed) => ready.push_back((key, failed)),
                None => {
                    pending.insert(key);
                }
            }
        }
        Registration {
            futures,
            waiter,
            ready,
            pending,
            _t: PhantomData,
        }
    }

    /// Blocks until at least one more future is ready; false on timeout or
    /// when none is left to wait for.
    fn wait_more(&mut self, deadline: Option<Instant>) -> bool {
        if self.pending.is_empty() {
            return false;
        }
        let got = self.waiter.take(deadline);
        for &(key, _) in &got {
            self.pending.remove(&key);
        }
        self.ready.extend(got);
        !self.ready.is_empty()
    }
}

impl<T, F: Borrow<Future<T>>> Registration<T, F> {
    /// Stops listening and hands the futures back.
    fn into_futures(mut self) -> Vec<Option<F>> {
        self.unregister();
        std::mem::take(&mut self.futures)
    }

    fn unregister(&mut self) {
        for key in self.pending.drain() {
            if let Some(f) = &self.futures[key] {
                f.borrow().shared().remove_waiter(&self.waiter);
            }
        }
    }
}

impl<T, F: Borrow<Future<T>>> Drop for Registration<T, F> {
    fn drop(&mut self) {
        self.unregister();
    }
}

/// Waits until the futures satisfy `return_when` or `timeout` passes, and
/// returns them split into done and not done (Python's
/// `concurrent.futures.wait`). Duplicates are removed.
///
/// ```
/// use std::time::Duration;
/// use multiproc::executor::ThreadPool;
/// use multiproc::futures::{wait, ReturnWhen};
///
/// let pool = ThreadPool::new(2);
/// let futures = vec![
///     pool.submit(|| 1),
///     pool.submit(|| { std::thread::sleep(Duration::from_millis(200)); 2 }),
/// ];
/// let first = wait(&futures, ReturnWhen::FirstCompleted, None);
/// assert!(!first.done.is_empty());
/// let all = wait(&futures, ReturnWhen::AllCompleted, None);
/// assert_eq!((all.done.len(), all.not_done.len()), (2, 0));
/// ```
pub fn wait<T, F: Borrow<Future<T>>>(
    futures: impl IntoIterator<Item = F>,
    return_when: ReturnWhen,
    timeout: Option<Duration>,
) -> Waited<F> {
    let deadline = timeout.map(crate::blocking::deadline_after);
    let mut reg = Registration::new(futures);
    let mut done = vec![false; reg.futures.len()];
    loop {
        let mut stop = false;
        for (key, failed) in reg.ready.drain(..) {
            done[key] = true;
            stop |= match return_when {
                ReturnWhen::FirstCompleted => true,
                ReturnWhen::FirstException => failed,
                ReturnWhen::AllCompleted => false,
            };
        }
        if stop || !reg.wait_more(deadline) {
            break;
        }
    }
    let mut futures = reg.into_futures();
    let mut waited = Waited {
        done: Vec::new(),
        not_done: Vec::new(),
    };
    for (key, f) in futures.iter_mut().enumerate() {
        let f = f.take().expect("each future is handed back once");
        if done[key] {
            waited.done.push(f);
        } else {
            waited.not_done.push(f);
        }
    }
    waited
}

/// Yields the futures as they complete (Python's `as_completed`): those
/// already done first, in the order given, then each as it finishes.
/// Duplicates are removed.
///
/// ```
/// use multiproc::executor::ThreadPool;
/// use multiproc::futures::as_completed;
///
/// let pool = ThreadPool::new(2);
/// let futures: Vec<_> = (1..=4).map(|i| pool.submit(move || i * 10)).collect();
/// let mut total = 0;
/// for f in as_completed(futures) {
///     total += f.result().unwrap();
/// }
/// assert_eq!(total, 100);
/// ```
pub fn as_completed<T, F: Borrow<Future<T>>>(
    futures: impl IntoIterator<Item = F>,
) -> AsCompleted<T, F> {
    AsCompleted {
        reg: Registration::new(futures),
        deadline: None,
        timed_out: false,
    }
}

/// [`as_completed`] with a deadline: after `timeout` the iterator yields
/// one `Err(TaskError::Timeout)` and ends; [`AsCompleted::into_remaining`]
/// gives back the futures not yet yielded.
///
/// ```
/// use std::time::Duration;
/// use multiproc::executor::ThreadPool;
/// use multiproc::futures::{as_completed_timeout, TaskError};
///
/// let pool = ThreadPool::new(2);
/// let fast = pool.submit(|| 1);
/// let slow = pool.submit(|| { std::thread::sleep(Duration::from_millis(500)); 2 });
/// let mut it = as_completed_timeout([&fast, &slow], Duration::from_millis(100));
/// assert!(std::ptr::eq(it.next().unwrap().unwrap(), &fast));
/// assert_eq!(it.next().unwrap().unwrap_err(), TaskError::Timeout);
/// assert!(it.next().is_none());
/// assert_eq!(it.into_remaining().len(), 1);
/// ```
pub fn as_completed_timeout<T, F: Borrow<Future<T>>>(
    futures: impl IntoIterator<Item = F>,
    timeout: Duration,
) -> AsCompletedTimeout<T, F> {
    AsCompletedTimeout(AsCompleted {
        reg: Registration::new(futures),
        deadline: Some(crate::blocking::deadline_after(timeout)),
        timed_out: false,
    })
}

/// The iterator of [`as_completed`].
pub struct AsCompleted<T, F: Borrow<Future<T>>> {
    reg: Registration<T, F>,
    deadline: Option<Instant>,
    timed_out: bool,
}

impl<T, F: Borrow<Future<T>>> AsCompleted<T, F> {
    /// The futures not yielded yet, in the order given.
    pub fn into_remaining(self) -> Vec<F> {
        self.reg.into_futures().into_iter().flatten().collect()
    }

    fn next_ready(&mut self) -> Option<Result<F, TaskError>> {
        if self.timed_out {
            return None;
        }
        if self.reg.ready.is_empty() && !self.reg.wait_more(self.deadline) {
            if self.reg.pending.is_empty() {
                return None;
            }
            self.timed_out = true;
            return Some(Err(TaskError::Timeout));
        }
        let (key, _) = self.reg.ready.pop_front()?;
        self.reg.futures[key].take().map(Ok)
    }
}

impl<T, F: Borrow<Future<T>>> Iterator for AsCompleted<T, F> {
    type Item = F;

    fn next(&mut self) -> Option<F> {
        // Without a deadline the only way out is that all were yielded.
        self.next_ready().and_then(Result::ok)
    }
}

/// The iterator of [`as_completed_timeout`].
pub struct AsCompletedTimeout<T, F: Borrow<Future<T>>>(AsCompleted<T, F>);

impl<T, F: Borrow<Future<T>>> AsCompletedTimeout<T, F> {
    /// The futures not yielded yet, in the order given.
    pub fn into_remaining(self) -> Vec<F> {
        self.0.into_remaining()
    }
}

impl<T, F: Borrow<Future<T>>> Iterator for AsCompletedTimeout<T, F> {
    type Item = Result<F, TaskError>;

    fn next(&mut self) -> Option<Result<F, TaskError>> {
        self.0.next_ready()
    }
}
