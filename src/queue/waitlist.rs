//! Sleeping until a condition on lock-free state holds, without a system
//! call on the side that makes it hold when nobody sleeps.
//!
//! The waiter announces itself (`waiting += 1`), then re-checks the
//! condition; the notifier changes the state, then looks at `waiting`. With
//! a `SeqCst` fence between the two steps on each side, at least one of them
//! sees the other: either the waiter sees the new state, or the notifier
//! sees the waiter and signals it under the lock the waiter holds until it
//! sleeps, so the signal cannot be lost. `tests/loom_waitlist.rs` checks this
//! under every interleaving with loom.

use std::time::Instant;

use crossbeam_utils::Backoff;

#[cfg(loom)]
use loom::sync::atomic::{AtomicUsize, Ordering, fence};
#[cfg(loom)]
use loom::sync::{Condvar, Mutex};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicUsize, Ordering, fence};
#[cfg(not(loom))]
use std::sync::{Condvar, Mutex};

/// Threads waiting for one kind of change (an item, a free slot, ...).
pub struct Waitlist {
    waiting: AtomicUsize,
    lock: Mutex<()>,
    cond: Condvar,
}

impl Default for Waitlist {
    fn default() -> Self {
        Self::new()
    }
}

impl Waitlist {
    /// An empty waitlist.
    pub fn new() -> Waitlist {
        Waitlist {
            waiting: AtomicUsize::new(0),
            lock: Mutex::new(()),
            cond: Condvar::new(),
        }
    }

    /// After a change that may let one waiter go on.
    pub fn notify_one(&self) {
        fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::Relaxed) > 0 {
            let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.cond.notify_one();
        }
    }

    /// After a change that may let every waiter go on.
    pub fn notify_all(&self) {
        fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::Relaxed) > 0 {
            let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.cond.notify_all();
        }
    }

    /// Returns the first `Some` of `ready`, sleeping in between; `None` once
    /// `deadline` has passed. Spins a little before sleeping (not under
    /// loom, where spinning only multiplies the interleavings).
    pub fn wait_until<R>(
        &self,
        deadline: Option<Instant>,
        mut ready: impl FnMut() -> Option<R>,
    ) -> Option<R> {
        if !cfg!(loom) {
            let backoff = Backoff::new();
            while !backoff.is_completed() {
                if let Some(r) = ready() {
                    return Some(r);
                }
                backoff.snooze();
            }
        }
        let mut guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            self.waiting.fetch_add(1, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            let r = ready();
            if r.is_some() {
                self.waiting.fetch_sub(1, Ordering::Relaxed);
                return r;
            }
            guard = match deadline {
                None => self.cond.wait(guard).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        self.waiting.fetch_sub(1, Ordering::Relaxed);
                        return None;
                    }
                    wait_timeout(&self.cond, guard, d - now)
                }
            };
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(not(loom))]
fn wait_timeout<'a>(
    cond: &Condvar,
    guard: std::sync::MutexGuard<'a, ()>,
    d: std::time::Duration,
) -> std::sync::MutexGuard<'a, ()> {
    cond.wait_timeout(guard, d)
        .unwrap_or_else(|e| e.into_inner())
        .0
}

#[cfg(loom)]
fn wait_timeout<'a>(
    cond: &Condvar,
    guard: loom::sync::MutexGuard<'a, ()>,
    d: std::time::Duration,
) -> loom::sync::MutexGuard<'a, ()> {
    cond.wait_timeout(guard, d)
        .unwrap_or_else(|e| e.into_inner())
        .0
}
