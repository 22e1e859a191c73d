//! Blocking helpers every layer shares: deadlines, locks that ignore
//! poisoning, and condition-variable waits with an optional deadline.

use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// How long a blocking call may wait. The three members of a family —
/// `get`, `try_get`, `get_timeout` (likewise `put`, `lock`, `acquire`,
/// `join`, `accept`, `result`) — are one private function taking a `Wait`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// As long as it takes (`get`).
    Forever,
    /// Not at all (`try_get`).
    No,
    /// Until this instant (`get_timeout`, converted once with [`Wait::timeout`]).
    Until(Instant),
}

impl Wait {
    /// Waits at most `timeout` from now.
    #[inline]
    pub(crate) fn timeout(timeout: Duration) -> Wait {
        Wait::Until(deadline_after(timeout))
    }

    /// The deadline: `None` for ever, an instant already past for not at
    /// all.
    #[inline]
    pub(crate) fn deadline(self) -> Option<Instant> {
        match self {
            Wait::Forever => None,
            Wait::No => Some(past()),
            Wait::Until(d) => Some(d),
        }
    }
}

/// An instant already past: the deadline of a call that must not wait.
/// The clock is read once, the first time: a `try_` call that succeeds at
/// once reads no clock at all (it used to read it for its deadline: a
/// process pool's manager and workers read it once per task).
#[inline]
fn past() -> Instant {
    static PAST: OnceLock<Instant> = OnceLock::new();
    *PAST.get_or_init(Instant::now)
}

/// `now + timeout`, saturating at a century for absurdly long timeouts.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or(now + Duration::from_secs(86400 * 365 * 100))
}

/// Locks `m`. The crate never leaves guarded state half-written when user
/// code panics, so a poisoned lock is simply taken.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits on `cond` while `pending` holds, until `deadline` if there is one.
/// Returns the guard, and true if it gave up at the deadline with `pending`
/// still true.
pub(crate) fn wait_while<'a, T>(
    cond: &Condvar,
    guard: MutexGuard<'a, T>,
    deadline: Option<Instant>,
    pending: impl FnMut(&mut T) -> bool,
) -> (MutexGuard<'a, T>, bool) {
    match deadline {
        None => (
            cond.wait_while(guard, pending)
                .unwrap_or_else(|e| e.into_inner()),
            false,
        ),
        Some(d) => {
            let (guard, result) = cond
                .wait_timeout_while(guard, d.saturating_duration_since(Instant::now()), pending)
                .unwrap_or_else(|e| e.into_inner());
            (guard, result.timed_out())
        }
    }
}

/// Defines the guard of a semaphore type: one unit, given back on drop by
/// `$give_back` (a method of the semaphore taking the number of units);
/// `forget` keeps it. The thread and the process semaphores share it.
macro_rules! semaphore_guard {
    ($(#[$doc:meta])* $guard:ident for $sem:ty, $give_back:ident) => {
        $(#[$doc])*
        #[must_use = "dropping the guard releases the unit at once"]
        #[derive(Debug)]
        pub struct $guard<'a> {
            sem: &'a $sem,
        }

        impl $guard<'_> {
            /// Keeps the unit taken; give it back later with `release`.
            pub fn forget(self) {
                std::mem::forget(self);
            }
        }

        impl Drop for $guard<'_> {
            fn drop(&mut self) {
                // A unit that was taken always fits back.
                let _ = self.sem.$give_back(1);
            }
        }
    };
}
pub(crate) use semaphore_guard;
