//! `Semaphore` and `BoundedSemaphore` between processes.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::region::{Region, SharedSafe, shared_handle};
use crate::blocking::Wait;
use crate::os::shm;

#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct SemaphoreState {
    count: AtomicU32,
    waiters: AtomicU32,
    /// 0: unbounded; otherwise the initial value, which `release` may not
    /// exceed.
    bound: AtomicU32,
}

// SAFETY: atomics only; all zero is a semaphore at 0, unbounded.
unsafe impl SharedSafe for SemaphoreState {}

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
/// A semaphore has no owner: if a process dies between `acquire` and
/// `release`, its unit is gone (as in Python and POSIX). Where that matters,
/// use a [`Mutex`](super::Mutex), whose holder's death is detected.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Semaphore {
    region: Region<SemaphoreState>,
}

shared_handle!(Semaphore);

/// A unit of a [`Semaphore`]; dropping it releases it.
#[must_use = "dropping the guard releases the unit at once"]
#[derive(Debug)]
pub struct SemaphoreGuard<'a> {
    sem: &'a Semaphore,
}

impl SemaphoreGuard<'_> {
    /// Keeps the unit taken; give it back later with
    /// [`Semaphore::release`].
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        // A unit that was taken always fits back.
        let _ = self.sem.release(1);
    }
}

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
        let count = &self.s().count;
        let mut n = count.load(Ordering::Relaxed);
        while n > 0 {
            match count.compare_exchange_weak(n, n - 1, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return true,
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
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break false;
            }
            // Sleeps only while the count is still 0.
            shm::wait(&s.count, 0, deadline);
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
        let mut count = s.count.load(Ordering::Relaxed);
        loop {
            let Some(next) = count.checked_add(n).filter(|&c| c <= limit) else {
                return Err(over);
            };
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
