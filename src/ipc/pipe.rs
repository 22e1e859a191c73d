//! `Pipe`: a connected pair of channel ends.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::connection::{Connection, RecvError, SendError};
use crate::os::sock;

/// Makes connected pairs of channel ends; Python's `multiprocessing.Pipe`.
///
/// Both kinds work between threads and between processes: pass an end to a
/// child process as its argument (or inside a message) and keep the other.
///
/// ```
/// use multiproc::ipc::Pipe;
/// let (rx, tx) = Pipe::simplex()?;
/// tx.send(&"one way")?;
/// assert_eq!(rx.recv::<String>()?, "one way");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Pipe;

impl Pipe {
    /// Two ends that can each send and receive.
    pub fn duplex() -> io::Result<(Connection, Connection)> {
        let (a, b) = sock::socketpair()?;
        Ok((Connection::from_fd(a), Connection::from_fd(b)))
    }

    /// A receiving end and a sending end (Python's `Pipe(duplex=False)`).
    pub fn simplex() -> io::Result<(Receiver, Sender)> {
        let (a, b) = sock::socketpair()?;
        sock::shutdown(a.as_fd(), false)?;
        sock::shutdown(b.as_fd(), true)?;
        Ok((
            Receiver(Connection::from_fd(a)),
            Sender(Connection::from_fd(b)),
        ))
    }
}

/// The receiving end of [`Pipe::simplex`]: the receive half of a
/// [`Connection`].
#[derive(Debug, Serialize, Deserialize)]
pub struct Receiver(Connection);

impl Receiver {
    pub(crate) fn connection(&self) -> &Connection {
        &self.0
    }
    /// See [`Connection::recv`].
    pub fn recv<T: DeserializeOwned>(&self) -> Result<T, RecvError> {
        self.0.recv()
    }
    /// See [`Connection::try_recv`].
    pub fn try_recv<T: DeserializeOwned>(&self) -> Result<T, RecvError> {
        self.0.try_recv()
    }
    /// See [`Connection::recv_timeout`].
    pub fn recv_timeout<T: DeserializeOwned>(&self, timeout: Duration) -> Result<T, RecvError> {
        self.0.recv_timeout(timeout)
    }
    /// See [`Connection::recv_bytes`].
    pub fn recv_bytes(&self) -> Result<Vec<u8>, RecvError> {
        self.0.recv_bytes()
    }
    /// See [`Connection::try_recv_bytes`].
    pub fn try_recv_bytes(&self) -> Result<Vec<u8>, RecvError> {
        self.0.try_recv_bytes()
    }
    /// See [`Connection::recv_bytes_timeout`].
    pub fn recv_bytes_timeout(&self, timeout: Duration) -> Result<Vec<u8>, RecvError> {
        self.0.recv_bytes_timeout(timeout)
    }
    /// See [`Connection::poll`].
    pub fn poll(&self, timeout: Duration) -> Result<bool, RecvError> {
        self.0.poll(timeout)
    }
    /// See [`Connection::set_max_message_size`].
    pub fn set_max_message_size(&self, bytes: usize) {
        self.0.set_max_message_size(bytes)
    }
}

/// The sending end of [`Pipe::simplex`]: the send half of a [`Connection`].
#[derive(Debug, Serialize, Deserialize)]
pub struct Sender(Connection);

impl Sender {
    /// See [`Connection::send`].
    pub fn send<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), SendError> {
        self.0.send(value)
    }
    /// See [`Connection::send_bytes`].
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<(), SendError> {
        self.0.send_bytes(bytes)
    }
    /// See [`Connection::set_max_message_size`].
    pub fn set_max_message_size(&self, bytes: usize) {
        self.0.set_max_message_size(bytes)
    }
}

impl AsFd for Receiver {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl AsFd for Sender {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
