//! Unix socket pairs, descriptor passing and waiting with deadlines.

use std::collections::VecDeque;
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, Shutdown, SocketFlags, SocketType,
};

/// The most descriptors one message may carry (Linux allows 253).
pub(crate) const MAX_FDS: usize = 64;

/// A connected pair of Unix stream sockets, both close-on-exec.
pub(crate) fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

/// Stops reading (`read == true`) or writing on a socket.
pub(crate) fn shutdown(fd: BorrowedFd<'_>, read: bool) -> io::Result<()> {
    let how = if read {
        Shutdown::Read
    } else {
        Shutdown::Write
    };
    Ok(rustix::net::shutdown(fd, how)?)
}

/// What a send failed on.
#[derive(Debug)]
pub(crate) enum SendFailure {
    /// The peer is gone (EPIPE, ECONNRESET).
    Closed,
    /// Any other error.
    Io(io::Error),
}

/// Writes all of `parts` to `fd` (blocking), passing `fds` with the first
/// byte. Never raises SIGPIPE.
pub(crate) fn send_all(
    fd: BorrowedFd<'_>,
    parts: &[&[u8]],
    fds: &[BorrowedFd<'_>],
) -> Result<(), SendFailure> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let mut sent = 0usize;
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut first = true;
    while sent < total {
        // Slices of what is left.
        let mut skip = sent;
        let mut iov: [IoSlice<'_>; 4] = [IoSlice::new(&[]); 4];
        let mut n = 0;
        for p in parts {
            if skip >= p.len() {
                skip -= p.len();
                continue;
            }
            if n == iov.len() {
                break;
            }
            iov[n] = IoSlice::new(&p[skip..]);
            skip = 0;
            n += 1;
        }
        let result = if first && !fds.is_empty() {
            let mut control = SendAncillaryBuffer::new(&mut space);
            if !control.push(SendAncillaryMessage::ScmRights(fds)) {
                return Err(SendFailure::Io(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "too many descriptors in one message",
                )));
            }
            rustix::net::sendmsg(fd, &iov[..n], &mut control, SendFlags::NOSIGNAL)
        } else {
            rustix::net::sendmsg(
                fd,
                &iov[..n],
                &mut SendAncillaryBuffer::default(),
                SendFlags::NOSIGNAL,
            )
        };
        match result {
            Ok(k) => {
                sent += k;
                first = false;
            }
            Err(Errno::INTR) => {}
            Err(Errno::PIPE) | Err(Errno::CONNRESET) => return Err(SendFailure::Closed),
            Err(Errno::AGAIN) => {
                // Only on a socket someone made non-blocking: wait for room.
                wait_fds(&[(fd, false)], None).map_err(SendFailure::Io)?;
            }
            Err(e) => return Err(SendFailure::Io(e.into())),
        }
    }
    Ok(())
}

/// Outcome of one receive.
#[derive(Debug)]
pub(crate) enum Received {
    /// This many bytes arrived (descriptors, if any, were appended to the queue).
    Bytes(usize),
    /// The peer closed its end.
    Eof,
    /// Nothing is there now (non-blocking receive only).
    WouldBlock,
}

/// One `recvmsg` into `buf`, appending received descriptors to `fds`.
pub(crate) fn recv_some(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut VecDeque<OwnedFd>,
    nonblocking: bool,
) -> io::Result<Received> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut flags = RecvFlags::CMSG_CLOEXEC;
    if nonblocking {
        flags |= RecvFlags::DONTWAIT;
    }
    loop {
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut iov = [IoSliceMut::new(buf)];
        match rustix::net::recvmsg(fd, &mut iov, &mut control, flags) {
            Ok(msg) => {
                for m in control.drain() {
                    if let RecvAncillaryMessage::ScmRights(received) = m {
                        fds.extend(received);
                    }
                }
                if msg.flags.contains(rustix::net::ReturnFlags::CTRUNC) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "descriptors were lost: more than the receive buffer holds",
                    ));
                }
                return Ok(if msg.bytes == 0 {
                    Received::Eof
                } else {
                    Received::Bytes(msg.bytes)
                });
            }
            Err(Errno::INTR) => continue,
            Err(Errno::AGAIN) => return Ok(Received::WouldBlock),
            Err(Errno::CONNRESET) => return Ok(Received::Eof),
            Err(e) => return Err(e.into()),
        }
    }
}

/// `true` if `fd` polls readable (or hung up) right now.
pub(crate) fn readable_now(fd: BorrowedFd<'_>) -> bool {
    let mut p = [PollFd::from_borrowed_fd(fd, PollFlags::IN)];
    matches!(rustix::event::poll(&mut p, Some(&Timespec { tv_sec: 0, tv_nsec: 0 })), Ok(n) if n > 0)
}

/// Waits until one of `fds` is ready — readable when the flag is `true`,
/// writable otherwise (hang-up and errors count as ready) — or `deadline`
/// passes. Returns which are ready (all `false` on timeout).
pub(crate) fn wait_fds(
    fds: &[(BorrowedFd<'_>, bool)],
    deadline: Option<Instant>,
) -> io::Result<Vec<bool>> {
    let mut polls: Vec<PollFd<'_>> = fds
        .iter()
        .map(|(fd, read)| {
            PollFd::from_borrowed_fd(*fd, if *read { PollFlags::IN } else { PollFlags::OUT })
        })
        .collect();
    loop {
        let timeout = match deadline {
            None => None,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                Some(Timespec {
                    tv_sec: left.as_secs() as _,
                    tv_nsec: left.subsec_nanos() as _,
                })
            }
        };
        match rustix::event::poll(&mut polls, timeout.as_ref()) {
            Ok(_) => break,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(polls.iter().map(|p| !p.revents().is_empty()).collect())
}

/// Duplicates a descriptor (close-on-exec).
pub(crate) fn dup(fd: impl AsFd) -> io::Result<OwnedFd> {
    fd.as_fd().try_clone_to_owned()
}
