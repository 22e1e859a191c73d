//! [`Timer`]: run a function once, after a delay, unless cancelled.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::Event;
use crate::futures::state::Promise;
use crate::futures::{Future, TaskError};
use crate::panic::{self, Report};

/// Runs a function on its own thread after a delay, unless cancelled first —
/// Python's `threading.Timer`, with the function's result as a [`Future`].
///
/// ```
/// use std::time::Duration;
/// use multiproc::futures::TaskError;
/// use multiproc::threading::Timer;
///
/// let soon = Timer::start(Duration::from_millis(10), || "rang");
/// assert_eq!(soon.result(), Ok("rang"));
///
/// let never = Timer::start(Duration::from_secs(60), || "rang");
/// assert!(never.cancel());
/// assert_eq!(never.result(), Err(TaskError::Cancelled));
/// ```
///
/// Dropping a `Timer` does not cancel it (as with Python's, the thread goes
/// on); call [`cancel`](Self::cancel) for that.
///
/// # Panic handling
///
/// A panic in the function becomes the future's
/// [`TaskError::Panicked`]; nothing is printed.
#[derive(Debug)]
pub struct Timer<R> {
    future: Future<R>,
    wake: Arc<Event>,
}

impl<R: Send + 'static> Timer<R> {
    /// Starts a thread that calls `f` after `interval`.
    pub fn start(interval: Duration, f: impl FnOnce() -> R + Send + 'static) -> Timer<R> {
        let (promise, future) = Promise::new();
        let wake = Arc::new(Event::new());
        let woken = wake.clone();
        let spawned = thread::Builder::new().name("Timer".into()).spawn(move || {
            // Woken early only by `cancel`, which also cancels the future.
            woken.wait_timeout(interval);
            if promise.start() {
                promise.complete(panic::capture(Report::Quiet, f).map_err(TaskError::from));
            }
        });
        if let Err(e) = spawned {
            // The closure (and the promise in it) came back and was dropped;
            // say why instead of a bare "shut down".
            let (promise, failed) = Promise::new();
            promise.complete(Err(TaskError::Broken(format!(
                "cannot start the timer thread: {e}"
            ))));
            return Timer {
                future: failed,
                wake,
            };
        }
        Timer { future, wake }
    }
}

impl<R> Timer<R> {
    /// Stops the timer if its function has not started: true if it will
    /// never run.
    pub fn cancel(&self) -> bool {
        let cancelled = self.future.cancel();
        self.wake.set();
        cancelled
    }

    /// True once the function ran (or the timer was cancelled).
    pub fn is_finished(&self) -> bool {
        self.future.done()
    }

    /// Waits for the function's value; [`TaskError::Cancelled`] if the timer
    /// was cancelled.
    pub fn result(&self) -> Result<R, TaskError> {
        self.future.result()
    }

    /// The timer's future, for [`wait`](crate::futures::wait) and friends.
    pub fn future(&self) -> &Future<R> {
        &self.future
    }
}
