//! `Semaphore` and `BoundedSemaphore` between processes.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::region::{Region, SharedSafe, shared_handle};
use crate::blocking::Wait;
use crate::os::shm;

/// Processes whose units are tracked at once (the rest of a crowd holds
/// units untracked: as in Python, lost if it dies).
pub const TRACKED_HOLDERS: usize = 32;

/// A process holding units: who (its identity, 0 for a free slot,
/// [`RECOVERING`] while a waiter returns a dead holder's units), and how
/// many.
#[repr(C)]
#[derive(Debug, Default)]
struct Holder {
    who: AtomicU64,
    units: AtomicU32,
}

const RECOVERING: u64 = u64::MAX;

/// How long a waiter sleeps before it looks for dead holders.
const NAP: std::time::Duration = std::time::Duration::from_millis(5);

#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct SemaphoreState {
    count: AtomicU32,
    waiters: AtomicU32,
    /// 0: unbounded; otherwise the initial value, which `release` may not
    /// exceed.
    bound: AtomicU32,
    holders: [Holder; TRACKED_HOLDERS],
}

// SAFETY: atomics only; all zero is a semaphore at 0, unbounded, with no
// holder.
unsafe impl SharedSafe for SemaphoreState {}

impl SemaphoreState {
    /// Notes that this process took a unit (after it did: a death in
    /// between loses the unit, never adds one).
    fn note_taken(&self) {
        let me = shm::process_id();
        if let Some(h) = self
            .holders
            .iter()
            .find(|h| h.who.load(Ordering::Acquire) == me)
        {
            h.units.fetch_add(1, Ordering::AcqRel);
            return;
        }
        for h in &self.holders {
            if h.who.load(Ordering::Relaxed) == 0
                && h.who
                    .compare_exchange(0, me, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                h.units.fetch_add(1, Ordering::AcqRel);
                return;
            }
        }
        // A full table: this unit is not tracked.
    }

    /// Notes that `n` units came back: this process's own first, then
    /// anyone's (a unit may be released by another process than the one
    /// that took it). Never more than were noted: a dead holder's units
    /// are returned at most once.
    fn note_returned(&self, mut n: u32) {
        let me = shm::process_id();
        let mine = self
            .holders
            .iter()
            .filter(|h| h.who.load(Ordering::Acquire) == me);
        let others = self.holders.iter().filter(|h| {
            let who = h.who.load(Ordering::Acquire);
            who != me && who != 0 && who != RECOVERING
        });
        for h in mine.chain(others) {
            if n == 0 {
                return;
            }
            let took = h
                .units
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| Some(u - u.min(n)))
                .map_or(0, |before| before.min(n));
            n -= took;
        }
    }

    /// Gives the units of dead holders back to the count; how many.
    fn recover_dead(&self) -> u32 {
        let mut back = 0;
        for h in &self.holders {
            let who = h.who.load(Ordering::Acquire);
            if who == 0 || who == RECOVERING || shm::is_alive(who) {
                continue;
            }
            // One waiter recovers each dead holder.
            if h.who
                .compare_exchange(who, RECOVERING, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            let units = h.units.swap(0, Ordering::AcqRel);
            if units > 0 {
                self.count.fetch_add(units, Ordering::SeqCst);
                back += units;
            }
            h.who.store(0, Ordering::Release);
        }
        back
    }
}

/// `release` would raise a bounded semaphore above its initial value (or
/// any semaphore above the most it can count). The same error for
/// [`sync::Semaphore::bounded`](Semaphore::bounded) and
/// [`threading::BoundedSemaphore`](crate::threading::BoundedSemaphore).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize,
)]
#[error("semaphore released too many times (its limit is {limit})")]
pub struct OverRelease {
    /// The initial value (or the most the semaphore can count), which the
    /// count may not exceed.
    pub limit: usize,
}

/// A counting semaphore in shared memory; Python's
/// `multiprocessing.Semaphore` (and `BoundedSemaphore`, with
/// [`bounded`](Self::bounded)). The same contract as
/// [`threading::Semaphore`](crate::threading::Semaphore): `acquire` returns a
/// guard that gives the unit back when dropped;
/// [`forget`](SemaphoreGuard::forget) keeps it taken for a manual
/// [`release`](Self::release) (possibly by another process).
///
/// ```
/// use multiproc::sync::Semaphore;
/// let slots = Semaphore::bounded(2)?;
/// let a = slots.try_acquire().expect("free");
/// slots.try_acquire().expect("free").forget(); // taken until `release`
/// assert!(slots.try_acquire().is_none());
/// drop(a);
/// assert_eq!(slots.available(), 1);
/// slots.release(1)?;
/// assert!(slots.release(1).is_err()); // above its initial value
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Differences from Python
///
/// A unit held by a process that dies comes back: the semaphore notes which
/// process holds how many units (up to [`TRACKED_HOLDERS`] processes at
/// once), and a waiter that finds no unit looks every 5 ms for holders that
/// died and returns their units. In Python (and POSIX) such a unit is gone
/// for good. A unit taken by a process beyond the first
/// [`TRACKED_HOLDERS`] holding at once is not tracked, and a process killed
/// in the instant between taking a unit and noting it loses that unit, as
/// in Python. A unit taken by one process and released by another (after
/// [`forget`](SemaphoreGuard::forget)) is the taker's until then: released
/// after the taker has ended, it comes back twice (a bounded semaphore
/// then reports [`OverRelease`]).
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Semaphore {
    region: Region<SemaphoreState>,
}

shared_handle!(Semaphore);

crate::blocking::semaphore_guard!(
    /// A unit of a [`Semaphore`]; dropping it releases it.
    SemaphoreGuard for Semaphore, release
);

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("available", &self.available())
            .finish()
    }
}

impl Semaphore {
    /// A semaphore starting at `value` (at most `u32::MAX`).
    pub fn new(value: usize) -> io::Result<Semaphore> {
        Semaphore::make(value, false)
    }

    /// A semaphore starting at `value` that refuses to be released above
    /// it ([`OverRelease`]); Python's `BoundedSemaphore`. `value` must be at
    /// least 1 (and at most `u32::MAX`).
    pub fn bounded(value: usize) -> io::Result<Semaphore> {
        if value == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a bounded semaphore needs a bound of at least 1",
            ));
        }
        Semaphore::make(value, true)
    }

    fn make(value: usize, bounded: bool) -> io::Result<Semaphore> {
        let value = u32::try_from(value).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "a process-shared semaphore counts to u32::MAX at most",
            )
        })?;
        Ok(Semaphore {
            region: Region::create(0, |s: &SemaphoreState| {
                s.count.store(value, Ordering::Relaxed);
                s.bound
                    .store(if bounded { value } else { 0 }, Ordering::Relaxed);
            })?,
        })
    }

    fn s(&self) -> &SemaphoreState {
        self.region.header()
    }

    /// The units free now.
    pub fn available(&self) -> usize {
        self.s().count.load(Ordering::Relaxed) as usize
    }

    fn take_one(&self) -> bool {
        let s = self.s();
        let mut n = s.count.load(Ordering::Relaxed);
        while n > 0 {
            match s
                .count
                .compare_exchange_weak(n, n - 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => {
                    s.note_taken();
                    return true;
                }
                Err(m) => n = m,
            }
        }
        false
    }

    /// Takes a unit if one is free now.
    pub fn try_acquire(&self) -> Option<SemaphoreGuard<'_>> {
        self.acquire_until(Wait::No)
    }

    /// Takes a unit, waiting as long as it takes.
    pub fn acquire(&self) -> SemaphoreGuard<'_> {
        self.acquire_until(Wait::Forever).expect("no deadline")
    }

    /// Takes a unit, waiting at most `timeout`; `None` if none came.
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphoreGuard<'_>> {
        self.acquire_until(Wait::timeout(timeout))
    }

    fn acquire_until(&self, wait: Wait) -> Option<SemaphoreGuard<'_>> {
        let guard = SemaphoreGuard { sem: self };
        if self.take_one() {
            return Some(guard);
        }
        if wait == Wait::No {
            std::mem::forget(guard);
            return None;
        }
        let deadline = wait.deadline();
        let s = self.s();
        s.waiters.fetch_add(1, Ordering::SeqCst);
        let got = loop {
            if self.take_one() {
                break true;
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                break false;
            }
            // Sleeps only while the count is still 0, a nap at most: then
            // looks for holders that died with units.
            let nap = now + NAP;
            shm::wait(&s.count, 0, Some(deadline.map_or(nap, |d| d.min(nap))));
            if s.count.load(Ordering::Relaxed) == 0 && s.recover_dead() > 0 {
                shm::wake(&s.count, u32::MAX >> 1);
            }
        };
        s.waiters.fetch_sub(1, Ordering::SeqCst);
        if got {
            Some(guard)
        } else {
            std::mem::forget(guard);
            None
        }
    }

    /// Gives back `n` units taken earlier (with
    /// [`SemaphoreGuard::forget`]), waking up to `n` waiters; Python's
    /// `release(n)`. [`OverRelease`], and no change, if a bounded semaphore
    /// would exceed its initial value (or any would exceed `u32::MAX`).
    pub fn release(&self, n: usize) -> Result<(), OverRelease> {
        let s = self.s();
        let bound = s.bound.load(Ordering::Relaxed);
        let limit = if bound == 0 { u32::MAX } else { bound };
        let over = OverRelease {
            limit: limit as usize,
        };
        let n = u32::try_from(n).map_err(|_| over)?;
        // Noted as returned first: a death after this loses the units
        // (never returns them twice).
        s.note_returned(n);
        let mut count = s.count.load(Ordering::Relaxed);
        loop {
            let Some(next) = count.checked_add(n).filter(|&c| c <= limit) else {
                return Err(over);
            };
            // (An over-release noted the units as returned: they were not
            // held, so nothing is lost.)
            match s
                .count
                .compare_exchange_weak(count, next, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(m) => count = m,
            }
        }
        if n > 0 && s.waiters.load(Ordering::SeqCst) != 0 {
            shm::wake(&s.count, n.min(i32::MAX as u32));
        }
        Ok(())
    }
}
