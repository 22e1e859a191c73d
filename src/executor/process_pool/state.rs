//! What `submit`, `map` and `shutdown` share with the pool's backend: the
//! queue of submitted tasks, each with the typed end of its future behind a
//! [`Sink`], and the flags of the pool's life. The backend (the local
//! manager thread today) takes tasks from the front and answers through the
//! sinks; `submit` does not know which backend runs.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

use super::protocol::Value;
use crate::blocking::lock;
use crate::futures::TaskError;
use crate::futures::state::Stopper;
use crate::ipc::Connection;

/// A submitted task on the parent's side: its job and its future's end.
pub(crate) struct Pending {
    /// Names the task to a cancellation.
    pub(crate) id: u64,
    pub(crate) entry: i64,
    pub(crate) arg: Vec<u8>,
    /// The descriptors of the handles in the argument (kept until the task
    /// is answered: a job taken back goes out again with them).
    pub(crate) fds: Vec<OwnedFd>,
    pub(crate) timeout: Option<Duration>,
    /// Runs again after a lost worker machine, this many times at most
    /// (the Redis backend), or whose local worker died under it.
    pub(crate) retries: u32,
    pub(crate) sink: Box<dyn Sink>,
    /// Already marked running (it was taken back from a worker).
    pub(crate) started: bool,
}

impl Pending {
    /// An answered task, made ready to wait for a submitter to free it:
    /// its descriptors are closed now (a pipe's reader may wait for its
    /// end), and so is a large argument.
    pub(crate) fn answered(&mut self) {
        self.fds.clear();
        if self.arg.capacity() > ARG_KEPT {
            self.arg = Vec::new();
        }
    }
}

/// The typed end of a task's future, behind a trait object so that the
/// manager handles tasks of every type.
pub(crate) trait Sink: Send {
    /// Marks the future running, cancellable by `stopper`; `false` if it
    /// was cancelled.
    fn start(&self, stopper: Stopper) -> bool;
    /// The future is done already (cancelled while it waited to run again).
    fn is_done(&self) -> bool;
    /// Completes the future with the value or an error, keeping what is
    /// left to be dropped later (maybe by another thread).
    fn complete(&mut self, outcome: Result<Value, TaskError>);
    /// Completes the future with the value or an error.
    fn finish(mut self: Box<Self>, outcome: Result<Value, TaskError>) {
        self.complete(outcome)
    }
}

/// What submitters and the manager share.
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    /// What `ProcessPool::stats` reports (the tasks' sinks count their
    /// ends; the manager, the workers it starts).
    pub(crate) counts: Arc<Counts>,
    /// Tells the manager to look at `state` again.
    pub(crate) wake: Connection,
    /// Signalled when the manager has ended.
    pub(crate) ended: Condvar,
}

/// Running totals of a pool.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) submitted: AtomicU64,
    pub(crate) succeeded: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) cancelled: AtomicU64,
    pub(crate) workers_started: AtomicU64,
}

impl Counts {
    /// Counts a task's end.
    pub(crate) fn ended<T>(&self, outcome: &Result<T, TaskError>) {
        let c = match outcome {
            Ok(_) => &self.succeeded,
            Err(TaskError::Cancelled) => &self.cancelled,
            Err(_) => &self.failed,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Answered tasks kept for the submitters to free, at most, and the bytes
/// of their arguments; past either the manager frees them itself (nobody
/// submits, or the arguments are large).
const ANSWERED_KEPT: usize = 1024;
const ANSWERED_BYTES_KEPT: usize = 4 << 20;

/// An answered task's argument larger than this is freed at once, by the
/// manager (a map's chunk of 1,000 numbers, 8 KB, is kept).
const ARG_KEPT: usize = 16 << 10;

pub(crate) struct State {
    pub(crate) queue: VecDeque<Pending>,
    pub(crate) shutdown: bool,
    /// `shutdown(cancel_futures)`: jobs handed to workers and not claimed
    /// are taken back and cancelled too.
    pub(crate) cancel_unstarted: bool,
    pub(crate) broken: Option<String>,
    pub(crate) running: bool,
    /// The id of the next task.
    pub(crate) next_id: u64,
    /// Running tasks whose futures were cancelled.
    pub(crate) cancels: Vec<u64>,
    /// The manager is (about to be) waiting: whoever changes the state
    /// pokes it.
    pub(crate) asleep: bool,
    /// The pids of the local workers (the manager keeps it current).
    pub(crate) worker_pids: Vec<u32>,
    /// Answered tasks, whose memory (the argument, the future's end) the
    /// next submitter frees: allocated by a submitting thread, freed by
    /// the manager's, each such block cost the allocator a slow path on
    /// both sides.
    pub(crate) answered: Vec<Vec<Pending>>,
    /// Tasks in `answered`, and the bytes of their arguments.
    pub(crate) answered_len: usize,
    pub(crate) answered_bytes: usize,
}

impl State {
    pub(crate) fn new() -> State {
        State {
            queue: VecDeque::new(),
            shutdown: false,
            cancel_unstarted: false,
            broken: None,
            running: true,
            next_id: 0,
            cancels: Vec::new(),
            asleep: false,
            worker_pids: Vec::new(),
            answered: Vec::new(),
            answered_len: 0,
            answered_bytes: 0,
        }
    }

    /// Takes answered tasks over, to be freed by the next submitter; false
    /// (they are not taken) when [`ANSWERED_KEPT`] tasks or
    /// [`ANSWERED_BYTES_KEPT`] bytes of arguments are waiting already.
    pub(crate) fn keep_answered(&mut self, tasks: &mut Vec<Pending>) -> bool {
        if self.answered_len >= ANSWERED_KEPT || self.answered_bytes >= ANSWERED_BYTES_KEPT {
            return false;
        }
        self.answered_len += tasks.len();
        self.answered_bytes += tasks.iter().map(|t| t.arg.capacity()).sum::<usize>();
        self.answered.push(std::mem::take(tasks));
        true
    }

    /// The answered tasks, for the caller to drop once it has let go of
    /// the state's lock.
    pub(crate) fn take_answered(&mut self) -> Vec<Vec<Pending>> {
        (self.answered_len, self.answered_bytes) = (0, 0);
        std::mem::take(&mut self.answered)
    }

    /// Whether the manager must be poked after this change (at most once
    /// per sleep).
    pub(crate) fn must_wake(&mut self) -> bool {
        std::mem::take(&mut self.asleep)
    }
}

impl Shared {
    pub(crate) fn poke(&self) {
        let _ = self.wake.send_bytes(&[]);
    }
}

/// A cancelled running future tells the manager (if the pool still exists).
pub(crate) fn stopper(shared: &Weak<Shared>, id: u64) -> Stopper {
    let shared = shared.clone();
    Box::new(move || {
        if let Some(shared) = shared.upgrade() {
            let mut st = lock(&shared.state);
            st.cancels.push(id);
            let wake = st.must_wake();
            drop(st);
            if wake {
                shared.poke();
            }
        }
    })
}

/// Puts tasks back at the front of the queue, in their order.
pub(crate) fn requeue_front(shared: &Shared, tasks: Vec<Pending>) {
    if tasks.is_empty() {
        return;
    }
    let mut st = lock(&shared.state);
    for p in tasks.into_iter().rev() {
        st.queue.push_front(p);
    }
}

/// Workers cannot be started: every queued task fails.
pub(crate) fn fail_all(shared: &Shared, why: String) {
    tracing::error!(target: "multiproc::pool", %why, "the pool is broken");
    let mut st = lock(&shared.state);
    st.broken = Some(why.clone());
    let queued: Vec<Pending> = st.queue.drain(..).collect();
    drop(st);
    for p in queued {
        if p.started || p.sink.start(Box::new(|| {})) {
            p.sink.finish(Err(TaskError::Broken(why.clone())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Quiet;

    impl Sink for Quiet {
        fn start(&self, _: Stopper) -> bool {
            true
        }
        fn is_done(&self) -> bool {
            false
        }
        fn complete(&mut self, _: Result<Value, TaskError>) {}
    }

    fn task(arg_len: usize, fds: usize) -> Pending {
        Pending {
            id: 0,
            entry: 0,
            arg: vec![0; arg_len],
            fds: (0..fds).map(|_| rustix::pipe::pipe().unwrap().0).collect(),
            timeout: None,
            retries: 0,
            sink: Box::new(Quiet),
            started: true,
        }
    }

    #[test]
    fn an_answered_task_closes_its_descriptors_and_frees_a_large_argument_at_once() {
        let mut small = task(ARG_KEPT, 2);
        small.answered();
        assert!(small.fds.is_empty());
        assert_eq!(
            small.arg.len(),
            ARG_KEPT,
            "a small argument waits for a submitter"
        );
        let mut large = task(ARG_KEPT + 1, 0);
        large.answered();
        assert_eq!(large.arg.capacity(), 0);
    }

    #[test]
    fn answered_tasks_kept_for_submitters_are_bounded_in_number_and_bytes() {
        let mut st = State::new();
        let mut kept = 0;
        loop {
            let mut batch: Vec<Pending> = (0..48).map(|_| task(16, 0)).collect();
            if !st.keep_answered(&mut batch) {
                assert_eq!(batch.len(), 48, "refused tasks stay with the manager");
                break;
            }
            assert!(batch.is_empty());
            kept += 48;
        }
        assert!((ANSWERED_KEPT..ANSWERED_KEPT + 48).contains(&kept));
        assert_eq!(st.take_answered().iter().map(Vec::len).sum::<usize>(), kept);
        assert!(st.take_answered().is_empty());
        // By bytes: arguments of 16 KiB stop it at 4 MiB.
        let mut kept_bytes = 0;
        loop {
            let mut batch = vec![task(ARG_KEPT, 0)];
            if !st.keep_answered(&mut batch) {
                break;
            }
            kept_bytes += ARG_KEPT;
        }
        assert!((ANSWERED_BYTES_KEPT..ANSWERED_BYTES_KEPT + ARG_KEPT + 1).contains(&kept_bytes));
    }
}
