//! Executors: pools that run tasks and give a [`Future`](crate::futures::Future)
//! for each (Python's `concurrent.futures` executors).
//!
//! | executor | runs | where |
//! |---|---|---|
//! | [`ThreadPool`] | any `FnOnce() -> R + Send` closure | threads of this process |
//! | [`ProcessPool`] | fn items and closures that capture nothing, serde arguments | worker processes; a dead worker fails only its task |

mod process_pool;
mod thread_pool;

/// The progress bar crate that [`ProcessMap::progress`] draws with (cargo
/// feature `progress`).
#[cfg(feature = "progress")]
pub use indicatif;
#[cfg(feature = "progress")]
pub use process_pool::WithProgress;
pub use process_pool::{
    Builder as ProcessPoolBuilder, ProcessMap, ProcessMapUnordered, ProcessPool, TaskOptions,
};
pub use thread_pool::{Builder as ThreadPoolBuilder, Map, ThreadPool};
