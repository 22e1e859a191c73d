//! [`Future`]: the result of a task that runs somewhere else.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use super::error::TaskError;
use super::on_drop::CancelOnDrop;
use super::state::{Phase, Shared};

/// The result of a task submitted to an executor — Python's
/// `concurrent.futures.Future`, one type for every executor.
///
/// A future is a handle you own; every method takes `&self`, so it can be
/// shared by reference with other threads and passed to [`wait`](super::wait)
/// or [`as_completed`](super::as_completed) by reference or by value.
///
/// ```
/// use multiproc::executor::ThreadPool;
/// use multiproc::futures::TaskError;
///
/// let pool = ThreadPool::new(2);
/// let f = pool.submit(|| 6 * 7);
/// assert_eq!(f.result(), Ok(42));
/// // The value moves out once; errors can be read again and again.
/// assert_eq!(f.result(), Err(TaskError::Retrieved));
/// ```
///
/// # Differences from Python
///
/// - The value is *moved* out by the first successful [`result`](Self::result),
///   [`result_timeout`](Self::result_timeout), [`try_result`](Self::try_result)
///   or `.await`; later calls return [`TaskError::Retrieved`] (Python returns
///   the same object again; a Rust value need not be `Clone`). Errors are
///   returned every time.
/// - `result_timeout` returns [`TaskError::Timeout`] and the future stays
///   usable; Python raises `TimeoutError`.
/// - `Future` also implements [`std::future::Future`], so `.await` works in any
///   async runtime (no runtime is needed by this crate).
///
/// # In `async` code
///
/// `.await` a future from any runtime. Dropping a `Future` leaves its task
/// running (Python's behaviour, and a thread's); under `select!` or a
/// `timeout`, make it [`cancel_on_drop`](Self::cancel_on_drop) so that a
/// future given up on stops its task. The pools' blocking calls —
/// `result`, `shutdown(wait = true)`, and dropping a pool, which waits for
/// its tasks — block the calling thread: in a runtime, call them, and drop
/// a pool, in a blocking task (`tokio::task::spawn_blocking`).
pub struct Future<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Future<T> {
    pub(crate) fn from_shared(shared: Arc<Shared<T>>) -> Future<T> {
        Future { shared }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared<T>> {
        &self.shared
    }

    /// Waits for the task and returns its value or its error.
    pub fn result(&self) -> Result<T, TaskError> {
        let st = self.shared.lock();
        let mut st = self.shared.wait_done(st, None);
        Shared::take(&mut st)
    }

    /// Waits at most `timeout`; [`TaskError::Timeout`] if the task is not
    /// done by then (it goes on running).
    ///
    /// ```
    /// use std::time::Duration;
    /// use multiproc::executor::ThreadPool;
    /// use multiproc::futures::TaskError;
    ///
    /// let pool = ThreadPool::new(1);
    /// let slow = pool.submit(|| std::thread::sleep(Duration::from_millis(300)));
    /// assert_eq!(slow.result_timeout(Duration::from_millis(1)), Err(TaskError::Timeout));
    /// assert_eq!(slow.result(), Ok(()));
    /// ```
    pub fn result_timeout(&self, timeout: Duration) -> Result<T, TaskError> {
        let deadline = crate::blocking::deadline_after(timeout);
        let st = self.shared.lock();
        let mut st = self.shared.wait_done(st, Some(deadline));
        Shared::take(&mut st)
    }

    /// The outcome if the task is done, without waiting; like
    /// `result_timeout(Duration::ZERO)`, [`TaskError::Timeout`] while it is
    /// pending or running.
    ///
    /// ```
    /// use std::time::Duration;
    /// use multiproc::{executor::ThreadPool, futures::TaskError, threading::Event};
    /// use std::sync::Arc;
    ///
    /// let pool = ThreadPool::new(1);
    /// let go = Arc::new(Event::new());
    /// let future = pool.submit({ let go = go.clone(); move || { go.wait(); 7 } });
    /// assert_eq!(future.try_result(), Err(TaskError::Timeout));
    /// go.set();
    /// assert_eq!(future.result_timeout(Duration::from_secs(60)), Ok(7));
    /// ```
    pub fn try_result(&self) -> Result<T, TaskError> {
        Shared::take(&mut self.shared.lock())
    }

    /// Cancels the task: true if it is (now) cancelled, false if it is done,
    /// or running where it cannot be stopped. A task that has not started
    /// never runs; its future fails with [`TaskError::Cancelled`].
    ///
    /// A task already running on a
    /// [`ProcessPool`](crate::executor::ProcessPool) is stopped: its worker
    /// is killed and replaced, the other tasks run on (Python's `cancel`
    /// gives up on a running task). A thread cannot be killed, so on a
    /// [`ThreadPool`](crate::executor::ThreadPool) a running task is not
    /// cancelled.
    pub fn cancel(&self) -> bool {
        self.shared.cancel(true)
    }

    /// Cancels the task only if it has not started (never stops a running
    /// one): what a dropped lazy map does to the chunks it sent ahead.
    pub(crate) fn cancel_if_pending(&self) -> bool {
        self.shared.cancel(false)
    }

    /// This future, made to [`cancel`](Self::cancel) its task when dropped
    /// before the task is done: what an `async` caller wants from a task
    /// under `select!` or a `timeout` (see [`CancelOnDrop`]).
    pub fn cancel_on_drop(self) -> CancelOnDrop<T> {
        CancelOnDrop::new(self)
    }

    /// True if the task was cancelled.
    pub fn cancelled(&self) -> bool {
        self.shared.is_cancelled()
    }

    /// True while the task is running.
    pub fn running(&self) -> bool {
        matches!(self.shared.lock().phase, Phase::Running)
    }

    /// True once the task has a value or an error (or was cancelled).
    pub fn done(&self) -> bool {
        self.shared.lock().is_done()
    }

    /// Runs `callback` with the outcome once the task is done — at once, in
    /// this thread, if it already is; otherwise in the thread that completes
    /// it, before [`result`](Self::result) returns to anyone. Callbacks run in
    /// the order they were added. While a callback has the value, the future
    /// reads as not [`done`](Self::done) and `result` waits for it.
    ///
    /// # Panic handling
    ///
    /// A panicking callback is contained: the panic is printed by the panic
    /// hook, the other callbacks still run, and the executor's worker lives
    /// on.
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use multiproc::executor::ThreadPool;
    ///
    /// let pool = ThreadPool::new(1);
    /// let (tx, rx) = mpsc::channel();
    /// let f = pool.submit(|| 2 + 2);
    /// f.add_done_callback(move |outcome| tx.send(outcome.copied().ok()).unwrap());
    /// assert_eq!(rx.recv().unwrap(), Some(4));
    /// ```
    pub fn add_done_callback(
        &self,
        callback: impl FnOnce(Result<&T, &TaskError>) + Send + 'static,
    ) {
        self.shared.add_callback(Box::new(callback));
    }
}

impl<T> std::future::Future for Future<T> {
    type Output = Result<T, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut st = self.shared.lock();
        if st.is_done() {
            Poll::Ready(Shared::take(&mut st))
        } else {
            Shared::set_waker(&mut st, cx.waker());
            Poll::Pending
        }
    }
}

impl<T> fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.shared.lock().phase {
            Phase::Pending => "pending",
            Phase::Running => "running",
            Phase::Completing => "finishing",
            Phase::Done(Ok(_)) => "finished",
            Phase::Done(Err(TaskError::Cancelled)) => "cancelled",
            Phase::Done(Err(_)) => "failed",
            Phase::Retrieved => "retrieved",
        };
        f.debug_struct("Future").field("state", &state).finish()
    }
}
