//! A framed, duplex message channel over a Unix stream socket.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::blocking::deadline_after;
use crate::codec::{self, CodecError, DEFAULT_MAX_MESSAGE_SIZE, HEADER_LEN, Header};
use crate::os::sock::{self, Received, SendFailure};

/// Why a send failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The other end is closed.
    #[error("the other end of the connection is closed")]
    Closed,
    /// The value could not be encoded, or is larger than the limit.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The operating system refused.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

/// Why a receive returned no message.
#[derive(Debug, thiserror::Error)]
pub enum RecvError {
    /// The other end is closed and every message it sent has been received.
    #[error("the other end of the connection is closed")]
    Closed,
    /// `try_recv`: no complete message is there yet.
    #[error("no message is available")]
    Empty,
    /// `recv_timeout`: no complete message arrived in time. Bytes of a message
    /// that was arriving are kept for the next call.
    #[error("timed out waiting for a message")]
    Timeout,
    /// The other end closed in the middle of a message.
    #[error("the other end closed in the middle of a message ({got} of {expected} bytes)")]
    Truncated {
        /// Bytes of the frame (header included) that arrived.
        got: u64,
        /// Bytes the frame should have had.
        expected: u64,
    },
    /// The frame was oversize or malformed (the connection cannot be used for
    /// receiving any more: the stream is out of step), or its payload did not
    /// decode as the requested type (the message is consumed; the connection
    /// stays usable).
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The operating system refused.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

#[derive(Clone, Copy)]
enum Mode {
    Block,
    NonBlock,
    Until(Instant),
}

struct RxState {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    fds: VecDeque<OwnedFd>,
    eof: bool,
    /// Set after a framing error: the stream is out of step for good.
    broken: Option<CodecError>,
    /// The payload of a large frame while it arrives (its header is the
    /// frame at `start`, alone in `buf`): read into a buffer of its own,
    /// of its exact size and never zeroed, so that it is handed over as
    /// it is (a `Vec<u8>` result of 128 MiB is neither zeroed first nor
    /// moved after). `None` when no large frame is arriving.
    large: Option<Vec<u8>>,
}

/// The most a read asks for beyond the frame at hand.
const READ_CHUNK: usize = 64 << 10;
/// What a fresh buffer reads at first.
const FIRST_CHUNK: usize = 4 << 10;

/// One end of a [`Pipe`](super::Pipe), or of a connection made by a listener.
///
/// Messages are frames (see [`codec`](crate::codec)). `send` and `recv` can be
/// called from different threads at once (`&self`); two threads receiving at
/// once each get whole messages. A `Connection` is itself a handle: send it to
/// another process as a process argument or inside a message, and its socket
/// goes along.
///
/// ```
/// use multiproc::ipc::Pipe;
/// let (a, b) = Pipe::duplex()?;
/// a.send(&vec![1, 2, 3])?;
/// assert_eq!(b.recv::<Vec<i32>>()?, vec![1, 2, 3]);
/// b.send_bytes(b"raw")?;
/// assert_eq!(a.recv_bytes()?, b"raw");
/// drop(b);
/// assert!(matches!(a.recv::<i32>(), Err(multiproc::ipc::RecvError::Closed)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Connection {
    fd: OwnedFd,
    rx: Mutex<RxState>,
    tx: Mutex<()>,
    max: AtomicUsize,
    /// Descriptors can travel (a Unix socket, not TCP).
    passes_fds: bool,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("fd", &self.fd)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Wraps a connected Unix stream socket.
    pub(crate) fn from_fd(fd: OwnedFd) -> Connection {
        Connection::with_kind(fd, true)
    }

    /// Wraps a connected stream socket of any family (Unix or TCP).
    pub(crate) fn from_socket(fd: OwnedFd) -> Connection {
        let passes_fds = sock::passes_fds(fd.as_fd());
        Connection::with_kind(fd, passes_fds)
    }

    fn with_kind(fd: OwnedFd, passes_fds: bool) -> Connection {
        Connection {
            fd,
            rx: Mutex::new(RxState {
                buf: Vec::new(),
                start: 0,
                end: 0,
                fds: VecDeque::new(),
                eof: false,
                broken: None,
                large: None,
            }),
            tx: Mutex::new(()),
            max: AtomicUsize::new(DEFAULT_MAX_MESSAGE_SIZE),
            passes_fds,
        }
    }

    /// Whether descriptors can travel (a Unix socket, not TCP).
    pub(crate) fn passes_fds(&self) -> bool {
        self.passes_fds
    }

    /// The largest payload this end sends or accepts, in bytes.
    pub fn max_message_size(&self) -> usize {
        self.max.load(Ordering::Relaxed)
    }

    /// Sets the largest payload this end sends or accepts (default
    /// [`DEFAULT_MAX_MESSAGE_SIZE`]). A larger incoming frame is an error
    /// ([`CodecError::TooLarge`]) before any of its payload is read.
    pub fn set_max_message_size(&self, bytes: usize) {
        self.max.store(bytes, Ordering::Relaxed);
    }

    /// Sends a value. Blocks while the other end's buffer is full.
    pub fn send<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), SendError> {
        self.send_frame(&codec::encode(value, self.max_message_size())?)
    }

    /// Sends a frame encoded earlier by [`codec::encode`].
    pub(crate) fn send_frame(&self, frame: &codec::Frame) -> Result<(), SendError> {
        self.write_frame(&frame.bytes, &frame.fds)
    }

    /// Writes a frame's bytes (encoded by [`codec::encode_into`]) with the
    /// descriptors that travel beside them.
    pub(crate) fn write_frame(&self, bytes: &[u8], fds: &[OwnedFd]) -> Result<(), SendError> {
        if !fds.is_empty() && !self.passes_fds {
            return Err(CodecError::Encode(
                "handles (connections, queues, ...) cannot travel over a TCP connection".into(),
            )
            .into());
        }
        let fds: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
        self.write(&[bytes], &fds)
    }

    /// Sends raw bytes as one message, without serde.
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<(), SendError> {
        self.send_parts(&[bytes])
    }

    /// Sends one message whose payload is `parts`, one after the other,
    /// written from where they are (no copy into one buffer).
    pub(crate) fn send_parts(&self, parts: &[&[u8]]) -> Result<(), SendError> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let limit = self.max_message_size();
        if len > limit {
            return Err(CodecError::TooLarge {
                size: len as u64,
                limit: limit as u64,
            }
            .into());
        }
        let header = Header {
            len: len as u64,
            fds: 0,
        }
        .to_bytes();
        let mut all = Vec::with_capacity(parts.len() + 1);
        all.push(&header[..]);
        all.extend_from_slice(parts);
        self.write(&all, &[])
    }

    fn write(&self, parts: &[&[u8]], fds: &[BorrowedFd<'_>]) -> Result<(), SendError> {
        let _guard = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        sock::send_all(self.fd.as_fd(), parts, fds).map_err(|e| match e {
            SendFailure::Closed => SendError::Closed,
            SendFailure::Io(e) => SendError::Io(e),
        })
    }

    /// Receives a value, blocking until one arrives or the other end closes.
    pub fn recv<T: DeserializeOwned>(&self) -> Result<T, RecvError> {
        self.frame(Mode::Block, decode)
    }

    /// Receives a value, blocking until one arrives or the other end closes;
    /// `None` for an empty message (a doorbell: nothing to decode).
    pub(crate) fn recv_unless_empty<T: DeserializeOwned>(&self) -> Result<Option<T>, RecvError> {
        self.frame(Mode::Block, |p, fds| {
            if p.is_empty() {
                Ok(None)
            } else {
                decode(p, fds).map(Some)
            }
        })
    }

    /// Receives a value if a whole one is already there ([`RecvError::Empty`]
    /// otherwise).
    pub fn try_recv<T: DeserializeOwned>(&self) -> Result<T, RecvError> {
        self.frame(Mode::NonBlock, decode)
    }

    /// Receives a value, waiting at most `timeout` ([`RecvError::Timeout`]).
    pub fn recv_timeout<T: DeserializeOwned>(&self, timeout: Duration) -> Result<T, RecvError> {
        self.frame(Mode::Until(deadline_after(timeout)), decode)
    }

    /// Receives a value, first polling for it for up to `spin` (yielding
    /// the processor between looks) before sleeping: for a request/reply
    /// exchange whose answer usually comes within microseconds, where the
    /// sleep and wake-up would cost more than the wait.
    pub(crate) fn recv_spinning<T: DeserializeOwned>(
        &self,
        spin: Duration,
    ) -> Result<T, RecvError> {
        let start = Instant::now();
        loop {
            match self.try_recv() {
                Err(RecvError::Empty) => {}
                other => return other,
            }
            if start.elapsed() >= spin {
                return self.recv();
            }
            std::thread::yield_now();
        }
    }

    /// Receives one message as raw bytes.
    pub fn recv_bytes(&self) -> Result<Vec<u8>, RecvError> {
        self.frame(Mode::Block, |p, _| Ok(p.to_vec()))
    }

    /// Receives one message as raw bytes if a whole one is already there.
    pub fn try_recv_bytes(&self) -> Result<Vec<u8>, RecvError> {
        self.frame(Mode::NonBlock, |p, _| Ok(p.to_vec()))
    }

    /// Receives one message as raw bytes, waiting at most `timeout`.
    pub fn recv_bytes_timeout(&self, timeout: Duration) -> Result<Vec<u8>, RecvError> {
        self.frame(Mode::Until(deadline_after(timeout)), |p, _| Ok(p.to_vec()))
    }

    /// Waits at most `timeout` for something to receive: `true` when a message
    /// (or the end of the stream, or an error) is there to be received.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (a, b) = multiproc::ipc::Pipe::duplex()?;
    /// assert!(!b.poll(Duration::ZERO)?);
    /// a.send(&1u8)?;
    /// assert!(b.poll(Duration::from_secs(5))?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// `poll` takes nothing: it looks at the socket (`MSG_PEEK`,
    /// `FIONREAD`), so a connection whose socket another handle shares (one
    /// sent in a message keeps its sender's end too) can be polled in one
    /// process and received from in the other without losing a message.
    pub fn poll(&self, timeout: Duration) -> Result<bool, RecvError> {
        let deadline = deadline_after(timeout);
        let mut first = true;
        loop {
            let mut rx = self.rx.lock().unwrap_or_else(|e| e.into_inner());
            if self.whole_frame_waits(&mut rx)? {
                return Ok(true);
            }
            drop(rx);
            if !first {
                if Instant::now() >= deadline {
                    return Ok(false);
                }
                // Readable, but not a whole frame yet: its rest is on its way.
                std::thread::sleep(Duration::from_micros(50));
            }
            first = false;
            if !sock::wait_fds(&[(self.fd.as_fd(), true)], Some(deadline))?[0] {
                return Ok(false);
            }
        }
    }

    /// For [`wait`](super::wait): `Some(true)` when a whole message (or the
    /// end, or an error) can be received without blocking, `Some(false)` when
    /// not, `None` when another thread is receiving and only the socket can
    /// tell. Takes nothing from the socket.
    pub(crate) fn ready_now(&self) -> Option<bool> {
        let mut rx = match self.rx.try_lock() {
            Ok(rx) => rx,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        Some(self.whole_frame_waits(&mut rx).unwrap_or(true))
    }

    /// Whether a `recv` now would end without waiting: a whole frame is in
    /// this handle's buffer, or its rest waits in the socket, or the stream
    /// ended or broke. Looks only (`MSG_PEEK`), taking nothing — except
    /// when a frame too large to wait whole in the socket's buffer has begun
    /// to arrive: then what is there is read into this handle's buffer
    /// (else its sender could never finish).
    fn whole_frame_waits(&self, rx: &mut RxState) -> Result<bool, RecvError> {
        if rx.broken.is_some() || rx.eof {
            return Ok(true);
        }
        if rx.large.is_some() {
            // Too large to wait whole in the socket: read what is there.
            return self.read_what_is_there(rx);
        }
        let buffered = &rx.buf[rx.start..rx.end];
        let mut header = [0u8; HEADER_LEN];
        let have = buffered.len().min(HEADER_LEN);
        header[..have].copy_from_slice(&buffered[..have]);
        let (got, waiting) = sock::peek(self.fd.as_fd(), &mut header[have..])?;
        match got {
            Received::Eof => return Ok(true),
            Received::WouldBlock if buffered.len() < HEADER_LEN => return Ok(false),
            // Half a header: ready only if no more can come.
            Received::Bytes(n) if have + n < HEADER_LEN => {
                return Ok(sock::peer_closed(self.fd.as_fd()));
            }
            _ => {}
        }
        let need = match Header::parse(&header, self.max_message_size()) {
            // A bad header is an error `recv` reports at once.
            Err(_) => return Ok(true),
            Ok(h) => HEADER_LEN + h.len as usize,
        };
        if buffered.len() + waiting >= need {
            return Ok(true);
        }
        if waiting < READ_CHUNK && !sock::peer_closed(self.fd.as_fd()) {
            return Ok(false);
        }
        // Too large to wait whole in the socket, or its sender is gone with
        // half of it sent (`recv` then says `Truncated`): read what is there.
        self.read_what_is_there(rx)
    }

    /// Reads what the socket holds of the frame at hand; whether a `recv`
    /// now would end without waiting (a whole frame, or an error it
    /// reports).
    fn read_what_is_there(&self, rx: &mut RxState) -> Result<bool, RecvError> {
        match self.fill(rx, Mode::NonBlock) {
            Ok(_) => Ok(true),
            Err(RecvError::Empty) => Ok(false),
            Err(RecvError::Io(e)) => Err(RecvError::Io(e)),
            Err(_) => Ok(true),
        }
    }

    /// Every receive: waits (per `mode`) until one whole frame is buffered,
    /// then hands its payload and descriptors to `f` and consumes it.
    fn frame<R>(
        &self,
        mode: Mode,
        f: impl FnOnce(&[u8], Vec<OwnedFd>) -> Result<R, RecvError>,
    ) -> Result<R, RecvError> {
        let mut rx = self.rx.lock().unwrap_or_else(|e| e.into_inner());
        let header = self.fill(&mut rx, mode)?;
        if let Some(large) = take_large(&mut rx, header) {
            return f(&large.buf, large.fds);
        }
        consume(&mut rx, header, |rx, start, end, fds| {
            f(&rx.buf[start..end], fds)
        })
    }

    /// Takes a whole message if one is there ([`RecvError::Empty`] if not),
    /// as an owned [`Payload`]: a large message that fills this end's
    /// buffer alone is handed over in that buffer — no copy — and the
    /// buffer starts afresh. Descriptors that came with it are closed.
    pub(crate) fn try_recv_payload(&self) -> Result<Payload, RecvError> {
        let mut rx = self.rx.lock().unwrap_or_else(|e| e.into_inner());
        let header = self.fill(&mut rx, Mode::NonBlock)?;
        if let Some(large) = take_large(&mut rx, header) {
            return Ok(Payload::from(large.buf));
        }
        Ok(consume(&mut rx, header, |rx, start, end, _| {
            if end == rx.end && end - start >= READ_CHUNK {
                let mut buf = std::mem::take(&mut rx.buf);
                buf.truncate(end);
                Payload { buf, start }
            } else {
                Payload::from(rx.buf[start..end].to_vec())
            }
        }))
    }

    /// Reads until the buffer holds one whole frame (with its descriptors) and
    /// returns its header, without consuming it.
    fn fill(&self, rx: &mut RxState, mode: Mode) -> Result<Header, RecvError> {
        let limit = self.max_message_size();
        loop {
            if let Some(e) = &rx.broken {
                return Err(RecvError::Codec(e.clone()));
            }
            if rx.large.is_some() {
                return self.fill_large(rx, mode);
            }
            let avail = rx.end - rx.start;
            let mut need = HEADER_LEN;
            if avail >= HEADER_LEN {
                let hb: [u8; HEADER_LEN] = rx.buf[rx.start..rx.start + HEADER_LEN]
                    .try_into()
                    .expect("a slice of HEADER_LEN bytes");
                let header = match Header::parse(&hb, limit) {
                    Ok(h) => h,
                    Err(e) => {
                        rx.broken = Some(e.clone());
                        return Err(RecvError::Codec(e));
                    }
                };
                need = HEADER_LEN + header.len as usize;
                if avail >= need {
                    return whole(rx, header);
                }
            }
            if rx.eof {
                return Err(if avail == 0 {
                    RecvError::Closed
                } else {
                    RecvError::Truncated {
                        got: avail as u64,
                        expected: need as u64,
                    }
                });
            }
            if avail >= HEADER_LEN && need - avail >= READ_CHUNK {
                // A large frame: its payload goes to a buffer of its own
                // (with the bytes of it already here).
                let len = need - HEADER_LEN;
                let mut large = Vec::with_capacity(len);
                crate::os::pages::prefault_spare(&mut large);
                large.extend_from_slice(&rx.buf[rx.start + HEADER_LEN..rx.end]);
                rx.end = rx.start + HEADER_LEN;
                rx.large = Some(large);
                return self.fill_large(rx, mode);
            }
            // Make room for at least the rest of this frame.
            if rx.start > 0 && rx.buf.len() - rx.end < need.max(READ_CHUNK) {
                let (start, end) = (rx.start, rx.end);
                rx.buf.copy_within(start..end, 0);
                rx.end -= start;
                rx.start = 0;
            }
            // A fresh buffer starts small and doubles while reads fill it:
            // a connection that carries a few small messages (a child's
            // result) zeroes — and faults in — one page, not 64 KiB.
            let chunk = rx.buf.len().clamp(FIRST_CHUNK, READ_CHUNK);
            let want = (rx.start + need).max(rx.end + chunk);
            if rx.buf.len() < want {
                rx.buf.resize(want, 0);
            }
            let nonblocking = self.wait_for(mode)?;
            let RxState { buf, end, fds, .. } = rx;
            match sock::recv_some(self.fd.as_fd(), &mut buf[*end..], fds, nonblocking)? {
                Received::Bytes(n) => rx.end += n,
                Received::Eof => rx.eof = true,
                Received::WouldBlock => {
                    if let Mode::NonBlock = mode {
                        return Err(RecvError::Empty);
                    }
                }
            }
        }
    }
}

impl Connection {
    /// [`fill`](Self::fill) for a large frame whose payload arrives in a
    /// buffer of its own (`rx.large`): reads into its spare capacity —
    /// never zeroed, and never past the frame, whose descriptors came with
    /// its start — until it is whole.
    fn fill_large(&self, rx: &mut RxState, mode: Mode) -> Result<Header, RecvError> {
        let hb: [u8; HEADER_LEN] = rx.buf[rx.start..rx.start + HEADER_LEN]
            .try_into()
            .expect("a slice of HEADER_LEN bytes");
        let header = Header::parse(&hb, usize::MAX).expect("parsed when the frame began");
        let len = header.len as usize;
        loop {
            let got = rx.large.as_ref().map_or(0, Vec::len);
            if got == len {
                return whole(rx, header);
            }
            if rx.eof {
                return Err(RecvError::Truncated {
                    got: (HEADER_LEN + got) as u64,
                    expected: (HEADER_LEN + len) as u64,
                });
            }
            let nonblocking = self.wait_for(mode)?;
            let large = rx.large.as_mut().expect("a large frame arrives");
            match sock::recv_appending(self.fd.as_fd(), large, len - got, nonblocking)? {
                Received::Bytes(_) => {}
                Received::Eof => rx.eof = true,
                Received::WouldBlock => {
                    if let Mode::NonBlock = mode {
                        return Err(RecvError::Empty);
                    }
                }
            }
        }
    }

    /// Waits as `mode` says before a read; whether the read must not block.
    fn wait_for(&self, mode: Mode) -> Result<bool, RecvError> {
        Ok(match mode {
            Mode::Block => false,
            Mode::NonBlock => true,
            Mode::Until(deadline) => {
                let ready = sock::wait_fds(&[(self.fd.as_fd(), true)], Some(deadline))?;
                if !ready[0] {
                    return Err(RecvError::Timeout);
                }
                true
            }
        })
    }
}

/// A frame whose bytes are all there: whole, if its descriptors came too
/// (else the stream is broken for good).
fn whole(rx: &mut RxState, header: Header) -> Result<Header, RecvError> {
    if rx.fds.len() < header.fds as usize {
        let e = CodecError::Malformed(format!(
            "frame announces {} descriptors, {} arrived",
            header.fds,
            rx.fds.len()
        ));
        rx.broken = Some(e.clone());
        return Err(RecvError::Codec(e));
    }
    Ok(header)
}

/// A whole large frame taken out of `rx` (see [`RxState::large`]): its
/// payload in the buffer it arrived in, and its descriptors; `None` when
/// the frame at hand is not one.
fn take_large(rx: &mut RxState, header: Header) -> Option<Large> {
    let buf = rx.large.take()?;
    let fds = rx.fds.drain(..header.fds as usize).collect();
    rx.start += HEADER_LEN;
    if rx.start >= rx.end {
        rx.start = 0;
        rx.end = 0;
    }
    Some(Large { buf, fds })
}

/// A large frame's payload and descriptors.
struct Large {
    buf: Vec<u8>,
    fds: Vec<OwnedFd>,
}

/// A message's payload, owned: `buf[start..]` (a buffer taken over as it
/// is keeps what came before the payload in front of it).
#[derive(Debug)]
pub(crate) struct Payload {
    pub(crate) buf: Vec<u8>,
    pub(crate) start: usize,
}

impl Payload {
    /// The payload's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// The bytes from `skip` on, as a vector of their own (moved to the
    /// front in place, not copied elsewhere).
    pub(crate) fn into_vec_from(mut self, skip: usize) -> Vec<u8> {
        self.buf.drain(..self.start + skip);
        self.buf
    }

    /// Skips `n` more bytes.
    pub(crate) fn advance(mut self, n: usize) -> Payload {
        self.start += n;
        self
    }
}

impl From<Vec<u8>> for Payload {
    fn from(buf: Vec<u8>) -> Payload {
        Payload { buf, start: 0 }
    }
}

/// Consumes the whole frame `header` at the front of `rx`: `take` gets its
/// payload's place (`start..end` in `rx.buf`, which it may take away) and
/// its descriptors; then an emptied buffer starts over (and a large one is
/// given back).
fn consume<R>(
    rx: &mut RxState,
    header: Header,
    take: impl FnOnce(&mut RxState, usize, usize, Vec<OwnedFd>) -> R,
) -> R {
    let fds: Vec<OwnedFd> = rx.fds.drain(..header.fds as usize).collect();
    let start = rx.start + HEADER_LEN;
    let end = start + header.len as usize;
    rx.start = end;
    let result = take(rx, start, end, fds);
    if rx.start >= rx.end {
        rx.start = 0;
        rx.end = 0;
        if rx.buf.len() > 4 * READ_CHUNK {
            rx.buf = Vec::new();
        }
    }
    result
}

fn decode<T: DeserializeOwned>(payload: &[u8], fds: Vec<OwnedFd>) -> Result<T, RecvError> {
    Ok(codec::decode(payload, fds)?)
}

/// Wraps a connected Unix stream socket made elsewhere (say, by
/// `UnixStream::pair` or `accept`); its peer must speak multiproc's frames.
impl From<std::os::unix::net::UnixStream> for Connection {
    fn from(stream: std::os::unix::net::UnixStream) -> Connection {
        Connection::from_fd(OwnedFd::from(stream))
    }
}

impl AsFd for Connection {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Serialize for Connection {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        codec::handles::serialize_fd(self.fd.as_fd(), s)
    }
}

impl<'de> Deserialize<'de> for Connection {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        codec::handles::deserialize_fd(d).map(Connection::from_socket)
    }
}
