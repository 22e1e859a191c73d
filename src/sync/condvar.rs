//! `Condvar`: waiting for a condition on data under a shared [`Mutex`].

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytemuck::Pod;

use super::mutex::{Mutex, MutexGuard, Poisoned};
use super::region::{Region, SharedSafe, shared_handle};
use crate::blocking::deadline_after;
use crate::os::shm;

#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct CondState {
    seq: AtomicU32,
    waiters: AtomicU32,
}

// SAFETY: atomics only; all zero is "nobody waiting".
unsafe impl SharedSafe for CondState {}

/// A condition variable in shared memory, used with a shared
/// [`Mutex`]; Python's `multiprocessing.Condition` in std's shape.
///
/// ```
/// use std::time::Duration;
/// use multiproc::process::Process;
/// use multiproc::sync::{Condvar, Mutex};
/// let ready = Mutex::new(false as u8)?;
/// let cond = Condvar::new()?;
/// let mut p = Process::start(|(ready, cond): (Mutex<u8>, Condvar)| {
///     *ready.lock().unwrap() = 1;
///     cond.notify_all();
/// }, (ready.clone(), cond.clone()))?;
/// let mut g = ready.lock().unwrap();
/// while *g == 0 {
///     g = cond.wait_timeout(g, Duration::from_secs(10)).unwrap().0;
/// }
/// drop(g);
/// p.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// As with std's `Condvar`, wake-ups can be spurious: wait in a loop on the
/// condition. Use one `Condvar` with one `Mutex`.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Condvar {
    region: Region<CondState>,
}

shared_handle!(Condvar);

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}

impl Condvar {
    /// A new condition variable.
    pub fn new() -> io::Result<Condvar> {
        Ok(Condvar {
            region: Region::create(0, |_| {})?,
        })
    }

    fn s(&self) -> &CondState {
        self.region.header()
    }

    /// Unlocks, waits for a notification, locks again.
    pub fn wait<'a, T: Pod>(
        &self,
        guard: MutexGuard<'a, T>,
    ) -> Result<MutexGuard<'a, T>, Poisoned<MutexGuard<'a, T>>> {
        self.wait_until(guard, None).map(|(g, _)| g)
    }

    /// Like [`wait`](Self::wait), at most `timeout`; the flag says whether
    /// the time ran out.
    #[allow(clippy::type_complexity)]
    pub fn wait_timeout<'a, T: Pod>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> Result<(MutexGuard<'a, T>, bool), Poisoned<MutexGuard<'a, T>>> {
        self.wait_until(guard, Some(deadline_after(timeout)))
    }

    #[allow(clippy::type_complexity)]
    fn wait_until<'a, T: Pod>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Option<Instant>,
    ) -> Result<(MutexGuard<'a, T>, bool), Poisoned<MutexGuard<'a, T>>> {
        let s = self.s();
        let mutex: &'a Mutex<T> = guard.mutex;
        s.waiters.fetch_add(1, Ordering::SeqCst);
        // Read before unlocking: a notification after this changes `seq`,
        // and the futex then does not sleep.
        let seq = s.seq.load(Ordering::SeqCst);
        drop(guard);
        shm::wait(&s.seq, seq, deadline);
        s.waiters.fetch_sub(1, Ordering::SeqCst);
        let timed_out = deadline.is_some_and(|d| Instant::now() >= d);
        match mutex.lock() {
            Ok(g) => Ok((g, timed_out)),
            Err(p) => Err(p),
        }
    }

    /// Wakes one waiter.
    pub fn notify_one(&self) {
        self.notify(1);
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        self.notify(u32::MAX >> 1);
    }

    fn notify(&self, n: u32) {
        let s = self.s();
        s.seq.fetch_add(1, Ordering::SeqCst);
        if s.waiters.load(Ordering::SeqCst) != 0 {
            shm::wake(&s.seq, n);
        }
    }
}
