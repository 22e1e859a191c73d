//! Errors of the process layer.

use std::io;

use crate::codec::CodecError;
use crate::ipc::RecvError;
use crate::os::proc::ExitStatus;

/// Why a process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The argument could not be encoded.
    #[error("cannot send the argument: {0}")]
    Argument(#[from] CodecError),
    /// The fork server could not be started or reached.
    #[error("fork server: {0}")]
    ForkServer(String),
    /// The operating system refused (no more processes, descriptors, ...).
    #[error("cannot start the process: {0}")]
    Io(#[from] io::Error),
}

/// Why [`Process::join`](super::Process::join) has no value for you.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The function panicked in the child.
    #[error("the process {}", crate::panic::text(.message, .location.as_deref()))]
    Panicked {
        /// The panic message.
        message: String,
        /// `file:line:column` of the panic, when known.
        location: Option<String>,
    },
    /// The process ended without returning a value: it called `exit`, was
    /// killed by a signal, aborted, or ran out of memory.
    #[error("the process ended with {status} before returning a value")]
    Died {
        /// How it ended.
        status: ExitStatus,
    },
    /// `join_timeout` or `try_join`: the process is still running (ask
    /// again later).
    #[error("timed out: the process is still running")]
    Timeout,
    /// The child could not call the function: not the same executable as its
    /// parent, or the argument did not decode in the child.
    #[error("the child could not run the function: {0}")]
    Failed(String),
    /// The value the child sent could not be received or decoded.
    #[error("cannot receive the result: {0}")]
    Result(RecvError),
    /// The value was already taken by an earlier `join` (the same word as
    /// [`TaskError::Retrieved`](crate::futures::TaskError::Retrieved)).
    #[error("the value was already taken by an earlier join")]
    Retrieved,
    /// The operating system refused.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}
