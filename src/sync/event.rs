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
    /// Bit 0: the flag; the bits above: how many times it was set (a
    /// waiter that saw the count move was set free, even if the flag was
    /// cleared again before it looked).
    word: AtomicU32,
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
///
/// Every thread or process waiting when `set` is called returns `true`,
/// even if the flag is cleared again before it runs (Python's contract,
/// gh-57711).
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
        self.s().word.load(Ordering::Acquire) & 1 != 0
    }

    /// Sets the flag and wakes every waiter, in every process.
    pub fn set(&self) {
        let s = self.s();
        // The flag up, the count of sets one more (wrapping above bit 0).
        let _ = s
            .word
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |w| {
                Some((w & !1).wrapping_add(2) | 1)
            });
        if s.waiters.load(Ordering::SeqCst) != 0 {
            shm::wake(&s.word, u32::MAX >> 1);
        }
    }

    /// Clears the flag.
    pub fn clear(&self) {
        self.s().word.fetch_and(!1, Ordering::SeqCst);
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
        let first = s.word.load(Ordering::SeqCst);
        if first & 1 != 0 {
            return true;
        }
        // Set since we began: the flag is up, or the count of sets moved.
        let freed = |w: u32| w & 1 != 0 || (w >> 1) != (first >> 1);
        s.waiters.fetch_add(1, Ordering::SeqCst);
        let mut w = s.word.load(Ordering::SeqCst);
        while !freed(w) && deadline.is_none_or(|d| Instant::now() < d) {
            // Sleeps only while the word is unchanged; `set` changes it,
            // then wakes.
            shm::wait(&s.word, w, deadline);
            w = s.word.load(Ordering::SeqCst);
        }
        s.waiters.fetch_sub(1, Ordering::SeqCst);
        freed(w)
    }
}
