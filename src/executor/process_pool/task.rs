//! The worker process's side of a process pool: its main loop, and the
//! transport ([`TaskCall`]) through which [`remote`] runs each task.

use std::cell::RefCell;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_bytes::ByteBuf;

use super::bell_ring::BellRing;
use super::protocol::{
    Batch, Done, Hello, Outcome, Ready, byte_block, encode_result, offer_read, send_block,
};
use crate::codec;
use crate::codec::handles::Fd;
use crate::ipc::{Connection, RecvError, SendError};
use crate::os::image::{Entry, ImageId};
use crate::os::{proc, sock};
use crate::panic::{self, Report};
use crate::process::remote::{self, Call};

/// A `Vec<u8>` result at least this large is sent by the task's own call,
/// from where it is, instead of being copied into an [`Outcome`] first.
const SEND_DIRECTLY: usize = 64 << 10;

/// A `Vec<u8>` result at least this large is offered to the pool to be
/// read from the worker's memory ([`offer_read`]); the worker keeps it
/// until the pool has read it. Measured on the 2-core machine
/// (`pool_large_result`, 8 alternating runs, medians), 1 / 16 / 128 MiB:
/// 2.24 / 1.81 / 0.99 GB/s by the socket, 3.17 / 2.35 / 1.33 read.
const READ_DIRECTLY: usize = 1 << 20;

/// How often a worker waiting for the pool to read its value looks whether
/// the pool is still there.
const READ_LOOK: Duration = Duration::from_millis(100);

/// How a task's answer left.
enum Answer {
    /// To be sent.
    Outcome(Outcome),
    /// Sent already (a large `Vec<u8>`), with how that went.
    Sent(Result<(), SendError>),
}

/// What an entry receives: the encoded argument and its descriptors, and
/// where to leave the answer — or, for a job (not an initializer), how to
/// hand a large `Vec<u8>` answer over at once.
pub(crate) struct TaskCall {
    arg: Vec<u8>,
    fds: Vec<OwnedFd>,
    out: Rc<RefCell<Option<Answer>>>,
    direct: Option<Direct>,
}

/// A job's connection and board, and its number.
struct Direct {
    conn: Rc<Connection>,
    hello: Rc<Hello>,
    n: u64,
}

impl Direct {
    /// Hands the `Vec<u8>` answer `bytes` over: offered to be read from
    /// this process's memory, and kept until the pool has (or refused:
    /// then sent by the socket, as a smaller one always is).
    fn hand_over(&self, bytes: &[u8]) -> Result<(), SendError> {
        let claims = &self.hello.claims;
        if bytes.len() >= READ_DIRECTLY && !self.hello.read_refused.get() {
            claims.offer_read();
            offer_read(&self.conn, self.n, bytes)?;
            match claims.wait_read(READ_LOOK, || sock::peer_closed(self.conn.as_fd())) {
                Some(true) => return Ok(()),
                Some(false) => self.hello.read_refused.set(true),
                None => return Err(SendError::Closed),
            }
        }
        send_block(&self.conn, self.n, bytes)
    }
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
        if let (remote::Outcome::Returned(value), Some(direct)) = (&outcome, &self.direct)
            && let Some((_, bytes)) = byte_block(*value)
            && bytes.len() >= SEND_DIRECTLY
        {
            let sent = direct.hand_over(bytes);
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

fn run(image: &ImageId, entry: i64, arg: Vec<u8>, fds: Vec<Fd>, direct: Option<Direct>) -> Answer {
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
    let hello = Rc::new(hello);
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
            let direct = Some(Direct {
                conn: conn.clone(),
                hello: hello.clone(),
                n: job.n,
            });
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
            // A batch with handles comes by the socket, with them.
            Ok(Some(payload)) => {
                return Ok(codec::decode_plain(
                    payload.bytes(),
                    "a job in the ring holds a handle",
                )?);
            }
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::executor::process_pool::claims::Claims;
    use crate::executor::process_pool::protocol::{Read, read_done};

    fn direct() -> (Direct, Connection, Claims) {
        let (ours, theirs) = crate::ipc::Pipe::duplex().unwrap();
        let claims = Claims::new().unwrap();
        let hello = Hello {
            claims: claims.clone(),
            answers: BellRing::answers().unwrap(),
            jobs: BellRing::jobs().unwrap(),
            init: None,
            max_memory: None,
            read_refused: Default::default(),
        };
        let d = Direct {
            conn: Rc::new(ours),
            hello: Rc::new(hello),
            n: 7,
        };
        (d, theirs, claims)
    }

    /// The pool's side: reads the offer, copies the bytes from this
    /// process's memory (it is the worker here) or refuses.
    fn pool(conn: &Connection, claims: &Claims, take: bool) -> Option<Vec<u8>> {
        let Ok(Read::InMemory { n: 7, len, addr }) = read_done(conn.recv_bytes().unwrap().into())
        else {
            panic!("no offer");
        };
        let copied = take
            .then(|| crate::os::peer_memory::read(std::process::id(), addr, len as usize).unwrap());
        claims.reply_read(take);
        copied
    }

    #[test]
    fn a_large_value_is_read_from_memory_and_kept_until_then() {
        let (d, theirs, claims) = direct();
        let bytes: Vec<u8> = (0..READ_DIRECTLY + 5).map(|i| i as u8).collect();
        let pool = std::thread::spawn(move || pool(&theirs, &claims, true));
        d.hand_over(&bytes).unwrap();
        assert!(pool.join().unwrap().unwrap() == bytes);
        assert!(!d.hello.read_refused.get());
    }

    #[test]
    fn a_value_the_pool_may_not_read_comes_by_the_socket_and_the_next_at_once() {
        let (d, theirs, claims) = direct();
        let bytes = vec![9u8; READ_DIRECTLY];
        let pool = std::thread::spawn(move || {
            assert_eq!(pool(&theirs, &claims, false), None);
            let Ok(Read::Block(7, len)) = read_done(theirs.recv_bytes().unwrap().into()) else {
                panic!("no block");
            };
            assert_eq!(theirs.recv_bytes().unwrap().len() as u64, len);
            // The next value is not offered: its header comes at once.
            let Ok(Read::Block(7, 3)) = read_done(theirs.recv_bytes().unwrap().into()) else {
                panic!("the next value was offered again");
            };
        });
        d.hand_over(&bytes).unwrap();
        assert!(d.hello.read_refused.get());
        d.hand_over(&bytes[..3]).unwrap();
        pool.join().unwrap();
    }

    #[test]
    fn a_worker_waiting_for_a_pool_that_is_gone_gives_up() {
        let (d, theirs, _claims) = direct();
        let pool = std::thread::spawn(move || {
            let _offer = theirs.recv_bytes().unwrap();
            drop(theirs);
        });
        let bytes = vec![1u8; READ_DIRECTLY];
        assert!(matches!(d.hand_over(&bytes), Err(SendError::Closed)));
        pool.join().unwrap();
    }
}
