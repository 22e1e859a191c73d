//! One client connection as both of its ends use it: the authenticated
//! socket, and — over a Unix socket — a shared-memory
//! [`Mailbox`](crate::ipc::mailbox) that carries the requests and replies
//! that fit in it, so that a round trip between two awake processes makes
//! no system call.
//!
//! The client makes the mailbox and sends it as its first request
//! ([`Request::Mailbox`](super::protocol::Request::Mailbox)); the server's
//! answer to that one still comes by the socket, every message after it
//! through the mailbox (or, too large, by the socket with a note in the
//! mailbox). TCP connections — other machines — use the socket alone.

use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{self, CodecError, DEFAULT_MAX_MESSAGE_SIZE, HEADER_LEN};
use crate::ipc::mailbox::{Dir, Mailbox, Taken};
use crate::ipc::{Connection, RecvError, SendError};
use crate::os::sock;

/// Each way, the largest message the mailbox carries itself.
pub(crate) const MAILBOX_BYTES: usize = 64 << 10;

/// What a handle in a message read from the mailbox is told: a message
/// with handles is sent by the socket, with its descriptors.
const IN_MAILBOX: &str = "a message in a manager's shared-memory mailbox holds a handle";

/// How long a receive on the socket polls before it sleeps (the mailbox
/// has its own spin). A/B on the 2-core machine, `manager_dict_ops` over
/// the socket, 5 alternating runs: medians 318 k ops/s sleeping at once,
/// 356 k polling 20 µs, 309 k polling 50 µs (longer polls take the
/// processor from the other side).
const SPIN: Duration = Duration::from_micros(20);

/// How long a client waiting for its reply sleeps between looks at its
/// server (a server killed mid-call is noticed within this).
pub(crate) const CLIENT_NAP: Duration = Duration::from_millis(5);

/// How long a server's connection thread with nothing to do sleeps between
/// looks at its client (a client killed holding a lock is noticed within
/// this; a client that ends normally closes its mailbox, which wakes the
/// thread at once). Each idle connection costs the server this many
/// wake-ups.
pub(crate) const SERVER_NAP: Duration = Duration::from_millis(100);

/// One end of a connection.
pub(crate) struct Channel {
    sock: Arc<Connection>,
    mailbox: Option<Mailbox>,
    /// The direction this end posts in.
    out: Dir,
    /// Messages taken in the other direction.
    seen: u32,
    buf: Vec<u8>,
    /// The process that made it: a forked child's copy must not close the
    /// mailbox its parent still uses.
    pid: u32,
}

impl Channel {
    /// A channel over `sock` posting in `out` (a client posts requests).
    pub(crate) fn new(sock: Arc<Connection>, out: Dir) -> Channel {
        Channel {
            sock,
            mailbox: None,
            out,
            seen: 0,
            buf: Vec::new(),
            pid: crate::os::proc::getpid(),
        }
    }

    /// The socket.
    pub(crate) fn socket(&self) -> &Connection {
        &self.sock
    }

    /// From now on, messages go through `mailbox`.
    pub(crate) fn attach(&mut self, mailbox: Mailbox) {
        self.mailbox = Some(mailbox);
    }

    /// Whether the other end said it will post no more.
    pub(crate) fn is_closed(&self) -> bool {
        self.mailbox.as_ref().is_some_and(Mailbox::is_closed)
    }

    /// Sends `message`: through the mailbox if it fits and carries no
    /// descriptor, else by the socket (with a note in the mailbox).
    pub(crate) fn send<T: Serialize + ?Sized>(&self, message: &T) -> Result<(), SendError> {
        let frame = codec::encode(message, DEFAULT_MAX_MESSAGE_SIZE)?;
        let Some(mailbox) = &self.mailbox else {
            return self.sock.send_frame(&frame);
        };
        let payload = &frame.bytes[HEADER_LEN..];
        if frame.fds.is_empty() && payload.len() <= mailbox.capacity() {
            mailbox.post(self.out, Some(payload));
        } else {
            // The note first: the other end reads the socket only once it
            // has it, and a frame larger than the socket's buffer is not
            // written before it does.
            mailbox.post(self.out, None);
            self.sock.send_frame(&frame)?;
        }
        Ok(())
    }

    /// Receives the next message, as long as it takes; ends with
    /// [`RecvError::Closed`] when the other end is gone (its socket closed,
    /// or it closed the mailbox) or `stop()` says to — which it looks at
    /// after each `nap` asleep.
    pub(crate) fn recv<T: DeserializeOwned>(
        &mut self,
        nap: Duration,
        stop: impl Fn() -> bool,
    ) -> Result<T, RecvError> {
        let Some(mailbox) = &self.mailbox else {
            return self.sock.recv_spinning(SPIN);
        };
        let theirs = match self.out {
            Dir::Request => Dir::Reply,
            Dir::Reply => Dir::Request,
        };
        loop {
            match mailbox.take(theirs, &mut self.seen, nap, None, &mut self.buf) {
                // A message with handles goes by the socket (`Elsewhere`).
                Taken::Here => return Ok(codec::decode_plain(&self.buf, IN_MAILBOX)?),
                Taken::Elsewhere => return self.sock.recv(),
                Taken::NotYet => {
                    if stop() || mailbox.is_closed() || sock::peer_closed(self.sock.as_fd()) {
                        return Err(RecvError::Closed);
                    }
                }
                Taken::Corrupt => {
                    return Err(RecvError::Codec(CodecError::Malformed(
                        "the mailbox holds a length past its end".into(),
                    )));
                }
            }
        }
    }
}

/// An end that goes says it will post no more, which wakes the other.
impl Drop for Channel {
    fn drop(&mut self) {
        if let Some(mailbox) = &self.mailbox
            && self.pid == crate::os::proc::getpid()
        {
            mailbox.close();
        }
    }
}
