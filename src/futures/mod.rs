//! Futures: one result type for every executor (Python's
//! `concurrent.futures.Future`, `wait` and `as_completed`).
//!
//! | item | what |
//! |---|---|
//! | [`Future`] | `result`, `result_timeout`, `try_result`, `cancel`, `done`, `running`, `add_done_callback`, `.await` |
//! | [`CancelOnDrop`] | a `Future` that cancels its task when dropped (for `select!` and `timeout`) |
//! | [`TaskError`] | why there is no value: panicked, cancelled, timed out, shut down, broken |
//! | [`wait`] | block until the first, the first failed, or all futures are done |
//! | [`as_completed`], [`as_completed_timeout`] | iterate over futures in the order they finish |
//!
//! ```
//! use multiproc::executor::ThreadPool;
//! use multiproc::futures::{as_completed, TaskError};
//!
//! let pool = ThreadPool::new(4);
//! let futures: Vec<_> = (0..8u64)
//!     .map(|i| pool.submit(move || if i == 3 { panic!("no threes") } else { i * i }))
//!     .collect();
//! let mut sum = 0;
//! let mut failed = 0;
//! for f in as_completed(futures) {
//!     match f.result() {
//!         Ok(v) => sum += v,
//!         Err(TaskError::Panicked { message, .. }) => { assert_eq!(message, "no threes"); failed += 1 }
//!         Err(e) => panic!("{e}"),
//!     }
//! }
//! assert_eq!((sum, failed), (140 - 9, 1));
//! ```

mod error;
mod future;
mod on_drop;
pub(crate) mod state;
mod wait;

pub use error::TaskError;
pub use future::Future;
pub use on_drop::CancelOnDrop;
pub use wait::{
    AsCompleted, AsCompletedTimeout, ReturnWhen, Waited, as_completed, as_completed_timeout, wait,
};
