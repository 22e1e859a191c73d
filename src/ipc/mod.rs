//! Channels between processes (and threads).
//!
//! The pieces:
//!
//! - [`Pipe`]: [`Pipe::duplex`] gives two [`Connection`]s, [`Pipe::simplex`] a
//!   [`Receiver`] and a [`Sender`]; Python's `multiprocessing.Pipe`.
//! - [`Connection`]: framed messages over a stream socket — `send`/`recv`
//!   of any serde type, `send_bytes`/`recv_bytes` without serde, `poll`,
//!   timeouts, and handles (a `Connection` itself) passed along with their
//!   descriptors.
//! - [`Listener`] and [`Client`]: connections between processes that did not
//!   start each other, over a Unix socket (a path or an abstract name) or
//!   TCP, each one authenticated both ways by an [`AuthKey`] (see [`auth`]);
//!   Python's `multiprocessing.connection.Listener` and `Client`.
//! - [`Queue`], [`JoinableQueue`], [`SimpleQueue`]: queues between
//!   processes in shared memory, with exact `len`, surviving processes
//!   killed inside `put` or `get`; Python's `multiprocessing.Queue` & co.
//! - [`shared`]: `Value`, `Array`, `Atomic` and named `SharedMemory`.
//! - [`wait`]: one call that waits on many connections, listeners and
//!   processes; Python's `multiprocessing.connection.wait`.

mod address;
pub mod auth;
mod connection;
mod listener;
pub(crate) mod mailbox;
mod pipe;
mod queue;
mod ready;
pub mod shared;
mod signal;

pub use address::{Address, ToAddress};
pub use auth::{AuthError, AuthKey};
pub(crate) use connection::Payload;
pub use connection::{Connection, RecvError, SendError};
pub use listener::{Client, ConnectError, DEFAULT_HANDSHAKE_TIMEOUT, Listener};
pub use pipe::{Pipe, Receiver, Sender};
pub use queue::{
    DEFAULT_CAPACITY, GetError, JoinableQueue, MAX_MAXSIZE, Messages, MessagesIter, PutError,
    Queue, SimpleQueue, TaskDoneError,
};
pub use ready::{Waitable, wait, wait_timeout};
