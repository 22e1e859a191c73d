//! The shared ring under every inter-process queue.
//!
//! # Layout
//!
//! A byte ring (a power of two, 8-byte records) with one writer and one
//! reader at a time: producers take turns with `put_lock`, consumers with
//! `get_lock` (both robust, see [`crate::sync`]), so that a message is
//! written and read whole — also a message larger than the ring, which
//! streams through it in pieces while its producer holds `put_lock` and its
//! consumer holds `get_lock`.
//!
//! Each side publishes its progress in one 64-bit word: `tail` = (messages
//! put, byte position), `head` = (messages taken, byte position). One atomic
//! store commits a record *and* its count, so a process killed at any
//! instant leaves the words consistent: a record is either committed whole
//! or invisible. `len` is the difference of the counts — exact.
//!
//! # Records
//!
//! An 8-byte header (`len: u32`, `kind: u32`) and the payload padded to 8
//! bytes. Kinds: `WHOLE`; `FIRST`, `MORE`, `LAST` for a streamed message;
//! `ABORT` for a streamed message whose producer died, timed out or gave up
//! (its consumer drops the pieces). A streaming producer always leaves room
//! for an `ABORT`.
//!
//! # Crashes
//!
//! - A producer dies before committing: its bytes are past `tail`, unseen.
//! - A producer dies mid-stream: whoever takes `put_lock` next — another
//!   producer, or the consumer waiting for the rest — finds the producers'
//!   `flag` (streaming) and writes `ABORT`.
//! - A consumer dies before committing `head`: the record is still there for
//!   the next consumer. After committing `head` of a `WHOLE` or `LAST`
//!   record, the message was taken (by the dead consumer). Mid-stream, the
//!   next consumer finds the consumers' `flag` (partial) and drops the rest
//!   of that message.
//!
//! # Caches
//!
//! A handle remembers the other side's position as it last read it (a
//! stale head only understates the room, a stale tail the data) and reads
//! the shared word only when the cached one does not suffice: a producer
//! and a consumer in steady state rarely touch each other's cache line. A
//! cache is trusted only while this handle was the last to hold its side's
//! lock (`Side::last`); otherwise it is refreshed.
//!
//! # Waking
//!
//! A side that must wait (no data; no room) announces itself in a `waiting`
//! word, issues a `SeqCst` fence, re-checks, and sleeps on a futex `seq`
//! word; the other side commits, fences, and bumps `seq` and wakes only if
//! the `waiting` word is set. See `signal`, whose loom models check it.

use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use crate::ipc::signal::Signal;
use crate::os::shm;
use crate::sync::raw::{Acquired, RawLock};
use crate::sync::region::{Region, SharedSafe};

const WHOLE: u32 = 1;
const FIRST: u32 = 2;
const MORE: u32 = 3;
const LAST: u32 = 4;
const ABORT: u32 = 5;
const REC: u64 = 8;

#[repr(C, align(128))]
#[derive(Debug, Default)]
struct Padded<T>(T);

/// One side's lock and what its holder leaves for the next one.
#[repr(C)]
#[derive(Debug, Default)]
struct Side {
    lock: RawLock,
    flag: AtomicU32,
    /// The handle that held the lock last ([`Ring::token`]): a handle that
    /// finds its own token there may trust what it cached of the other
    /// side's position.
    last: AtomicU64,
}

/// The shared header of a queue.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct State {
    capacity: AtomicU64,
    maxsize: AtomicU64,
    closed: AtomicU32,
    /// Producers' side: `flag` is 1 while a producer streams a message.
    put: Padded<Side>,
    /// Consumers' side: `flag` is 1 while a consumer assembles a streamed
    /// message, 2 when the pieces of a dead consumer's message are to be
    /// dropped.
    get: Padded<Side>,
    tail: Padded<AtomicU64>,
    head: Padded<AtomicU64>,
    /// `task_done` calls (JoinableQueue), wrapping like the counts.
    done: Padded<AtomicU64>,
    data: Signal,
    space: Signal,
    joined: Signal,
}

// SAFETY: atomics only (and padding); all zero is an empty, open ring whose
// capacity `create` sets before anyone else maps it.
unsafe impl SharedSafe for State {}

fn count(word: u64) -> u32 {
    (word >> 32) as u32
}

fn pos(word: u64) -> u32 {
    word as u32
}

fn pack(count: u32, pos: u32) -> u64 {
    (u64::from(count) << 32) | u64::from(pos)
}

fn padded(len: u64) -> u64 {
    len.div_ceil(REC) * REC
}

/// Why a ring operation did not complete.
#[derive(Debug)]
pub(crate) enum Stop {
    /// Would have to wait (try_ variants), or the deadline passed.
    Timeout,
    /// The queue was closed.
    Closed,
    /// The ring's bytes make no sense (a peer wrote garbage into it).
    Corrupt(String),
}

/// The largest ring: positions are 32-bit and wrap, so the ring must be at
/// most half of that.
pub(crate) const MAX_CAPACITY: usize = 1 << 30;

/// A mapped queue ring.
#[derive(Debug)]
pub(crate) struct Ring {
    region: Region<State>,
    data: *mut u8,
    cap: u32,
    /// This handle among all handles of this process.
    serial: u32,
    /// The consumers' head as this handle last read it (as a producer).
    cached_head: AtomicU64,
    /// The producers' tail as this handle last read it (as a consumer).
    cached_tail: AtomicU64,
}

// SAFETY: the raw pointer is into the region the ring owns; access to the
// bytes is serialized by the put/get locks and ordered by head/tail.
unsafe impl Send for Ring {}
// SAFETY: as above.
unsafe impl Sync for Ring {}

impl Ring {
    /// A new ring of `capacity` bytes (rounded up to a power of two, at least
    /// 64) holding at most `maxsize` messages (0: no count bound).
    pub(crate) fn create(capacity: usize, maxsize: usize) -> io::Result<Ring> {
        if capacity > MAX_CAPACITY {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a queue ring holds at most {MAX_CAPACITY} bytes"),
            ));
        }
        let cap = capacity.max(64).next_power_of_two();
        let maxsize = maxsize.min(i32::MAX as usize);
        let region = Region::<State>::create(cap, |s| {
            s.capacity.store(cap as u64, Ordering::Relaxed);
            s.maxsize.store(maxsize as u64, Ordering::Relaxed);
        })?;
        Ring::from_region(region)
    }

    pub(crate) fn from_region(region: Region<State>) -> io::Result<Ring> {
        let cap = region.header().capacity.load(Ordering::Relaxed);
        let (data, len) = region.tail();
        if !cap.is_power_of_two() || cap > MAX_CAPACITY as u64 || cap as usize > len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "shared-memory handle refused: not a queue ring",
            ));
        }
        static SERIAL: AtomicU32 = AtomicU32::new(0);
        // Start from the positions now: even if a dead handle's token
        // happened to match ours, nothing cached can predate this.
        let s = region.header();
        let (head, tail) = (
            s.head.0.load(Ordering::Acquire),
            s.tail.0.load(Ordering::Acquire),
        );
        Ok(Ring {
            data,
            cap: cap as u32,
            serial: SERIAL.fetch_add(1, Ordering::Relaxed),
            cached_head: AtomicU64::new(head),
            cached_tail: AtomicU64::new(tail),
            region,
        })
    }

    pub(crate) fn region(&self) -> &Region<State> {
        &self.region
    }

    fn s(&self) -> &State {
        self.region.header()
    }

    /// Messages in the queue (fully put, not yet taken).
    pub(crate) fn len(&self) -> usize {
        let s = self.s();
        // A consistent snapshot: the head did not move while the tail was
        // read, so both held at that instant. (Reading each once could pair
        // an old head with a newer tail and count more than maxsize.)
        loop {
            let head = s.head.0.load(Ordering::SeqCst);
            let tail = s.tail.0.load(Ordering::SeqCst);
            if s.head.0.load(Ordering::SeqCst) == head {
                return count(tail).wrapping_sub(count(head)) as usize;
            }
            std::hint::spin_loop();
        }
    }

    pub(crate) fn maxsize(&self) -> usize {
        self.s().maxsize.load(Ordering::Relaxed) as usize
    }

    pub(crate) fn capacity(&self) -> usize {
        self.cap as usize
    }

    pub(crate) fn close(&self) {
        let s = self.s();
        s.closed.store(1, Ordering::SeqCst);
        for sig in [&s.data, &s.space, &s.joined] {
            sig.wake_all();
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.s().closed.load(Ordering::Acquire) != 0
    }

    /// Who this handle is, in this process: a forked child's copy of a handle
    /// is another handle.
    fn token(&self) -> u64 {
        // An odd multiplier is a bijection: distinct processes, distinct
        // hashes; the serial tells this process's handles apart.
        shm::process_id().wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(self.serial)
    }

    /// After taking a side's lock: if another handle held it since we did,
    /// what we cached of the other side is stale — `refresh` it.
    fn claim(&self, side: &Side, refresh: impl FnOnce()) {
        let me = self.token();
        if side.last.load(Ordering::Relaxed) != me {
            refresh();
            side.last.store(me, Ordering::Relaxed);
        }
    }

    // ----- bytes -----

    /// Copies `src` into the ring at position `at` (wrapping).
    ///
    /// # Safety
    ///
    /// The caller holds `put_lock` and `[at, at + src.len())` is free:
    /// within `capacity` of the consumer's committed head.
    #[inline(always)]
    unsafe fn write_at(&self, at: u32, src: &[u8]) {
        let off = (at & (self.cap - 1)) as usize;
        let first = src.len().min(self.cap as usize - off);
        // SAFETY: both ranges lie within the ring (`off + first <= cap`,
        // `src.len() - first <= cap`); the caller guarantees no reader uses
        // them; `src` is not in the ring.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.data.add(off), first);
            if first < src.len() {
                std::ptr::copy_nonoverlapping(
                    src.as_ptr().add(first),
                    self.data,
                    src.len() - first,
                );
            }
        }
    }

    /// Writes a record's header (its payload's length and its kind) at `at`.
    ///
    /// # Safety
    ///
    /// As [`write_at`](Self::write_at) for `REC` bytes at `at`.
    #[inline(always)]
    unsafe fn write_header(&self, at: u32, len: u32, kind: u32) {
        let off = (at & (self.cap - 1)) as usize;
        let word = (u64::from(len) | (u64::from(kind) << 32)).to_le();
        // SAFETY: records start at multiples of REC and the ring is a power
        // of two of at least 64 bytes, so the header lies whole within the
        // ring at `off` (no wrap); the caller guarantees no reader uses it.
        unsafe { std::ptr::write_unaligned(self.data.add(off).cast::<u64>(), word) };
    }

    /// Reads a record's header at `at`: (payload length, kind).
    ///
    /// # Safety
    ///
    /// The caller holds `get_lock` and `REC` bytes at `at` were committed
    /// by a producer.
    #[inline(always)]
    unsafe fn read_header(&self, at: u32) -> (u32, u32) {
        let off = (at & (self.cap - 1)) as usize;
        // SAFETY: as in `write_header`; the caller guarantees the header was
        // committed.
        let word =
            u64::from_le(unsafe { std::ptr::read_unaligned(self.data.add(off).cast::<u64>()) });
        (word as u32, (word >> 32) as u32)
    }

    /// Appends `len` bytes out of the ring from position `at` to `out`,
    /// without first zeroing the room they take.
    ///
    /// # Safety
    ///
    /// The caller holds `get_lock` and `[at, at + len)` was committed by a
    /// producer (below the tail it loaded with `Acquire`).
    #[inline(always)]
    unsafe fn read_append(&self, at: u32, len: usize, out: &mut Vec<u8>) {
        out.reserve(len);
        // SAFETY: `reserve` made room for `len` more bytes past `out.len()`;
        // `read_to` initializes exactly those before `set_len` counts them.
        unsafe {
            self.read_to(at, out.as_mut_ptr().add(out.len()), len);
            out.set_len(out.len() + len);
        }
    }

    /// Copies `len` bytes out of the ring from position `at` to `dst`.
    ///
    /// # Safety
    ///
    /// `dst` is valid for `len` bytes and outside the ring; the caller holds
    /// `get_lock` and `[at, at + len)` was committed by a producer.
    #[inline(always)]
    unsafe fn read_to(&self, at: u32, dst: *mut u8, len: usize) {
        let off = (at & (self.cap - 1)) as usize;
        let first = len.min(self.cap as usize - off);
        // SAFETY: as in `write_at`, with the roles swapped.
        unsafe {
            std::ptr::copy_nonoverlapping(self.data.add(off), dst, first);
            if first < len {
                std::ptr::copy_nonoverlapping(self.data, dst.add(first), len - first);
            }
        }
    }

    // ----- producing -----

    /// Takes `put_lock`, repairing after a producer that died mid-stream.
    fn lock_put(&self, deadline: Option<Instant>) -> Result<(), Stop> {
        let s = self.s();
        let how = s.put.0.lock.lock(deadline).ok_or(Stop::Timeout)?;
        self.claim(&s.put.0, || {
            self.cached_head
                .store(s.head.0.load(Ordering::Acquire), Ordering::Relaxed)
        });
        if how == Acquired::OwnerDied {
            self.abort_stream();
        }
        Ok(())
    }

    /// With `put_lock` held: ends a stream its producer left unfinished.
    fn abort_stream(&self) {
        let s = self.s();
        if s.put.0.flag.load(Ordering::Relaxed) != 0 {
            // A streaming producer always leaves room for this record.
            self.commit_record(ABORT, &[], false);
            s.put.0.flag.store(0, Ordering::Relaxed);
        }
    }

    /// With `put_lock` held: writes a record (room checked) and commits it.
    fn commit_record(&self, kind: u32, payload: &[u8], counts: bool) {
        let tail = self.s().tail.0.load(Ordering::Relaxed);
        self.publish(self.write_record(tail, kind, payload, counts));
    }

    /// With `put_lock` held: writes a record at `tail` (this producer's,
    /// perhaps not yet committed; room checked) without committing it;
    /// returns the tail past it.
    #[inline(always)]
    fn write_record(&self, tail: u64, kind: u32, payload: &[u8], counts: bool) -> u64 {
        let at = pos(tail);
        // SAFETY: `put_lock` is held; the caller checked that the record
        // fits between the tail and the consumer's head.
        unsafe {
            self.write_header(at, payload.len() as u32, kind);
            self.write_at(at.wrapping_add(REC as u32), payload);
        }
        let size = (REC + padded(payload.len() as u64)) as u32;
        let n = count(tail).wrapping_add(u32::from(counts));
        pack(n, at.wrapping_add(size))
    }

    /// With `put_lock` held: commits every record written up to `tail` in
    /// one store, and wakes a waiting consumer. (A single message's put
    /// wakes it after unlocking instead, where the unlock's locked
    /// instruction orders the commit before the look at the consumer's
    /// `waiting` word: [`Signal::notify_after_unlock`]. That saved a fence
    /// per message on each side, on the 2-core machine (8 alternating runs,
    /// medians): `queue_small` 64 B `bytes_into` 19.2 → 21.0 M msg/s,
    /// `bytes` 14.2 → 16.7 M; `queue_fan_in` with 1 / 4 / 16 / 32
    /// producers 9.1 / 15.0 / 15.1 / 14.5 → 12.4 / 17.1 / 16.2 / 16.1 M
    /// (3 runs).)
    #[inline(always)]
    fn publish(&self, tail: u64) {
        self.commit(tail);
        self.s().data.notify();
    }

    /// With `put_lock` held: commits every record written up to `tail` in
    /// one store, waking nobody ([`publish`](Self::publish) does).
    #[inline(always)]
    fn commit(&self, tail: u64) {
        self.s().tail.0.store(tail, Ordering::Release);
    }

    /// With `put_lock` held: is there room for `bytes` more bytes and `msgs`
    /// more messages? Decided on the cached head when that suffices — a
    /// stale head only understates the room — and on the consumers' head
    /// itself otherwise.
    fn room(&self, bytes: u64, msgs: u32) -> bool {
        self.room_past(self.s().tail.0.load(Ordering::Relaxed), bytes, msgs)
    }

    /// [`room`](Self::room) past this producer's own `tail` (records written
    /// and not yet committed count as taken room).
    #[inline(always)]
    fn room_past(&self, tail: u64, bytes: u64, msgs: u32) -> bool {
        let s = self.s();
        let maxsize = self.maxsize() as u32;
        let fits = |head: u64| {
            let used = u64::from(pos(tail).wrapping_sub(pos(head)));
            let n = count(tail).wrapping_sub(count(head));
            used + bytes <= u64::from(self.cap) && (maxsize == 0 || n + msgs <= maxsize)
        };
        if fits(self.cached_head.load(Ordering::Relaxed)) {
            return true;
        }
        let head = s.head.0.load(Ordering::Acquire);
        self.cached_head.store(head, Ordering::Relaxed);
        fits(head)
    }

    /// What a producer waiting for room for `bytes` and a message waits for
    /// while it spins: room for a sixteenth of the ring and of `maxsize`
    /// more ([`Signal::wait_for_plenty`]). Measured on the 2-core machine
    /// with 200,000 messages of 64 B through a queue bounded at 1024, 25
    /// alternating runs: where the producer got ahead of its consumer (a
    /// full queue, 7 runs of 25) it ran 14.5–21.6 M msg/s, and now 32–34 M;
    /// where the consumer keeps up, ~27 M before and after. `queue_small`
    /// `bytes_into` 19.8 → 26.6 M (8 alternating runs, medians; slowest run
    /// 17.9 → 22.4 M); `queue_fan_in` with 16 producers 18.6 → 20.5 M.
    fn plenty(&self, bytes: u64) -> (u64, u32) {
        let cap = u64::from(self.cap);
        ((bytes + cap / 16).min(cap), 1 + self.maxsize() as u32 / 16)
    }

    /// Waits (with `put_lock` held) until `ok()`, spinning until `plenty()`.
    fn wait_room(
        &self,
        deadline: Option<Instant>,
        mut plenty: impl FnMut() -> bool,
        mut ok: impl FnMut() -> bool,
    ) -> Result<(), Stop> {
        loop {
            if self.is_closed() {
                return Err(Stop::Closed);
            }
            if self
                .s()
                .space
                .wait_for_plenty(deadline, &mut plenty, &mut ok)
            {
                return Ok(());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Stop::Timeout);
            }
        }
    }

    /// Puts one message. `deadline`: `Some(now)` for try_put.
    pub(crate) fn put(&self, msg: &[u8], deadline: Option<Instant>) -> Result<(), Stop> {
        if self.is_closed() {
            return Err(Stop::Closed);
        }
        self.lock_put(deadline)?;
        let r = self.put_locked(msg, deadline);
        self.s().put.0.lock.unlock();
        if r.is_ok() {
            // The last commit's wake-up, after the unlock (see `publish`).
            self.s().data.notify_after_unlock();
        }
        r
    }

    // Inlined, like `get_locked`, `peek` and the record helpers: called from
    // the single and the batch paths, they were left out of line and a
    // put + get of 64 B cost 688 instructions instead of 555 (callgrind).
    #[inline(always)]
    fn put_locked(&self, msg: &[u8], deadline: Option<Instant>) -> Result<(), Stop> {
        let s = self.s();
        let size = REC + padded(msg.len() as u64);
        let cap = u64::from(self.cap);
        if size <= cap {
            if !self.room(size, 1) {
                let (bytes, msgs) = self.plenty(size);
                self.wait_room(deadline, || self.room(bytes, msgs), || self.room(size, 1))?;
            }
            // Committed without a wake-up: the caller wakes a waiting
            // consumer after it unlocks.
            let tail = s.tail.0.load(Ordering::Relaxed);
            self.commit(self.write_record(tail, WHOLE, msg, true));
            return Ok(());
        }
        self.wait_room(deadline, || self.room(0, 1), || self.room(0, 1))?;
        // Stream it: pieces of at most a quarter of the ring, each leaving
        // room for an ABORT record.
        let piece = (cap / 4 - REC) as usize;
        s.put.0.flag.store(1, Ordering::Relaxed);
        let mut chunks = msg.chunks(piece).peekable();
        let mut first = true;
        while let Some(chunk) = chunks.next() {
            let need = 2 * REC + padded(chunk.len() as u64);
            // Once the first piece is out, the message must be finished or
            // aborted: a deadline still applies, and ends it with ABORT.
            if let Err(e) = self.wait_room(deadline, || self.room(need, 0), || self.room(need, 0)) {
                if !first {
                    self.abort_stream();
                }
                s.put.0.flag.store(0, Ordering::Relaxed);
                return Err(e);
            }
            let kind = match (first, chunks.peek().is_none()) {
                (true, _) => FIRST,
                (false, true) => LAST,
                (false, false) => MORE,
            };
            self.commit_record(kind, chunk, kind == LAST);
            first = false;
        }
        s.put.0.flag.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// Puts `msgs` in order under one turn of `put_lock`, committing the
    /// records written so far in one store whenever it must wait for room,
    /// and at the end. Returns how many were put: all, or — when it stops
    /// (deadline, shut down) after some went in — fewer; `Err` only when
    /// none did.
    pub(crate) fn put_many<B: AsRef<[u8]>>(
        &self,
        msgs: &[B],
        deadline: Option<Instant>,
    ) -> Result<usize, Stop> {
        if self.is_closed() {
            return Err(Stop::Closed);
        }
        self.lock_put(deadline)?;
        let r = self.put_many_locked(msgs, deadline);
        self.s().put.0.lock.unlock();
        r
    }

    fn put_many_locked<B: AsRef<[u8]>>(
        &self,
        msgs: &[B],
        deadline: Option<Instant>,
    ) -> Result<usize, Stop> {
        let s = self.s();
        let stopped = |done: usize, e: Stop| if done > 0 { Ok(done) } else { Err(e) };
        // Commits what was written since the last commit, if anything.
        let flush = |tail: u64| {
            if s.tail.0.load(Ordering::Relaxed) != tail {
                self.publish(tail);
            }
        };
        let mut tail = s.tail.0.load(Ordering::Relaxed);
        for (done, msg) in msgs.iter().enumerate() {
            let msg = msg.as_ref();
            let size = REC + padded(msg.len() as u64);
            if size > u64::from(self.cap) {
                // Larger than the ring: streamed alone.
                flush(tail);
                if let Err(e) = self.put_locked(msg, deadline) {
                    return stopped(done, e);
                }
                tail = s.tail.0.load(Ordering::Relaxed);
                continue;
            }
            if !self.room_past(tail, size, 1) {
                // The consumer sees what is written while we wait.
                flush(tail);
                let (bytes, msgs) = self.plenty(size);
                let plenty = || self.room_past(tail, bytes, msgs);
                if let Err(e) = self.wait_room(deadline, plenty, || self.room_past(tail, size, 1)) {
                    return stopped(done, e);
                }
            }
            tail = self.write_record(tail, WHOLE, msg, true);
        }
        flush(tail);
        Ok(msgs.len())
    }

    // ----- consuming -----

    /// Takes `get_lock`, marking the message a dead consumer was assembling
    /// as one to drop.
    fn lock_get(&self, deadline: Option<Instant>) -> Result<(), Stop> {
        let s = self.s();
        let how = s.get.0.lock.lock(deadline).ok_or(Stop::Timeout)?;
        self.claim(&s.get.0, || {
            self.cached_tail
                .store(s.tail.0.load(Ordering::Acquire), Ordering::Relaxed)
        });
        if how == Acquired::OwnerDied && s.get.0.flag.load(Ordering::Relaxed) == 1 {
            s.get.0.flag.store(2, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Takes one message into `out` (emptied first). `deadline`: `Some(now)`
    /// for try_get.
    pub(crate) fn get_into(
        &self,
        out: &mut Vec<u8>,
        deadline: Option<Instant>,
    ) -> Result<(), Stop> {
        self.lock_get(deadline)?;
        out.clear();
        let r = self.get_locked(out, deadline);
        self.s().get.0.lock.unlock();
        if r.is_ok() {
            // The last commit's wake-up, after the unlock (see `publish`).
            self.s().space.notify_after_unlock();
        }
        r
    }

    /// With `get_lock` held: takes one message into `assembled`. Its last
    /// commit wakes no producer: the caller does, after unlocking.
    #[inline(always)]
    fn get_locked(&self, assembled: &mut Vec<u8>, deadline: Option<Instant>) -> Result<(), Stop> {
        let s = self.s();
        loop {
            let head = s.head.0.load(Ordering::Relaxed);
            // What was committed, from the cache while it shows more (a
            // stale tail only understates it).
            let mut tail = self.cached_tail.load(Ordering::Relaxed);
            if pos(tail) == pos(head) {
                tail = s.tail.0.load(Ordering::Acquire);
                self.cached_tail.store(tail, Ordering::Relaxed);
            }
            if pos(tail) == pos(head) {
                let streaming = s.get.0.flag.load(Ordering::Relaxed) != 0;
                if !streaming && self.is_closed() {
                    return Err(Stop::Closed);
                }
                let ready = s.data.wait(if streaming { None } else { deadline }, || {
                    pos(s.tail.0.load(Ordering::Acquire)) != pos(head)
                        || (!streaming && self.is_closed())
                });
                if !ready {
                    if streaming {
                        self.rescue_stream();
                    } else if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(Stop::Timeout);
                    }
                }
                continue;
            }
            let (kind, len) = self.peek(head, tail)?;
            let size = REC + padded(len);
            let mut partial = s.get.0.flag.load(Ordering::Relaxed);
            if matches!(kind, WHOLE | FIRST) && partial != 0 {
                // The message before ended already (its consumer died between
                // committing the head and clearing the flag).
                assembled.clear();
                partial = 0;
            }
            let (keep, next_partial) = match (kind, partial) {
                (WHOLE, _) => (true, 0),
                (FIRST, _) => (true, 1),
                (MORE, 1) => (true, 1),
                (LAST, 1) => (true, 0),
                // Pieces of a message whose consumer died: dropped.
                (MORE, p) => (false, p),
                (LAST, _) => (false, 0),
                // A stream its producer gave up (or a stray marker).
                _ => {
                    assembled.clear();
                    (false, 0)
                }
            };
            if keep {
                // SAFETY: `get_lock` is held and `peek` checked that the
                // payload, after its header, lies within the committed bytes.
                unsafe {
                    self.read_append(pos(head).wrapping_add(REC as u32), len as usize, assembled)
                };
            }
            let ends = matches!(kind, WHOLE | LAST);
            let n = count(head).wrapping_add(u32::from(ends));
            // Commit first, then the flag: a consumer killed in between
            // leaves a flag that the checks above tolerate.
            s.head.0.store(
                pack(n, pos(head).wrapping_add(size as u32)),
                Ordering::Release,
            );
            s.get.0.flag.store(next_partial, Ordering::Relaxed);
            if ends && keep {
                // The caller wakes a producer waiting for room.
                return Ok(());
            }
            s.space.notify();
        }
    }

    /// Takes up to `max` messages (at least one, waiting for it until
    /// `deadline`) under one turn of `get_lock`, committing the head once.
    /// Each message is copied into `scratch` and shown to `take`; a message
    /// that `take` refuses (returns `false`) stays in the queue and ends the
    /// batch — but the first message is taken whatever `take` says, alone
    /// (as a single `get` takes a message that does not decode). Returns how many
    /// were taken. A message streamed in pieces is taken alone.
    pub(crate) fn get_many(
        &self,
        max: usize,
        deadline: Option<Instant>,
        scratch: &mut Vec<u8>,
        take: &mut dyn FnMut(&[u8], bool) -> bool,
    ) -> Result<usize, Stop> {
        self.lock_get(deadline)?;
        let r = self.get_many_locked(max.max(1), deadline, scratch, take);
        self.s().get.0.lock.unlock();
        r
    }

    fn get_many_locked(
        &self,
        max: usize,
        deadline: Option<Instant>,
        scratch: &mut Vec<u8>,
        take: &mut dyn FnMut(&[u8], bool) -> bool,
    ) -> Result<usize, Stop> {
        let s = self.s();
        let start = s.head.0.load(Ordering::Relaxed);
        let mut head = start;
        let mut taken = 0;
        while taken < max {
            let mut tail = self.cached_tail.load(Ordering::Relaxed);
            if pos(tail) == pos(head) {
                tail = s.tail.0.load(Ordering::Acquire);
                self.cached_tail.store(tail, Ordering::Relaxed);
            }
            let next = if pos(tail) != pos(head) && s.get.0.flag.load(Ordering::Relaxed) == 0 {
                Some(self.peek(head, tail)?)
            } else {
                None
            };
            let Some((WHOLE, len)) = next else {
                if taken > 0 {
                    break;
                }
                // Nothing yet, a streamed message, or a dead consumer's
                // leftovers: the single path waits and sorts it out.
                scratch.clear();
                self.get_locked(scratch, deadline)?;
                s.space.notify();
                take(scratch, true);
                return Ok(1);
            };
            scratch.clear();
            // SAFETY: `get_lock` is held and `peek` checked that the record
            // (header, then payload) lies below the committed tail.
            unsafe { self.read_append(pos(head).wrapping_add(REC as u32), len as usize, scratch) };
            let accepted = take(scratch, taken == 0);
            if !accepted && taken > 0 {
                break;
            }
            let size = (REC + padded(len)) as u32;
            head = pack(count(head).wrapping_add(1), pos(head).wrapping_add(size));
            taken += 1;
            if !accepted {
                break; // the first, refused: taken alone
            }
        }
        if head != start {
            s.head.0.store(head, Ordering::Release);
            s.space.notify();
        }
        Ok(taken)
    }

    /// With `get_lock` held: the kind and length of the record at `head`,
    /// checked to lie whole below `tail`.
    #[inline(always)]
    fn peek(&self, head: u64, tail: u64) -> Result<(u32, u64), Stop> {
        let avail = u64::from(pos(tail).wrapping_sub(pos(head)));
        if avail > u64::from(self.cap) {
            return Err(Stop::Corrupt(format!(
                "{avail} bytes committed in a ring of {}",
                self.cap
            )));
        }
        // SAFETY: `get_lock` is held and `avail >= REC` bytes from head were
        // committed (records are whole multiples of REC).
        let (len, kind) = unsafe { self.read_header(pos(head)) };
        let len = u64::from(len);
        if REC + padded(len) > avail || !(WHOLE..=ABORT).contains(&kind) {
            return Err(Stop::Corrupt(format!(
                "record of kind {kind} and {len} bytes with {avail} bytes committed"
            )));
        }
        Ok((kind, len))
    }

    /// The consumer waits for the rest of a streamed message and none came
    /// for a while: if its producer died holding `put_lock`, end the stream.
    fn rescue_stream(&self) {
        let s = self.s();
        if let Some(how) = s.put.0.lock.try_lock() {
            if how == Acquired::OwnerDied {
                self.abort_stream();
            }
            s.put.0.lock.unlock();
        }
    }

    // ----- task accounting (JoinableQueue) -----

    /// Messages put and not yet marked done.
    pub(crate) fn unfinished(&self) -> u32 {
        let s = self.s();
        let done = s.done.0.load(Ordering::Acquire) as u32;
        count(s.tail.0.load(Ordering::Acquire)).wrapping_sub(done)
    }

    /// One `task_done`; `false` (and no change) if nothing is unfinished.
    pub(crate) fn task_done(&self) -> bool {
        let s = self.s();
        let mut done = s.done.0.load(Ordering::Acquire);
        loop {
            let put = count(s.tail.0.load(Ordering::Acquire));
            if put == done as u32 {
                return false;
            }
            match s.done.0.compare_exchange_weak(
                done,
                done.wrapping_add(1),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(d) => done = d,
            }
        }
        s.joined.notify();
        true
    }

    /// Waits until every message put has been marked done.
    pub(crate) fn join(&self, deadline: Option<Instant>) -> Result<(), Stop> {
        loop {
            if self.s().joined.wait(deadline, || self.unfinished() == 0) {
                return Ok(());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Stop::Timeout);
            }
        }
    }
}
