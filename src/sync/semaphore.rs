//! `Semaphore` and `BoundedSemaphore` between processes.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::region::{Region, SharedSafe, shared_handle};
use crate::blocking::deadline_after;
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

/// `release` would raise a [`Semaphore::bounded`] above its initial value.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize,
)]
#[error("semaphore released too many times (its bound is {bound})")]
pub struct OverRelease {
    /// The initial value, which the count may not exceed.
    pub bound: u32,
}

/// A counting semaphore in shared memory; Python's
/// `multiprocessing.Semaphore` (and `BoundedSemaphore`, with
/// [`bounded`](Self::bounded)).
///
/// ```
/// use multiproc::sync::Semaphore;
/// let slots = Semaphore::bounded(2)?;
/// assert!(slots.try_acquire());
/// assert!(slots.try_acquire());
/// assert!(!slots.try_acquire());
/// slots.release()?;
/// slots.release()?;
/// assert!(slots.release().is_err()); // above its initial value
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A semaphore has no owner: if a process dies between `acquire` and
/// `release`, its unit is gone (as in Python and POSIX). Where that matters,
/// release in a guard that the process cannot skip, or use a
/// [`Mutex`](super::Mutex), whose holder's death is detected.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Semaphore {
    region: Region<SemaphoreState>,
}

shared_handle!(Semaphore);

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("value", &self.value())
            .finish()
    }
}

impl Semaphore {
    /// A semaphore starting at `value`.
    pub fn new(value: u32) -> io::Result<Semaphore> {
        Semaphore::make(value, 0)
    }

    /// A semaphore starting at `value` that refuses to be released above
    /// it ([`OverRelease`]); Python's `BoundedSemaphore`. `value` must be at
    /// least 1.
    pub fn bounded(value: u32) -> io::Result<Semaphore> {
        if value == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a bounded semaphore needs a bound of at least 1",
            ));
        }
        Semaphore::make(value, value)
    }

    fn make(value: u32, bound: u32) -> io::Result<Semaphore> {
        Ok(Semaphore {
            region: Region::create(0, |s: &SemaphoreState| {
                s.count.store(value, Ordering::Relaxed);
                s.bound.store(bound, Ordering::Relaxed);
            })?,
        })
    }

    fn s(&self) -> &SemaphoreState {
        self.region.header()
    }

    /// The count now.
    pub fn value(&self) -> u32 {
        self.s().count.load(Ordering::Relaxed)
    }

    /// Takes a unit if one is free.
    pub fn try_acquire(&self) -> bool {
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

    /// Takes a unit, waiting as long as it takes.
    pub fn acquire(&self) {
        self.acquire_until(None);
    }

    /// Takes a unit, waiting at most `timeout`; `false` if none came.
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.acquire_until(Some(deadline_after(timeout)))
    }

    fn acquire_until(&self, deadline: Option<Instant>) -> bool {
        if self.try_acquire() {
            return true;
        }
        let s = self.s();
        s.waiters.fetch_add(1, Ordering::SeqCst);
        let got = loop {
            if self.try_acquire() {
                break true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break false;
            }
            // Sleeps only while the count is still 0.
            shm::wait(&s.count, 0, deadline);
        };
        s.waiters.fetch_sub(1, Ordering::SeqCst);
        got
    }

    /// Gives a unit back, waking a waiter.
    pub fn release(&self) -> Result<(), OverRelease> {
        let s = self.s();
        let bound = s.bound.load(Ordering::Relaxed);
        let mut n = s.count.load(Ordering::Relaxed);
        loop {
            if (bound != 0 && n >= bound) || n == u32::MAX {
                return Err(OverRelease {
                    bound: if bound == 0 { u32::MAX } else { bound },
                });
            }
            match s
                .count
                .compare_exchange_weak(n, n + 1, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(m) => n = m,
            }
        }
        if s.waiters.load(Ordering::SeqCst) != 0 {
            shm::wake(&s.count, 1);
        }
        Ok(())
    }
}
