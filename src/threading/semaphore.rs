//! [`Semaphore`] and [`BoundedSemaphore`]: counters of permits.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::blocking::{deadline_after, lock, wait_while};
pub use crate::sync::OverRelease;

/// A count of permits; `acquire` takes one, waiting while there is none —
/// Python's `threading.Semaphore`.
///
/// `acquire` returns a guard that gives the permit back when dropped (the
/// Rust form of Python's `with sem:`); [`SemaphoreGuard::forget`] keeps it
/// taken, for the manual `acquire` … `release` style.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use multiproc::threading::Semaphore;
///
/// let slots = Arc::new(Semaphore::new(2));
/// let inside = Arc::new(AtomicUsize::new(0));
/// let threads: Vec<_> = (0..6).map(|_| {
///     let (slots, inside) = (slots.clone(), inside.clone());
///     std::thread::spawn(move || {
///         let _permit = slots.acquire();
///         assert!(inside.fetch_add(1, Ordering::SeqCst) < 2);
///         inside.fetch_sub(1, Ordering::SeqCst);
///     })
/// }).collect();
/// threads.into_iter().for_each(|t| t.join().unwrap());
/// assert_eq!(slots.available(), 2);
/// ```
#[derive(Debug)]
pub struct Semaphore {
    permits: Mutex<usize>,
    cond: Condvar,
}

crate::blocking::semaphore_guard!(
    /// A permit of a [`Semaphore`] or [`BoundedSemaphore`]; dropping it
    /// releases it.
    SemaphoreGuard for Semaphore, add
);

impl Semaphore {
    /// A semaphore with `permits` permits. `const`: it can be a `static`.
    pub const fn new(permits: usize) -> Semaphore {
        Semaphore {
            permits: Mutex::new(permits),
            cond: Condvar::new(),
        }
    }

    /// Takes a permit, waiting for one.
    pub fn acquire(&self) -> SemaphoreGuard<'_> {
        self.acquire_until(None).expect("no deadline")
    }

    /// Takes a permit if one is free now.
    pub fn try_acquire(&self) -> Option<SemaphoreGuard<'_>> {
        let mut permits = lock(&self.permits);
        (*permits > 0).then(|| {
            *permits -= 1;
            SemaphoreGuard { sem: self }
        })
    }

    /// Takes a permit, waiting at most `timeout`; `None` if none came.
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphoreGuard<'_>> {
        self.acquire_until(Some(deadline_after(timeout)))
    }

    fn acquire_until(&self, deadline: Option<Instant>) -> Option<SemaphoreGuard<'_>> {
        let (mut permits, timed_out) =
            wait_while(&self.cond, lock(&self.permits), deadline, |p| *p == 0);
        if timed_out {
            return None;
        }
        *permits -= 1;
        Some(SemaphoreGuard { sem: self })
    }

    /// Adds `n` permits (Python's `release(n)`), waking up to `n` waiters.
    pub fn release(&self, n: usize) {
        self.add(n);
    }

    fn add(&self, n: usize) {
        let mut permits = lock(&self.permits);
        *permits = permits.saturating_add(n);
        drop(permits);
        match n {
            0 => {}
            1 => self.cond.notify_one(),
            _ => self.cond.notify_all(),
        }
    }

    /// The permits free now.
    pub fn available(&self) -> usize {
        *lock(&self.permits)
    }
}

/// A [`Semaphore`] that refuses to be released above its initial count —
/// Python's `threading.BoundedSemaphore`, which raises `ValueError` there.
///
/// ```
/// use multiproc::threading::{BoundedSemaphore, OverRelease};
///
/// let sem = BoundedSemaphore::new(1);
/// sem.acquire().forget();
/// assert_eq!(sem.release(1), Ok(()));
/// assert_eq!(sem.release(1), Err(OverRelease { limit: 1 }));
/// assert_eq!(sem.available(), 1);
/// ```
#[derive(Debug)]
pub struct BoundedSemaphore {
    sem: Semaphore,
    limit: usize,
}

impl BoundedSemaphore {
    /// A semaphore with `permits` permits, never more.
    pub const fn new(permits: usize) -> BoundedSemaphore {
        BoundedSemaphore {
            sem: Semaphore::new(permits),
            limit: permits,
        }
    }

    /// Takes a permit, waiting for one.
    pub fn acquire(&self) -> SemaphoreGuard<'_> {
        self.sem.acquire()
    }

    /// Takes a permit if one is free now.
    pub fn try_acquire(&self) -> Option<SemaphoreGuard<'_>> {
        self.sem.try_acquire()
    }

    /// Takes a permit, waiting at most `timeout`.
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphoreGuard<'_>> {
        self.sem.acquire_timeout(timeout)
    }

    /// Gives back `n` permits taken earlier (with [`SemaphoreGuard::forget`]);
    /// [`OverRelease`], and no change, if that would exceed the initial count.
    pub fn release(&self, n: usize) -> Result<(), OverRelease> {
        let mut permits = lock(&self.sem.permits);
        if permits.checked_add(n).is_none_or(|p| p > self.limit) {
            return Err(OverRelease { limit: self.limit });
        }
        *permits += n;
        drop(permits);
        self.sem.cond.notify_all();
        Ok(())
    }

    /// The permits free now.
    pub fn available(&self) -> usize {
        self.sem.available()
    }
}
