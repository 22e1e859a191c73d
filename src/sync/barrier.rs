//! `Barrier`: parties in several processes meet.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::region::{Region, SharedSafe, shared_handle};
use crate::blocking::deadline_after;
use crate::os::shm;

/// Why a barrier wait let a party through without the others; the same
/// error for [`sync::Barrier`](Barrier) and
/// [`threading::Barrier`](crate::threading::Barrier).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize,
)]
pub enum BarrierError {
    /// The barrier is broken: a waiter timed out, it was aborted (or, for
    /// the thread barrier, reset, or its action panicked).
    #[error("the barrier is broken")]
    Broken,
    /// This wait timed out; the barrier is broken for the others too (as
    /// in Python).
    #[error("timed out waiting at the barrier (it is now broken)")]
    Timeout,
}

#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct BarrierState {
    parties: AtomicU32,
    /// Generation in the high 16 bits, arrivals in the low 16: one word, so
    /// that arriving and opening are one compare-and-swap each.
    word: AtomicU32,
    broken: AtomicU32,
    /// Bumped when the barrier opens or breaks: waiters sleep on it.
    seq: AtomicU32,
}

// SAFETY: atomics only; `create` sets `parties` before sharing.
unsafe impl SharedSafe for BarrierState {}

/// The most parties a barrier can have.
pub const MAX_PARTIES: usize = u16::MAX as usize;

/// A barrier in shared memory; Python's `multiprocessing.Barrier`.
///
/// ```
/// use std::time::Duration;
/// use multiproc::process::Process;
/// use multiproc::sync::Barrier;
/// let b = Barrier::new(2)?;
/// let mut p = Process::start(|b: Barrier| b.wait_timeout(Duration::from_secs(10)).is_ok(), b.clone())?;
/// b.wait_timeout(Duration::from_secs(10))?;
/// assert!(p.join()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A party that dies before it arrives leaves the others waiting: use
/// [`wait_timeout`](Self::wait_timeout) where that can happen.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Barrier {
    region: Region<BarrierState>,
}

shared_handle!(Barrier);

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties())
            .field("n_waiting", &self.n_waiting())
            .finish()
    }
}

impl Barrier {
    /// A barrier for `parties` parties (1 to [`MAX_PARTIES`]).
    pub fn new(parties: usize) -> io::Result<Barrier> {
        if parties == 0 || parties > MAX_PARTIES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a barrier needs 1 to {MAX_PARTIES} parties, not {parties}"),
            ));
        }
        Ok(Barrier {
            region: Region::create(0, |s: &BarrierState| {
                s.parties.store(parties as u32, Ordering::Relaxed)
            })?,
        })
    }

    fn s(&self) -> &BarrierState {
        self.region.header()
    }

    /// The number of parties.
    pub fn parties(&self) -> usize {
        self.s().parties.load(Ordering::Relaxed) as usize
    }

    /// Parties waiting now.
    pub fn n_waiting(&self) -> usize {
        (self.s().word.load(Ordering::Relaxed) & 0xffff) as usize
    }

    /// `true` once broken (a timeout or [`abort`](Self::abort)).
    pub fn is_broken(&self) -> bool {
        self.s().broken.load(Ordering::SeqCst) != 0
    }

    /// Breaks the barrier: every waiter, now and later, gets
    /// [`BarrierError::Broken`].
    pub fn abort(&self) {
        let s = self.s();
        s.broken.store(1, Ordering::SeqCst);
        s.seq.fetch_add(1, Ordering::SeqCst);
        shm::wake(&s.seq, u32::MAX >> 1);
    }

    /// Waits until all parties have arrived; returns this party's arrival
    /// index (0 for the first).
    pub fn wait(&self) -> Result<usize, BarrierError> {
        self.wait_until(None)
    }

    /// Like [`wait`](Self::wait), at most `timeout`; on timeout the barrier
    /// breaks for everyone, as in Python.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, BarrierError> {
        self.wait_until(Some(deadline_after(timeout)))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<usize, BarrierError> {
        let s = self.s();
        let parties = s.parties.load(Ordering::Relaxed);
        let mut w = s.word.load(Ordering::SeqCst);
        let (generation, index) = loop {
            if self.is_broken() {
                return Err(BarrierError::Broken);
            }
            let (generation, n) = (w >> 16, w & 0xffff);
            // The last arrival opens: the next generation, nobody waiting.
            let next = if n + 1 == parties {
                ((generation + 1) & 0xffff) << 16
            } else {
                w + 1
            };
            match s
                .word
                .compare_exchange_weak(w, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) if n + 1 == parties => {
                    s.seq.fetch_add(1, Ordering::SeqCst);
                    shm::wake(&s.seq, u32::MAX >> 1);
                    return Ok(n as usize);
                }
                Ok(_) => break (generation, n),
                Err(now) => w = now,
            }
        };
        loop {
            // Read before the checks: an opening or abort after them moves
            // `seq`, and the futex then does not sleep.
            let seq = s.seq.load(Ordering::SeqCst);
            let w = s.word.load(Ordering::SeqCst);
            if w >> 16 != generation {
                return Ok(index as usize);
            }
            if self.is_broken() {
                return Err(BarrierError::Broken);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                self.abort();
                return Err(BarrierError::Timeout);
            }
            shm::wait(&s.seq, seq, deadline);
        }
    }
}
