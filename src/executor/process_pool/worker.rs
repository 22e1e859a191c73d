//! A local worker on the pool's side: its process, its connection and
//! claims board, the jobs it was handed; how it is started, how its
//! answers are collected, how jobs are taken back from it.

use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_bytes::ByteBuf;

use super::bell_ring::{self, BellRing};
use super::claims::Claims;
use super::dispatch;
use super::manager::Config;
use super::protocol::{Hello, Outcome, Read, Ready, Value, read_done};
use super::state::Pending;
use super::task;
use crate::codec;
use crate::codec::handles::Fd;
use crate::futures::TaskError;
use crate::ipc::{Connection, Payload, Pipe, RecvError, SendError};
use crate::os::image::ImageId;
use crate::os::peer_memory;
use crate::process::Process;

/// Why the pool killed a worker that had a task running.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kill {
    Timeout(Duration),
    Cancelled,
    /// Recycled, idle.
    Retired,
}

/// A job handed to a worker.
pub(crate) struct Sent {
    pub(crate) n: u64,
    pub(crate) task: Pending,
    pub(crate) deadline: Option<(Instant, Duration)>,
}

pub(crate) struct Worker {
    pub(crate) process: Process<()>,
    pub(crate) conn: Connection,
    pub(crate) claims: Claims,
    /// Its small answers, in shared memory.
    pub(crate) answers: BellRing,
    /// Its batches of jobs, in shared memory.
    pub(crate) jobs: BellRing,
    /// Not ready yet: its initializer runs.
    pub(crate) starting: bool,
    /// Why its start failed, in its own words.
    pub(crate) start_error: Option<String>,
    /// Handed over and not answered, in order.
    pub(crate) sent: VecDeque<Sent>,
    /// Answered since the manager last looked at the pool's state (where
    /// it leaves them for a submitter to free: `State::keep_answered`).
    pub(crate) answered: Vec<Pending>,
    pub(crate) next_n: u64,
    pub(crate) done: usize,
    pub(crate) killed: Option<Kill>,
    /// Recycled: gets no more jobs, ends when it has none.
    pub(crate) retiring: bool,
    /// The job whose `Vec<u8>` value of this length is the next message
    /// ([`send_block`](super::protocol::send_block)).
    pub(crate) block: Option<(u64, u64)>,
}

impl Worker {
    /// Kills the worker, saying why (its running task fails accordingly
    /// when it is buried).
    pub(crate) fn kill_for(&mut self, why: Kill) {
        tracing::info!(target: "multiproc::pool", pid = self.process.pid(), ?why, "killing a worker");
        self.killed = Some(why);
        let _ = self.process.kill();
    }

    pub(crate) fn takes_jobs(&self) -> bool {
        !self.starting && !self.retiring && self.killed.is_none()
    }

    /// How many more jobs it takes now ([`dispatch::room`]).
    pub(crate) fn room(&self, max_tasks: Option<usize>) -> usize {
        dispatch::room(
            dispatch::Worker {
                takes_jobs: self.takes_jobs(),
                timed: self.sent.front().is_some_and(|s| s.deadline.is_some()),
                outstanding: self.sent.len(),
                unread: !self.claims.has_received(self.next_n),
                done: self.done,
            },
            max_tasks,
        )
    }

    /// Sends a batch of jobs: through its ring when it can (encoded into
    /// `frame`, kept by the manager), by its socket otherwise.
    pub(crate) fn send_batch<T: Serialize>(
        &self,
        batch: &T,
        frame: &mut Vec<u8>,
    ) -> Result<(), SendError> {
        let fds = codec::encode_into(batch, self.conn.max_message_size(), frame)?;
        self.jobs
            .post_frame(frame, &fds, self.claims.worker_bell(), &self.conn)
    }
}

/// Starts a worker process and sends it its board and initializer; it says
/// when it is ready.
pub(crate) fn spawn_worker(cfg: &Config, n: usize, image: ImageId) -> Result<Worker, String> {
    let (ours, theirs) = Pipe::duplex().map_err(|e| e.to_string())?;
    let claims = Claims::new().map_err(|e| e.to_string())?;
    let answers = BellRing::answers().map_err(|e| e.to_string())?;
    let jobs = BellRing::jobs().map_err(|e| e.to_string())?;
    let init = match &cfg.init {
        None => None,
        Some(init) => {
            // This worker's copies of the handles in the argument.
            let fds = init
                .fds
                .iter()
                .map(|fd| fd.try_clone().map(Fd))
                .collect::<std::io::Result<Vec<Fd>>>()
                .map_err(|e| format!("cannot pass the initializer's handles: {e}"))?;
            Some((image, init.entry, ByteBuf::from(init.arg.clone()), fds))
        }
    };
    let mut process = Process::builder()
        .start_method(cfg.method)
        .daemon(true)
        .name(format!("{}-{n}", cfg.name))
        .start(task::worker_main, theirs)
        .map_err(|e| format!("cannot start a worker process: {e}"))?;
    let hello = Hello {
        claims: claims.clone(),
        answers: answers.clone(),
        jobs: jobs.clone(),
        init,
        max_memory: cfg.max_memory,
        read_refused: Default::default(),
    };
    match ours.send(&hello) {
        // A worker that died at once (killed from outside, say) is buried
        // like any worker that dies while starting: its exit status decides
        // whether it counts toward breaking the pool.
        Ok(()) | Err(SendError::Closed) | Err(SendError::Io(_)) => {}
        Err(e) => {
            let _ = process.kill();
            let _ = process.join();
            return Err(format!("cannot start a worker process: {e}"));
        }
    }
    Ok(Worker {
        process,
        conn: ours,
        claims,
        answers,
        jobs,
        starting: true,
        start_error: None,
        sent: VecDeque::new(),
        answered: Vec::new(),
        next_n: 0,
        done: 0,
        killed: None,
        retiring: false,
        block: None,
    })
}

/// Takes every message a worker has sent: its `Ready` while starting, then
/// its answers — those in its ring, and with `socket` (it is readable) those
/// on its socket.
pub(crate) fn collect(
    w: &mut Worker,
    cfg: &Config,
    failures: &mut usize,
    kills: &mut usize,
    socket: bool,
) {
    if w.starting {
        if !socket {
            return;
        }
        match w.conn.try_recv::<Ready>() {
            Ok(Ready(None)) => {
                tracing::debug!(target: "multiproc::pool", pid = w.process.pid(), "worker ready");
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
        match w.answers.take() {
            Ok(Some(payload)) => read(w, cfg, payload),
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(target: "multiproc::pool", pid = w.process.pid(), %e, "a worker's answers are damaged");
                let _ = w.process.kill();
                return;
            }
        }
    }
    if !socket {
        return;
    }
    loop {
        match w.conn.try_recv_payload() {
            Ok(payload) => match w.block.take() {
                Some((n, len)) if payload.bytes().len() as u64 == len => {
                    answered(w, cfg, n, Ok(Value::Bytes(payload.into_vec_from(0))));
                }
                Some(_) => {
                    tracing::warn!(target: "multiproc::pool", pid = w.process.pid(), "a worker's block is not the size it announced");
                    let _ = w.process.kill();
                    return;
                }
                None if bell_ring::is_bell(&payload) => {}
                None => read(w, cfg, payload),
            },
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

/// One message of the worker: an answer, or the news that a block follows.
/// A message that does not decode is the worker's fault: it is killed.
fn read(w: &mut Worker, cfg: &Config, payload: Payload) {
    let (n, outcome) = match read_done(payload) {
        Ok(Read::Done(n, outcome)) => (n, outcome),
        Ok(Read::Block(n, len)) => {
            w.block = Some((n, len));
            return;
        }
        Ok(Read::InMemory { n, len, addr }) => return read_from_memory(w, cfg, n, len, addr),
        Err(e) => {
            tracing::warn!(target: "multiproc::pool", pid = w.process.pid(), %e, "a worker's answer does not decode");
            let _ = w.process.kill();
            return;
        }
    };
    let result = match outcome {
        Ok(value) => Ok(Value::Encoded(value)),
        Err(Outcome::Returned(bytes)) => Ok(Value::Encoded(bytes.into_vec().into())),
        Err(Outcome::Panicked { message, location }) => {
            Err(TaskError::Panicked { message, location })
        }
        Err(Outcome::Failed(why)) => Err(TaskError::Broken(why)),
    };
    answered(w, cfg, n, result);
}

/// Job `n` returned a `Vec<u8>` of `len` bytes at `addr` in the worker's
/// memory: copied from there (one copy, in parts on several threads for a
/// large one), then the worker is told it may go on. Refused — the worker
/// then sends the bytes by its socket — where this process may not read
/// the worker's memory, or the value is larger than a message may be.
/// A worker that died meanwhile says nothing: its death fails the task.
fn read_from_memory(w: &mut Worker, cfg: &Config, n: u64, len: u64, addr: u64) {
    let limit = w.conn.max_message_size() as u64;
    let copied = match usize::try_from(len) {
        Ok(len) if len as u64 <= limit => peer_memory::read(w.process.pid(), addr, len),
        _ => Err(io::Error::from(io::ErrorKind::InvalidInput)),
    };
    match copied {
        // Still alive after the copy: the pid named the worker throughout.
        Ok(bytes) if w.process.is_alive() => {
            answered(w, cfg, n, Ok(Value::Bytes(bytes)));
            w.claims.reply_read(true);
        }
        Ok(_) => {}
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
        Err(e) => {
            tracing::debug!(target: "multiproc::pool", pid = w.process.pid(), %e, "a worker's value cannot be read from its memory: it sends it");
            w.claims.reply_read(false);
        }
    }
}

/// Job `n` of the worker is answered: its task's future is fulfilled.
fn answered(w: &mut Worker, cfg: &Config, n: u64, result: Result<Value, TaskError>) {
    let Some(i) = w.sent.iter().position(|s| s.n == n) else {
        return;
    };
    let mut s = w.sent.remove(i).expect("an index from position");
    s.task.sink.complete(result);
    s.task.answered();
    w.answered.push(s.task);
    w.done += 1;
    if cfg.max_tasks_per_child.is_some_and(|m| w.done >= m) {
        w.retiring = true;
    }
}

/// Takes back up to `most` jobs the worker has not claimed, from the end
/// of its batch; returns them in their order.
pub(crate) fn take_back(w: &mut Worker, most: usize) -> Vec<Pending> {
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
