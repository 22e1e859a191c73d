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
#[derive(Debug, Default)]
pub struct Event {
    flag: Mutex<bool>,
    cond: Condvar,
}

impl Event {
    /// A cleared event.
    pub const fn new() -> Event {
        Event {
            flag: Mutex::new(false),
            cond: Condvar::new(),
        }
    }

    /// Sets the flag and wakes every waiting thread.
    pub fn set(&self) {
        *lock(&self.flag) = true;
        self.cond.notify_all();
    }

    /// Clears the flag; later `wait`s block until the next `set`.
    pub fn clear(&self) {
        *lock(&self.flag) = false;
    }

    /// True if the flag is set.
    pub fn is_set(&self) -> bool {
        *lock(&self.flag)
    }

    /// Waits until the flag is set.
    pub fn wait(&self) {
        let _flag = wait_while(&self.cond, lock(&self.flag), None, |set| !*set);
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
        let deadline = Some(deadline_after(timeout));
        let (flag, _) = wait_while(&self.cond, lock(&self.flag), deadline, |set| !*set);
        *flag
    }
}
