//! The pool's manager thread: hands jobs to workers a few at a time,
//! collects their answers, notices deaths, deadlines and cancellations,
//! recycles and replaces workers.
//!
//! # How a task travels
//!
//! Jobs go to a worker in batches (one message) of up to
//! [`DEPTH`](super::dispatch::DEPTH) jobs; a worker is refilled when half
//! of its batch is done, so a busy worker always has the next job at hand.
//! Each job is numbered on the worker's [`Claims`](super::claims::Claims)
//! board: the worker claims a job before running it, and the manager can
//! revoke one it has not claimed — to cancel it, to
//! give it to an idle worker (the tail of a long batch moves to whoever
//! runs dry), or to move it off a worker being recycled. When a worker
//! dies, the board says which job it was running (that one fails) and which
//! it never started (those run elsewhere): nothing is lost or run twice.
//!
//! Batches of jobs go out, and small answers come back, through two rings
//! in shared memory per worker, not the socket ([`BellRing`]): each side
//! rings the other's bell — an empty message on the socket — only when the
//! other sleeps, so a busy pool runs tasks without a system call per task.
//!
//! A large `Vec<u8>` value does not take the socket where the kernel lets
//! the pool read its workers' memory (`process_vm_readv`): the worker says
//! where the bytes are and waits on its board; the manager copies them —
//! in parts, on several threads for a large one — into the buffer that
//! becomes the value, then replies on the board. Where the read is not
//! allowed, the manager replies so and the worker sends the bytes by the
//! socket, as a block of their own, received into a buffer of their exact
//! size.
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

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::bell_ring::BellRing;
use super::dispatch;
use super::protocol::{BatchOut, JobOut};
use super::state::{Pending, Shared, fail_all, requeue_front, stopper};
use super::worker::{Kill, Sent, Worker, collect, spawn_worker, take_back};
use crate::blocking::lock;
use crate::codec::handles::FdsRef;
use crate::futures::TaskError;
use crate::ipc::{self, Connection, SendError, Waitable};
use crate::os::image::ImageId;
use crate::process::{ExitStatus, StartMethod};

pub(crate) struct Config {
    pub(crate) workers: usize,
    pub(crate) method: StartMethod,
    pub(crate) name: String,
    pub(crate) max_tasks_per_child: Option<usize>,
    /// Resident memory above which a worker ends after its task (it checks
    /// itself).
    pub(crate) max_memory: Option<u64>,
    pub(crate) init: Option<Init>,
}

/// The initializer: its entry, its encoded argument and the descriptors of
/// the handles in it (shared by the builder's clones; each worker gets
/// copies).
#[derive(Clone, Debug)]
pub(crate) struct Init {
    pub(crate) entry: i64,
    pub(crate) arg: Vec<u8>,
    pub(crate) fds: Arc<Vec<OwnedFd>>,
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
    /// A worker started ahead, which takes the place of the next one that
    /// ends (a death, a recycling), so that the pool is at full strength
    /// again without waiting for a process to start. Kept once a worker has
    /// been replaced: a pool whose workers never end never pays for it.
    spare: Option<Worker>,
    started: usize,
    failures: usize,
    kills: usize,
    /// A worker started or ended since the pids were last published.
    pids_changed: bool,
    /// Where a batch is encoded (kept between batches).
    frame: Vec<u8>,
}

/// A batch frame buffer grown past this (a large argument) is not kept.
const FRAME_KEPT: usize = 1 << 20;

/// The manager's loop; returns when the pool is shut down and drained.
pub(crate) fn run(shared: Arc<Shared>, wake_rx: Connection, cfg: Config) {
    let mut m = Manager {
        shared,
        cfg,
        image: ImageId::current(),
        workers: Vec::new(),
        spare: None,
        started: 0,
        failures: 0,
        kills: 0,
        pids_changed: false,
        frame: Vec::new(),
    };
    loop {
        m.keep_strength();
        m.publish_pids();
        m.cancel_running();
        m.cancel_unstarted();
        m.retire();
        m.dispatch();
        // One donor per round: several workers that ran dry at once (a
        // fresh pool whose first ready worker took every job) are each fed
        // before the manager sleeps — no job waits behind another while a
        // worker idles.
        for _ in 0..m.workers.len() {
            if !m.rebalance() {
                break;
            }
            m.dispatch();
        }
        if m.finished() {
            break;
        }
        // After the jobs went out: starting a process holds this thread up.
        m.keep_spare();
        let ready = m.sleep(&wake_rx);
        if ready.first() == Some(&true) {
            while wake_rx.try_recv_bytes().is_ok() {}
        }
        // Answers first: a worker that answered and then died did its task.
        for (i, w) in m.workers.iter_mut().enumerate() {
            let socket = ready.get(1 + 2 * i) == Some(&true);
            if socket || w.answers.waiting() {
                collect(w, &m.cfg, &mut m.failures, &mut m.kills, socket);
            }
        }
        // The spare's objects come after the workers'.
        let spare_at = 1 + 2 * m.workers.len();
        if let Some(spare) = m.spare.as_mut()
            && ready.get(spare_at) == Some(&true)
        {
            collect(spare, &m.cfg, &mut m.failures, &mut m.kills, true);
        }
        if ready.get(spare_at + 1) == Some(&true)
            && let Some(spare) = m.spare.take()
        {
            m.buried(spare);
        }
        m.deadlines();
        let dead: Vec<usize> = (0..m.workers.len())
            .filter(|i| ready.get(2 + 2 * i) == Some(&true))
            .collect();
        for i in dead.into_iter().rev() {
            let w = m.workers.swap_remove(i);
            m.pids_changed = true;
            m.buried(w);
        }
    }
    // Shut down: closing the connections ends the workers.
    let spare = m.spare.take();
    for w in m.workers.drain(..).chain(spare) {
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
    st.worker_pids.clear();
    let leftover: Vec<Pending> = st.queue.drain(..).collect();
    drop(st);
    drop(leftover); // their futures end with Shutdown
    m.shared.ended.notify_all();
}

impl Manager {
    /// Starts workers until there are as many as asked (they get ready in
    /// the background); the spare first takes the place of one that ended.
    fn keep_strength(&mut self) {
        while self.workers.len() < self.cfg.workers {
            if self.winding_down() {
                return;
            }
            if let Some(spare) = self.spare.take() {
                tracing::debug!(target: "multiproc::pool", pid = spare.process.pid(), "the spare takes a worker's place");
                self.workers.push(spare);
                self.pids_changed = true;
                continue;
            }
            match self.start_one() {
                Some(w) => {
                    self.workers.push(w);
                    self.pids_changed = true;
                }
                None if self.failures >= START_FAILURES => return,
                None => {}
            }
        }
    }

    /// Once a worker has been replaced (more started than asked for),
    /// keeps a spare started.
    fn keep_spare(&mut self) {
        if self.started > self.cfg.workers && self.spare.is_none() && !self.winding_down() {
            self.spare = self.start_one();
        }
    }

    /// Shut down with nothing left to run, or broken: no more workers.
    fn winding_down(&self) -> bool {
        let st = lock(&self.shared.state);
        // A shut-down pool still runs what was queued before.
        (st.shutdown && st.queue.is_empty()) || st.broken.is_some()
    }

    /// Starts a worker process; a failure is counted, and breaks the pool
    /// after [`START_FAILURES`] in a row.
    fn start_one(&mut self) -> Option<Worker> {
        match spawn_worker(&self.cfg, self.started, self.image) {
            Ok(w) => {
                tracing::debug!(target: "multiproc::pool", pid = w.process.pid(), name = %w.process.name(), "worker started");
                self.started += 1;
                self.shared
                    .counts
                    .workers_started
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Some(w)
            }
            Err(why) => {
                tracing::warn!(target: "multiproc::pool", %why, "cannot start a worker");
                self.failures += 1;
                if self.failures >= START_FAILURES {
                    fail_all(&self.shared, why);
                }
                None
            }
        }
    }

    /// Tells `ProcessPool::worker_pids` which workers live now.
    fn publish_pids(&mut self) {
        if std::mem::take(&mut self.pids_changed) {
            lock(&self.shared.state).worker_pids =
                self.workers.iter().map(|w| w.process.pid()).collect();
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
                    w.kill_for(Kill::Cancelled);
                }
                // Otherwise it has just ended: its answer is on the way.
            }
        }
    }

    /// After `shutdown(cancel_futures)`: the jobs handed to workers and not
    /// claimed are taken back and cancelled.
    fn cancel_unstarted(&mut self) {
        if !lock(&self.shared.state).cancel_unstarted {
            return;
        }
        for w in &mut self.workers {
            for p in take_back(w, usize::MAX) {
                p.sink.finish(Err(TaskError::Cancelled));
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
                w.kill_for(Kill::Retired);
            }
        }
    }

    /// When nothing is queued and a worker has run dry, the unstarted tail
    /// of the longest batch is queued again (for the dry ones); whether
    /// anything moved.
    fn rebalance(&mut self) -> bool {
        if !lock(&self.shared.state).queue.is_empty() {
            return false;
        }
        let hungry = self
            .workers
            .iter()
            .filter(|w| w.takes_jobs() && w.sent.is_empty())
            .count();
        if hungry == 0 {
            return false;
        }
        let Some(donor) = self
            .workers
            .iter_mut()
            .filter(|w| w.killed.is_none() && w.sent.len() >= 2)
            .max_by_key(|w| w.sent.len())
        else {
            return false;
        };
        let keep = donor.sent.len().div_ceil(hungry + 1);
        let back = take_back(donor, donor.sent.len() - keep);
        let moved = !back.is_empty();
        requeue_front(&self.shared, back);
        moved
    }

    /// Hands each queued job to the least loaded worker with room, then
    /// sends each worker its share in one message.
    fn dispatch(&mut self) {
        let mut batches: Vec<Vec<Sent>> = self.workers.iter().map(|_| Vec::new()).collect();
        let weak = Arc::downgrade(&self.shared);
        {
            let mut st = lock(&self.shared.state);
            for w in self.workers.iter_mut().chain(&mut self.spare) {
                if !w.answered.is_empty() && !st.keep_answered(&mut w.answered) {
                    w.answered.clear();
                }
            }
            let max_tasks = self.cfg.max_tasks_per_child;
            let mut plan: Vec<dispatch::Batch> = self
                .workers
                .iter()
                .map(|w| dispatch::Batch {
                    room: w.room(max_tasks),
                    outstanding: w.sent.len(),
                    ..dispatch::Batch::default()
                })
                .collect();
            while let Some(front) = st.queue.front() {
                let alone = dispatch::goes_alone(
                    front.timeout.is_some(),
                    front.arg.len(),
                    !front.fds.is_empty(),
                );
                // The least loaded worker with room takes it.
                let Some(i) = dispatch::pick(&plan, alone) else {
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
                if plan[i].len == 0 {
                    plan[i].alone = alone;
                }
                plan[i].len += 1;
                plan[i].bytes += p.arg.len();
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
                        fds: FdsRef(&s.task.fds),
                    })
                    .collect(),
            };
            let sent = w.send_batch(&out, &mut self.frame);
            if self.frame.capacity() > FRAME_KEPT {
                self.frame = Vec::new();
            }
            match sent {
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

    /// Waits for an answer (in a ring — its bell — or on a socket), a
    /// death, a deadline or a poke; returns which objects are ready: the
    /// wake pipe, then each worker's connection and process.
    fn sleep(&mut self, wake_rx: &Connection) -> Vec<bool> {
        let deadline = self
            .workers
            .iter()
            .filter(|w| w.killed.is_none())
            .filter_map(|w| w.sent.front().and_then(|s| s.deadline))
            .map(|(d, _)| d)
            .min();
        let mut objects: Vec<&dyn Waitable> = vec![wake_rx];
        for w in self.workers.iter().chain(&self.spare) {
            objects.push(&w.conn);
            objects.push(&w.process);
        }
        let max_tasks = self.cfg.max_tasks_per_child;
        let can_take = self.workers.iter().any(|w| w.room(max_tasks) > 0);
        // Arm every bell, then look at the rings once more: an answer put
        // before a worker saw its bell armed is seen here.
        let mut answered = false;
        for w in &self.workers {
            answered |= w.answers.arm(w.claims.manager_bell());
        }
        let timeout = {
            let mut st = lock(&self.shared.state);
            // A task queued since `dispatch` did not poke (the manager was
            // awake): it is handed out now.
            if answered || !st.cancels.is_empty() || (can_take && !st.queue.is_empty()) {
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
        for w in &self.workers {
            BellRing::disarm(w.claims.manager_bell());
        }
        let mut flags = vec![false; objects.len()];
        for i in ready {
            flags[i] = true;
        }
        flags
    }

    /// Kills the workers whose task ran past its deadline.
    fn deadlines(&mut self) {
        // The clock is read only when a task has a deadline.
        let mut now = None;
        for w in self.workers.iter_mut().filter(|w| w.killed.is_none()) {
            let Some((n, (d, t))) = w.sent.front().and_then(|s| Some((s.n, s.deadline?))) else {
                continue;
            };
            if *now.get_or_insert_with(Instant::now) < d {
                continue;
            }
            if w.claims.revoke(n) {
                // Never started (the worker was slow to read it).
                let s = w.sent.pop_front().expect("a front");
                s.task.sink.finish(Err(TaskError::DeadlineExceeded(t)));
            } else if w.claims.stop(n) {
                w.kill_for(Kill::Timeout(t));
            }
            // Otherwise it has just ended: its answer is on the way.
        }
    }

    /// A worker died: its answers are taken, the job it was running fails,
    /// the jobs it never started go back to the front of the queue.
    fn buried(&mut self, mut w: Worker) {
        collect(&mut w, &self.cfg, &mut self.failures, &mut self.kills, true);
        let status = w.process.exit_status();
        let _ = w.process.join();
        let pid = w.process.pid();
        match (w.killed, status) {
            (None, Some(status)) if !status.success() => tracing::warn!(
                target: "multiproc::pool", pid, %status, starting = w.starting,
                running = w.sent.front().is_some_and(|s| w.claims.claimed(s.n)),
                "a worker died"
            ),
            (killed, status) => tracing::debug!(
                target: "multiproc::pool", pid, ?killed, status = ?status, "a worker ended"
            ),
        }
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
                (None, Some(_)) if s.task.retries > 0 && !s.task.sink.is_done() => {
                    // It asked to run again after its worker's death: first
                    // in line, on another worker.
                    let mut task = s.task;
                    task.retries -= 1;
                    tracing::info!(
                        target: "multiproc::pool", task = task.id, retries_left = task.retries,
                        "a task runs again after its worker died"
                    );
                    back.push(task);
                    continue;
                }
                (None, Some(status)) => TaskError::WorkerDied { status },
                (None, None) => TaskError::Broken("a worker vanished".into()),
            };
            s.task.sink.finish(Err(err));
        }
        requeue_front(&self.shared, back);
    }
}
