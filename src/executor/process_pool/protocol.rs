//! Every message between the pool and its worker processes, and how a
//! value travels in one. How they are used is told once, in
//! [`manager`](super::manager)'s "How a task travels".
//!
//! | from → to | message |
//! |---|---|
//! | pool → worker, first | [`Hello`]: the claims board, the answers' and the jobs' rings, the initializer, the memory cap |
//! | worker → pool, first | [`Ready`]: ready, or why the initializer failed |
//! | pool → worker | [`Batch`] ([`BatchOut`] as sent): numbered [`Job`]s (by the jobs' [`BellRing`], unless it has descriptors or is large) |
//! | pool → worker | an empty message: the worker's bell |
//! | worker → pool | [`Done`]: a job's number and its [`Outcome`] (small ones by the answers' [`BellRing`]) |
//! | worker → pool | a large `Vec<u8>` value: where it is in the worker's memory ([`offer_read`]; the pool replies on the worker's board), or the few bytes before it and then the bytes ([`send_block`]) |
//! | worker → pool | an empty message: the manager's bell |

use std::os::fd::OwnedFd;

use std::any::{Any, TypeId};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::bell_ring::BellRing;
use super::claims::Claims;
use crate::codec::handles::{Fd, FdsRef};
use crate::codec::{self, CodecError, DEFAULT_MAX_MESSAGE_SIZE};
use crate::futures::TaskError;
use crate::ipc::{Connection, Payload, SendError};
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
    /// Where the worker puts its small answers.
    pub(crate) answers: BellRing,
    /// Where the worker finds its jobs (those that came by the socket
    /// aside).
    pub(crate) jobs: BellRing,
    pub(crate) init: Option<(ImageId, i64, ByteBuf, Vec<Fd>)>,
    /// Resident memory above which the worker ends after a task.
    pub(crate) max_memory: Option<u64>,
    /// The worker's own: set once the pool has refused to read a value
    /// from its memory (not allowed here), so later ones go by the socket
    /// at once.
    #[serde(skip)]
    pub(crate) read_refused: std::cell::Cell<bool>,
}

/// How a task ended in the worker: its value encoded.
pub(crate) type Outcome = remote::Outcome<ByteBuf>;

/// The answer to a [`Job`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Done {
    pub(crate) n: u64,
    pub(crate) outcome: Outcome,
}

impl Done {
    /// Sends this answer (see [`send_returned`] for a returned value).
    pub(crate) fn send(&self, conn: &Connection) -> Result<(), SendError> {
        match &self.outcome {
            remote::Outcome::Returned(bytes) => send_returned(conn, self.n, &[bytes]),
            _ => conn.send(self),
        }
    }
}

/// Sends the [`Done`] of job `n` that returned the value encoded as
/// `parts` one after the other. The bytes — megabytes, maybe — are written
/// from where they are, behind the few that serde would put before them
/// (the number, `Returned`'s index, the count), instead of being copied
/// into a frame first (a test checks the bytes are serde's).
pub(crate) fn send_returned(conn: &Connection, n: u64, parts: &[&[u8]]) -> Result<(), SendError> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let before = answer_head(n, RETURNED, len as u64);
    let mut all = Vec::with_capacity(parts.len() + 1);
    all.push(&before[..]);
    all.extend_from_slice(parts);
    conn.send_parts(&all)
}

/// `Outcome::Returned`'s number on the wire.
const RETURNED: u32 = 0;

/// The first bytes of an answer the worker writes by hand, as serde would
/// write a [`Done`] whose value is `len` bytes: the job number, the
/// variant's number (`Outcome`'s, or [`BLOCK`], [`IN_MEMORY`]), the length.
fn answer_head(n: u64, variant: u32, len: u64) -> [u8; 20] {
    let mut head = [0u8; 20];
    head[..8].copy_from_slice(&n.to_le_bytes());
    head[8..12].copy_from_slice(&variant.to_le_bytes());
    head[12..].copy_from_slice(&len.to_le_bytes());
    head
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
    let mut bytes = Vec::new();
    let fds = codec::encode_payload(value, &mut bytes)?;
    if bytes.len() > DEFAULT_MAX_MESSAGE_SIZE {
        return Err(CodecError::TooLarge {
            size: bytes.len() as u64,
            limit: DEFAULT_MAX_MESSAGE_SIZE as u64,
        });
    }
    Ok((bytes, fds))
}

/// A `Vec<u8>` value as the codec writes it — its count, then its bytes —
/// to be written as one block; `None` for a value of any other type.
pub(crate) fn byte_block<T: 'static>(value: &T) -> Option<([u8; 8], &[u8])> {
    let bytes = (value as &dyn Any).downcast_ref::<Vec<u8>>()?;
    Some(((bytes.len() as u64).to_le_bytes(), bytes))
}

/// Encodes a task's result, which carries no handle (it is passed on by
/// the pool as bytes only). A `Vec<u8>` is written as one block — the bytes
/// serde would write, without a call per byte (measured: 1 GB/s through
/// serde on this machine, memory speed here).
pub(crate) fn encode_result<T: Serialize + 'static>(value: &T) -> Result<Vec<u8>, CodecError> {
    if let Some((count, bytes)) = byte_block(value) {
        return Ok([&count[..], bytes].concat());
    }
    let mut out = Vec::new();
    codec::to_bytes(value, &mut out, RESULT_NO_HANDLES)?;
    Ok(out)
}

/// Why a task's result cannot hold a handle.
const RESULT_NO_HANDLES: &str = "a process pool task's result cannot hold handles; return them from a Process, or pass them to the tasks";

/// A task's value as it reaches the pool.
#[derive(Debug)]
pub(crate) enum Value {
    /// Encoded by [`encode_result`].
    Encoded(Payload),
    /// A `Vec<u8>` as the task returned it: a large one travels as a
    /// block of its own ([`send_block`]), received into a buffer of its
    /// exact size, which becomes the value — no byte is moved again.
    Bytes(Vec<u8>),
}

impl Value {
    /// The value encoded as [`encode_result`] writes it (what a remote
    /// worker sends on).
    #[cfg(any(feature = "redis", test))]
    pub(crate) fn into_encoded(self) -> Vec<u8> {
        match self {
            Value::Encoded(p) => p.into_vec_from(0),
            Value::Bytes(v) => [&(v.len() as u64).to_le_bytes()[..], &v].concat(),
        }
    }
}

impl From<Payload> for Value {
    fn from(p: Payload) -> Value {
        Value::Encoded(p)
    }
}

/// How a task fails whose value does not decode.
pub(crate) fn undecodable(e: CodecError) -> TaskError {
    TaskError::Broken(format!("cannot decode the result: {e}"))
}

/// Decodes what [`encode_result`] wrote. A `Vec<u8>` is taken as one block
/// (in place: moved to the front of the buffer it arrived in) instead of
/// byte by byte (0.5 GB/s through serde on this machine).
pub(crate) fn decode_result<T: DeserializeOwned + 'static>(value: Value) -> Result<T, CodecError> {
    let payload = match value {
        Value::Encoded(payload) => payload,
        Value::Bytes(bytes) => {
            let boxed: Box<dyn Any> = Box::new(bytes);
            return boxed
                .downcast::<T>()
                .map(|value| *value)
                .map_err(|_| CodecError::Decode("bytes for a value that is not a Vec<u8>".into()));
        }
    };
    if TypeId::of::<T>() == TypeId::of::<Vec<u8>>()
        && let Some((count, rest)) = payload.bytes().split_first_chunk::<8>()
        && u64::from_le_bytes(*count) == rest.len() as u64
    {
        let boxed: Box<dyn Any> = Box::new(payload.into_vec_from(8));
        return boxed
            .downcast::<T>()
            .map(|value| *value)
            .map_err(|_| CodecError::Decode("a Vec<u8> that is not a Vec<u8>".into()));
    }
    codec::decode_plain(payload.bytes(), RESULT_NO_HANDLES)
}

/// `Outcome`'s variants are numbered 0–2 on the wire; this number, in the
/// place of one, says a block follows ([`send_block`]).
const BLOCK: u32 = 3;

/// Sends the answer of job `n` that returned the `Vec<u8>` `bytes`, as two
/// messages: the few bytes that say so (job number, [`BLOCK`], length),
/// then the bytes alone, written from where they are. The pool receives a
/// large message into a buffer of its own, of its exact size: that buffer
/// is the `Vec<u8>` its future hands out.
pub(crate) fn send_block(conn: &Connection, n: u64, bytes: &[u8]) -> Result<(), SendError> {
    conn.send_bytes(&answer_head(n, BLOCK, bytes.len() as u64))?;
    conn.send_bytes(bytes)
}

/// In the place of `Outcome`'s variant, this number says the value is to
/// be read from the worker's memory ([`offer_read`]).
const IN_MEMORY: u32 = 4;

/// Says that job `n` returned the `Vec<u8>` `bytes`, to be read where it
/// is, in the worker's memory (`process_vm_readv`): the job number,
/// [`IN_MEMORY`], the length, the address. The worker keeps the bytes
/// until the pool replies on its board
/// ([`Claims::wait_read`](super::claims::Claims::wait_read)).
pub(crate) fn offer_read(conn: &Connection, n: u64, bytes: &[u8]) -> Result<(), SendError> {
    let mut offer = [0u8; 28];
    offer[..20].copy_from_slice(&answer_head(n, IN_MEMORY, bytes.len() as u64));
    offer[20..].copy_from_slice(&(bytes.as_ptr() as usize as u64).to_le_bytes());
    conn.send_bytes(&offer)
}

/// What an answer's message says.
#[derive(Debug)]
pub(crate) enum Read {
    /// Job `n` ended: its value (still encoded), or how it ended otherwise.
    Done(u64, Result<Payload, Outcome>),
    /// Job `n` returned a `Vec<u8>` of `len` bytes, which is the next
    /// message ([`send_block`]).
    Block(u64, u64),
    /// Job `n` returned a `Vec<u8>` of `len` bytes at `addr` in the
    /// worker's memory ([`offer_read`]).
    InMemory { n: u64, len: u64, addr: u64 },
}

/// Reads a [`Done`] from its payload. A returned value is left where it
/// arrived — the buffer is not copied — past the few bytes before it (see
/// [`send_returned`]).
pub(crate) fn read_done(payload: Payload) -> Result<Read, CodecError> {
    let b = payload.bytes();
    if let Some(before) = b.get(..20) {
        let n = u64::from_le_bytes(before[..8].try_into().expect("8 bytes"));
        let len = u64::from_le_bytes(before[12..20].try_into().expect("8 bytes"));
        if before[8..12] == RETURNED.to_le_bytes() && len == (b.len() - 20) as u64 {
            return Ok(Read::Done(n, Ok(payload.advance(20))));
        }
        if before[8..12] == BLOCK.to_le_bytes() && b.len() == 20 {
            return Ok(Read::Block(n, len));
        }
        if before[8..12] == IN_MEMORY.to_le_bytes() && b.len() == 28 {
            let addr = u64::from_le_bytes(b[20..28].try_into().expect("8 bytes"));
            return Ok(Read::InMemory { n, len, addr });
        }
    }
    let done: Done = codec::decode_plain(b, RESULT_NO_HANDLES)?;
    Ok(Read::Done(done.n, Err(done.outcome)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::HEADER_LEN;

    #[test]
    fn an_answer_sent_in_parts_is_the_frame_serde_writes() {
        let (a, b) = crate::ipc::Pipe::duplex().unwrap();
        let returned = Done {
            n: 77,
            outcome: Outcome::Returned(ByteBuf::from(vec![5u8; 1000])),
        };
        returned.send(&a).unwrap();
        let sent = b.recv_bytes().unwrap();
        let framed = codec::encode(&returned, DEFAULT_MAX_MESSAGE_SIZE).unwrap();
        assert_eq!(sent, &framed.bytes[HEADER_LEN..]);
        let back: Done = codec::decode(&sent, Vec::new()).unwrap();
        assert!(matches!(back.outcome, Outcome::Returned(b) if b.len() == 1000 && back.n == 77));
    }

    #[test]
    fn a_byte_vector_sent_from_where_it_is_is_the_answer_serde_writes() {
        let (a, b) = crate::ipc::Pipe::duplex().unwrap();
        let v = vec![3u8; 5000];
        send_returned(&a, 9, &[&(v.len() as u64).to_le_bytes(), &v]).unwrap();
        let sent = b.recv_bytes().unwrap();
        let done = Done {
            n: 9,
            outcome: Outcome::Returned(ByteBuf::from(encode_result(&v).unwrap())),
        };
        let framed = codec::encode(&done, DEFAULT_MAX_MESSAGE_SIZE).unwrap();
        assert_eq!(sent, &framed.bytes[HEADER_LEN..]);
    }

    #[test]
    fn a_byte_vector_result_is_one_block_with_serdes_bytes() {
        let v: Vec<u8> = (0..=255).collect();
        let fast = encode_result(&v).unwrap();
        let mut slow = Vec::new();
        codec::to_bytes(&v, &mut slow, "").unwrap();
        assert_eq!(fast, slow);
        let encoded = |b: Vec<u8>| Value::Encoded(b.into());
        assert_eq!(decode_result::<Vec<u8>>(encoded(fast)).unwrap(), v);
        // A count that does not match is the decoder's error, not a panic.
        assert!(decode_result::<Vec<u8>>(encoded(vec![9, 0, 0, 0, 0, 0, 0, 0, 1])).is_err());
        assert_eq!(
            decode_result::<Vec<u16>>(encoded(encode_result(&vec![1u16, 2]).unwrap())).unwrap(),
            [1, 2]
        );
        // A block is the value as it is, for a `Vec<u8>` only.
        assert_eq!(
            decode_result::<Vec<u8>>(Value::Bytes(v.clone())).unwrap(),
            v
        );
        assert!(decode_result::<Vec<u16>>(Value::Bytes(v.clone())).is_err());
        assert_eq!(
            Value::Bytes(v.clone()).into_encoded(),
            encode_result(&v).unwrap()
        );
    }
}
