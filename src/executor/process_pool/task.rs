//! The worker's side of a process pool: how a task is named, sent, run and
//! answered.

use std::cell::RefCell;
use std::rc::Rc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::codec::{self, CodecError, DEFAULT_MAX_MESSAGE_SIZE, HEADER_LEN};
use crate::ipc::{Connection, RecvError};
use crate::os::image::{Entry, ImageId};
use crate::os::proc;
use crate::panic::{self, Report};
use crate::process::remote::{self, Call};
use crate::sync::claims::Claims;

/// A task, as a worker receives it: its number on the worker's
/// [`Claims`] board, its entry and its encoded argument.
#[derive(Debug, Deserialize)]
pub(crate) struct Job {
    pub(crate) n: u64,
    pub(crate) entry: i64,
    pub(crate) arg: ByteBuf,
}

/// A [`Job`] as the pool sends it (the argument borrowed).
#[derive(Debug, Serialize)]
pub(crate) struct JobOut<'a> {
    pub(crate) n: u64,
    pub(crate) entry: i64,
    #[serde(with = "serde_bytes")]
    pub(crate) arg: &'a [u8],
}

/// Jobs sent together, in the order the worker runs them.
#[derive(Debug, Deserialize)]
pub(crate) struct Batch {
    image: ImageId,
    jobs: Vec<Job>,
}

/// A [`Batch`] as the pool sends it.
#[derive(Debug, Serialize)]
pub(crate) struct BatchOut<'a> {
    pub(crate) image: ImageId,
    pub(crate) jobs: Vec<JobOut<'a>>,
}

/// The pool's first message to a worker: its board and its initializer.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Hello {
    pub(crate) claims: Claims,
    pub(crate) init: Option<(ImageId, i64, ByteBuf)>,
    /// Resident memory above which the worker ends after a task.
    pub(crate) max_memory: Option<u64>,
}

/// How a task ended in the worker: its value encoded.
pub(crate) type Outcome = remote::Outcome<ByteBuf>;

/// The answer to a [`Job`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Done {
    pub(crate) n: u64,
    pub(crate) outcome: Outcome,
}

/// What an entry receives: the encoded argument, and where to leave the
/// outcome.
pub(crate) struct TaskCall {
    arg: Vec<u8>,
    out: Rc<RefCell<Option<Outcome>>>,
}

pub(crate) type TaskEntry = Entry<TaskCall>;

/// The entry for `F` called with an `A`, returning an `R`.
pub(crate) fn entry_for<F, A, R>() -> TaskEntry
where
    F: FnOnce(A) -> R + Copy + 'static,
    A: DeserializeOwned,
    R: Serialize,
{
    remote::entry_for::<F, A, R, TaskCall>()
}

impl Call for TaskCall {
    const REPORT: Report = Report::Quiet;

    fn argument<A: DeserializeOwned>(&mut self) -> Result<A, String> {
        codec::decode::<A>(&self.arg, Vec::new()).map_err(|e| e.to_string())
    }

    fn finish<R: Serialize>(self, outcome: remote::Outcome<&R>) -> i32 {
        let outcome = match outcome {
            remote::Outcome::Returned(value) => match encode_plain(value) {
                Ok(bytes) => Outcome::Returned(ByteBuf::from(bytes)),
                Err(e) => Outcome::Failed(format!("cannot send the result: {e}")),
            },
            remote::Outcome::Panicked { message, location } => {
                Outcome::Panicked { message, location }
            }
            remote::Outcome::Failed(why) => Outcome::Failed(why),
        };
        *self.out.borrow_mut() = Some(outcome);
        0
    }
}

/// Encodes a value as a payload that carries no handle (a task's argument
/// or result crosses a process boundary as bytes only).
pub(crate) fn encode_plain<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let frame = codec::encode(value, DEFAULT_MAX_MESSAGE_SIZE)?;
    if !frame.fds.is_empty() {
        return Err(CodecError::Encode(
            "a process pool task's argument or result cannot hold handles; start a Process for that"
                .into(),
        ));
    }
    Ok(frame.bytes[HEADER_LEN..].to_vec())
}

/// The worker's first message: ready, or why its initializer failed.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Ready(pub(crate) Option<String>);

fn run(image: &ImageId, entry: i64, arg: Vec<u8>) -> Outcome {
    // SAFETY: the worker reads jobs only from the socket its pool created
    // for it, which no other process can write to; the pool built each
    // offset with `entry_for` (a `TaskCall` entry).
    match unsafe { TaskEntry::from_wire(image, entry) } {
        None => Outcome::Failed("the worker is not running the same executable as the pool".into()),
        Some(entry) => {
            let out = Rc::new(RefCell::new(None));
            entry.call(TaskCall {
                arg,
                out: out.clone(),
            });
            out.take()
                .unwrap_or_else(|| Outcome::Failed("the task left no outcome".into()))
        }
    }
}

/// A worker process: runs the initializer (in the first message, if any),
/// says whether it is ready, then runs the jobs it is sent — each one only
/// if it can claim it on its board — until the pool closes the connection.
pub(crate) fn worker_main(conn: Connection) {
    let Ok(hello) = conn.recv::<Hello>() else {
        return;
    };
    let ready = match hello
        .init
        .map(|(image, entry, arg)| run(&image, entry, arg.into_vec()))
    {
        None | Some(Outcome::Returned(_)) => Ready(None),
        Some(Outcome::Panicked { message, location }) => Ready(Some(format!(
            "the initializer {}",
            panic::text(&message, location.as_deref())
        ))),
        Some(Outcome::Failed(why)) => Ready(Some(format!("the initializer failed: {why}"))),
    };
    let failed = ready.0.is_some();
    if conn.send(&ready).is_err() || failed {
        return;
    }
    loop {
        let batch: Batch = match conn.recv() {
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
            let outcome = run(&batch.image, job.entry, job.arg.into_vec());
            if conn.send(&Done { n: job.n, outcome }).is_err() {
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
