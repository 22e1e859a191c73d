//! The worker's side of a process pool: how a task is named, sent, run and
//! answered.

use std::cell::RefCell;
use std::rc::Rc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::codec::{self, CodecError, DEFAULT_MAX_MESSAGE_SIZE, HEADER_LEN};
use crate::ipc::{Connection, RecvError};
use crate::os::image::{Entry, ImageId, zero_sized_fn};
use crate::panic::{self, PanicReport, Report};

/// A task, as the parent sends it to a worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Job {
    pub(crate) id: u64,
    pub(crate) image: ImageId,
    pub(crate) entry: i64,
    pub(crate) arg: ByteBuf,
}

/// How a task ended in the worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Outcome {
    /// The value, encoded.
    Returned(ByteBuf),
    /// The task panicked; the worker lives on.
    Panicked {
        message: String,
        location: Option<String>,
    },
    /// The task could not be run, or its value not sent.
    Failed(String),
}

/// The answer to a [`Job`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Done {
    pub(crate) id: u64,
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
    Entry::of(trampoline::<F, A, R>)
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

fn trampoline<F, A, R>(call: TaskCall) -> i32
where
    F: FnOnce(A) -> R + Copy + 'static,
    A: DeserializeOwned,
    R: Serialize,
{
    let outcome = match codec::decode::<A>(&call.arg, Vec::new()) {
        Err(e) => Outcome::Failed(format!("cannot decode the argument: {e}")),
        Ok(arg) => {
            let f = zero_sized_fn::<F>();
            match panic::capture(Report::Quiet, move || f(arg)) {
                Ok(value) => match encode_plain(&value) {
                    Ok(bytes) => Outcome::Returned(ByteBuf::from(bytes)),
                    Err(e) => Outcome::Failed(format!("cannot send the result: {e}")),
                },
                Err(PanicReport { message, location }) => Outcome::Panicked { message, location },
            }
        }
    };
    *call.out.borrow_mut() = Some(outcome);
    0
}

/// The worker's first message: ready, or why its initializer failed.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Ready(pub(crate) Option<String>);

fn run(job: Job) -> Outcome {
    match TaskEntry::from_wire(&job.image, job.entry) {
        None => Outcome::Failed("the worker is not running the same executable as the pool".into()),
        Some(entry) => {
            let out = Rc::new(RefCell::new(None));
            entry.call(TaskCall {
                arg: job.arg.into_vec(),
                out: out.clone(),
            });
            out.take()
                .unwrap_or_else(|| Outcome::Failed("the task left no outcome".into()))
        }
    }
}

/// A worker process: runs the initializer (the first message, if any), says
/// whether it is ready, then runs jobs until the parent closes the
/// connection.
pub(crate) fn worker_main(conn: Connection) {
    let init: Option<Job> = match conn.recv() {
        Ok(i) => i,
        Err(_) => return,
    };
    let ready = match init.map(run) {
        None | Some(Outcome::Returned(_)) => Ready(None),
        Some(Outcome::Panicked { message, location }) => Ready(Some(format!(
            "the initializer panicked{}: {message}",
            location.map(|l| format!(" at {l}")).unwrap_or_default()
        ))),
        Some(Outcome::Failed(why)) => Ready(Some(format!("the initializer failed: {why}"))),
    };
    let failed = ready.0.is_some();
    if conn.send(&ready).is_err() || failed {
        return;
    }
    loop {
        let job: Job = match conn.recv() {
            Ok(j) => j,
            Err(RecvError::Closed) => return,
            Err(e) => panic!("the pool's connection broke: {e}"),
        };
        let id = job.id;
        if conn
            .send(&Done {
                id,
                outcome: run(job),
            })
            .is_err()
        {
            return; // the pool is gone
        }
    }
}
