//! A mailbox: the request/reply exchange of one client and one server
//! thread, through shared memory — no system call while both are awake.
//!
//! Two slots, one per direction, each with a count of messages posted, the
//! last message's length and a [`Signal`] (the loom-checked wake-up words:
//! a reader that sleeps announces it, a poster wakes only an announced
//! sleeper). One message is in flight per direction at a time — the
//! client posts a request only after it took the previous reply, the
//! server a reply only after it took the request — so a buffer is never
//! written while it is read. A message too large for its buffer, or one
//! that carries descriptors, goes by the socket the two also share, and
//! the mailbox carries a note that it did ([`Taken::Elsewhere`]), so the
//! order of messages is the mailbox's.
//!
//! The mailbox does not know whether its peer is alive: a reader's wait
//! returns after a nap of the caller's choosing ([`Taken::NotYet`]) so that
//! it can look (at the shared socket), and a side that ends says so with
//! [`Mailbox::close`], which wakes the other.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::ipc::signal::Signal;
use crate::sync::region::{Region, SharedSafe};

/// The length that says "this message went by the socket".
const ELSEWHERE: u32 = u32::MAX;

/// One direction's words, on a cache line of their own.
#[repr(C, align(64))]
#[derive(Debug)]
struct Slot {
    /// Messages posted so far (wrapping).
    posted: AtomicU32,
    /// The last message's length, or [`ELSEWHERE`].
    len: AtomicU32,
    signal: Signal,
}

/// The header of a mailbox's segment.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct MailboxState {
    request: Slot,
    reply: Slot,
    /// Set by a side that will post no more (its thread ended).
    closed: AtomicU32,
}

// SAFETY: atomics only (and padding); all zeros is a valid empty mailbox.
unsafe impl SharedSafe for MailboxState {}

/// Which way a message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    /// Client to server.
    Request,
    /// Server to client.
    Reply,
}

/// What [`Mailbox::take`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Taken {
    /// The message, copied into the caller's buffer.
    Here,
    /// The message went by the socket: read it there.
    Elsewhere,
    /// Nothing yet (the deadline passed, or a sleep ended to let the
    /// caller look whether its peer is alive).
    NotYet,
    /// The peer posted a length its buffer cannot hold: it is not a
    /// mailbox peer that keeps the rules.
    Corrupt,
}

/// The shared mailbox; a handle (its descriptor travels with it).
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Mailbox {
    region: Region<MailboxState>,
}

impl fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailbox")
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

impl Mailbox {
    /// A mailbox whose messages hold up to `capacity` bytes each way.
    pub(crate) fn new(capacity: usize) -> io::Result<Mailbox> {
        Ok(Mailbox {
            region: Region::create(2 * capacity, |_| {})?,
        })
    }

    /// The largest message that goes through the mailbox itself.
    pub(crate) fn capacity(&self) -> usize {
        self.region.tail().1 / 2
    }

    fn slot(&self, dir: Dir) -> &Slot {
        let state = self.region.header();
        match dir {
            Dir::Request => &state.request,
            Dir::Reply => &state.reply,
        }
    }

    fn buffer(&self, dir: Dir) -> *mut u8 {
        let (tail, _) = self.region.tail();
        let offset = match dir {
            Dir::Request => 0,
            Dir::Reply => self.capacity(),
        };
        // SAFETY: the tail holds two buffers of `capacity` bytes.
        unsafe { tail.add(offset) }
    }

    /// Posts a message in `dir`: its bytes (at most [`capacity`]), or `None`
    /// for "sent by the socket". The caller must be the one poster of
    /// `dir`, and the peer must have taken its last message (the
    /// request/reply rule above).
    ///
    /// [`capacity`]: Mailbox::capacity
    pub(crate) fn post(&self, dir: Dir, message: Option<&[u8]>) {
        let slot = self.slot(dir);
        let len = match message {
            Some(bytes) => {
                assert!(
                    bytes.len() <= self.capacity(),
                    "a message larger than the mailbox goes by the socket"
                );
                // SAFETY: the buffer holds `capacity` ≥ `bytes.len()` bytes;
                // by the request/reply rule the peer does not read it now
                // (it took the last message and waits for this one's post).
                unsafe {
                    std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.buffer(dir), bytes.len())
                };
                bytes.len() as u32
            }
            None => ELSEWHERE,
        };
        slot.len.store(len, Ordering::Relaxed);
        slot.posted.fetch_add(1, Ordering::Release);
        slot.signal.notify();
    }

    /// Waits (until `deadline`, or `nap` asleep) for the message after the
    /// `seen`-th in `dir`; when it is here, copies it into `out` and counts
    /// it in `seen`.
    pub(crate) fn take(
        &self,
        dir: Dir,
        seen: &mut u32,
        nap: Duration,
        deadline: Option<Instant>,
        out: &mut Vec<u8>,
    ) -> Taken {
        let slot = self.slot(dir);
        let next = seen.wrapping_add(1);
        let arrived = || slot.posted.load(Ordering::Acquire) == next;
        if !slot.signal.wait_napping(nap, deadline, arrived) {
            return Taken::NotYet;
        }
        *seen = next;
        let len = slot.len.load(Ordering::Relaxed);
        if len == ELSEWHERE {
            return Taken::Elsewhere;
        }
        let len = len as usize;
        if len > self.capacity() {
            return Taken::Corrupt;
        }
        out.clear();
        out.reserve(len);
        // SAFETY: `len` ≤ `capacity`, the buffer's size; `out` has room for
        // `len` bytes, set as its length once written. The poster wrote the
        // bytes before its Release of `posted`, which we Acquired, and by
        // the request/reply rule writes them again only after our next post
        // in the other direction (a peer that breaks the rule can only
        // garble bytes we copy and then decode, which refuses garbage).
        unsafe {
            std::ptr::copy_nonoverlapping(self.buffer(dir), out.as_mut_ptr(), len);
            out.set_len(len);
        }
        Taken::Here
    }

    /// Says this side will post no more; wakes the peer if it sleeps.
    pub(crate) fn close(&self) {
        self.region.header().closed.store(1, Ordering::SeqCst);
        self.slot(Dir::Request).signal.wake_all();
        self.slot(Dir::Reply).signal.wake_all();
    }

    /// Whether a side said it will post no more.
    pub(crate) fn is_closed(&self) -> bool {
        self.region.header().closed.load(Ordering::SeqCst) != 0
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    const NAP: Duration = Duration::from_millis(5);

    #[test]
    fn requests_and_replies_alternate_through_the_mailbox() {
        let client = Mailbox::new(64).unwrap();
        let frame = crate::codec::encode(&client, 1 << 20).unwrap();
        let server: Mailbox = crate::codec::decode(&frame.bytes[12..], frame.fds).unwrap();
        let worker = std::thread::spawn(move || {
            let (mut seen, mut buf) = (0, Vec::new());
            for _ in 0..1000 {
                loop {
                    match server.take(Dir::Request, &mut seen, NAP, None, &mut buf) {
                        Taken::Here => break,
                        Taken::NotYet => continue,
                        other => panic!("{other:?}"),
                    }
                }
                buf.reverse();
                server.post(Dir::Reply, Some(&buf));
            }
            server.close();
        });
        let (mut seen, mut buf) = (0, Vec::new());
        for i in 0..1000u32 {
            client.post(Dir::Request, Some(&i.to_le_bytes()));
            let deadline = Some(Instant::now() + Duration::from_secs(120));
            assert_eq!(
                client.take(Dir::Reply, &mut seen, NAP, deadline, &mut buf),
                Taken::Here
            );
            let mut want = i.to_le_bytes();
            want.reverse();
            assert_eq!(buf, want);
        }
        let end = Instant::now() + Duration::from_secs(120);
        while !worker.is_finished() {
            assert!(Instant::now() < end, "the server thread did not end");
            std::thread::sleep(Duration::from_millis(1));
        }
        worker.join().unwrap();
        assert!(client.is_closed());
        // Nothing more comes: the wait ends at its deadline.
        let soon = Some(Instant::now() + Duration::from_millis(10));
        assert_eq!(
            client.take(Dir::Reply, &mut seen, NAP, soon, &mut buf),
            Taken::NotYet
        );
    }

    #[test]
    fn a_note_says_the_message_went_by_the_socket() {
        let m = Mailbox::new(8).unwrap();
        assert_eq!(m.capacity(), 8);
        m.post(Dir::Request, None);
        let (mut seen, mut buf) = (0, Vec::new());
        assert_eq!(
            m.take(Dir::Request, &mut seen, NAP, None, &mut buf),
            Taken::Elsewhere
        );
        // A length past the buffer is refused, not read.
        m.slot(Dir::Request).len.store(9, Ordering::Relaxed);
        m.slot(Dir::Request).posted.fetch_add(1, Ordering::Release);
        assert_eq!(
            m.take(Dir::Request, &mut seen, NAP, None, &mut buf),
            Taken::Corrupt
        );
    }
}
