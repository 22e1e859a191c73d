//! Executors: pools that run tasks and give a [`Future`](crate::futures::Future)
//! for each (Python's `concurrent.futures` executors).
//!
//! | executor | runs | where |
//! |---|---|---|
//! | [`ThreadPool`] | any `FnOnce() -> R + Send` closure | threads of this process |
//! | [`ProcessPool`] | fn items and closures that capture nothing, serde arguments | worker processes; a dead worker fails only its task |
//!
//! Both have the same builder words (`max_workers`, `build() ->
//! io::Result`), the same `new(max_workers)` (which panics only if the OS
//! refuses a thread, like `std::thread::spawn`), the same `map`/`map_with`
//! ([`MapOptions`]: `chunksize`, `buffersize`) and `shutdown(wait,
//! cancel_futures)`, and both implement [`Executor`], for code that runs on
//! either.

mod contract;
mod process_pool;
mod thread_pool;

pub use contract::{Executor, MapOptions};

/// The progress bar crate that [`ProcessMap::progress`] draws with (cargo
/// feature `progress`).
#[cfg(feature = "progress")]
pub use indicatif;
#[cfg(feature = "progress")]
pub use process_pool::WithProgress;
#[cfg(feature = "redis")]
pub use process_pool::redis;
pub use process_pool::{
    Builder as ProcessPoolBuilder, PoolStats, ProcessMap, ProcessMapUnordered, ProcessPool,
    TaskOptions,
};
pub use thread_pool::{Builder as ThreadPoolBuilder, ThreadMap, ThreadPool};
