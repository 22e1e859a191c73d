//! [`Event`]: a flag threads can wait for.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::blocking::{deadline_after, lock, wait_while};

/// A flag that threads wait on until another sets it — Python's
/// `threading.Event`.
///
/// ```
/// use std::sync::Arc;
/// use std::thread;
/// use multiproc::threading::Event;
///
/// let ready = Arc::new(Event::new());
/// let waiter = {
///     let ready = ready.clone();
///     thread::spawn(move || ready.wait())
/// };
/// ready.set();
/// waiter.join().unwrap();
/// assert!(ready.is_set());
/// ```
///
/// `new` is `const`, so an `Event` can be a `static`.
///
/// Every thread waiting when `set` is called returns `true`, even if the
/// flag is cleared again before it runs (Python's contract, gh-57711): a
/// waiter watches the number of `set`s, not only the flag.
#[derive(Debug, Default)]
pub struct Event {
    /// The flag, and how many times it was set.
    state: Mutex<(bool, u64)>,
    cond: Condvar,
}

impl Event {
    /// A cleared event.
    pub const fn new() -> Event {
        Event {
            state: Mutex::new((false, 0)),
            cond: Condvar::new(),
        }
    }

    /// Sets the flag and wakes every waiting thread.
    pub fn set(&self) {
        let mut st = lock(&self.state);
        st.0 = true;
        st.1 += 1;
        drop(st);
        self.cond.notify_all();
    }

    /// Clears the flag; later `wait`s block until the next `set`.
    pub fn clear(&self) {
        lock(&self.state).0 = false;
    }

    /// True if the flag is set.
    pub fn is_set(&self) -> bool {
        lock(&self.state).0
    }

    /// Waits until the flag is set.
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Waits until the flag is set, or was set since the call began.
    fn wait_until(&self, deadline: Option<std::time::Instant>) -> bool {
        let st = lock(&self.state);
        let seen = st.1;
        let (st, _) = wait_while(&self.cond, st, deadline, |st| !st.0 && st.1 == seen);
        st.0 || st.1 != seen
    }

    /// Waits at most `timeout`; true if the flag is set (Python's
    /// `wait(timeout)`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use multiproc::threading::Event;
    ///
    /// let e = Event::new();
    /// assert!(!e.wait_timeout(Duration::from_millis(10)));
    /// e.set();
    /// assert!(e.wait_timeout(Duration::from_millis(10)));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(Some(deadline_after(timeout)))
    }
}
