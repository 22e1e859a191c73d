//! The pool's manager thread: hands jobs to idle workers, collects their
//! answers, notices deaths and deadlines, replaces workers.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_bytes::ByteBuf;

use super::task::{self, Done, Job, Outcome, Ready};
use crate::blocking::lock;
use crate::futures::TaskError;
use crate::ipc::{self, Connection, Pipe, RecvError, Waitable};
use crate::os::image::ImageId;
use crate::process::{ExitStatus, Process, StartMethod};

/// A submitted task on the parent's side: its job and its future's end.
pub(crate) struct Pending {
    pub(crate) entry: i64,
    pub(crate) arg: Vec<u8>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) sink: Box<dyn Sink>,
    /// Already marked running (handed to a worker that died at once).
    pub(crate) started: bool,
}

/// The typed end of a task's future, behind a trait object so that the
/// manager handles tasks of every type.
pub(crate) trait Sink: Send {
    /// Marks the future running; `false` if it was cancelled.
    fn start(&self) -> bool;
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
    /// The initializer: its entry and encoded argument.
    pub(crate) init: Option<(i64, Vec<u8>)>,
}

struct Busy {
    id: u64,
    sink: Box<dyn Sink>,
    deadline: Option<(Instant, Duration)>,
}

struct Worker {
    process: Process<()>,
    conn: Connection,
    busy: Option<Busy>,
    done: usize,
    /// Killed by the pool (deadline): the death is the task's timeout.
    killed_for: Option<Duration>,
    /// Done its share of tasks (`max_tasks_per_child`): gets no more.
    retiring: bool,
}

/// A worker fails to start this many times in a row on its own (the
/// initializer panicked, the worker aborted or exited, no process could be
/// started): the pool is broken.
const START_FAILURES: usize = 3;

/// Workers killed by SIGKILL while starting — by someone else, or the OOM
/// killer — are retried this many times in a row before the pool gives up:
/// a kill from outside says little about whether a worker can start.
const START_KILLS: usize = 100;

fn start_worker(cfg: &Config, n: usize) -> Result<Worker, String> {
    let (mut failures, mut kills) = (0, 0);
    loop {
        let why = match try_start(cfg, n) {
            Ok(w) => return Ok(w),
            Err((why, Some(ExitStatus::Signal(9)))) => {
                kills += 1;
                why
            }
            Err((why, _)) => {
                failures += 1;
                why
            }
        };
        if failures >= START_FAILURES || kills >= START_KILLS {
            return Err(why);
        }
    }
}

/// One start: the worker, or why not and how the worker ended (if it did).
fn try_start(cfg: &Config, n: usize) -> Result<Worker, (String, Option<ExitStatus>)> {
    let (ours, theirs) = Pipe::duplex().map_err(|e| (e.to_string(), None))?;
    let mut process = Process::builder()
        .start_method(cfg.method)
        .name(format!("{}-{n}", cfg.name))
        .start(task::worker_main, theirs)
        .map_err(|e| (format!("cannot start a worker process: {e}"), None))?;
    let init = cfg.init.as_ref().map(|(entry, arg)| Job {
        id: 0,
        image: ImageId::current(),
        entry: *entry,
        arg: ByteBuf::from(arg.clone()),
    });
    // The worker runs its initializer before it says it is ready.
    let ready = ours
        .send(&init)
        .map_err(|e| e.to_string())
        .and_then(|()| ours.recv::<Ready>().map_err(|e| e.to_string()));
    let why = match ready {
        Ok(Ready(None)) => {
            return Ok(Worker {
                process,
                conn: ours,
                busy: None,
                done: 0,
                killed_for: None,
                retiring: false,
            });
        }
        Ok(Ready(Some(why))) => why,
        Err(e) => {
            let _ = process.kill();
            let ended = process.join().err().map(|e| e.to_string()).unwrap_or(e);
            format!("a worker died while starting: {ended}")
        }
    };
    drop(ours);
    let _ = process.join();
    Err((why, process.exit_status()))
}

/// The manager's loop; returns when the pool is shut down and drained.
pub(crate) fn run(shared: Arc<Shared>, wake_rx: Connection, cfg: Config) {
    let mut workers: Vec<Worker> = Vec::new();
    let mut started = 0usize;
    let mut next_id = 0u64;
    let image = ImageId::current();
    loop {
        // Keep the pool at strength.
        while workers.len() < cfg.workers {
            // A shut-down pool still runs what was queued before.
            let st = lock(&shared.state);
            if (st.shutdown && st.queue.is_empty()) || st.broken.is_some() {
                break;
            }
            drop(st);
            match start_worker(&cfg, started) {
                Ok(w) => {
                    started += 1;
                    workers.push(w);
                }
                Err(why) => {
                    fail_all(&shared, why);
                    break;
                }
            }
        }
        // Hand out jobs.
        for w in workers
            .iter_mut()
            .filter(|w| w.busy.is_none() && !w.retiring)
        {
            let Some(p) = next_job(&shared) else { break };
            next_id += 1;
            let job = Job {
                id: next_id,
                image,
                entry: p.entry,
                arg: ByteBuf::from(p.arg),
            };
            if w.conn.send(&job).is_err() {
                // The worker is dying: the job goes back to the front, and the
                // worker gets no more.
                w.retiring = true;
                lock(&shared.state).queue.push_front(Pending {
                    entry: job.entry,
                    arg: job.arg.into_vec(),
                    timeout: p.timeout,
                    sink: p.sink,
                    started: true,
                });
                continue;
            }
            let deadline = p.timeout.map(|t| (Instant::now() + t, t));
            w.busy = Some(Busy {
                id: next_id,
                sink: p.sink,
                deadline,
            });
        }
        {
            let st = lock(&shared.state);
            let idle = workers.iter().all(|w| w.busy.is_none());
            if (st.shutdown && st.queue.is_empty() && idle) || (st.broken.is_some() && idle) {
                break;
            }
        }
        // Wait for an answer, a death, a deadline or a poke.
        let deadline = workers
            .iter()
            .filter_map(|w| w.busy.as_ref().and_then(|b| b.deadline))
            .map(|(d, _)| d)
            .min();
        let mut objects: Vec<&dyn Waitable> = vec![&wake_rx];
        for w in &workers {
            objects.push(&w.conn);
            objects.push(&w.process);
        }
        let ready = match deadline {
            Some(d) => ipc::wait_timeout(&objects, d.saturating_duration_since(Instant::now())),
            None => ipc::wait(&objects),
        }
        .unwrap_or_default();
        drop(objects);
        if ready.contains(&0) {
            while wake_rx.try_recv_bytes().is_ok() {}
        }
        // Answers first: a worker that answered and then died did its task.
        for w in workers.iter_mut() {
            collect(w, &cfg);
        }
        // Deadlines.
        let now = Instant::now();
        for w in workers.iter_mut() {
            if let Some((d, t)) = w.busy.as_ref().and_then(|b| b.deadline)
                && now >= d
                && w.killed_for.is_none()
            {
                w.killed_for = Some(t);
                let _ = w.process.kill();
            }
        }
        // Deaths.
        let mut i = 0;
        while i < workers.len() {
            if workers[i].process.is_alive() {
                i += 1;
                continue;
            }
            let mut w = workers.swap_remove(i);
            collect(&mut w, &cfg);
            let status = w.process.exit_status();
            let _ = w.process.join();
            if let Some(b) = w.busy.take() {
                let err = match (w.killed_for, status) {
                    (Some(t), _) => TaskError::TimedOut(t),
                    (None, Some(status)) => TaskError::WorkerDied { status },
                    (None, None) => TaskError::Broken("a worker vanished".into()),
                };
                b.sink.finish(Err(err));
            }
        }
    }
    // Shut down: closing the connections ends the workers.
    for w in workers.drain(..) {
        let Worker {
            mut process, conn, ..
        } = w;
        drop(conn);
        let _ = process.join_timeout(Duration::from_secs(10)).or_else(|_| {
            let _ = process.kill();
            process.join()
        });
    }
    let mut st = lock(&shared.state);
    st.running = false;
    let leftover: Vec<Pending> = st.queue.drain(..).collect();
    drop(st);
    drop(leftover); // their futures end with Shutdown
    shared.ended.notify_all();
}

/// The next job whose future was not cancelled.
fn next_job(shared: &Shared) -> Option<Pending> {
    let mut st = lock(&shared.state);
    while let Some(p) = st.queue.pop_front() {
        if p.started || p.sink.start() {
            return Some(p);
        }
    }
    None
}

/// Takes every answer a worker has sent.
fn collect(w: &mut Worker, cfg: &Config) {
    loop {
        match w.conn.try_recv::<Done>() {
            Ok(done) => {
                let Some(b) = w.busy.take_if(|b| b.id == done.id) else {
                    continue;
                };
                let result = match done.outcome {
                    Outcome::Returned(bytes) => Ok(bytes.into_vec()),
                    Outcome::Panicked { message, location } => {
                        Err(TaskError::Panicked { message, location })
                    }
                    Outcome::Failed(why) => Err(TaskError::Broken(why)),
                };
                b.sink.finish(result);
                w.done += 1;
                if cfg.max_tasks_per_child.is_some_and(|m| w.done >= m) {
                    // Recycle: the worker is idle, so ending it costs nothing;
                    // a fresh one takes its place.
                    w.retiring = true;
                    let _ = w.process.kill();
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

/// Workers cannot be started: every queued and running task fails.
fn fail_all(shared: &Shared, why: String) {
    let mut st = lock(&shared.state);
    st.broken = Some(why.clone());
    let queued: Vec<Pending> = st.queue.drain(..).collect();
    drop(st);
    for p in queued {
        if p.started || p.sink.start() {
            p.sink.finish(Err(TaskError::Broken(why.clone())));
        }
    }
}
