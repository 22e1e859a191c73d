//! The robust lock word every process-shared primitive is built on.
//!
//! # Robustness: owner identity, not the kernel's robust list
//!
//! The lock word holds the owner's [`ProcessId`] — its pid *and* its start
//! time, so a pid reused by a new process never passes for the dead owner. A
//! waiter that has slept [`DEATH_CHECK`] without the lock changing hands
//! looks the owner up in `/proc`; if that process instance is gone (or a
//! zombie), the waiter takes the lock over with a compare-and-swap from the
//! dead owner's identity to its own and is told so ([`Acquired::OwnerDied`]).
//! A locker that finds a dead owner's word before sleeping does the same.
//! Only one taker can win that swap.
//!
//! Why not the kernel's robust futex list (or a robust `pthread_mutex`)? A
//! thread has a single robust-list head and glibc owns it: our own list
//! would replace glibc's, and splicing into glibc's depends on its private
//! layout. A robust `pthread_mutex` is sound, but it is glibc's object, not
//! one word we can place beside our own poison and counts. The cost of our
//! scheme is that death is noticed within `DEATH_CHECK` (5 ms) of a
//! waiter's sleep instead of at once, and that a thread which dies *alone*
//! (its process living on) while holding the lock is not detected — in Rust
//! a thread only ends holding a guard by unwinding, which releases and
//! poisons the lock instead.
//!
//! # Waiting
//!
//! The free lock is one compare-and-swap of the owner word, and its release
//! one swap. A locker that finds it taken yields the processor and looks
//! again at exponentially spaced times (after 1, 2, 4, … yields: a waiter
//! that looks often takes the lock at nearly every look, because the
//! holder, about to take it again, stalls on the cache line the look took
//! away — two busy processes then hand it over every few operations). Then
//! it sleeps as in Drepper's *Futexes Are Tricky* (mutex 2), with the owner
//! in the word: it marks the word [`CONTENDED`] and sleeps on the word's
//! upper half (the owner's pid and the mark) for as long as that still
//! names the marked owner; an unlock that finds the mark wakes one sleeper,
//! and a sleeper that gets the lock takes it marked, since others may sleep
//! behind it. An unmarked unlock makes no system call.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::os::shm::{self, ProcessId};

/// How long a waiter sleeps before it checks whether the owner still lives.
pub(crate) const DEATH_CHECK: Duration = Duration::from_millis(5);

/// Yields before sleeping (at most 7 looks: after 1, 3, 7, … 127 yields).
/// A hand-off between two running processes takes well under a
/// microsecond. Between looks a locker hands the processor over
/// (`sched_yield`) instead of spinning on it: with more lockers than
/// processors, the holder may be the one waiting for it. Measured on the
/// 2-core machine (alternating runs, medians): spaced-out looks against a
/// look after every yield, `shared_value_processes` 24.6 → 45.0 M ops/s,
/// `queue_fan_in` with 16 / 32 producers 16.3 / 17.1 → 18.1 / 18.6 M msg/s;
/// a budget of 30 yields favours many producers (18.3 / 19.8 M) and hurts
/// two busy lockers (39.1 M), 400 the reverse (15.8 / 17.4 M, 47.1 M).
const SPINS: u32 = 100;

/// How a lock was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acquired {
    /// From a live owner (or free).
    Clean,
    /// From an owner that died holding it: the guarded state may be half
    /// written.
    OwnerDied,
}

/// Owner word: a waiter may sleep, so the unlock must wake one. A pid is a
/// positive `i32`, so bit 63 of a [`ProcessId`] (`pid << 32 | start`) is
/// always free.
const CONTENDED: u64 = 1 << 63;

/// The owner's identity in an owner word.
fn id(word: u64) -> ProcessId {
    word & !CONTENDED
}

/// A lock word in shared memory; all zero is "free, nobody waiting".
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct RawLock {
    /// 0 when free; else the holder's [`ProcessId`], with [`CONTENDED`] when
    /// a waiter may sleep (Drepper's three states, with an owner).
    owner: AtomicU64,
}

impl RawLock {
    /// Takes the lock if it is free (or its owner is dead: `OwnerDied`).
    pub(crate) fn try_lock(&self) -> Option<Acquired> {
        let me = shm::process_id();
        match self
            .owner
            .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
        {
            Ok(_) => Some(Acquired::Clean),
            Err(word) => self.take_from_dead(word, me),
        }
    }

    /// Takes the lock from a dead owner (keeping the sleepers' mark).
    fn take_from_dead(&self, word: u64, me: ProcessId) -> Option<Acquired> {
        let owner = id(word);
        if owner == 0 || owner == me || shm::is_alive(owner) {
            return None;
        }
        self.owner
            .compare_exchange(
                word,
                me | (word & CONTENDED),
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .ok()
            .map(|_| Acquired::OwnerDied)
    }

    /// Takes the lock, waiting until `deadline` if there is one (`None`
    /// when it passed).
    #[inline]
    pub(crate) fn lock(&self, deadline: Option<Instant>) -> Option<Acquired> {
        let me = shm::process_id();
        if self.take_if_free(me) {
            return Some(Acquired::Clean);
        }
        self.lock_contended(me, deadline)
    }

    /// Test, then test-and-set: looking with a plain load leaves the line
    /// shared, so a holder's unlock does not queue behind failed
    /// compare-and-swaps.
    #[inline(always)]
    fn take_if_free(&self, me: ProcessId) -> bool {
        self.owner.load(Ordering::Relaxed) == 0
            && self
                .owner
                .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    /// [`lock`](Self::lock) once the lock was found taken: out of line, so
    /// that the free lock costs its callers a load and a compare-and-swap.
    #[inline(never)]
    fn lock_contended(&self, me: ProcessId, deadline: Option<Instant>) -> Option<Acquired> {
        // Looks spaced out exponentially: a waiter that looks often takes
        // the lock at nearly every look (the holder, about to take it
        // again, stalls on the line the look took away), so two busy
        // processes would hand the lock over every few operations.
        let mut pause = 1;
        let mut spent = 0;
        while spent < SPINS {
            for _ in 0..pause {
                std::thread::yield_now();
            }
            spent += pause;
            pause *= 2;
            if self.take_if_free(me) {
                return Some(Acquired::Clean);
            }
        }
        self.lock_slow(me, deadline)
    }

    fn lock_slow(&self, me: ProcessId, deadline: Option<Instant>) -> Option<Acquired> {
        let mut check = false;
        loop {
            let word = self.owner.load(Ordering::Relaxed);
            if word == 0 {
                // Taken marked: others may sleep behind this waiter.
                if self
                    .owner
                    .compare_exchange(0, me | CONTENDED, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return Some(Acquired::Clean);
                }
                continue;
            }
            if check && let Some(a) = self.take_from_dead(word, me) {
                return Some(a);
            }
            if word & CONTENDED == 0
                && self
                    .owner
                    .compare_exchange(word, word | CONTENDED, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue; // changed: look again
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return None;
            }
            let nap = now + DEATH_CHECK;
            let until = deadline.map_or(nap, |d| d.min(nap));
            // Sleeps while the word still names this owner, marked.
            shm::wait(
                self.high_half(),
                ((word | CONTENDED) >> 32) as u32,
                Some(until),
            );
            // Slept a whole nap without a hand-off: is the owner alive?
            check = Instant::now() >= nap;
        }
    }

    /// The owner word's upper half — the owner's pid and [`CONTENDED`] —
    /// which waiters sleep on.
    fn high_half(&self) -> &AtomicU32 {
        let upper = if cfg!(target_endian = "little") { 1 } else { 0 };
        // SAFETY: `owner` is 8-aligned, so its halves are 4-aligned u32s
        // within it, live as long as `self`. The reference only goes to the
        // futex calls (the kernel reads the word atomically); Rust code
        // never loads or stores through it, so no mixed-size access happens.
        unsafe { &*self.owner.as_ptr().cast::<AtomicU32>().add(upper) }
    }

    /// Releases the lock. Only its holder calls this.
    ///
    /// A read-modify-write, a locked instruction on x86-64, which is a full
    /// barrier there: the queue ring's wake-up after an unlock relies on
    /// it (`ipc::signal::Signal::notify_after_unlock`);
    /// a plain store here would break that.
    pub(crate) fn unlock(&self) {
        if self.owner.swap(0, Ordering::Release) & CONTENDED != 0 {
            shm::wake(self.high_half(), 1);
        }
    }

    /// `true` if this process holds the lock (some thread of it).
    pub(crate) fn held_by_this_process(&self) -> bool {
        id(self.owner.load(Ordering::Relaxed)) == shm::process_id()
    }

    /// `true` while some process holds the lock (a hint).
    pub(crate) fn is_locked(&self) -> bool {
        self.owner.load(Ordering::Relaxed) != 0
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    /// Waits (with a deadline) until `f` holds.
    fn until(what: &str, f: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_sleeping_waiter_marks_the_word_and_the_unlock_hands_it_over() {
        let lock = Arc::new(RawLock::default());
        let me = shm::process_id();
        assert_eq!(lock.lock(None), Some(Acquired::Clean));
        assert_eq!(
            lock.owner.load(Ordering::Relaxed),
            me,
            "a free lock is taken unmarked"
        );
        let waiter = {
            let lock = lock.clone();
            std::thread::spawn(move || {
                let got = lock.lock(None);
                let word = lock.owner.load(Ordering::Relaxed);
                lock.unlock();
                (got, word)
            })
        };
        // After its looks the waiter marks the word and sleeps.
        until("the waiter marks the word", || {
            lock.owner.load(Ordering::Relaxed) == me | CONTENDED
        });
        lock.unlock();
        until("the waiter is done", || waiter.is_finished());
        let (got, word) = waiter.join().unwrap();
        assert_eq!(got, Some(Acquired::Clean));
        assert_eq!(word, me | CONTENDED, "a woken waiter takes the lock marked");
        assert_eq!(lock.owner.load(Ordering::Relaxed), 0);
        assert!(!lock.is_locked());
    }

    #[test]
    fn a_marked_lock_of_a_dead_owner_is_taken_over_marked() {
        // A word no live process has: pid 0x7fff_fff0 is above any pid_max.
        let dead = (0x7fff_fff0u64 << 32) | 12345;
        let lock = RawLock::default();
        lock.owner.store(dead | CONTENDED, Ordering::Relaxed);
        assert_eq!(lock.try_lock(), Some(Acquired::OwnerDied));
        assert_eq!(
            lock.owner.load(Ordering::Relaxed),
            shm::process_id() | CONTENDED
        );
        assert!(lock.held_by_this_process());
        lock.unlock();
        assert_eq!(lock.owner.load(Ordering::Relaxed), 0);
        lock.owner.store(dead, Ordering::Relaxed);
        // A locker marks the word, sleeps one nap, then looks the owner up.
        let deadline = Instant::now() + Duration::from_secs(10);
        assert_eq!(lock.lock(Some(deadline)), Some(Acquired::OwnerDied));
        assert!(lock.held_by_this_process());
        lock.unlock();
    }

    #[test]
    fn a_waiter_gives_up_at_its_deadline() {
        let lock = RawLock::default();
        assert_eq!(lock.lock(None), Some(Acquired::Clean));
        assert_eq!(
            lock.lock(Some(Instant::now() + Duration::from_millis(20))),
            None
        );
        lock.unlock();
        assert_eq!(lock.try_lock(), Some(Acquired::Clean));
        lock.unlock();
    }
}
