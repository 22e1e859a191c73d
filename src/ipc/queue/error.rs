//! Errors of the inter-process queues.

use crate::codec::CodecError;

/// Why a `put` did not add the message.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    /// `try_put`: the queue is full (by count or by bytes), or another
    /// producer is in the middle of a message; `put_timeout`: still so at
    /// the deadline (a message larger than the ring that had begun to
    /// stream is withdrawn: no consumer receives part of it). Python's
    /// `queue.Full`, for both.
    #[error("the queue is full")]
    Full,
    /// The queue was shut down.
    #[error("the queue is shut down")]
    ShutDown,
    /// The value could not be encoded, is larger than the queue's message
    /// limit, or holds a handle (handles travel over a `Connection`).
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// Why a `get` returned no message.
#[derive(Debug, thiserror::Error)]
pub enum GetError {
    /// `try_get`: no message is there (or another consumer is taking one);
    /// `get_timeout`: none came before the deadline. Python's
    /// `queue.Empty`, for both.
    #[error("the queue is empty")]
    Empty,
    /// The queue was shut down and every message in it has been taken.
    #[error("the queue is shut down and empty")]
    ShutDown,
    /// The message does not decode as the requested type (it is consumed).
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The shared ring holds bytes that are no record: some process wrote
    /// into the queue's memory by other means.
    #[error("the queue's shared memory is corrupt: {0}")]
    Corrupt(String),
}

/// `task_done` was called more times than there were messages put.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("task_done() called more times than there were items put")]
pub struct TaskDoneError;
