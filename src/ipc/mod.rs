//! Channels between processes (and threads).
//!
//! This layer has, so far:
//!
//! - [`Pipe`]: [`Pipe::duplex`] gives two [`Connection`]s, [`Pipe::simplex`] a
//!   [`Receiver`] and a [`Sender`]; Python's `multiprocessing.Pipe`.
//! - [`Connection`]: framed messages over a Unix stream socket — `send`/`recv`
//!   of any serde type, `send_bytes`/`recv_bytes` without serde, `poll`,
//!   timeouts, and handles (a `Connection` itself) passed along with their
//!   descriptors.

mod connection;
mod pipe;

pub use connection::{Connection, RecvError, SendError};
pub use pipe::{Pipe, Receiver, Sender};
