//! Sleeping until a condition on lock-free state holds, without a system
//! call on the side that makes it hold when nobody sleeps.
//!
//! The waiter announces itself (`waiting += 1`), then re-checks the
//! condition; the notifier changes the state, then looks at `waiting`. With
//! a `SeqCst` fence between the two steps on each side, at least one of them
//! sees the other: either the waiter sees the new state, or the notifier
//! sees the waiter and signals it under the lock the waiter holds until it
//! sleeps, so the signal cannot be lost. The `loom_tests` below check this
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
    #[inline]
    pub fn notify_one(&self) {
        self.notify(false);
    }

    /// After a change that may let every waiter go on.
    pub fn notify_all(&self) {
        self.notify(true);
    }

    /// The notifier's half of the protocol: fence, then look for waiters.
    #[inline]
    fn notify(&self, all: bool) {
        fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::Relaxed) > 0 {
            let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            if all {
                self.cond.notify_all();
            } else {
                self.cond.notify_one();
            }
        }
    }

    /// Returns the first `Some` of `ready`, sleeping in between; `None` once
    /// `deadline` has passed. Spins a little before sleeping (not under
    /// loom, where spinning only multiplies the interleavings).
    #[inline]
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

/// Every interleaving of waiters and notifiers, checked by loom: a lost
/// wake-up shows up as a deadlock, which loom reports.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::Waitlist;
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::thread;

    /// Takes one item from a counter of items, if there is one.
    fn take(items: &AtomicUsize) -> Option<()> {
        let mut n = items.load(Ordering::Acquire);
        while n > 0 {
            match items.compare_exchange(n, n - 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(()),
                Err(now) => n = now,
            }
        }
        None
    }

    #[test]
    fn loom_one_waiter_one_notifier() {
        loom::model(|| {
            let list = Arc::new(Waitlist::new());
            let items = Arc::new(AtomicUsize::new(0));
            let notifier = {
                let (list, items) = (list.clone(), items.clone());
                thread::spawn(move || {
                    items.fetch_add(1, Ordering::Release);
                    list.notify_one();
                })
            };
            assert_eq!(list.wait_until(None, || take(&items)), Some(()));
            notifier.join().unwrap();
        });
    }

    #[test]
    fn loom_two_waiters_two_notifiers() {
        // Four threads: bound the preemptions to keep CI fast (loom's
        // recommended practice; most bugs need two or three).
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(3);
        model.check(|| {
            let list = Arc::new(Waitlist::new());
            let items = Arc::new(AtomicUsize::new(0));
            let threads: Vec<_> = (0..2)
                .map(|k| {
                    let (list, items) = (list.clone(), items.clone());
                    thread::spawn(move || {
                        if k == 0 {
                            items.fetch_add(1, Ordering::Release);
                            list.notify_one();
                        } else {
                            assert_eq!(list.wait_until(None, || take(&items)), Some(()));
                        }
                    })
                })
                .collect();
            items.fetch_add(1, Ordering::Release);
            list.notify_one();
            assert_eq!(list.wait_until(None, || take(&items)), Some(()));
            for t in threads {
                t.join().unwrap();
            }
            assert_eq!(items.load(Ordering::Relaxed), 0);
        });
    }

    #[test]
    fn loom_notify_all_wakes_every_waiter() {
        loom::model(|| {
            let list = Arc::new(Waitlist::new());
            let open = Arc::new(AtomicUsize::new(0));
            let waiters: Vec<_> = (0..2)
                .map(|_| {
                    let (list, open) = (list.clone(), open.clone());
                    thread::spawn(move || {
                        list.wait_until(None, || (open.load(Ordering::Acquire) == 1).then_some(()))
                    })
                })
                .collect();
            open.store(1, Ordering::Release);
            list.notify_all();
            for w in waiters {
                assert_eq!(w.join().unwrap(), Some(()));
            }
        });
    }
}
