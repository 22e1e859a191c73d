//! The worker process's side of a process pool: its main loop, and the
//! transport ([`TaskCall`]) through which [`remote`] runs each task.

use std::cell::RefCell;
use std::os::fd::OwnedFd;
use std::rc::Rc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_bytes::ByteBuf;

use super::bell_ring::BellRing;
use super::protocol::{Batch, Done, Hello, Outcome, Ready, byte_block, encode_result, send_block};
use crate::codec;
use crate::codec::handles::Fd;
use crate::ipc::{Connection, RecvError, SendError};
use crate::os::image::{Entry, ImageId};
use crate::os::proc;
use crate::panic::{self, Report};
use crate::process::remote::{self, Call};

/// A `Vec<u8>` result at least this large is sent by the task's own call,
/// from where it is, instead of being copied into an [`Outcome`] first.
const SEND_DIRECTLY: usize = 64 << 10;

/// How a task's answer left.
enum Answer {
    /// To be sent.
    Outcome(Outcome),
    /// Sent already (a large `Vec<u8>`), with how that went.
    Sent(Result<(), SendError>),
}

/// What an entry receives: the encoded argument and its descriptors, and
/// where to leave the answer — or, for a job (not an initializer), the
/// connection and job number to send a large `Vec<u8>` answer on at once.
pub(crate) struct TaskCall {
    arg: Vec<u8>,
    fds: Vec<OwnedFd>,
    out: Rc<RefCell<Option<Answer>>>,
    direct: Option<(Rc<Connection>, u64)>,
}

pub(crate) type TaskEntry = Entry<TaskCall>;

/// The entry for `F` called with an `A`, returning an `R`.
pub(crate) fn entry_for<F, A, R>() -> TaskEntry
where
    F: FnOnce(A) -> R + Copy,
    A: DeserializeOwned,
    R: Serialize + 'static,
{
    remote::entry_for::<F, A, R, TaskCall>()
}

impl Call for TaskCall {
    const REPORT: Report = Report::Quiet;

    fn argument<A: DeserializeOwned>(&mut self) -> Result<A, String> {
        codec::decode::<A>(&self.arg, std::mem::take(&mut self.fds)).map_err(|e| e.to_string())
    }

    fn finish<R: Serialize + 'static>(self, outcome: remote::Outcome<&R>) -> i32 {
        if let (remote::Outcome::Returned(value), Some((conn, n))) = (&outcome, &self.direct)
            && let Some((_, bytes)) = byte_block(*value)
            && bytes.len() >= SEND_DIRECTLY
        {
            let sent = send_block(conn, *n, bytes);
            *self.out.borrow_mut() = Some(Answer::Sent(sent));
            return 0;
        }
        let outcome = match outcome {
            remote::Outcome::Returned(value) => match encode_result(value) {
                Ok(bytes) => Outcome::Returned(ByteBuf::from(bytes)),
                Err(e) => Outcome::Failed(format!("cannot send the result: {e}")),
            },
            remote::Outcome::Panicked { message, location } => {
                Outcome::Panicked { message, location }
            }
            remote::Outcome::Failed(why) => Outcome::Failed(why),
        };
        *self.out.borrow_mut() = Some(Answer::Outcome(outcome));
        0
    }
}

fn run(
    image: &ImageId,
    entry: i64,
    arg: Vec<u8>,
    fds: Vec<Fd>,
    direct: Option<(Rc<Connection>, u64)>,
) -> Answer {
    // SAFETY: the worker reads jobs only from the socket its pool created
    // for it, which no other process can write to; the pool built each
    // offset with `entry_for` (a `TaskCall` entry).
    match unsafe { TaskEntry::from_wire(image, entry) } {
        None => Answer::Outcome(Outcome::Failed(
            "the worker is not running the same executable as the pool".into(),
        )),
        Some(entry) => {
            let out = Rc::new(RefCell::new(None));
            entry.call(TaskCall {
                arg,
                fds: fds.into_iter().map(|Fd(fd)| fd).collect(),
                out: out.clone(),
                direct,
            });
            out.take().unwrap_or_else(|| {
                Answer::Outcome(Outcome::Failed("the task left no outcome".into()))
            })
        }
    }
}

/// A worker process: runs the initializer (in the first message, if any),
/// says whether it is ready, then runs the jobs it is sent — each one only
/// if it can claim it on its board — until the pool closes the connection.
pub(crate) fn worker_main(conn: Connection) {
    let conn = Rc::new(conn);
    let Ok(mut hello) = conn.recv::<Hello>() else {
        return;
    };
    let ready = match hello
        .init
        .take()
        .map(|(image, entry, arg, fds)| run(&image, entry, arg.into_vec(), fds, None))
    {
        None | Some(Answer::Outcome(Outcome::Returned(_)) | Answer::Sent(_)) => Ready(None),
        Some(Answer::Outcome(Outcome::Panicked { message, location })) => Ready(Some(format!(
            "the initializer {}",
            panic::text(&message, location.as_deref())
        ))),
        Some(Answer::Outcome(Outcome::Failed(why))) => {
            Ready(Some(format!("the initializer failed: {why}")))
        }
    };
    let failed = ready.0.is_some();
    if conn.send(&ready).is_err() || failed {
        return;
    }
    // Where an answer is encoded (reused).
    let mut buf = Vec::new();
    loop {
        let batch = match next_batch(&hello, &conn) {
            Ok(b) => b,
            Err(RecvError::Closed) => return,
            Err(e) => panic!("the pool's connection broke: {e}"),
        };
        if let Some(last) = batch.jobs.last() {
            hello.claims.received(last.n);
        }
        for job in batch.jobs {
            if !hello.claims.claim(job.n) {
                continue; // taken back by the pool
            }
            let direct = Some((conn.clone(), job.n));
            let sent = match run(&batch.image, job.entry, job.arg.into_vec(), job.fds, direct) {
                Answer::Outcome(outcome) => hello.answers.send_done(
                    &Done { n: job.n, outcome },
                    &mut buf,
                    &hello.claims,
                    &conn,
                ),
                Answer::Sent(sent) => sent,
            };
            if sent.is_err() {
                return; // the pool is gone
            }
            if !hello.claims.finish(job.n) {
                // The pool is killing this worker for that task (a cancel
                // or a deadline that came as it ended): start nothing more.
                return;
            }
            if let Some(cap) = hello.max_memory
                && proc::resident_bytes(proc::getpid()).is_ok_and(|rss| rss > cap)
            {
                // Recycled: the pool gives the jobs not claimed to others
                // and starts a fresh worker.
                return;
            }
        }
    }
}

/// The worker's next batch of jobs: from its ring, or — when the ring is
/// empty — whatever comes first on its socket: a batch, or the bell that
/// says one was put in the ring ([`BellRing`]).
fn next_batch(hello: &Hello, conn: &Connection) -> Result<Batch, RecvError> {
    let bell = hello.claims.worker_bell();
    loop {
        match hello.jobs.take() {
            Ok(Some(payload)) => return Ok(codec::decode(payload.bytes(), Vec::new())?),
            Ok(None) => {}
            Err(e) => panic!("the pool's job ring is damaged: {e}"),
        }
        if hello.jobs.arm(bell) {
            BellRing::disarm(bell);
            continue;
        }
        let got = conn.recv_unless_empty::<Batch>();
        BellRing::disarm(bell);
        if let Some(batch) = got? {
            return Ok(batch);
        }
    }
}
