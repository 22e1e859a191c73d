//! The one error type of every executor's futures.

use crate::panic::PanicReport;

/// Why a [`Future`](super::Future) has no value for you.
///
/// The same enum serves every executor, so code that waits on futures does
/// not care where the work ran.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// The task panicked; the panic was contained and the worker lives on.
    #[error("the task {}", crate::panic::text(.message, .location.as_deref()))]
    Panicked {
        /// The panic message.
        message: String,
        /// `file:line:column` of the panic, when known.
        location: Option<String>,
    },
    /// The task was cancelled before it ran.
    #[error("the task was cancelled")]
    Cancelled,
    /// `result_timeout` or `try_result`: the task is not done yet. It goes
    /// on; ask again later. (The caller stopped waiting; compare
    /// [`DeadlineExceeded`](Self::DeadlineExceeded), where the task was
    /// stopped.)
    #[error("timed out waiting for the task (it is still pending)")]
    Timeout,
    /// The executor was shut down before it ran the task.
    #[error("the executor was shut down before the task ran")]
    ShutDown,
    /// The executor cannot run tasks any more.
    #[error("the executor is broken: {0}")]
    Broken(String),
    /// The worker process running the task died (killed, aborted, out of
    /// memory, exited): the task's own failure; the pool replaced the
    /// worker and runs the other tasks.
    #[error("the worker process running the task died: {status}")]
    WorkerDied {
        /// How the worker ended.
        status: crate::process::ExitStatus,
    },
    /// The worker machine running the task was lost (its agent stopped
    /// renewing its lease: killed, frozen, cut off) — a pool whose workers
    /// are reached through Redis. The task had started (or, on an agent
    /// that takes tasks ahead, `ServeOptions::prefetch`, may have), so it
    /// is not run again unless it asked for retries: no task runs twice.
    #[error("the worker running the task was lost ({worker})")]
    WorkerLost {
        /// The lost worker's name.
        worker: String,
    },
    /// The task ran past its own timeout
    /// ([`TaskOptions::timeout`](crate::executor::TaskOptions)); its worker
    /// was killed and replaced. (The task was stopped; compare
    /// [`Timeout`](Self::Timeout), where only the caller stopped waiting.)
    #[error("the task ran past its deadline of {0:?}; its worker was killed")]
    DeadlineExceeded(std::time::Duration),
    /// The value was already taken by an earlier `result` or `.await`.
    #[error("the value was already taken from this future")]
    Retrieved,
}

impl From<PanicReport> for TaskError {
    fn from(p: PanicReport) -> Self {
        TaskError::Panicked {
            message: p.message,
            location: p.location,
        }
    }
}
