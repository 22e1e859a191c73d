//! The public queue types. They differ only in their [`Store`]; one macro
//! writes their (identical) methods and docs.
//!
//! [`Store`]: super::store::Store

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::core::Core;
use super::error::{GetError, PutError, TaskDoneError};
use super::fifo::FifoCore;
use super::store::{Lifo, Priority};

type LifoCore<T> = Core<T, Lifo<T>>;
type PriorityCore<T> = Core<T, Priority<T>>;
use crate::blocking::deadline_after;

macro_rules! queue_type {
    ($(#[$attr:meta])* $name:ident, $engine:ident, $($bound:path),+) => {
        $(#[$attr])*
        pub struct $name<T> {
            core: Arc<$engine<T>>,
        }

        impl<T> Clone for $name<T> {
            /// Another handle to the same queue.
            fn clone(&self) -> Self {
                $name { core: self.core.clone() }
            }
        }

        impl<T: $($bound +)+> $name<T> {
            #[doc = concat!("A queue of at most `maxsize` items; 0 means unbounded, as in Python.\n\n```\nlet q = multiproc::queue::", stringify!($name), "::new(2);\nq.put(1).unwrap();\nq.put(2).unwrap();\nassert!(q.is_full());\nassert_eq!(q.maxsize(), Some(2));\n```")]
            pub fn new(maxsize: usize) -> Self {
                $name { core: Arc::new($engine::new(maxsize)) }
            }

            /// A queue without a bound: `put` never waits.
            pub fn unbounded() -> Self {
                Self::new(0)
            }

            /// Adds `item`, waiting for room. Fails only once the queue is shut
            /// down (the item comes back in the error).
            pub fn put(&self, item: T) -> Result<(), PutError<T>> {
                self.core.put_until(item, None)
            }

            #[doc = concat!("Adds `item` if there is room now; [`PutError::Full`] otherwise.\n\n```\nuse multiproc::queue::{", stringify!($name), ", PutError};\n\nlet q = ", stringify!($name), "::new(1);\nq.try_put(1).unwrap();\nassert_eq!(q.try_put(2), Err(PutError::Full(2)));\n```")]
            pub fn try_put(&self, item: T) -> Result<(), PutError<T>> {
                self.core.try_put(item)
            }

            /// Adds `item`, waiting at most `timeout` for room;
            /// [`PutError::Full`] (with the item) if none came.
            pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
                self.core.put_until(item, Some(deadline_after(timeout)))
            }

            /// Takes the next item, waiting for one. Fails only once the queue
            /// is shut down *and* empty.
            pub fn get(&self) -> Result<T, GetError> {
                self.core.get_until(None)
            }

            /// Takes the next item if there is one now; [`GetError::Empty`]
            /// otherwise.
            pub fn try_get(&self) -> Result<T, GetError> {
                self.core.try_get()
            }

            #[doc = concat!("Takes the next item, waiting at most `timeout` (Python's `get(True, timeout)`); [`GetError::Empty`] if none came.\n\n```\nuse std::time::Duration;\nuse multiproc::queue::{", stringify!($name), ", GetError};\n\nlet q = ", stringify!($name), "::<u8>::new(0);\nassert_eq!(q.get_timeout(Duration::from_millis(10)), Err(GetError::Empty));\n```")]
            pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
                self.core.get_until(Some(deadline_after(timeout)))
            }

            /// The number of items in the queue. Exact, not an estimate
            /// (unlike Python's `qsize`, which is approximate and raises on
            /// macOS for `multiprocessing` queues) — though other threads may
            /// change it right after.
            pub fn len(&self) -> usize {
                self.core.len()
            }

            /// True if the queue holds no item.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// True if the queue is bounded and holds `maxsize` items.
            pub fn is_full(&self) -> bool {
                self.maxsize().is_some_and(|c| self.len() >= c)
            }

            /// The bound; `None` if unbounded.
            pub fn maxsize(&self) -> Option<usize> {
                self.core.capacity()
            }

            #[doc = concat!("Marks one item taken by `get` as processed, for [`join`](Self::join). One call too many is a [`TaskDoneError`], and changes nothing.\n\n```\nlet q = multiproc::queue::", stringify!($name), "::new(0);\nq.put(1).unwrap();\nq.get().unwrap();\nassert!(q.task_done().is_ok());\nassert!(q.task_done().is_err());\nq.join(); // nothing unfinished: returns at once\n```")]
            pub fn task_done(&self) -> Result<(), TaskDoneError> {
                self.core.task_done()
            }

            /// Items put and not yet marked done by [`task_done`](Self::task_done).
            pub fn unfinished_tasks(&self) -> usize {
                self.core.unfinished_tasks()
            }

            /// Waits until every item put has been marked done by
            /// [`task_done`](Self::task_done).
            pub fn join(&self) {
                self.core.join_until(None);
            }

            /// [`join`](Self::join) for at most `timeout`; false if items were
            /// still unfinished then.
            pub fn join_timeout(&self, timeout: Duration) -> bool {
                self.core.join_until(Some(deadline_after(timeout)))
            }

            #[doc = concat!("Shuts the queue down (Python 3.13's `shutdown`): every `put`, waiting or not, fails with [`PutError::ShutDown`]; `get` still returns the items left, then fails with [`GetError::ShutDown`]. With `immediate`, the items left are dropped (and counted done for `join`) and waiting `join`s return.\n\n```\nuse multiproc::queue::{", stringify!($name), ", GetError, PutError};\n\nlet q = ", stringify!($name), "::new(0);\nq.put(1).unwrap();\nq.shutdown(false);\nassert_eq!(q.put(2), Err(PutError::ShutDown(2)));\nassert_eq!(q.get(), Ok(1));\nassert_eq!(q.get(), Err(GetError::ShutDown));\n```")]
            pub fn shutdown(&self, immediate: bool) {
                self.core.shutdown(immediate)
            }

            /// True once [`shutdown`](Self::shutdown) was called.
            pub fn is_shutdown(&self) -> bool {
                self.core.is_shutdown()
            }
        }

        impl<T: $($bound +)+> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("len", &self.len())
                    .field("maxsize", &self.maxsize())
                    .field("unfinished_tasks", &self.unfinished_tasks())
                    .field("shutdown", &self.is_shutdown())
                    .finish()
            }
        }
    };
}

queue_type! {
    /// A first-in, first-out queue between threads — Python's `queue.Queue`.
    ///
    /// A cloneable handle: clones are the same queue. Queues bounded at up
    /// to 65,536 items are lock-free rings of our own, allocated up front:
    /// one compare-and-swap per `put` and per `get`, whose position words
    /// also carry the shutdown, the sleeping threads and the count for
    /// `join`, so no other atomic or fence is paid. Larger bounds use a
    /// deque under a lock that grows as needed, and unbounded queues
    /// crossbeam's `SegQueue`. A thread that must wait spins briefly, then
    /// sleeps, and is woken only when it can go on.
    ///
    /// ```
    /// use std::thread;
    /// use multiproc::queue::Queue;
    ///
    /// let q = Queue::new(2);
    /// let consumer = {
    ///     let q = q.clone();
    ///     thread::spawn(move || (0..5).map(|_| { let x = q.get().unwrap(); q.task_done().unwrap(); x }).sum::<i32>())
    /// };
    /// for i in 0..5 {
    ///     q.put(i).unwrap(); // waits while the queue holds 2 items
    /// }
    /// q.join(); // every item was taken and marked done
    /// assert_eq!(consumer.join().unwrap(), 10);
    /// ```
    Queue, FifoCore, Send
}

queue_type! {
    /// A last-in, first-out queue (a stack) — Python's `queue.LifoQueue`.
    ///
    /// ```
    /// let q = multiproc::queue::LifoQueue::new(0);
    /// for i in 1..=3 {
    ///     q.put(i).unwrap();
    /// }
    /// assert_eq!([q.get().unwrap(), q.get().unwrap(), q.get().unwrap()], [3, 2, 1]);
    /// ```
    LifoQueue, LifoCore, Send
}

queue_type! {
    /// A queue that hands out the smallest item first — Python's
    /// `queue.PriorityQueue`. Use `(priority, item)` tuples to order by a
    /// priority.
    ///
    /// ```
    /// let q = multiproc::queue::PriorityQueue::new(0);
    /// q.put((2, "write")).unwrap();
    /// q.put((1, "read")).unwrap();
    /// q.put((3, "close")).unwrap();
    /// assert_eq!(q.get().unwrap(), (1, "read"));
    /// assert_eq!(q.get().unwrap(), (2, "write"));
    /// ```
    PriorityQueue, PriorityCore, Send, Ord
}
