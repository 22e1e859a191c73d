//! The state a future shares with the executor that completes it.
//!
//! One `Mutex` guards everything; the fast path (a task that nobody waits on
//! yet) takes it twice per task, uncontended, and makes no system call:
//! the condition variable is signalled only when a thread blocks on it, and
//! wakers, callbacks and `wait` sets are only touched when present.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::Waker;
use std::time::Instant;

use super::error::TaskError;
use crate::blocking::{lock, wait_while};
use crate::panic::{self, Report};

/// A callback run once the future is done.
pub(crate) type Callback<T> = Box<dyn FnOnce(Result<&T, &TaskError>) + Send>;

/// How an executor stops a task that is already running when its future is
/// cancelled (a process pool kills the worker).
pub(crate) type Stopper = Box<dyn FnOnce() + Send>;

pub(crate) enum Phase<T> {
    Pending,
    Running,
    /// Done; the value is out with the thread running the callbacks.
    Completing,
    Done(Result<T, TaskError>),
    /// Done; the value was moved out.
    Retrieved,
}

/// A `wait`/`as_completed` call that wants to hear about this future: it
/// is told the future's key and whether it failed.
pub(crate) struct Waiter {
    ready: Mutex<Vec<(usize, bool)>>,
    cond: Condvar,
}

impl Waiter {
    pub(crate) fn new() -> Arc<Waiter> {
        Arc::new(Waiter {
            ready: Mutex::new(Vec::new()),
            cond: Condvar::new(),
        })
    }

    fn notify(&self, key: usize, failed: bool) {
        lock(&self.ready).push((key, failed));
        self.cond.notify_one();
    }

    /// Waits until some futures are ready or the deadline passes; returns
    /// those that became ready (empty on timeout).
    pub(crate) fn take(&self, deadline: Option<Instant>) -> Vec<(usize, bool)> {
        let (mut ready, _) = wait_while(&self.cond, lock(&self.ready), deadline, |r| r.is_empty());
        std::mem::take(&mut *ready)
    }
}

pub(crate) struct State<T> {
    pub(crate) phase: Phase<T>,
    /// Threads blocked on `Shared::cond`.
    blocked: usize,
    callbacks: Vec<Callback<T>>,
    waker: Option<Waker>,
    waiters: Vec<(Arc<Waiter>, usize)>,
    /// Set while running on an executor that can stop the task.
    stopper: Option<Stopper>,
}

pub(crate) struct Shared<T> {
    state: Mutex<State<T>>,
    cond: Condvar,
}

impl<T> Shared<T> {
    pub(crate) fn new() -> Arc<Shared<T>> {
        Arc::new(Shared {
            state: Mutex::new(State {
                phase: Phase::Pending,
                blocked: 0,
                callbacks: Vec::new(),
                waker: None,
                waiters: Vec::new(),
                stopper: None,
            }),
            cond: Condvar::new(),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State<T>> {
        lock(&self.state)
    }

    /// Blocks until the future is done or the deadline passes; returns the
    /// guard either way.
    pub(crate) fn wait_done<'a>(
        &'a self,
        mut st: MutexGuard<'a, State<T>>,
        deadline: Option<Instant>,
    ) -> MutexGuard<'a, State<T>> {
        if st.is_done() {
            return st;
        }
        st.blocked += 1;
        let (mut st, _) = wait_while(&self.cond, st, deadline, |s| !s.is_done());
        st.blocked -= 1;
        st
    }

    /// Moves the outcome out of a done state.
    pub(crate) fn take(st: &mut State<T>) -> Result<T, TaskError> {
        match std::mem::replace(&mut st.phase, Phase::Retrieved) {
            Phase::Done(Ok(v)) => Ok(v),
            Phase::Done(Err(e)) => {
                st.phase = Phase::Done(Err(e.clone()));
                Err(e)
            }
            Phase::Retrieved => Err(TaskError::Retrieved),
            other => {
                st.phase = other;
                Err(TaskError::Timeout)
            }
        }
    }

    /// Sets the outcome (unless the future is already done, i.e. was
    /// cancelled), runs the callbacks, then wakes everyone waiting.
    pub(crate) fn complete(&self, outcome: Result<T, TaskError>) {
        let st = self.lock();
        if st.is_done() || matches!(st.phase, Phase::Completing) {
            return;
        }
        self.finish(st, outcome);
    }

    fn finish<'a>(&'a self, mut st: MutexGuard<'a, State<T>>, outcome: Result<T, TaskError>) {
        if !st.callbacks.is_empty() {
            st.phase = Phase::Completing;
            st = self.run_callbacks(st, &outcome);
        }
        self.publish(st, outcome);
    }

    /// Stores the outcome and wakes everyone who waits: blocked threads,
    /// `wait` sets, an `.await`.
    fn publish<'a>(&'a self, mut st: MutexGuard<'a, State<T>>, outcome: Result<T, TaskError>) {
        let failed = is_failure(&outcome);
        st.phase = Phase::Done(outcome);
        let stopper = st.stopper.take();
        let waker = st.waker.take();
        for (waiter, key) in st.waiters.drain(..) {
            waiter.notify(key, failed);
        }
        let blocked = st.blocked > 0;
        drop(st);
        drop(stopper);
        if blocked {
            self.cond.notify_all();
        }
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Runs the queued callbacks outside the lock, again until none was added
    /// meanwhile. A panicking callback is contained; the panic hook reports
    /// it on stderr.
    fn run_callbacks<'a>(
        &'a self,
        mut st: MutexGuard<'a, State<T>>,
        outcome: &Result<T, TaskError>,
    ) -> MutexGuard<'a, State<T>> {
        while !st.callbacks.is_empty() {
            let callbacks = std::mem::take(&mut st.callbacks);
            drop(st);
            for cb in callbacks {
                let _ = panic::capture(Report::Print, || cb(outcome.as_ref()));
            }
            st = self.lock();
        }
        st
    }

    /// Adds a callback; runs it at once, in this thread, if the future is
    /// already done.
    pub(crate) fn add_callback(&self, cb: Callback<T>) {
        let mut st = self.lock();
        st.callbacks.push(cb);
        let outcome = match std::mem::replace(&mut st.phase, Phase::Completing) {
            Phase::Done(outcome) => outcome,
            Phase::Retrieved => {
                st.phase = Phase::Retrieved;
                let callbacks = std::mem::take(&mut st.callbacks);
                drop(st);
                for cb in callbacks {
                    let _ = panic::capture(Report::Print, || cb(Err(&TaskError::Retrieved)));
                }
                return;
            }
            other => {
                st.phase = other;
                return;
            }
        };
        // Anyone who started waiting while the value was lent out is told.
        st = self.run_callbacks(st, &outcome);
        self.publish(st, outcome);
    }

    /// Pending → Done(Cancelled); with `stop_running`, Running →
    /// Done(Cancelled) too when the executor can stop the task (its stopper
    /// then runs, in this thread).
    /// True if the future is (now) cancelled.
    pub(crate) fn cancel(&self, stop_running: bool) -> bool {
        let mut st = self.lock();
        match st.phase {
            Phase::Pending => {
                self.finish(st, Err(TaskError::Cancelled));
                true
            }
            Phase::Running if stop_running && st.stopper.is_some() => {
                let stop = st.stopper.take();
                self.finish(st, Err(TaskError::Cancelled));
                if let Some(stop) = stop {
                    stop();
                }
                true
            }
            Phase::Done(Err(TaskError::Cancelled)) => true,
            _ => false,
        }
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        matches!(self.lock().phase, Phase::Done(Err(TaskError::Cancelled)))
    }

    /// Pending → Running; false if the task must not run (cancelled). With
    /// a stopper, cancelling the running task calls it.
    pub(crate) fn start(&self, stopper: Option<Stopper>) -> bool {
        let mut st = self.lock();
        match st.phase {
            Phase::Pending => {
                st.phase = Phase::Running;
                st.stopper = stopper;
                true
            }
            _ => false,
        }
    }

    /// Registers a waiter; returns `Some(failed)` instead if already done.
    pub(crate) fn add_waiter(&self, waiter: &Arc<Waiter>, key: usize) -> Option<bool> {
        let mut st = self.lock();
        match &st.phase {
            Phase::Done(outcome) => Some(is_failure(outcome)),
            Phase::Retrieved => Some(false),
            _ => {
                st.waiters.push((waiter.clone(), key));
                None
            }
        }
    }

    pub(crate) fn remove_waiter(&self, waiter: &Arc<Waiter>) {
        self.lock().waiters.retain(|(w, _)| !Arc::ptr_eq(w, waiter));
    }

    /// Stores the waker of an `.await`.
    pub(crate) fn set_waker(st: &mut State<T>, waker: &Waker) {
        match &st.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => st.waker = Some(waker.clone()),
        }
    }
}

/// Python's `FIRST_EXCEPTION` counts failures, not cancellations.
fn is_failure<T>(outcome: &Result<T, TaskError>) -> bool {
    matches!(outcome, Err(e) if *e != TaskError::Cancelled)
}

impl<T> State<T> {
    pub(crate) fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done(_) | Phase::Retrieved)
    }
}

/// The executor's end of a future. Dropped without completing (the job was
/// discarded), it fails the future with [`TaskError::ShutDown`].
pub(crate) struct Promise<T> {
    shared: Option<Arc<Shared<T>>>,
}

impl<T> Promise<T> {
    /// A new pending future and its promise.
    pub(crate) fn new() -> (Promise<T>, super::Future<T>) {
        let shared = Shared::new();
        (
            Promise {
                shared: Some(shared.clone()),
            },
            super::Future::from_shared(shared),
        )
    }

    /// Marks the task running; false if it was cancelled and must not run.
    pub(crate) fn start(&self) -> bool {
        self.shared.as_ref().is_some_and(|s| s.start(None))
    }

    /// [`start`](Self::start), for an executor that can stop the running
    /// task: cancelling the future then calls `stopper`.
    pub(crate) fn start_stoppable(&self, stopper: Stopper) -> bool {
        self.shared.as_ref().is_some_and(|s| s.start(Some(stopper)))
    }

    /// Whether the future is done (say, cancelled) already.
    pub(crate) fn is_done(&self) -> bool {
        self.shared.as_ref().is_none_or(|s| s.lock().is_done())
    }

    /// Whether the future was cancelled.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.shared.as_ref().is_some_and(|s| s.is_cancelled())
    }

    pub(crate) fn complete(mut self, outcome: Result<T, TaskError>) {
        if let Some(s) = self.shared.take() {
            s.complete(outcome);
        }
    }
}

impl<T> Drop for Promise<T> {
    fn drop(&mut self) {
        if let Some(s) = self.shared.take() {
            s.complete(Err(TaskError::ShutDown));
        }
    }
}
