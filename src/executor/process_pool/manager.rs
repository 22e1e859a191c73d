//! The pool's manager thread: hands jobs to workers a few at a time,
//! collects their answers, notices deaths, deadlines and cancellations,
//! recycles and replaces workers.
//!
//! # How a task travels
//!
//! Jobs go to a worker in batches (one message, one system call) of up to
//! [`DEPTH`] jobs; a worker is refilled when half of its batch is done, so a
//! busy worker always has the next job at hand. Each job is numbered on the
//! worker's [`Claims`] board: the worker claims a job before running it,
//! and the manager can revoke one it has not claimed — to cancel it, to
//! give it to an idle worker (the tail of a long batch moves to whoever
//! runs dry), or to move it off a worker being recycled. When a worker
//! dies, the board says which job it was running (that one fails) and which
//! it never started (those run elsewhere): nothing is lost or run twice.
//!
//! A job with a timeout is only handed to a worker with nothing else to do,
//! and nothing is queued behind it: its clock starts when it is sent.
//!
//! # Why the pipes never jam
//!
//! The manager must never block writing to a worker that is itself blocked
//! writing an answer the manager does not read. So a worker gets a new
//! batch only once it has read every earlier one (its board says so) or
//! has nothing outstanding (then it is reading, not answering), a
//! batch holds small jobs only (at most `BATCH_BYTES` and change, far less
//! than a socket buffer), and a job with a large argument goes alone to an
//! idle worker, which is reading.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use serde_bytes::ByteBuf;

use super::task::{self, BatchOut, Done, Hello, JobOut, Outcome, Ready};
use crate::blocking::lock;
use crate::futures::TaskError;
use crate::futures::state::Stopper;
use crate::ipc::{self, Connection, Pipe, RecvError, SendError, Waitable};
use crate::os::image::ImageId;
use crate::process::{ExitStatus, Process, StartMethod};
use crate::sync::claims::{Claims, WINDOW};

/// Jobs handed to one worker ahead of time, at most.
const DEPTH: usize = 16;
/// A worker is refilled when it has this many jobs left, or fewer.
const LOW_WATER: usize = DEPTH / 2;
/// Arguments in one batch stop growing it past this many bytes.
const BATCH_BYTES: usize = 64 << 10;
/// A job whose argument is larger goes alone to an idle worker.
const SMALL_ARG: usize = 16 << 10;

const _: () = assert!(DEPTH <= WINDOW);

/// A submitted task on the parent's side: its job and its future's end.
pub(crate) struct Pending {
    /// Names the task to a cancellation.
    pub(crate) id: u64,
    pub(crate) entry: i64,
    pub(crate) arg: Vec<u8>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) sink: Box<dyn Sink>,
    /// Already marked running (it was taken back from a worker).
    pub(crate) started: bool,
}

/// The typed end of a task's future, behind a trait object so that the
/// manager handles tasks of every type.
pub(crate) trait Sink: Send {
    /// Marks the future running, cancellable by `stopper`; `false` if it
    /// was cancelled.
    fn start(&self, stopper: Stopper) -> bool;
    /// The future is done already (cancelled while it waited to run again).
    fn is_done(&self) -> bool;
    /// Completes the future with the encoded value or an error.
    fn finish(self: Box<Self>, outcome: Result<Vec<u8>, TaskError>);
}

/// What submitters and the manager share.
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    /// Tells the manager to look at `state` again.
    pub(crate) wake: Connection,
    /// Signalled when the manager has ended.
    pub(crate) ended: Condvar,
}

pub(crate) struct State {
    pub(crate) queue: VecDeque<Pending>,
    pub(crate) shutdown: bool,
    pub(crate) broken: Option<String>,
    pub(crate) running: bool,
    /// The id of the next task.
    pub(crate) next_id: u64,
    /// Running tasks whose futures were cancelled.
    pub(crate) cancels: Vec<u64>,
    /// The manager is (about to be) waiting: whoever changes the state
    /// pokes it.
    pub(crate) asleep: bool,
}

impl State {
    pub(crate) fn new() -> State {
        State {
            queue: VecDeque::new(),
            shutdown: false,
            broken: None,
            running: true,
            next_id: 0,
            cancels: Vec::new(),
            asleep: false,
        }
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

pub(crate) struct Config {
    pub(crate) workers: usize,
    pub(crate) method: StartMethod,
    pub(crate) name: String,
    pub(crate) max_tasks_per_child: Option<usize>,
    /// Resident memory above which a worker ends after its task (it checks
    /// itself).
    pub(crate) max_memory: Option<u64>,
    /// The initializer: its entry and encoded argument.
    pub(crate) init: Option<(i64, Vec<u8>)>,
}

/// Why the pool killed a worker that had a task running.
#[derive(Clone, Copy)]
enum Kill {
    Timeout(Duration),
    Cancelled,
    /// Recycled, idle.
    Retired,
}

/// A job handed to a worker.
struct Sent {
    n: u64,
    task: Pending,
    deadline: Option<(Instant, Duration)>,
}

struct Worker {
    process: Process<()>,
    conn: Connection,
    claims: Claims,
    /// Not ready yet: its initializer runs.
    starting: bool,
    /// Why its start failed, in its own words.
    start_error: Option<String>,
    /// Handed over and not answered, in order.
    sent: VecDeque<Sent>,
    next_n: u64,
    done: usize,
    killed: Option<Kill>,
    /// Recycled: gets no more jobs, ends when it has none.
    retiring: bool,
}

impl Worker {
    fn takes_jobs(&self) -> bool {
        !self.starting && !self.retiring && self.killed.is_none()
    }

    /// How many more jobs it takes now: none while it has a timed one, more
    /// than `LOW_WATER`, or jobs outstanding in a batch it has not read, and
    /// never more than its share of tasks (`max_tasks_per_child`) allows. A
    /// worker with nothing outstanding is reading, whatever is still in its
    /// pipe (a batch whose jobs were all taken back).
    fn room(&self, max_tasks: Option<usize>) -> usize {
        let timed = self.sent.front().is_some_and(|s| s.deadline.is_some());
        let unread = !self.sent.is_empty() && !self.claims.has_received(self.next_n);
        if !self.takes_jobs() || timed || self.sent.len() > LOW_WATER || unread {
            return 0;
        }
        let share = max_tasks.map_or(usize::MAX, |m| {
            m.saturating_sub(self.done + self.sent.len())
        });
        (DEPTH - self.sent.len()).min(share)
    }
}

/// A worker fails to start this many times in a row on its own (the
/// initializer panicked, the worker aborted or exited, no process could be
/// started): the pool is broken.
const START_FAILURES: usize = 3;

/// Workers killed by SIGKILL while starting — by someone else, or the OOM
/// killer — are retried this many times in a row before the pool gives up:
/// a kill from outside says little about whether a worker can start.
const START_KILLS: usize = 100;

struct Manager {
    shared: Arc<Shared>,
    cfg: Config,
    image: ImageId,
    workers: Vec<Worker>,
    started: usize,
    failures: usize,
    kills: usize,
}

/// The manager's loop; returns when the pool is shut down and drained.
pub(crate) fn run(shared: Arc<Shared>, wake_rx: Connection, cfg: Config) {
    let mut m = Manager {
        shared,
        cfg,
        image: ImageId::current(),
        workers: Vec::new(),
        started: 0,
        failures: 0,
        kills: 0,
    };
    loop {
        m.keep_strength();
        m.cancel_running();
        m.retire();
        m.rebalance();
        m.dispatch();
        if m.finished() {
            break;
        }
        let ready = m.sleep(&wake_rx);
        if ready.first() == Some(&true) {
            while wake_rx.try_recv_bytes().is_ok() {}
        }
        // Answers first: a worker that answered and then died did its task.
        for (i, w) in m.workers.iter_mut().enumerate() {
            if ready.get(1 + 2 * i) == Some(&true) {
                collect(w, &m.cfg, &mut m.failures, &mut m.kills);
            }
        }
        m.deadlines();
        let dead: Vec<usize> = (0..m.workers.len())
            .filter(|i| ready.get(2 + 2 * i) == Some(&true))
            .collect();
        for i in dead.into_iter().rev() {
            let w = m.workers.swap_remove(i);
            m.buried(w);
        }
    }
    // Shut down: closing the connections ends the workers.
    for w in m.workers.drain(..) {
        let Worker {
            mut process,
            conn,
            starting,
            ..
        } = w;
        drop(conn);
        if starting {
            let _ = process.kill();
        }
        let _ = process.join_timeout(Duration::from_secs(10)).or_else(|_| {
            let _ = process.kill();
            process.join()
        });
    }
    let mut st = lock(&m.shared.state);
    st.running = false;
    let leftover: Vec<Pending> = st.queue.drain(..).collect();
    drop(st);
    drop(leftover); // their futures end with Shutdown
    m.shared.ended.notify_all();
}

impl Manager {
    /// Starts workers until there are as many as asked (they get ready in
    /// the background).
    fn keep_strength(&mut self) {
        while self.workers.len() < self.cfg.workers {
            {
                let st = lock(&self.shared.state);
                // A shut-down pool still runs what was queued before.
                if (st.shutdown && st.queue.is_empty()) || st.broken.is_some() {
                    return;
                }
            }
            match spawn_worker(&self.cfg, self.started, self.image) {
                Ok(w) => {
                    self.started += 1;
                    self.workers.push(w);
                }
                Err(why) => {
                    self.failures += 1;
                    if self.failures >= START_FAILURES {
                        fail_all(&self.shared, why);
                        return;
                    }
                }
            }
        }
    }

    /// Cancelled futures of running tasks: a job not claimed yet is taken
    /// back; a running one has its worker killed.
    fn cancel_running(&mut self) {
        let ids = std::mem::take(&mut lock(&self.shared.state).cancels);
        for id in ids {
            for w in &mut self.workers {
                let Some(i) = w.sent.iter().position(|s| s.task.id == id) else {
                    continue;
                };
                let n = w.sent[i].n;
                if w.claims.revoke(n) {
                    let s = w.sent.remove(i).expect("an index from position");
                    s.task.sink.finish(Err(TaskError::Cancelled));
                } else if w.killed.is_none() && w.claims.stop(n) {
                    w.killed = Some(Kill::Cancelled);
                    let _ = w.process.kill();
                }
                // Otherwise it has just ended: its answer is on the way.
            }
        }
    }

    /// Workers being recycled hand back the jobs they have not started;
    /// once idle, they are ended (a fresh one takes their place).
    fn retire(&mut self) {
        for w in self.workers.iter_mut().filter(|w| w.retiring) {
            let back = take_back(w, usize::MAX);
            requeue_front(&self.shared, back);
            if w.sent.is_empty() && w.killed.is_none() {
                let _ = w.process.kill();
                w.killed = Some(Kill::Retired);
            }
        }
    }

    /// When nothing is queued and a worker has run dry, the unstarted tail
    /// of the longest batch moves to it.
    fn rebalance(&mut self) {
        if !lock(&self.shared.state).queue.is_empty() {
            return;
        }
        let hungry = self
            .workers
            .iter()
            .filter(|w| w.takes_jobs() && w.sent.is_empty())
            .count();
        if hungry == 0 {
            return;
        }
        let Some(donor) = self
            .workers
            .iter_mut()
            .filter(|w| w.killed.is_none() && w.sent.len() >= 2)
            .max_by_key(|w| w.sent.len())
        else {
            return;
        };
        let keep = donor.sent.len().div_ceil(hungry + 1);
        let back = take_back(donor, donor.sent.len() - keep);
        requeue_front(&self.shared, back);
    }

    /// Hands each queued job to the least loaded worker with room, then
    /// sends each worker its share in one message.
    fn dispatch(&mut self) {
        let mut batches: Vec<Vec<Sent>> = self.workers.iter().map(|_| Vec::new()).collect();
        let mut bytes = vec![0usize; self.workers.len()];
        let weak = Arc::downgrade(&self.shared);
        {
            let mut st = lock(&self.shared.state);
            let max_tasks = self.cfg.max_tasks_per_child;
            while let Some(front) = st.queue.front() {
                let alone = goes_alone(front);
                // The least loaded worker with room takes it.
                let takes = |i: &usize| {
                    let (w, batch) = (&self.workers[*i], &batches[*i]);
                    batch.len() < w.room(max_tasks)
                        && bytes[*i] < BATCH_BYTES
                        && batch.first().is_none_or(|s| !goes_alone(&s.task))
                        && (!alone || (w.sent.is_empty() && batch.is_empty()))
                };
                let Some(i) = (0..self.workers.len())
                    .filter(takes)
                    .min_by_key(|i| self.workers[*i].sent.len() + batches[*i].len())
                else {
                    break;
                };
                let mut p = st.queue.pop_front().expect("a front");
                if p.started {
                    if p.sink.is_done() {
                        continue; // cancelled while it waited again
                    }
                } else if !p.sink.start(stopper(&weak, p.id)) {
                    continue; // cancelled before it started
                }
                p.started = true;
                bytes[i] += p.arg.len();
                let deadline = p.timeout.map(|t| (Instant::now() + t, t));
                batches[i].push(Sent {
                    n: 0,
                    task: p,
                    deadline,
                });
            }
        }
        for (w, mut batch) in self.workers.iter_mut().zip(batches) {
            if batch.is_empty() {
                continue;
            }
            for s in &mut batch {
                w.next_n += 1;
                s.n = w.next_n;
                w.claims.offer(s.n);
            }
            let out = BatchOut {
                image: self.image,
                jobs: batch
                    .iter()
                    .map(|s| JobOut {
                        n: s.n,
                        entry: s.task.entry,
                        arg: &s.task.arg,
                    })
                    .collect(),
            };
            match w.conn.send(&out) {
                Ok(()) => w.sent.extend(batch),
                Err(SendError::Codec(e)) if batch.len() == 1 => {
                    let s = batch.pop().expect("one job");
                    s.task
                        .sink
                        .finish(Err(TaskError::Broken(format!("cannot send the task: {e}"))));
                }
                Err(_) => {
                    // The worker is dying: the jobs go back to the front.
                    w.retiring = true;
                    for s in &batch {
                        w.claims.revoke(s.n);
                    }
                    requeue_front(&self.shared, batch.into_iter().map(|s| s.task).collect());
                }
            }
        }
    }

    /// Whether the pool is done: shut down (or broken) with nothing queued
    /// and nothing running.
    fn finished(&self) -> bool {
        let st = lock(&self.shared.state);
        let idle = self.workers.iter().all(|w| w.sent.is_empty());
        ((st.shutdown && st.queue.is_empty()) || st.broken.is_some()) && idle
    }

    /// Waits for an answer, a death, a deadline or a poke; returns which
    /// objects are ready: the wake pipe, then each worker's connection and
    /// process.
    fn sleep(&mut self, wake_rx: &Connection) -> Vec<bool> {
        let deadline = self
            .workers
            .iter()
            .filter(|w| w.killed.is_none())
            .filter_map(|w| w.sent.front().and_then(|s| s.deadline))
            .map(|(d, _)| d)
            .min();
        let mut objects: Vec<&dyn Waitable> = vec![wake_rx];
        for w in &self.workers {
            objects.push(&w.conn);
            objects.push(&w.process);
        }
        let max_tasks = self.cfg.max_tasks_per_child;
        let can_take = self.workers.iter().any(|w| w.room(max_tasks) > 0);
        let timeout = {
            let mut st = lock(&self.shared.state);
            // A task queued since `dispatch` did not poke (the manager was
            // awake): it is handed out now.
            if !st.cancels.is_empty() || (can_take && !st.queue.is_empty()) {
                Some(Duration::ZERO)
            } else {
                st.asleep = true;
                deadline.map(|d| d.saturating_duration_since(Instant::now()))
            }
        };
        let ready = match timeout {
            Some(t) => ipc::wait_timeout(&objects, t),
            None => ipc::wait(&objects),
        }
        .unwrap_or_default();
        lock(&self.shared.state).asleep = false;
        let mut flags = vec![false; objects.len()];
        for i in ready {
            flags[i] = true;
        }
        flags
    }

    /// Kills the workers whose task ran past its deadline.
    fn deadlines(&mut self) {
        let now = Instant::now();
        for w in self.workers.iter_mut().filter(|w| w.killed.is_none()) {
            let Some((n, (d, t))) = w.sent.front().and_then(|s| Some((s.n, s.deadline?))) else {
                continue;
            };
            if now < d {
                continue;
            }
            if w.claims.revoke(n) {
                // Never started (the worker was slow to read it).
                let s = w.sent.pop_front().expect("a front");
                s.task.sink.finish(Err(TaskError::DeadlineExceeded(t)));
            } else if w.claims.stop(n) {
                w.killed = Some(Kill::Timeout(t));
                let _ = w.process.kill();
            }
            // Otherwise it has just ended: its answer is on the way.
        }
    }

    /// A worker died: its answers are taken, the job it was running fails,
    /// the jobs it never started go back to the front of the queue.
    fn buried(&mut self, mut w: Worker) {
        collect(&mut w, &self.cfg, &mut self.failures, &mut self.kills);
        let status = w.process.exit_status();
        let _ = w.process.join();
        if w.starting && w.killed.is_none() {
            let why = w.start_error.take().unwrap_or_else(|| {
                format!(
                    "a worker died while starting: {}",
                    status.map_or("it vanished".into(), |s| s.to_string())
                )
            });
            if w.start_error.is_none() && status == Some(ExitStatus::Signal(9)) {
                self.kills += 1;
            } else {
                self.failures += 1;
            }
            if self.failures >= START_FAILURES || self.kills >= START_KILLS {
                fail_all(&self.shared, why);
            }
            return;
        }
        let mut back = Vec::new();
        for s in w.sent.drain(..) {
            if !w.claims.claimed(s.n) {
                back.push(s.task);
                continue;
            }
            let err = match (w.killed, status) {
                (Some(Kill::Timeout(t)), _) => TaskError::DeadlineExceeded(t),
                (Some(Kill::Cancelled), _) => TaskError::Cancelled,
                (Some(Kill::Retired), _) => {
                    TaskError::Broken("a recycled worker was running it".into())
                }
                (None, Some(status)) => TaskError::WorkerDied { status },
                (None, None) => TaskError::Broken("a worker vanished".into()),
            };
            s.task.sink.finish(Err(err));
        }
        requeue_front(&self.shared, back);
    }
}

/// A job with a deadline or a large argument is only handed to an idle
/// worker, and nothing is sent with it.
fn goes_alone(p: &Pending) -> bool {
    p.timeout.is_some() || p.arg.len() > SMALL_ARG
}

/// A cancelled running future tells the manager (if the pool still exists).
fn stopper(shared: &Weak<Shared>, id: u64) -> Stopper {
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

/// Takes back up to `most` jobs the worker has not claimed, from the end
/// of its batch; returns them in their order.
fn take_back(w: &mut Worker, most: usize) -> Vec<Pending> {
    let mut back = Vec::new();
    while back.len() < most {
        match w.sent.back() {
            Some(s) if w.claims.revoke(s.n) => {
                back.push(w.sent.pop_back().expect("a back").task);
            }
            _ => break,
        }
    }
    back.reverse();
    back
}

/// Puts tasks back at the front of the queue, in their order.
fn requeue_front(shared: &Shared, tasks: Vec<Pending>) {
    if tasks.is_empty() {
        return;
    }
    let mut st = lock(&shared.state);
    for p in tasks.into_iter().rev() {
        st.queue.push_front(p);
    }
}

/// Starts a worker process and sends it its board and initializer; it says
/// when it is ready.
fn spawn_worker(cfg: &Config, n: usize, image: ImageId) -> Result<Worker, String> {
    let (ours, theirs) = Pipe::duplex().map_err(|e| e.to_string())?;
    let claims = Claims::new().map_err(|e| e.to_string())?;
    let mut process = Process::builder()
        .start_method(cfg.method)
        .name(format!("{}-{n}", cfg.name))
        .start(task::worker_main, theirs)
        .map_err(|e| format!("cannot start a worker process: {e}"))?;
    let hello = Hello {
        claims: claims.clone(),
        init: cfg
            .init
            .as_ref()
            .map(|(entry, arg)| (image, *entry, ByteBuf::from(arg.clone()))),
        max_memory: cfg.max_memory,
    };
    if let Err(e) = ours.send(&hello) {
        let _ = process.kill();
        let _ = process.join();
        return Err(format!("cannot start a worker process: {e}"));
    }
    Ok(Worker {
        process,
        conn: ours,
        claims,
        starting: true,
        start_error: None,
        sent: VecDeque::new(),
        next_n: 0,
        done: 0,
        killed: None,
        retiring: false,
    })
}

/// Takes every message a worker has sent: its `Ready` while starting, then
/// its answers.
fn collect(w: &mut Worker, cfg: &Config, failures: &mut usize, kills: &mut usize) {
    if w.starting {
        match w.conn.try_recv::<Ready>() {
            Ok(Ready(None)) => {
                w.starting = false;
                (*failures, *kills) = (0, 0);
            }
            // The worker exits; its death counts the failure.
            Ok(Ready(Some(why))) => w.start_error = Some(why),
            Err(RecvError::Empty) | Err(RecvError::Closed) | Err(RecvError::Truncated { .. }) => {}
            Err(_) => {
                let _ = w.process.kill();
            }
        }
        if w.starting {
            return;
        }
    }
    loop {
        match w.conn.try_recv::<Done>() {
            Ok(done) => {
                let Some(i) = w.sent.iter().position(|s| s.n == done.n) else {
                    continue;
                };
                let s = w.sent.remove(i).expect("an index from position");
                let result = match done.outcome {
                    Outcome::Returned(bytes) => Ok(bytes.into_vec()),
                    Outcome::Panicked { message, location } => {
                        Err(TaskError::Panicked { message, location })
                    }
                    Outcome::Failed(why) => Err(TaskError::Broken(why)),
                };
                s.task.sink.finish(result);
                w.done += 1;
                if cfg.max_tasks_per_child.is_some_and(|m| w.done >= m) {
                    w.retiring = true;
                }
            }
            Err(RecvError::Empty) | Err(RecvError::Closed) | Err(RecvError::Truncated { .. }) => {
                return;
            }
            Err(_) => {
                let _ = w.process.kill();
                return;
            }
        }
    }
}

/// Workers cannot be started: every queued task fails.
fn fail_all(shared: &Shared, why: String) {
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
