//! `Event`: a flag that processes and threads wait for.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::region::{Region, SharedSafe, shared_handle};
use crate::blocking::deadline_after;
use crate::os::shm;

#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct EventState {
    flag: AtomicU32,
    waiters: AtomicU32,
}

// SAFETY: atomics only; all zero is "not set, nobody waiting".
unsafe impl SharedSafe for EventState {}

/// A flag in shared memory that threads and processes wait for; Python's
/// `multiprocessing.Event`.
///
/// ```
/// use multiproc::process::Process;
/// use multiproc::sync::Event;
/// let go = Event::new()?;
/// let mut p = Process::start(|go: Event| go.wait_timeout(std::time::Duration::from_secs(10)), go.clone())?;
/// go.set();
/// assert!(p.join()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Event {
    region: Region<EventState>,
}

shared_handle!(Event);

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .finish()
    }
}

impl Event {
    /// A new event, not set.
    pub fn new() -> io::Result<Event> {
        Ok(Event {
            region: Region::create(0, |_| {})?,
        })
    }

    fn s(&self) -> &EventState {
        self.region.header()
    }

    /// `true` once set (until cleared).
    pub fn is_set(&self) -> bool {
        self.s().flag.load(Ordering::Acquire) != 0
    }

    /// Sets the flag and wakes every waiter, in every process.
    pub fn set(&self) {
        let s = self.s();
        s.flag.store(1, Ordering::SeqCst);
        if s.waiters.load(Ordering::SeqCst) != 0 {
            shm::wake(&s.flag, u32::MAX >> 1);
        }
    }

    /// Clears the flag.
    pub fn clear(&self) {
        self.s().flag.store(0, Ordering::SeqCst);
    }

    /// Waits until the flag is set.
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Waits at most `timeout`; `true` if the flag is set.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(Some(deadline_after(timeout)))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        let s = self.s();
        if self.is_set() {
            return true;
        }
        s.waiters.fetch_add(1, Ordering::SeqCst);
        while !self.is_set() && deadline.is_none_or(|d| Instant::now() < d) {
            // Sleeps only while the flag is still 0; `set` stores, then wakes.
            shm::wait(&s.flag, 0, deadline);
        }
        s.waiters.fetch_sub(1, Ordering::SeqCst);
        self.is_set()
    }
}
