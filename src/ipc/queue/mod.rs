//! Queues between processes, in shared memory: [`Queue`], [`JoinableQueue`],
//! [`SimpleQueue`]; Python's `multiprocessing.Queue` and friends.
//!
//! A queue is a ring of bytes in a shared-memory segment (a `memfd`: nothing
//! in `/dev/shm`, ever) with robust locks for its producers and consumers;
//! see `ring` for the layout and for what happens when a process is killed
//! inside `put` or `get`. A message is encoded once into the ring and
//! decoded once out of it: no pipe, no feeder thread, no pickling in
//! between.

mod error;
mod messages;
mod ring;

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::ops::Deref;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use error::{GetError, PutError, TaskDoneError};
pub use messages::{Iter as MessagesIter, Messages};
use ring::{Ring, Stop};

use crate::blocking::{Wait, deadline_after};
use crate::codec::{self, CodecError, DEFAULT_MAX_MESSAGE_SIZE, HEADER_LEN};
use crate::sync::region::Region;

/// The ring's size unless told otherwise: 1 MiB. Measured on 64-byte
/// messages, a ring that stays in cache is faster (128 KiB: ~10 M msg/s,
/// 4 MiB: 3–9 M); on 1 MiB messages a bigger ring is (256 KiB: 13 GB/s,
/// 1 MiB: 18 GB/s). Messages larger than the ring still pass, streamed.
pub const DEFAULT_CAPACITY: usize = 1 << 20;

/// The most messages a queue can be bounded to (counts are 32-bit).
pub const MAX_MAXSIZE: usize = i32::MAX as usize;

/// A multi-producer, multi-consumer FIFO between processes (and threads).
///
/// `maxsize` bounds the count of messages (0: only the ring's bytes bound
/// it); the ring's byte capacity bounds their total size. A message larger
/// than the ring streams through it. Clone a `Queue` to share it between
/// threads; pass it to a child process as its argument (or over a
/// [`Connection`](crate::ipc::Connection)) to share it between processes.
///
/// ```
/// use std::time::Duration;
/// use multiproc::ipc::Queue;
/// use multiproc::process::Process;
///
/// let q: Queue<String> = Queue::new(16)?;
/// let mut writer = Process::start(|q: Queue<String>| {
///     for i in 0..5 {
///         q.put(&format!("message {i}")).unwrap();
///     }
/// }, q.clone())?;
/// for i in 0..5 {
///     assert_eq!(q.get_timeout(Duration::from_secs(10))?, format!("message {i}"));
/// }
/// writer.join()?;
/// assert!(q.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Differences from Python
///
/// - `len`, `is_empty` and `is_full` are exact (Python's `qsize` is
///   approximate, and raises on macOS).
/// - `put` returns once the message is in shared memory; there is no feeder
///   thread, so nothing is lost when the putting process exits right after.
/// - A process killed inside `put` or `get` leaves the queue usable: see
///   `ring`.
/// - `shutdown` stops every producer at once; consumers then drain what is
///   there and get [`GetError::ShutDown`] (Python 3.13's `shutdown`).
/// - Messages cannot carry handles (they travel as file descriptors, which
///   shared memory cannot hold): send those over a `Connection`.
///
/// # Waiting
///
/// A blocked `get` or `put` first spins — handing the processor over
/// between looks — for two rounds of 64 looks and at least 50 µs (70 to
/// 180 µs on a 2-core machine), then sleeps until the other side wakes it. A `put`
/// that finds the queue full spins until a sixteenth of the queue is free
/// rather than one place, so that a producer ahead of its consumer refills
/// in bursts instead of taking each place the moment it frees; once it
/// sleeps, any room lets it in. So a `put` may return that spin's length
/// after the first place freed, never later, and never fails for it
/// (`put_timeout` included). The `try_` calls look once and never wait.
pub struct Queue<T> {
    ring: Ring,
    max_message: usize,
    _type: PhantomData<fn(T) -> T>,
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("len", &self.ring.len())
            .field("maxsize", &self.ring.maxsize())
            .field("capacity", &self.ring.capacity())
            .finish_non_exhaustive()
    }
}

fn put_stop(stop: Stop) -> PutError {
    match stop {
        Stop::Timeout => PutError::Full,
        Stop::Closed => PutError::ShutDown,
        Stop::Corrupt(why) => PutError::Codec(CodecError::Malformed(why)),
    }
}

fn get_stop(stop: Stop) -> GetError {
    match stop {
        Stop::Timeout => GetError::Empty,
        Stop::Closed => GetError::ShutDown,
        Stop::Corrupt(why) => GetError::Corrupt(why),
    }
}

impl<T> Queue<T> {
    /// A queue of at most `maxsize` messages (0: no count bound) in a ring
    /// of [`DEFAULT_CAPACITY`] bytes.
    pub fn new(maxsize: usize) -> io::Result<Queue<T>> {
        Queue::with_capacity(maxsize, DEFAULT_CAPACITY)
    }

    /// A queue of at most `maxsize` messages in a ring of `bytes` bytes
    /// (rounded up to a power of two; at most 1 GiB). A bigger ring lets
    /// more large messages wait; messages larger than the ring still pass,
    /// streamed.
    pub fn with_capacity(maxsize: usize, bytes: usize) -> io::Result<Queue<T>> {
        if maxsize > MAX_MAXSIZE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("maxsize {maxsize} is above {MAX_MAXSIZE}"),
            ));
        }
        Ok(Queue::from_ring(Ring::create(bytes, maxsize)?))
    }

    fn from_ring(ring: Ring) -> Queue<T> {
        Queue {
            ring,
            max_message: DEFAULT_MAX_MESSAGE_SIZE,
            _type: PhantomData,
        }
    }

    /// Messages in the queue now: put, not yet taken. Exact.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// `len() == 0`.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `true` when `maxsize` messages wait (never for an unbounded queue).
    pub fn is_full(&self) -> bool {
        let max = self.ring.maxsize();
        max != 0 && self.len() >= max
    }

    /// The count bound (0: none).
    pub fn maxsize(&self) -> usize {
        self.ring.maxsize()
    }

    /// The ring's size in bytes.
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// The largest message this handle puts (default
    /// [`DEFAULT_MAX_MESSAGE_SIZE`]).
    pub fn set_max_message_size(&mut self, bytes: usize) {
        self.max_message = bytes;
    }

    /// Shuts the queue down for everyone (Python 3.13's
    /// `shutdown(immediate=False)`, the same words as the thread queues):
    /// waiting and later `put`s fail with [`PutError::ShutDown`]; `get`s
    /// drain what is there, then fail with [`GetError::ShutDown`].
    pub fn shutdown(&self) {
        self.ring.close()
    }

    /// `true` once [`shutdown`](Self::shutdown) was called (by any process).
    pub fn is_shutdown(&self) -> bool {
        self.ring.is_closed()
    }

    fn put_raw(&self, bytes: &[u8], wait: Wait) -> Result<(), PutError> {
        if bytes.len() > self.max_message {
            return Err(CodecError::TooLarge {
                size: bytes.len() as u64,
                limit: self.max_message as u64,
            }
            .into());
        }
        self.ring.put(bytes, wait.deadline()).map_err(put_stop)
    }

    fn get_raw(&self, wait: Wait) -> Result<Vec<u8>, GetError> {
        let mut buf = Vec::new();
        self.get_raw_into(&mut buf, wait)?;
        Ok(buf)
    }

    fn get_raw_into(&self, buf: &mut Vec<u8>, wait: Wait) -> Result<(), GetError> {
        self.ring.get_into(buf, wait.deadline()).map_err(get_stop)
    }

    /// Puts raw bytes as one message, without serde; take it with
    /// [`get_bytes`](Self::get_bytes). Blocks while the queue is full.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<(), PutError> {
        self.put_raw(bytes, Wait::Forever)
    }

    /// [`put_bytes`](Self::put_bytes) without waiting ([`PutError::Full`]).
    pub fn try_put_bytes(&self, bytes: &[u8]) -> Result<(), PutError> {
        self.put_raw(bytes, Wait::No)
    }

    /// [`put_bytes`](Self::put_bytes), waiting at most `timeout`.
    pub fn put_bytes_timeout(&self, bytes: &[u8], timeout: Duration) -> Result<(), PutError> {
        self.put_raw(bytes, Wait::timeout(timeout))
    }

    /// Takes one message as raw bytes. Blocks while the queue is empty.
    pub fn get_bytes(&self) -> Result<Vec<u8>, GetError> {
        self.get_raw(Wait::Forever)
    }

    /// [`get_bytes`](Self::get_bytes) without waiting ([`GetError::Empty`]).
    pub fn try_get_bytes(&self) -> Result<Vec<u8>, GetError> {
        self.get_raw(Wait::No)
    }

    /// [`get_bytes`](Self::get_bytes), waiting at most `timeout`.
    pub fn get_bytes_timeout(&self, timeout: Duration) -> Result<Vec<u8>, GetError> {
        self.get_raw(Wait::timeout(timeout))
    }

    /// Takes one message as raw bytes into `buf` (emptied first; its
    /// capacity is reused, so a loop that keeps one buffer allocates
    /// nothing per message; after an error it holds no message). Blocks
    /// while the queue is empty.
    ///
    /// ```
    /// use std::time::Duration;
    /// let q: multiproc::ipc::Queue<()> = multiproc::ipc::Queue::new(8)?;
    /// q.put_bytes(b"one")?;
    /// q.put_bytes(b"two")?;
    /// let mut buf = Vec::new();
    /// for want in [&b"one"[..], b"two"] {
    ///     q.get_bytes_into_timeout(&mut buf, Duration::from_secs(10))?;
    ///     assert_eq!(buf, want);
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_bytes_into(&self, buf: &mut Vec<u8>) -> Result<(), GetError> {
        self.get_raw_into(buf, Wait::Forever)
    }

    /// [`get_bytes_into`](Self::get_bytes_into) without waiting
    /// ([`GetError::Empty`]).
    pub fn try_get_bytes_into(&self, buf: &mut Vec<u8>) -> Result<(), GetError> {
        self.get_raw_into(buf, Wait::No)
    }

    /// [`get_bytes_into`](Self::get_bytes_into), waiting at most `timeout`.
    pub fn get_bytes_into_timeout(
        &self,
        buf: &mut Vec<u8>,
        timeout: Duration,
    ) -> Result<(), GetError> {
        self.get_raw_into(buf, Wait::timeout(timeout))
    }

    fn put_many_raw<B: AsRef<[u8]>>(&self, msgs: &[B], wait: Wait) -> Result<usize, PutError> {
        if let Some(big) = msgs.iter().find(|m| m.as_ref().len() > self.max_message) {
            return Err(CodecError::TooLarge {
                size: big.as_ref().len() as u64,
                limit: self.max_message as u64,
            }
            .into());
        }
        if msgs.is_empty() {
            return Ok(0);
        }
        self.ring.put_many(msgs, wait.deadline()).map_err(put_stop)
    }

    /// Puts `msgs` as raw messages, in order, under one turn of the
    /// producers' lock: the ring's tail is committed once for all those that
    /// fit (and again whenever it must wait for room), so a batch costs far
    /// less than a `put_bytes` per message. Blocks while the queue is full.
    ///
    /// Returns how many were put: all of them, unless the queue was shut
    /// down after some went in (then fewer, the first ones); an error when
    /// none did. A message over the queue's limit refuses the whole batch
    /// before anything is put.
    pub fn put_many_bytes<B: AsRef<[u8]>>(&self, msgs: &[B]) -> Result<usize, PutError> {
        self.put_many_raw(msgs, Wait::Forever)
    }

    /// [`put_many_bytes`](Self::put_many_bytes) without waiting: puts those
    /// that fit now (the first ones); [`PutError::Full`] if none does.
    pub fn try_put_many_bytes<B: AsRef<[u8]>>(&self, msgs: &[B]) -> Result<usize, PutError> {
        self.put_many_raw(msgs, Wait::No)
    }

    /// [`put_many_bytes`](Self::put_many_bytes), waiting at most `timeout`
    /// in all: those put by then (the first ones); [`PutError::Full`] if
    /// none.
    pub fn put_many_bytes_timeout<B: AsRef<[u8]>>(
        &self,
        msgs: &[B],
        timeout: Duration,
    ) -> Result<usize, PutError> {
        self.put_many_raw(msgs, Wait::timeout(timeout))
    }

    fn get_many_raw(&self, out: &mut Messages, max: usize, wait: Wait) -> Result<usize, GetError> {
        out.clear();
        with_scratch(|buf| {
            self.ring
                .get_many(max, wait.deadline(), buf, &mut |m, _| {
                    out.push(m);
                    true
                })
                .map_err(get_stop)
        })
    }

    /// Takes up to `max` messages (at least one: blocks while the queue is
    /// empty) as raw bytes into `out` (emptied first; its memory reused),
    /// under one turn of the consumers' lock, committing the ring's head
    /// once. Returns how many. A message larger than the ring, which
    /// streams through it in pieces, comes alone.
    pub fn get_many_bytes_into(&self, out: &mut Messages, max: usize) -> Result<usize, GetError> {
        self.get_many_raw(out, max, Wait::Forever)
    }

    /// [`get_many_bytes_into`](Self::get_many_bytes_into) without waiting
    /// ([`GetError::Empty`]).
    pub fn try_get_many_bytes_into(
        &self,
        out: &mut Messages,
        max: usize,
    ) -> Result<usize, GetError> {
        self.get_many_raw(out, max, Wait::No)
    }

    /// [`get_many_bytes_into`](Self::get_many_bytes_into), waiting at most
    /// `timeout` for the first message ([`GetError::Empty`]).
    pub fn get_many_bytes_into_timeout(
        &self,
        out: &mut Messages,
        max: usize,
        timeout: Duration,
    ) -> Result<usize, GetError> {
        self.get_many_raw(out, max, Wait::timeout(timeout))
    }
}

/// Scratch buffers are kept per thread up to this size; larger ones are
/// given back after use.
const SCRATCH_KEEP: usize = 16 << 20;

thread_local! {
    /// Encoding (puts) and raw bytes (typed gets) reuse one buffer per
    /// thread: no allocation per message, no page faults on fresh memory.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's scratch buffer (a fresh one if it is in use:
/// a `put` inside `Serialize` of another `put`).
fn with_scratch<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            let r = f(&mut buf);
            if buf.capacity() > SCRATCH_KEEP {
                *buf = Vec::new();
            }
            r
        }
        Err(_) => f(&mut Vec::new()),
    })
}

impl<T: Serialize> Queue<T> {
    fn put_value(&self, value: &T, wait: Wait) -> Result<(), PutError> {
        with_scratch(|buf| {
            codec::encode_plain_into(value, self.max_message, buf, HANDLES)?;
            self.put_raw(&buf[HEADER_LEN..], wait)
        })
    }

    /// Puts a value, blocking while the queue is full.
    pub fn put(&self, value: &T) -> Result<(), PutError> {
        self.put_value(value, Wait::Forever)
    }

    /// Puts a value if there is room now ([`PutError::Full`] otherwise).
    pub fn try_put(&self, value: &T) -> Result<(), PutError> {
        self.put_value(value, Wait::No)
    }

    /// Puts a value, waiting at most `timeout` for room
    /// ([`PutError::Full`]).
    pub fn put_timeout(&self, value: &T, timeout: Duration) -> Result<(), PutError> {
        self.put_value(value, Wait::timeout(timeout))
    }

    fn put_many_values(&self, values: &[T], wait: Wait) -> Result<usize, PutError> {
        let mut encoded = Messages::new();
        for value in values {
            with_scratch(|buf| {
                codec::encode_plain_into(value, self.max_message, buf, HANDLES)?;
                encoded.push(&buf[HEADER_LEN..]);
                Ok::<(), PutError>(())
            })?;
        }
        let slices: Vec<&[u8]> = encoded.iter().collect();
        self.put_many_raw(&slices, wait)
    }

    /// Puts `values`, in order, in one batch (see
    /// [`put_many_bytes`](Self::put_many_bytes)): all are encoded first (a
    /// value that does not encode refuses the batch before anything is
    /// put). Blocks while the queue is full. Returns how many were put:
    /// all, unless the queue was shut down after some went in.
    ///
    /// ```
    /// use std::time::Duration;
    /// let q: multiproc::ipc::Queue<u32> = multiproc::ipc::Queue::new(100)?;
    /// assert_eq!(q.put_many(&[1, 2, 3])?, 3);
    /// assert_eq!(q.get_many_timeout(10, Duration::from_secs(10))?, [1, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_many(&self, values: &[T]) -> Result<usize, PutError> {
        self.put_many_values(values, Wait::Forever)
    }

    /// [`put_many`](Self::put_many) without waiting: puts those that fit now
    /// (the first ones); [`PutError::Full`] if none does.
    pub fn try_put_many(&self, values: &[T]) -> Result<usize, PutError> {
        self.put_many_values(values, Wait::No)
    }

    /// [`put_many`](Self::put_many), waiting at most `timeout` in all: those
    /// put by then (the first ones); [`PutError::Full`] if none.
    pub fn put_many_timeout(&self, values: &[T], timeout: Duration) -> Result<usize, PutError> {
        self.put_many_values(values, Wait::timeout(timeout))
    }
}

/// Why a value holding a handle cannot go through a queue.
const HANDLES: &str = "handles (connections, queues, ...) cannot travel through a shared-memory queue; send them over a Connection";

impl<T: DeserializeOwned> Queue<T> {
    fn get_value(&self, wait: Wait) -> Result<T, GetError> {
        with_scratch(|buf| {
            self.ring.get_into(buf, wait.deadline()).map_err(get_stop)?;
            Ok(codec::decode_plain(buf, HANDLES)?)
        })
    }

    /// Takes the oldest value, blocking while the queue is empty.
    pub fn get(&self) -> Result<T, GetError> {
        self.get_value(Wait::Forever)
    }

    /// Takes the oldest value if there is one ([`GetError::Empty`]).
    pub fn try_get(&self) -> Result<T, GetError> {
        self.get_value(Wait::No)
    }

    /// Takes the oldest value, waiting at most `timeout`
    /// ([`GetError::Empty`]); Python's `get(True, timeout)`.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.get_value(Wait::timeout(timeout))
    }

    fn get_many_values(&self, max: usize, wait: Wait) -> Result<Vec<T>, GetError> {
        let mut values = Vec::new();
        let mut undecodable = None;
        with_scratch(|buf| {
            self.ring
                .get_many(max, wait.deadline(), buf, &mut |m, first| {
                    match codec::decode_plain(m, HANDLES) {
                        Ok(v) => {
                            values.push(v);
                            true
                        }
                        // The first message is taken even so, and said;
                        // a later one stays for the next call.
                        Err(e) => {
                            if first {
                                undecodable = Some(e);
                            }
                            false
                        }
                    }
                })
                .map_err(get_stop)
        })?;
        match undecodable {
            Some(e) => Err(e.into()),
            None => Ok(values),
        }
    }

    /// Takes up to `max` values, oldest first (at least one: blocks while
    /// the queue is empty), in one batch (see
    /// [`get_many_bytes_into`](Self::get_many_bytes_into)). A message that
    /// does not decode ends the batch before it and stays in the queue: the
    /// next call takes it alone and returns [`GetError::Codec`] (as `get`
    /// does), so no good value is lost behind a bad one.
    pub fn get_many(&self, max: usize) -> Result<Vec<T>, GetError> {
        self.get_many_values(max, Wait::Forever)
    }

    /// [`get_many`](Self::get_many) without waiting ([`GetError::Empty`]).
    pub fn try_get_many(&self, max: usize) -> Result<Vec<T>, GetError> {
        self.get_many_values(max, Wait::No)
    }

    /// [`get_many`](Self::get_many), waiting at most `timeout` for the first
    /// value ([`GetError::Empty`]).
    pub fn get_many_timeout(&self, max: usize, timeout: Duration) -> Result<Vec<T>, GetError> {
        self.get_many_values(max, Wait::timeout(timeout))
    }
}

impl<T> Clone for Queue<T> {
    /// Another handle to the same queue.
    fn clone(&self) -> Self {
        let region = self.ring.region().clone();
        let mut q = Queue::from_ring(Ring::from_region(region).expect("a valid ring"));
        q.max_message = self.max_message;
        q
    }
}

impl<T> AsFd for Queue<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.ring.region().as_fd()
    }
}

impl<T> Serialize for Queue<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.ring.region().serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for Queue<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let ring = Ring::from_region(Region::deserialize(d)?).map_err(serde::de::Error::custom)?;
        Ok(Queue::from_ring(ring))
    }
}

/// A [`Queue`] that counts unfinished tasks across processes: every `put`
/// adds one, [`task_done`](Self::task_done) removes one, [`join`](Self::join)
/// waits for none; Python's `multiprocessing.JoinableQueue`. Derefs to its
/// `Queue` for `put`, `get` and the rest.
///
/// ```
/// use multiproc::ipc::JoinableQueue;
/// let q: JoinableQueue<u32> = JoinableQueue::new(0)?;
/// q.put(&7)?;
/// assert_eq!(q.get()?, 7);
/// assert_eq!(q.unfinished_tasks(), 1);
/// q.task_done()?;
/// q.join();
/// assert!(q.task_done().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A consumer killed between its `get` and its `task_done` leaves that task
/// unfinished for good; [`join_timeout`](Self::join_timeout) bounds the wait.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct JoinableQueue<T>(Queue<T>);

impl<T> JoinableQueue<T> {
    /// See [`Queue::new`].
    pub fn new(maxsize: usize) -> io::Result<JoinableQueue<T>> {
        Ok(JoinableQueue(Queue::new(maxsize)?))
    }

    /// See [`Queue::with_capacity`].
    pub fn with_capacity(maxsize: usize, bytes: usize) -> io::Result<JoinableQueue<T>> {
        Ok(JoinableQueue(Queue::with_capacity(maxsize, bytes)?))
    }

    /// Marks one task done ([`TaskDoneError`], and no change, when none is
    /// unfinished).
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        if self.0.ring.task_done() {
            Ok(())
        } else {
            Err(TaskDoneError)
        }
    }

    /// Messages put and not yet marked done.
    pub fn unfinished_tasks(&self) -> usize {
        self.0.ring.unfinished() as usize
    }

    /// Waits until every message put has been marked done.
    pub fn join(&self) {
        let _ = self.0.ring.join(None);
    }

    /// Like [`join`](Self::join), at most `timeout`: `false` if tasks were
    /// still unfinished then.
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.0.ring.join(Some(deadline_after(timeout))).is_ok()
    }
}

impl<T> Deref for JoinableQueue<T> {
    type Target = Queue<T>;
    fn deref(&self) -> &Queue<T> {
        &self.0
    }
}

/// An unbounded (by count) queue with the short API of Python's
/// `multiprocessing.SimpleQueue`: `put`, `get`, `is_empty`, `close` — and
/// the rest of [`Queue`] through `Deref`.
///
/// ```
/// let q = multiproc::ipc::SimpleQueue::<String>::new()?;
/// q.put(&"one".into())?;
/// assert_eq!(q.get()?, "one");
/// assert!(q.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct SimpleQueue<T>(Queue<T>);

impl<T> SimpleQueue<T> {
    /// A queue bounded only by its ring's [`DEFAULT_CAPACITY`] bytes.
    pub fn new() -> io::Result<SimpleQueue<T>> {
        Ok(SimpleQueue(Queue::new(0)?))
    }
}

impl<T> Deref for SimpleQueue<T> {
    type Target = Queue<T>;
    fn deref(&self) -> &Queue<T> {
        &self.0
    }
}
