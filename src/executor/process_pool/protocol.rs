//! Every message between the pool and its worker processes, and how a
//! value travels in one. How they are used is told once, in
//! [`manager`](super::manager)'s "How a task travels".
//!
//! | from → to | message |
//! |---|---|
//! | pool → worker, first | [`Hello`]: the claims board, the initializer, the memory cap |
//! | worker → pool, first | [`Ready`]: ready, or why the initializer failed |
//! | pool → worker | [`Batch`] ([`BatchOut`] as sent): numbered [`Job`]s |
//! | worker → pool | [`Done`]: a job's number and its [`Outcome`] |

use std::os::fd::OwnedFd;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::claims::Claims;
use crate::codec::handles::{Fd, FdsRef};
use crate::codec::{self, CodecError, DEFAULT_MAX_MESSAGE_SIZE, HEADER_LEN};
use crate::os::image::ImageId;
use crate::process::remote;

/// A task, as a worker receives it: its number on the worker's
/// [`Claims`] board, its entry and its encoded argument, with the
/// descriptors of the handles the argument holds.
#[derive(Debug, Deserialize)]
pub(crate) struct Job {
    pub(crate) n: u64,
    pub(crate) entry: i64,
    pub(crate) arg: ByteBuf,
    pub(crate) fds: Vec<Fd>,
}

/// A [`Job`] as the pool sends it (the argument and descriptors borrowed).
#[derive(Serialize)]
pub(crate) struct JobOut<'a> {
    pub(crate) n: u64,
    pub(crate) entry: i64,
    #[serde(with = "serde_bytes")]
    pub(crate) arg: &'a [u8],
    pub(crate) fds: FdsRef<'a>,
}

/// Jobs sent together, in the order the worker runs them.
#[derive(Debug, Deserialize)]
pub(crate) struct Batch {
    pub(crate) image: ImageId,
    pub(crate) jobs: Vec<Job>,
}

/// A [`Batch`] as the pool sends it.
#[derive(Serialize)]
pub(crate) struct BatchOut<'a> {
    pub(crate) image: ImageId,
    pub(crate) jobs: Vec<JobOut<'a>>,
}

/// The pool's first message to a worker: its board and its initializer
/// (its entry, argument and the argument's descriptors).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Hello {
    pub(crate) claims: Claims,
    pub(crate) init: Option<(ImageId, i64, ByteBuf, Vec<Fd>)>,
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

/// The worker's first message: ready, or why its initializer failed.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Ready(pub(crate) Option<String>);

/// Encodes a task's (or an initializer's) argument: its bytes, and the
/// descriptors of the handles it holds (queues, locks, shared memory),
/// which travel to the worker beside the bytes, as to a `Process`.
pub(crate) fn encode_arg<T: Serialize + ?Sized>(
    value: &T,
) -> Result<(Vec<u8>, Vec<OwnedFd>), CodecError> {
    let frame = codec::encode(value, DEFAULT_MAX_MESSAGE_SIZE)?;
    Ok((frame.bytes[HEADER_LEN..].to_vec(), frame.fds))
}

/// Encodes a task's result, which carries no handle (it is passed on by
/// the pool as bytes only).
pub(crate) fn encode_result<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let (bytes, fds) = encode_arg(value)?;
    if !fds.is_empty() {
        return Err(CodecError::Encode(
            "a process pool task's result cannot hold handles; return them from a Process, or pass them to the tasks"
                .into(),
        ));
    }
    Ok(bytes)
}
