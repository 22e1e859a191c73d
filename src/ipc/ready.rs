//! `wait`: block until one of many connections, listeners or processes is
//! ready; Python's `multiprocessing.connection.wait`.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use super::connection::Connection;
use super::listener::Listener;
use super::pipe::Receiver;
use crate::blocking::deadline_after;
use crate::os::sock;

/// Something [`wait`] can wait on.
///
/// | object | ready when |
/// |---|---|
/// | [`Connection`], [`Receiver`] | a whole message can be received without blocking, or the peer closed, or the stream broke (`recv` says which) |
/// | [`Listener`] | a client is waiting to be accepted |
/// | [`Process`](crate::process::Process) | the process has ended (its pidfd) |
///
/// Other descriptors can join in: implement [`wait_fd`](Self::wait_fd) with
/// a descriptor that polls readable when the object is ready.
pub trait Waitable {
    /// A descriptor that polls readable when the object may be ready.
    fn wait_fd(&self) -> BorrowedFd<'_>;

    /// Whether the object is ready without looking at the descriptor alone:
    /// `Some(true)` ready, `Some(false)` not ready even if the descriptor is
    /// readable (say, half a message has arrived), `None` when only the
    /// descriptor can tell (the default).
    fn ready_now(&self) -> Option<bool> {
        None
    }
}

impl Waitable for Connection {
    fn wait_fd(&self) -> BorrowedFd<'_> {
        self.as_fd()
    }
    fn ready_now(&self) -> Option<bool> {
        Connection::ready_now(self)
    }
}

impl Waitable for Receiver {
    fn wait_fd(&self) -> BorrowedFd<'_> {
        self.as_fd()
    }
    fn ready_now(&self) -> Option<bool> {
        self.connection().ready_now()
    }
}

impl Waitable for Listener {
    fn wait_fd(&self) -> BorrowedFd<'_> {
        self.as_fd()
    }
}

/// Waits until at least one of `objects` is ready and returns the indices of
/// all that are ready, in order. An empty list returns at once (nothing can
/// ever become ready).
///
/// ```
/// use multiproc::ipc::{self, Pipe, Waitable};
/// let (a, a_peer) = Pipe::duplex()?;
/// let (b, b_peer) = Pipe::duplex()?;
/// b_peer.send(&"ping")?;
/// let ready = ipc::wait(&[&a as &dyn Waitable, &b])?;
/// assert_eq!(ready, [1]);
/// assert_eq!(b.recv::<String>()?, "ping");
/// # drop(a_peer);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn wait(objects: &[&dyn Waitable]) -> io::Result<Vec<usize>> {
    wait_until(objects, None)
}

/// Like [`wait`], but waits at most `timeout`; an empty result means that
/// none became ready in time. `Duration::ZERO` only looks.
///
/// ```
/// use std::time::Duration;
/// use multiproc::ipc::{self, Pipe};
/// let (a, _peer) = Pipe::duplex()?;
/// assert!(ipc::wait_timeout(&[&a], Duration::from_millis(10))?.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn wait_timeout(objects: &[&dyn Waitable], timeout: Duration) -> io::Result<Vec<usize>> {
    wait_until(objects, Some(deadline_after(timeout)))
}

fn wait_until(objects: &[&dyn Waitable], deadline: Option<Instant>) -> io::Result<Vec<usize>> {
    if objects.is_empty() {
        return Ok(Vec::new());
    }
    let fds: Vec<(BorrowedFd<'_>, bool)> = objects.iter().map(|o| (o.wait_fd(), true)).collect();
    // The first round only looks; later rounds block until the deadline.
    let mut until = Some(Instant::now());
    loop {
        let readable = sock::wait_fds(&fds, until)?;
        // Objects that know better than their descriptor decide for
        // themselves; the rest are ready when their descriptor is readable.
        let ready: Vec<usize> = objects
            .iter()
            .zip(&readable)
            .enumerate()
            .filter(|(_, (o, r))| o.ready_now().unwrap_or(**r))
            .map(|(i, _)| i)
            .collect();
        if !ready.is_empty() || deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(ready);
        }
        until = deadline;
    }
}
