//! `RLock`: a reentrant process-shared lock.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use super::mutex::{LockState, Poisoned, TryLockError};
use super::region::{Region, SharedSafe, shared_handle};
use crate::blocking::Wait;

#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct RLockState {
    lock: LockState,
    /// The holding thread, within the holding process.
    thread: AtomicU64,
    depth: AtomicU32,
}

// SAFETY: atomics only (LockState is); all zero is free.
unsafe impl SharedSafe for RLockState {}

/// This thread's number within its process (never 0).
fn thread_token() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local!(static TOKEN: Cell<u64> = const { Cell::new(0) });
    TOKEN.with(|t| {
        if t.get() == 0 {
            t.set(NEXT.fetch_add(1, Ordering::Relaxed));
        }
        t.get()
    })
}

/// A reentrant lock in shared memory: the thread that holds it may take it
/// again; Python's `multiprocessing.RLock`. Robust like
/// [`Mutex`](super::Mutex): a dead holder's lock is taken over and reported
/// as [`Poisoned`].
///
/// ```
/// let lock = multiproc::sync::RLock::new()?;
/// let outer = lock.lock().unwrap();
/// let inner = lock.lock().unwrap(); // same thread: no deadlock
/// assert_eq!(lock.depth(), 2);
/// drop(inner);
/// drop(outer);
/// assert_eq!(lock.depth(), 0);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// A guard belongs to the thread that took it:
///
/// ```compile_fail
/// let lock = multiproc::sync::RLock::new().unwrap();
/// let g = lock.lock().unwrap();
/// std::thread::scope(|s| {
///     s.spawn(move || drop(g)); // RLockGuard is not Send
/// });
/// ```
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct RLock {
    region: Region<RLockState>,
}

shared_handle!(RLock);

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock").finish_non_exhaustive()
    }
}

/// A held [`RLock`] (one level of it); releases on drop. Stays on its
/// thread (`!Send`).
pub struct RLockGuard<'a> {
    lock: &'a RLock,
    _not_send: PhantomData<*const ()>,
}

impl RLock {
    /// A new, free reentrant lock.
    pub fn new() -> io::Result<RLock> {
        Ok(RLock {
            region: Region::create(0, |_| {})?,
        })
    }

    fn s(&self) -> &RLockState {
        self.region.header()
    }

    /// How many times this thread holds it: 0 when it is free or held by
    /// another thread (CPython's `_recursion_count`).
    pub fn depth(&self) -> u32 {
        if self.mine() {
            self.s().depth.load(Ordering::Relaxed)
        } else {
            0
        }
    }

    /// Whether a holder died holding it (or panicked), and nobody has
    /// declared it consistent since.
    pub fn is_poisoned(&self) -> bool {
        self.s().lock.is_poisoned()
    }

    /// Declares what the lock guards consistent again: later `lock`s are
    /// `Ok` (as [`Mutex::clear_poison`](super::Mutex::clear_poison)).
    pub fn clear_poison(&self) {
        self.s().lock.clear_poison()
    }

    fn mine(&self) -> bool {
        let s = self.s();
        s.lock.raw.held_by_this_process() && s.thread.load(Ordering::Relaxed) == thread_token()
    }

    fn take(&self, wait: Wait) -> Result<RLockGuard<'_>, TryLockError<RLockGuard<'_>>> {
        let s = self.s();
        let guard = || RLockGuard {
            lock: self,
            _not_send: PhantomData,
        };
        if self.mine() {
            s.depth.fetch_add(1, Ordering::Relaxed);
            return Ok(guard());
        }
        let got = match wait {
            Wait::No => s.lock.raw.try_lock(),
            Wait::Forever => s.lock.raw.lock(None),
            Wait::Until(d) => s.lock.raw.lock(Some(d)),
        }
        .ok_or(TryLockError::WouldBlock)?;
        let poison = s.lock.note(got);
        s.thread.store(thread_token(), Ordering::Relaxed);
        s.depth.store(1, Ordering::Relaxed);
        match poison {
            None => Ok(guard()),
            Some(cause) => Err(TryLockError::Poisoned(Poisoned::new(guard(), cause))),
        }
    }

    /// Takes the lock (again, if this thread holds it).
    pub fn lock(&self) -> Result<RLockGuard<'_>, Poisoned<RLockGuard<'_>>> {
        super::mutex::untimed(self.take(Wait::Forever))
    }

    /// Takes the lock if free (or held by this thread).
    pub fn try_lock(&self) -> Result<RLockGuard<'_>, TryLockError<RLockGuard<'_>>> {
        self.take(Wait::No)
    }

    /// Takes the lock, waiting at most `timeout`.
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<RLockGuard<'_>, TryLockError<RLockGuard<'_>>> {
        self.take(Wait::timeout(timeout))
    }
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        let s = self.lock.s();
        if s.depth.fetch_sub(1, Ordering::Relaxed) == 1 {
            s.thread.store(0, Ordering::Relaxed);
            s.lock.release();
        }
    }
}
