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

/// Looks at what waits in the socket without taking it: copies up to
/// `buf.len()` bytes (no descriptors: those stay with the bytes they came
/// with) and says how many bytes wait in all. `Eof` when the peer closed and
/// nothing is left, `WouldBlock` when nothing waits.
pub(crate) fn peek(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(Received, usize)> {
    let flags = RecvFlags::PEEK | RecvFlags::DONTWAIT;
    loop {
        match rustix::net::recv(fd, &mut *buf, flags) {
            Ok((0, _)) if !buf.is_empty() => return Ok((Received::Eof, 0)),
            Ok((n, _)) => {
                let waiting = rustix::io::ioctl_fionread(fd)? as usize;
                return Ok((Received::Bytes(n), waiting.max(n)));
            }
            Err(Errno::INTR) => continue,
            Err(Errno::AGAIN) => return Ok((Received::WouldBlock, 0)),
            Err(Errno::CONNRESET) => return Ok((Received::Eof, 0)),
            Err(e) => return Err(e.into()),
        }
    }
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

/// One `recv` of at most `most` bytes appended to `buf`, into its spare
/// capacity (reserved here): nothing is zeroed first, which for a large
/// message would be one more pass over its memory. For the rest of a
/// message whose start (and with it any descriptors) has arrived: a plain
/// `recv` would drop descriptors sent with later bytes, so `most` must not
/// reach past the message.
pub(crate) fn recv_appending(
    fd: BorrowedFd<'_>,
    buf: &mut Vec<u8>,
    most: usize,
    nonblocking: bool,
) -> io::Result<Received> {
    buf.reserve(most);
    let mut flags = RecvFlags::empty();
    if nonblocking {
        flags |= RecvFlags::DONTWAIT;
    }
    loop {
        let spare = &mut buf.spare_capacity_mut()[..most];
        match rustix::net::recv(fd, spare, flags) {
            Ok(((got, _), _)) => {
                let n = got.len();
                if n == 0 {
                    return Ok(Received::Eof);
                }
                let len = buf.len() + n;
                // SAFETY: `recv` initialised the first `n` bytes of the spare
                // capacity (`got` is them), which `reserve` made room for.
                unsafe { buf.set_len(len) };
                return Ok(Received::Bytes(n));
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

/// Whether the peer of a stream socket has shut its end (or the socket
/// failed): what `poll(2)` says at once with `POLLRDHUP`.
pub(crate) fn peer_closed(fd: BorrowedFd<'_>) -> bool {
    let mut polls = [PollFd::from_borrowed_fd(fd, PollFlags::RDHUP)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    matches!(rustix::event::poll(&mut polls, Some(&zero)), Ok(n) if n > 0)
        && polls[0]
            .revents()
            .intersects(PollFlags::RDHUP | PollFlags::HUP | PollFlags::ERR)
}

/// Duplicates a descriptor (close-on-exec).
pub(crate) fn dup(fd: impl AsFd) -> io::Result<OwnedFd> {
    fd.as_fd().try_clone_to_owned()
}

/// Where a listening or connecting socket lives.
#[derive(Debug, Clone)]
pub(crate) enum SockAddr {
    /// A Unix socket at a path in the file system.
    Path(std::path::PathBuf),
    /// A Linux abstract Unix socket name (no file).
    Abstract(Vec<u8>),
    /// A TCP address.
    Inet(std::net::SocketAddr),
}

fn unix_addr(addr: &SockAddr) -> io::Result<Option<rustix::net::SocketAddrUnix>> {
    Ok(match addr {
        SockAddr::Path(p) => Some(rustix::net::SocketAddrUnix::new(p.as_path())?),
        SockAddr::Abstract(name) => Some(rustix::net::SocketAddrUnix::new_abstract_name(name)?),
        SockAddr::Inet(_) => None,
    })
}

fn stream_socket(addr: &SockAddr, flags: SocketFlags) -> io::Result<OwnedFd> {
    let family = match addr {
        SockAddr::Path(_) | SockAddr::Abstract(_) => AddressFamily::UNIX,
        SockAddr::Inet(std::net::SocketAddr::V4(_)) => AddressFamily::INET,
        SockAddr::Inet(std::net::SocketAddr::V6(_)) => AddressFamily::INET6,
    };
    Ok(rustix::net::socket_with(
        family,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | flags,
        None,
    )?)
}

/// A listening stream socket bound to `addr`. A Unix socket file gets mode
/// `0600` before the socket listens, so no other user can ever connect.
pub(crate) fn listen(addr: &SockAddr, backlog: i32) -> io::Result<OwnedFd> {
    let fd = stream_socket(addr, SocketFlags::NONBLOCK)?;
    match (addr, unix_addr(addr)?) {
        (_, Some(unix)) => rustix::net::bind(&fd, &unix)?,
        (SockAddr::Inet(inet), None) => {
            rustix::net::sockopt::set_socket_reuseaddr(&fd, true)?;
            rustix::net::bind(&fd, inet)?
        }
        (_, None) => unreachable!("only TCP addresses have no Unix form"),
    }
    if let SockAddr::Path(path) = addr {
        use std::os::unix::fs::PermissionsExt;
        if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
    }
    rustix::net::listen(&fd, backlog)?;
    Ok(fd)
}

/// The address a socket is bound to.
pub(crate) fn local_addr(fd: BorrowedFd<'_>) -> io::Result<SockAddr> {
    let any = rustix::net::getsockname(fd)?;
    if any.address_family() == AddressFamily::UNIX {
        let unix = rustix::net::SocketAddrUnix::try_from(any)?;
        if let Some(name) = unix.abstract_name() {
            return Ok(SockAddr::Abstract(name.to_vec()));
        }
        let path = unix.path_bytes().unwrap_or_default();
        use std::os::unix::ffi::OsStrExt;
        return Ok(SockAddr::Path(
            std::ffi::OsStr::from_bytes(path).to_owned().into(),
        ));
    }
    Ok(SockAddr::Inet(std::net::SocketAddr::try_from(any)?))
}

/// Accepts one connection from a non-blocking listening socket; the new
/// socket is blocking and close-on-exec. `Ok(None)` when none is waiting (or
/// it was reset before it could be accepted).
pub(crate) fn accept(fd: BorrowedFd<'_>) -> io::Result<Option<OwnedFd>> {
    loop {
        match rustix::net::accept_with(fd, SocketFlags::CLOEXEC) {
            Ok(conn) => {
                tune(conn.as_fd())?;
                return Ok(Some(conn));
            }
            Err(Errno::INTR) => continue,
            Err(Errno::AGAIN) | Err(Errno::CONNABORTED) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

/// A stream socket connected to `addr` (close-on-exec, blocking), or `None`
/// if `deadline` passed first. Connecting to a Unix socket whose backlog is
/// full waits until the listener accepts; the deadline bounds that wait too.
pub(crate) fn connect(addr: &SockAddr, deadline: Option<Instant>) -> io::Result<Option<OwnedFd>> {
    let fd = stream_socket(addr, SocketFlags::empty())?;
    if let Some(d) = deadline {
        // Blocking connects honour the send timeout, Unix and TCP alike. Zero
        // would mean "no timeout": wait at least a microsecond.
        let left = d.saturating_duration_since(Instant::now());
        let left = left.max(std::time::Duration::from_micros(1));
        rustix::net::sockopt::set_socket_timeout(
            &fd,
            rustix::net::sockopt::Timeout::Send,
            Some(left),
        )?;
    }
    let result = match (addr, unix_addr(addr)?) {
        (_, Some(unix)) => rustix::net::connect(&fd, &unix),
        (SockAddr::Inet(inet), None) => rustix::net::connect(&fd, inet),
        (_, None) => unreachable!("only TCP addresses have no Unix form"),
    };
    match result {
        Ok(()) => {}
        Err(Errno::AGAIN) | Err(Errno::INPROGRESS) if deadline.is_some() => return Ok(None),
        // Interrupted: the connection goes on in the background; wait for it.
        Err(Errno::INTR) => {
            if !wait_fds(&[(fd.as_fd(), false)], deadline)?[0] {
                return Ok(None);
            }
            if let Err(e) = rustix::net::sockopt::socket_error(&fd)? {
                return Err(e.into());
            }
        }
        Err(e) => return Err(e.into()),
    }
    if deadline.is_some() {
        rustix::net::sockopt::set_socket_timeout(&fd, rustix::net::sockopt::Timeout::Send, None)?;
    }
    tune(fd.as_fd())?;
    Ok(Some(fd))
}

/// Turns Nagle's algorithm off on TCP sockets: frames are sent whole and at
/// once, and small request/reply exchanges must not wait 40 ms for an ack.
fn tune(fd: BorrowedFd<'_>) -> io::Result<()> {
    if rustix::net::sockopt::socket_domain(fd)? != AddressFamily::UNIX {
        rustix::net::sockopt::set_tcp_nodelay(fd, true)?;
    }
    Ok(())
}

/// `true` if descriptors can travel over this socket (a Unix socket).
pub(crate) fn passes_fds(fd: BorrowedFd<'_>) -> bool {
    matches!(
        rustix::net::sockopt::socket_domain(fd),
        Ok(AddressFamily::UNIX)
    )
}

/// Fills `buf` from the kernel's random source (`getrandom(2)`).
pub(crate) fn random(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        match rustix::rand::getrandom(&mut buf[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
