//! Errors of the thread queues. A `put` that fails gives the item back.

/// Why a `put` did not add the item; the item comes back inside.
#[derive(Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PutError<T> {
    /// `try_put`: the queue is full; `put_timeout`: still full when the
    /// timeout passed. Python's `queue.Full`, for both.
    #[error("the queue is full")]
    Full(T),
    /// The queue was shut down.
    #[error("the queue is shut down")]
    ShutDown(T),
}

impl<T> PutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            PutError::Full(t) | PutError::ShutDown(t) => t,
        }
    }
}

impl<T> std::fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PutError::Full(_) => "Full(..)",
            PutError::ShutDown(_) => "ShutDown(..)",
        })
    }
}

/// Why a `get` has no item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GetError {
    /// `try_get`: the queue is empty; `get_timeout`: still empty when the
    /// timeout passed. Python's `queue.Empty`, for both.
    #[error("the queue is empty")]
    Empty,
    /// The queue was shut down and is empty.
    #[error("the queue is shut down and empty")]
    ShutDown,
}

/// `task_done` was called more times than items were put.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("task_done() called more times than there were items in the queue")]
pub struct TaskDoneError;
