//! [`CancelOnDrop`]: a future that cancels its task when it is dropped.

use std::fmt;
use std::ops::Deref;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::error::TaskError;
use super::future::Future;

/// A [`Future`] that [cancels](Future::cancel) its task when it is dropped
/// before the task is done — tokio's `AbortOnDropHandle`, for a task on a
/// pool. Made by [`Future::cancel_on_drop`].
///
/// A plain `Future` dropped by an `async` caller (a `select!` that took
/// another branch, a `timeout` that expired) leaves its task running, as
/// Python's does; this one stops it: a task that has not started never
/// runs, and one running on a [`ProcessPool`](crate::executor::ProcessPool)
/// has its worker killed (replaced at once). A task running on a
/// [`ThreadPool`](crate::executor::ThreadPool) cannot be stopped and runs
/// to its end.
///
/// It dereferences to the [`Future`] (so `result`, `done`, … work), and it
/// is a [`std::future::Future`] itself.
///
/// ```
/// use std::sync::mpsc;
/// use std::time::Duration;
/// use multiproc::executor::ProcessPool;
/// use multiproc::futures::TaskError;
///
/// let pool = ProcessPool::new(1);
/// let slow = pool
///     .submit(|s: u64| std::thread::sleep(Duration::from_secs(s)), 60)
///     .cancel_on_drop();
/// let (tx, rx) = mpsc::channel();
/// slow.add_done_callback(move |outcome| tx.send(outcome.err().cloned()).unwrap());
/// drop(slow); // not done: cancelled (its worker is killed if it runs)
/// assert_eq!(rx.recv_timeout(Duration::from_secs(60))?, Some(TaskError::Cancelled));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "dropping it at once cancels the task"]
pub struct CancelOnDrop<T> {
    future: Option<Future<T>>,
}

impl<T> CancelOnDrop<T> {
    pub(super) fn new(future: Future<T>) -> CancelOnDrop<T> {
        CancelOnDrop {
            future: Some(future),
        }
    }

    /// The plain [`Future`] back: dropping it no longer cancels the task.
    pub fn detach(mut self) -> Future<T> {
        self.future.take().expect("present until dropped")
    }
}

impl<T> Deref for CancelOnDrop<T> {
    type Target = Future<T>;

    fn deref(&self) -> &Future<T> {
        self.future.as_ref().expect("present until dropped")
    }
}

impl<T> std::future::Future for CancelOnDrop<T> {
    type Output = Result<T, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let future = self.future.as_mut().expect("present until dropped");
        Pin::new(future).poll(cx)
    }
}

impl<T> Drop for CancelOnDrop<T> {
    fn drop(&mut self) {
        if let Some(f) = self.future.take()
            && !f.done()
        {
            f.cancel();
        }
    }
}

impl<T> fmt::Debug for CancelOnDrop<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CancelOnDrop").field(&self.future).finish()
    }
}
