//! [`SimpleQueue`]: an unbounded FIFO without task tracking.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::core::Core;
use super::error::GetError;
use super::store::Fifo;
use crate::blocking::deadline_after;

/// An unbounded first-in, first-out queue with nothing but `put` and `get` —
/// Python's `queue.SimpleQueue`. `put` never waits and never fails.
///
/// ```
/// use multiproc::queue::SimpleQueue;
///
/// let q = SimpleQueue::new();
/// let q2 = q.clone();
/// std::thread::spawn(move || q2.put("hello")).join().unwrap();
/// assert_eq!(q.get(), "hello");
/// assert!(q.is_empty());
/// ```
pub struct SimpleQueue<T> {
    core: Arc<Core<T, Fifo<T>>>,
}

impl<T> Clone for SimpleQueue<T> {
    /// Another handle to the same queue.
    fn clone(&self) -> Self {
        SimpleQueue {
            core: self.core.clone(),
        }
    }
}

impl<T: Send> Default for SimpleQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Send> SimpleQueue<T> {
    /// An empty queue.
    pub fn new() -> Self {
        SimpleQueue {
            core: Arc::new(Core::new(0)),
        }
    }

    /// Adds `item`.
    pub fn put(&self, item: T) {
        if self.core.try_put(item).is_err() {
            unreachable!("an unbounded queue that is never shut down accepts every item");
        }
    }

    /// Takes the next item, waiting for one.
    pub fn get(&self) -> T {
        match self.core.get_until(None) {
            Ok(item) => item,
            Err(_) => unreachable!("a queue that is never shut down waits until it has an item"),
        }
    }

    /// Takes the next item if there is one now; [`GetError::Empty`]
    /// otherwise.
    pub fn try_get(&self) -> Result<T, GetError> {
        self.core.try_get()
    }

    /// Takes the next item, waiting at most `timeout`; [`GetError::Empty`]
    /// if none came.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.core.get_until(Some(deadline_after(timeout)))
    }

    /// The number of items, exact.
    pub fn len(&self) -> usize {
        self.core.len()
    }

    /// True if the queue holds no item.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: Send> fmt::Debug for SimpleQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimpleQueue")
            .field("len", &self.len())
            .finish()
    }
}
