//! The pool's shared state and its worker threads.
//!
//! One `Mutex<Jobs>` holds the queue. A worker that finds it empty searches
//! for a while (spinning, then yielding) before it sleeps, so a steady
//! stream of submissions never pays for a wake-up; `submit` signals the
//! condition variable only when a worker is really asleep.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, MutexGuard};
use std::{io, thread};

use crossbeam_utils::Backoff;

use crate::blocking::lock;
use crate::futures::TaskError;
use crate::futures::state::Promise;
use crate::panic::{self, Report};

/// A submitted task, type-erased.
pub(super) trait Job: Send {
    fn run(self: Box<Self>);
    /// Fails the task without running it.
    fn fail(self: Box<Self>, error: TaskError);
}

pub(super) struct Task<F, R> {
    pub(super) f: F,
    pub(super) promise: Promise<R>,
}

impl<F: FnOnce() -> R + Send, R: Send> Job for Task<F, R> {
    fn run(self: Box<Self>) {
        let Task { f, promise } = *self;
        if promise.start() {
            promise.complete(panic::capture(Report::Quiet, f).map_err(TaskError::from));
        }
    }

    fn fail(self: Box<Self>, error: TaskError) {
        self.promise.complete(Err(error));
    }
}

pub(super) type BoxedJob = Box<dyn Job>;

pub(super) struct Config {
    pub(super) max_workers: usize,
    pub(super) name_prefix: String,
    pub(super) initializer: Option<Arc<dyn Fn() + Send + Sync>>,
}

pub(super) struct Jobs {
    queue: VecDeque<BoxedJob>,
    shutdown: bool,
    broken: Option<String>,
    /// Workers blocked on `Inner::work` that nobody has signalled yet.
    sleeping: usize,
    /// Worker threads alive.
    threads: usize,
    /// Worker threads ever started (for names).
    started: usize,
}

pub(super) struct Inner {
    jobs: std::sync::Mutex<Jobs>,
    work: Condvar,
    exited: Condvar,
    /// Length of the queue, read by searching workers without the lock.
    queued: AtomicUsize,
    /// Workers looking for a job, not asleep: one of them will find a job
    /// pushed now.
    searching: AtomicUsize,
    config: Config,
}

thread_local! {
    /// The pool whose worker this thread is, if any.
    static CURRENT_POOL: Cell<usize> = const { Cell::new(0) };
}

impl Inner {
    pub(super) fn new(config: Config) -> Arc<Inner> {
        Arc::new(Inner {
            jobs: std::sync::Mutex::new(Jobs {
                queue: VecDeque::new(),
                shutdown: false,
                broken: None,
                sleeping: 0,
                threads: 0,
                started: 0,
            }),
            work: Condvar::new(),
            exited: Condvar::new(),
            queued: AtomicUsize::new(0),
            searching: AtomicUsize::new(0),
            config,
        })
    }

    pub(super) fn max_workers(&self) -> usize {
        self.config.max_workers
    }

    pub(super) fn threads(&self) -> usize {
        self.lock().threads
    }

    fn lock(&self) -> MutexGuard<'_, Jobs> {
        lock(&self.jobs)
    }

    /// Queues a job, waking or starting a worker if none will find it.
    pub(super) fn push(self: &Arc<Self>, job: BoxedJob) {
        let mut jobs = self.lock();
        if let Some(reason) = jobs.broken.clone() {
            drop(jobs);
            return job.fail(TaskError::Broken(reason));
        }
        if jobs.shutdown {
            drop(jobs);
            return job.fail(TaskError::ShutDown);
        }
        jobs.queue.push_back(job);
        self.queued.store(jobs.queue.len(), Ordering::Release);
        self.ensure_taker(jobs);
    }

    /// Makes sure some worker will look at the queue, if it is not empty: a
    /// searching one will; otherwise wake a sleeping one, or start a new
    /// one. A searching worker takes one job and then calls this again for
    /// the rest, so a burst of jobs fans out over the workers.
    fn ensure_taker(self: &Arc<Self>, mut jobs: MutexGuard<'_, Jobs>) {
        if jobs.queue.is_empty() || self.searching.load(Ordering::Acquire) > 0 {
            return;
        }
        if jobs.sleeping > 0 {
            jobs.sleeping -= 1;
            drop(jobs);
            self.work.notify_one();
        } else if jobs.threads < self.config.max_workers {
            self.spawn_worker(jobs);
        }
    }

    fn spawn_worker(self: &Arc<Self>, mut jobs: MutexGuard<'_, Jobs>) {
        let name = format!("{}_{}", self.config.name_prefix, jobs.started);
        jobs.threads += 1;
        jobs.started += 1;
        // Counted as searching until it looks at the queue.
        self.searching.fetch_add(1, Ordering::AcqRel);
        drop(jobs);
        let inner = self.clone();
        let spawned = thread::Builder::new()
            .name(name)
            .spawn(move || inner.work());
        if let Err(e) = spawned {
            self.worker_failed_to_start(e);
        }
    }

    fn worker_failed_to_start(&self, e: io::Error) {
        let mut jobs = self.lock();
        jobs.threads -= 1;
        self.searching.fetch_sub(1, Ordering::AcqRel);
        // With no worker at all nobody would ever run the queue.
        let orphaned = if jobs.threads == 0 {
            self.take_queue(&mut jobs)
        } else {
            VecDeque::new()
        };
        drop(jobs);
        for job in orphaned {
            job.fail(TaskError::Broken(format!(
                "cannot start a worker thread: {e}"
            )));
        }
    }

    fn take_queue(&self, jobs: &mut Jobs) -> VecDeque<BoxedJob> {
        self.queued.store(0, Ordering::Release);
        std::mem::take(&mut jobs.queue)
    }

    /// A worker thread's life. It starts counted as searching (see
    /// `spawn_worker`) and leaves counted as searching.
    fn work(self: Arc<Self>) {
        CURRENT_POOL.with(|c| c.set(Arc::as_ptr(&self) as usize));
        let _exit = Exit(&self);
        if let Some(init) = &self.config.initializer
            && let Err(p) = panic::capture(Report::Quiet, || init())
        {
            return self.break_pool(format!("a worker's initializer panicked: {}", p.message));
        }
        while let Some(job) = self.next_job() {
            job.run();
            self.searching.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Called while counted as searching; returns still counted as searching
    /// only when it returns `None` (the pool is shutting down).
    fn next_job(self: &Arc<Self>) -> Option<BoxedJob> {
        let backoff = Backoff::new();
        loop {
            if self.queued.load(Ordering::Acquire) > 0 {
                let mut jobs = self.lock();
                if let Some(job) = self.pop(&mut jobs) {
                    self.ensure_taker(jobs);
                    return Some(job);
                }
            }
            if backoff.is_completed() {
                break;
            }
            backoff.snooze();
        }
        let mut jobs = self.lock();
        loop {
            if let Some(job) = self.pop(&mut jobs) {
                self.ensure_taker(jobs);
                return Some(job);
            }
            if jobs.shutdown || jobs.broken.is_some() {
                return None;
            }
            self.searching.fetch_sub(1, Ordering::AcqRel);
            jobs.sleeping += 1;
            jobs = self.work.wait(jobs).unwrap_or_else(|e| e.into_inner());
            self.searching.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Takes the next job; the caller stops counting as searching.
    fn pop(&self, jobs: &mut Jobs) -> Option<BoxedJob> {
        let job = jobs.queue.pop_front()?;
        self.queued.store(jobs.queue.len(), Ordering::Release);
        self.searching.fetch_sub(1, Ordering::AcqRel);
        Some(job)
    }

    fn exit(&self) {
        let mut jobs = self.lock();
        jobs.threads -= 1;
        self.searching.fetch_sub(1, Ordering::AcqRel);
        drop(jobs);
        self.exited.notify_all();
    }

    fn break_pool(&self, reason: String) {
        let mut jobs = self.lock();
        if jobs.broken.is_none() {
            jobs.broken = Some(reason.clone());
        }
        let failed = self.take_queue(&mut jobs);
        jobs.sleeping = 0;
        drop(jobs);
        self.work.notify_all();
        for job in failed {
            job.fail(TaskError::Broken(reason.clone()));
        }
    }

    pub(super) fn shutdown(&self, wait: bool, cancel_futures: bool) {
        let mut jobs = self.lock();
        jobs.shutdown = true;
        let cancelled = if cancel_futures {
            self.take_queue(&mut jobs)
        } else {
            VecDeque::new()
        };
        jobs.sleeping = 0;
        drop(jobs);
        self.work.notify_all();
        for job in cancelled {
            job.fail(TaskError::Cancelled);
        }
        if wait {
            // A task that shuts its own pool down cannot wait for itself.
            let me = usize::from(CURRENT_POOL.with(Cell::get) == self as *const Inner as usize);
            let mut jobs = self.lock();
            while jobs.threads > me {
                jobs = self.exited.wait(jobs).unwrap_or_else(|e| e.into_inner());
            }
        }
    }
}

/// Bookkeeping of a worker's end, even if the worker loop itself panicked.
struct Exit<'a>(&'a Inner);

impl Drop for Exit<'_> {
    fn drop(&mut self) {
        self.0.exit();
    }
}
