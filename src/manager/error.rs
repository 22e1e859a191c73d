//! What can go wrong with a manager call.

use std::io;

use crate::codec::CodecError;
use crate::ipc::{ConnectError, RecvError, SendError};
use crate::process::StartError;

use super::protocol::Fault;

/// Why a [`Manager`](super::Manager) call did not do what was asked.
///
/// A blocking call says how it ended in the vocabulary of its family:
/// a queue's `get_timeout` gives [`Empty`](ManagerError::Empty), its
/// `put_timeout` [`Full`](ManagerError::Full); a lock's or an event's
/// timed wait returns `false`.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// The server process could not be started.
    #[error("cannot start the manager's server: {0}")]
    Start(#[from] StartError),
    /// The server could not be reached, or the handshake failed (a wrong
    /// key shows here: [`ConnectError::Auth`]).
    #[error("cannot connect to the manager: {0}")]
    Connect(#[from] ConnectError),
    /// The server closed the connection (it was shut down, or died) before
    /// it answered. Whatever the call asked may or may not have been done.
    #[error("the manager's server is gone: the connection closed before it answered")]
    ServerGone,
    /// The object is not on the server: deleted, or the server is not the
    /// one that made it.
    #[error("no object {0} on the manager's server (deleted, or another server)")]
    NoSuchObject(u64),
    /// A name is taken by an object of another kind, or a handle of one
    /// kind was used as another.
    #[error("the object is a {is}, not a {wanted}")]
    WrongKind {
        /// What the object is.
        is: String,
        /// What the caller took it for.
        wanted: String,
    },
    /// A list index past the end.
    #[error("index {index} is out of range for a list of {len} items")]
    IndexOutOfRange {
        /// The index given.
        index: u64,
        /// The list's length when it was tried.
        len: u64,
    },
    /// A queue's `try_get`/`get_timeout` found nothing in time.
    #[error("the queue is empty")]
    Empty,
    /// A queue's `try_put`/`put_timeout` found no room in time.
    #[error("the queue is full")]
    Full,
    /// A queue's `task_done` called more times than items were put.
    #[error(transparent)]
    TaskDone(#[from] crate::ipc::TaskDoneError),
    /// `release` of a lock that nobody holds.
    #[error("release of a lock that is not held")]
    NotLocked,
    /// A read-modify-write could not apply to the stored value: not a
    /// number of that type, or the sum overflows.
    #[error("cannot update the value: {0}")]
    Update(String),
    /// A registered object's type is not registered with the server.
    #[error(
        "the manager's server does not serve the type {0}: register it with Manager::builder().register::<T>()"
    )]
    NotRegistered(String),
    /// A registered object's method panicked on the server (the server
    /// and the object stay up).
    #[error("the object's method panicked on the server: {}", crate::panic::text(.message, .location.as_deref()))]
    Panicked {
        /// The panic's message.
        message: String,
        /// Where, if known.
        location: Option<String>,
    },
    /// The server refused a request it could not read (another build's
    /// types, a forged or damaged message).
    #[error("the manager's server refused the request: {0}")]
    Refused(String),
    /// The server is shutting down.
    #[error("the manager's server is shutting down")]
    ShuttingDown,
    /// A key, value or reply could not be encoded or decoded, or is larger
    /// than the message size limit.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The server's answer was not one this request can have.
    #[error("the manager's server answered out of protocol: {0}")]
    Protocol(String),
    /// The operating system refused.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

impl From<Fault> for ManagerError {
    fn from(f: Fault) -> ManagerError {
        match f {
            Fault::NoSuchObject(id) => ManagerError::NoSuchObject(id),
            Fault::WrongKind { is, wanted } => ManagerError::WrongKind { is, wanted },
            Fault::Unsupported { op, kind } => ManagerError::WrongKind {
                is: kind,
                wanted: format!("object with the operation {op}"),
            },
            Fault::IndexOutOfRange { index, len } => ManagerError::IndexOutOfRange { index, len },
            Fault::Empty => ManagerError::Empty,
            Fault::Full => ManagerError::Full,
            Fault::NotLocked => ManagerError::NotLocked,
            Fault::TaskDone => ManagerError::TaskDone(crate::ipc::TaskDoneError),
            Fault::Update(why) => ManagerError::Update(why),
            Fault::NotRegistered(t) => ManagerError::NotRegistered(t),
            Fault::Panicked { message, location } => ManagerError::Panicked { message, location },
            Fault::Refused(why) => ManagerError::Refused(why),
            Fault::ShuttingDown => ManagerError::ShuttingDown,
        }
    }
}

impl From<SendError> for ManagerError {
    fn from(e: SendError) -> ManagerError {
        match e {
            SendError::Closed => ManagerError::ServerGone,
            SendError::Codec(e) => ManagerError::Codec(e),
            SendError::Io(e) => ManagerError::Io(e),
        }
    }
}

impl From<RecvError> for ManagerError {
    fn from(e: RecvError) -> ManagerError {
        match e {
            RecvError::Closed | RecvError::Truncated { .. } => ManagerError::ServerGone,
            RecvError::Codec(e) => ManagerError::Codec(e),
            RecvError::Io(e) => ManagerError::Io(e),
            RecvError::Empty | RecvError::Timeout => {
                ManagerError::Protocol("no answer where a blocking read was made".into())
            }
        }
    }
}
