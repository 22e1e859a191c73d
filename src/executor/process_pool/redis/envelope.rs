//! Every message that goes through Redis, signed: the payload (the crate's
//! codec) followed by an HMAC-SHA256 of a label and the payload under the
//! pool's auth key. Nothing in a message is read before its length and its
//! tag are checked; a message that fails is dropped and counted, never
//! acted on.

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use sha2::Sha256;

use crate::codec;
use crate::futures::TaskError;
use crate::process::ExitStatus;

type HmacSha256 = Hmac<Sha256>;

const TAG: usize = 32;
/// Names the protocol inside every MAC: a message of another protocol (or
/// version) never verifies.
const LABEL: &[u8] = b"multiproc redis pool v1";

/// A task on its way to a worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Task {
    /// The pool client that submitted it (results go to its list).
    pub(crate) client: u64,
    pub(crate) id: u64,
    /// 0 for the first run; a retry after a lost worker is the next.
    pub(crate) attempt: u32,
    /// The build it was compiled into (see `os::image::build_digest`).
    pub(crate) build: [u8; 32],
    pub(crate) entry: i64,
    pub(crate) arg: ByteBuf,
    pub(crate) timeout_ms: Option<u64>,
}

/// How a task ended, as a worker reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Ended {
    Value(ByteBuf),
    Panicked {
        message: String,
        location: Option<String>,
    },
    /// Its process died: an exit code, or a signal.
    Died {
        code: Option<i32>,
        signal: Option<i32>,
    },
    DeadlineExceeded {
        ms: u64,
    },
    Cancelled,
    Broken(String),
}

impl Ended {
    /// What the local pool of a worker said, for the wire.
    pub(crate) fn from_local(outcome: Result<Vec<u8>, TaskError>) -> Ended {
        match outcome {
            Ok(v) => Ended::Value(ByteBuf::from(v)),
            Err(TaskError::Panicked { message, location }) => Ended::Panicked { message, location },
            Err(TaskError::WorkerDied { status }) => match status {
                ExitStatus::Code(c) => Ended::Died {
                    code: Some(c),
                    signal: None,
                },
                ExitStatus::Signal(s) => Ended::Died {
                    code: None,
                    signal: Some(s),
                },
            },
            Err(TaskError::DeadlineExceeded(d)) => Ended::DeadlineExceeded {
                ms: d.as_millis() as u64,
            },
            Err(TaskError::Cancelled) => Ended::Cancelled,
            Err(e) => Ended::Broken(e.to_string()),
        }
    }

    /// Back into the pool's terms.
    pub(crate) fn into_result(self) -> Result<Vec<u8>, TaskError> {
        match self {
            Ended::Value(v) => Ok(v.into_vec()),
            Ended::Panicked { message, location } => Err(TaskError::Panicked { message, location }),
            Ended::Died {
                signal: Some(s), ..
            } => Err(TaskError::WorkerDied {
                status: ExitStatus::Signal(s),
            }),
            Ended::Died { code, .. } => Err(TaskError::WorkerDied {
                status: ExitStatus::Code(code.unwrap_or(-1)),
            }),
            Ended::DeadlineExceeded { ms } => Err(TaskError::DeadlineExceeded(
                std::time::Duration::from_millis(ms),
            )),
            Ended::Cancelled => Err(TaskError::Cancelled),
            Ended::Broken(why) => Err(TaskError::Broken(why)),
        }
    }
}

/// Every kind of message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Message {
    /// Pool → workers (the pool's list).
    Task(Task),
    /// Worker → pool (the client's results list).
    Done {
        client: u64,
        id: u64,
        attempt: u32,
        worker: String,
        ended: Ended,
    },
    /// Pool → a worker: stop this task if you run it.
    Cancel { client: u64, id: u64 },
    /// The pool's announcement (its build), read by workers before they
    /// take anything.
    Pool { build: [u8; 32] },
    /// A worker tells the pool why it will not serve it.
    Refused { worker: String, why: String },
}

/// Why a message was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Rejected {
    #[error("a message of {0} bytes is over the cap")]
    TooLarge(usize),
    #[error("a message's signature does not verify (wrong auth key, or forged)")]
    BadTag,
    #[error("a signed message does not decode: {0}")]
    Malformed(String),
}

/// Signs and checks messages under one key, with a size cap.
#[derive(Clone)]
pub(crate) struct Seal {
    key: Vec<u8>,
    max: usize,
}

impl Seal {
    pub(crate) fn new(key: &[u8], max: usize) -> Seal {
        Seal {
            key: key.to_vec(),
            max,
        }
    }

    fn mac(&self) -> HmacSha256 {
        let mut m = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        m.update(LABEL);
        m
    }

    /// The message, encoded and signed.
    pub(crate) fn seal(&self, msg: &Message) -> Result<Vec<u8>, codec::CodecError> {
        let frame = codec::encode(msg, codec::DEFAULT_MAX_MESSAGE_SIZE)?;
        let payload = &frame.bytes[codec::HEADER_LEN..];
        let mut m = self.mac();
        m.update(payload);
        let mut out = Vec::with_capacity(payload.len() + TAG);
        out.extend_from_slice(payload);
        out.extend_from_slice(&m.finalize().into_bytes());
        Ok(out)
    }

    /// Checks the size and the tag, then decodes.
    pub(crate) fn open(&self, bytes: &[u8]) -> Result<Message, Rejected> {
        if bytes.len() > self.max {
            return Err(Rejected::TooLarge(bytes.len()));
        }
        if bytes.len() < TAG {
            return Err(Rejected::BadTag);
        }
        let (payload, tag) = bytes.split_at(bytes.len() - TAG);
        let mut m = self.mac();
        m.update(payload);
        m.verify_slice(tag).map_err(|_| Rejected::BadTag)?;
        codec::decode::<Message>(payload, Vec::new())
            .map_err(|e| Rejected::Malformed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_message_opens_only_under_its_key() {
        let seal = Seal::new(b"right", 1 << 20);
        let msg = Message::Cancel { client: 7, id: 9 };
        let bytes = seal.seal(&msg).unwrap();
        assert!(matches!(
            seal.open(&bytes),
            Ok(Message::Cancel { client: 7, id: 9 })
        ));
        assert_eq!(
            Seal::new(b"wrong", 1 << 20).open(&bytes).unwrap_err(),
            Rejected::BadTag
        );
        let mut forged = bytes.clone();
        forged[0] ^= 1;
        assert_eq!(seal.open(&forged).unwrap_err(), Rejected::BadTag);
        assert_eq!(seal.open(b"short").unwrap_err(), Rejected::BadTag);
        assert_eq!(
            Seal::new(b"right", 10).open(&bytes).unwrap_err(),
            Rejected::TooLarge(bytes.len())
        );
    }
}
