//! Processes that run a Rust function; Python's `multiprocessing.Process`.
//!
//! ```
//! use multiproc::process::{self, Process};
//!
//! let mut p = Process::builder().name("worker").start(|n: u32| {
//!     // This runs in another process, with its own address space.
//!     (process::current_process().name, (1..=n).product::<u32>())
//! }, 5)?;
//! let (name, factorial) = p.join()?;
//! assert_eq!((name.as_str(), factorial), ("worker", 120));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What runs in the child
//!
//! Fn items and closures that capture nothing, with one argument and a
//! result of any serde type. The function is named by its address relative to
//! an anchor in the same binary, so the child must be the same executable (it
//! checks, and fails with [`ProcessError::Failed`] otherwise). Nothing needs
//! to be called from `main`: a constructor that runs before `main` takes over
//! in a child, so the program's `main` never runs there — in a binary, an
//! example, a test under `cargo test` or a doctest alike.
//!
//! # Panic handling
//!
//! A panic in the child is caught there, printed on its stderr (which is the
//! parent's) by the panic hook, and returned by [`Process::join`] as
//! [`ProcessError::Panicked`] with its message and location; the child exits
//! with code 1, as Python's does on an exception. A child built with
//! `panic = "abort"` dies of `SIGABRT` instead: [`ProcessError::Died`].

mod child;
mod child_proc;
mod error;
mod forkserver;
mod handle;
mod registry;
pub(crate) mod remote;

pub use crate::os::proc::ExitStatus;
pub use error::{ProcessError, StartError};
pub use forkserver::ensure_running as ensure_fork_server;
pub use handle::{Builder, Process, StartMethod};
pub use registry::ProcessInfo;
pub use remote::RemoteFn;

/// This process: its pid and name (`"MainProcess"` unless it is a child).
pub fn current_process() -> ProcessInfo {
    registry::current()
}

/// The process that started this one, or `None` in the main process.
pub fn parent_process() -> Option<ProcessInfo> {
    registry::parent()
}

/// Children started by this process that are still running (the fork server
/// is not one of them). Reaps the ones that ended after their handle was
/// dropped.
pub fn active_children() -> Vec<ProcessInfo> {
    registry::active()
}

/// The number of CPUs this process may use (its affinity mask and cgroup
/// quota taken into account); Python's `os.process_cpu_count()`.
pub fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
