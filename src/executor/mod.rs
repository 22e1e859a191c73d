//! Executors: pools that run tasks and give a [`Future`](crate::futures::Future)
//! for each (Python's `concurrent.futures` executors).
//!
//! | executor | runs | where |
//! |---|---|---|
//! | [`ThreadPool`] | any `FnOnce() -> R + Send` closure | threads of this process |

mod process_pool;
mod thread_pool;

pub use process_pool::{Builder as ProcessPoolBuilder, ProcessMap, ProcessPool, TaskOptions};
pub use thread_pool::{Builder as ThreadPoolBuilder, Map, ThreadPool};
