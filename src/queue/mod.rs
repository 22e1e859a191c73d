//! Queues between threads — Python's `queue` module.
//!
//! | type | order | Python |
//! |---|---|---|
//! | [`Queue`] | first in, first out | `queue.Queue` |
//! | [`LifoQueue`] | last in, first out | `queue.LifoQueue` |
//! | [`PriorityQueue`] | smallest first | `queue.PriorityQueue` |
//! | [`SimpleQueue`] | first in, first out, unbounded, no `task_done` | `queue.SimpleQueue` |
//!
//! Every blocking call comes in three forms: `put` / `try_put` /
//! `put_timeout` and `get` / `try_get` / `get_timeout`. `len`, `is_empty`
//! and `is_full` are exact. `task_done` and `join` track processing, and
//! `shutdown` ends a queue's life as in Python 3.13. Queues are cloneable
//! handles; clones are the same queue.
//!
//! The producer and consumer of the notes, with a queue of two:
//!
//! ```
//! use std::thread;
//! use multiproc::queue::Queue;
//!
//! let q = Queue::new(2);
//! let producer = {
//!     let q = q.clone();
//!     thread::spawn(move || {
//!         for i in 0..5 {
//!             q.put(format!("item {i}")).unwrap();
//!         }
//!     })
//! };
//! let got: Vec<String> = (0..5).map(|_| q.get().unwrap()).collect();
//! producer.join().unwrap();
//! assert_eq!(got[4], "item 4");
//! ```
//!
//! Queues between *processes* are another matter (shared memory, codecs);
//! these are for threads of one process.

mod core;
mod error;
mod fifo;
mod kinds;
mod simple;
mod store;
mod waitlist;

pub use error::{GetError, PutError, TaskDoneError};
pub use kinds::{LifoQueue, PriorityQueue, Queue};
pub use simple::SimpleQueue;
