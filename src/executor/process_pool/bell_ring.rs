//! `BellRing`: messages between the manager and a worker through shared
//! memory, with a doorbell that costs a system call only when the reader
//! sleeps. A worker has two: its answers (the worker posts, the manager
//! reads) and its jobs (the manager posts, the worker reads).
//!
//! Writing each message to the worker's socket costs a system call on both
//! sides (and the reader's wake-up). Instead the poster puts a message
//! into a ring in shared memory ([`ipc::Queue`], whose guarantees hold when
//! a process dies in the middle of a put: a message not committed is not
//! there) and the reader takes what is there whenever it looks.
//!
//! The reader sleeps on its socket; before it does, it *arms* its bell (a
//! word on the worker's claims board), then looks at the ring one last
//! time. A poster that finds the bell armed after a put takes it (so it
//! rings once) and writes an empty message on the socket, which wakes the
//! reader. Each side writes its own word, then a `SeqCst` fence, then reads
//! the other's: either the poster sees the bell armed or the reader sees
//! the message, so no message waits for a reader that sleeps on.
//!
//! Messages that do not fit — large ones, ones with descriptors, or a full
//! ring — go by the socket as before. Answers carry their job's number, so
//! the order between the two ways does not matter to them; a worker is sent
//! a new batch of jobs only once it has read the last one (see
//! [`dispatch::room`](super::dispatch::room)), so batches do not overtake
//! each other either.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering, fence};

use serde::{Deserialize, Serialize};

use super::claims::Claims;
use super::protocol::{Done, Outcome};
use crate::codec;
use crate::ipc::{self, Connection, GetError, Payload, SendError};

/// The answers' ring: 16 of the largest answers it takes.
const ANSWER_RING: usize = 256 << 10;

/// Answers larger than this go by the socket (a large copy costs more than
/// the system call saves). A map's chunk of 1,000 numbers (8 KB) still
/// goes by the ring: through the socket, its send, receive and the wake-ups
/// they cause made the kernel's time three times the program's.
const ANSWER_MAX: usize = 16 << 10;

/// The jobs' ring: a worker is sent a batch only once it has read the last
/// (or nothing it was sent is outstanding), so it rarely holds more than
/// one batch.
const JOB_RING: usize = 256 << 10;

/// A batch of jobs larger than this goes by the socket: a batch of small
/// jobs is at most [`BATCH_BYTES`](super::dispatch::BATCH_BYTES) of
/// arguments and one more job, a lone large job goes by the socket.
const JOB_MAX: usize = 96 << 10;

/// One direction's ring; the manager and the worker each hold a handle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BellRing {
    ring: ipc::Queue<()>,
    /// Messages larger than this go by the socket.
    max: usize,
}

impl BellRing {
    /// A worker's ring of answers.
    pub(crate) fn answers() -> io::Result<BellRing> {
        Ok(BellRing {
            ring: ipc::Queue::with_capacity(0, ANSWER_RING)?,
            max: ANSWER_MAX,
        })
    }

    /// A worker's ring of jobs.
    pub(crate) fn jobs() -> io::Result<BellRing> {
        Ok(BellRing {
            ring: ipc::Queue::with_capacity(0, JOB_RING)?,
            max: JOB_MAX,
        })
    }

    /// Worker: sends an answer, into the ring when it is small (encoded
    /// into `buf`, kept by the worker), by the socket otherwise.
    pub(crate) fn send_done(
        &self,
        done: &Done,
        buf: &mut Vec<u8>,
        claims: &Claims,
        conn: &Connection,
    ) -> Result<(), SendError> {
        let small = match &done.outcome {
            Outcome::Returned(value) => value.len() < self.max,
            _ => true,
        };
        if small && codec::to_bytes(done, buf, "").is_ok() {
            return self.post(buf, claims.manager_bell(), conn);
        }
        done.send(conn)
    }

    /// Sends a message's payload (never empty: an empty message is the
    /// bell): into the ring when it fits, by the socket otherwise.
    pub(crate) fn post(
        &self,
        payload: &[u8],
        bell: &AtomicU64,
        conn: &Connection,
    ) -> Result<(), SendError> {
        if self.put(payload, bell, conn)? {
            return Ok(());
        }
        conn.send_bytes(payload)
    }

    /// Sends a frame (encoded by [`codec::encode_into`]) and the
    /// descriptors that go with it: its payload into the ring when there
    /// are none and it fits, the frame by the socket otherwise.
    pub(crate) fn post_frame(
        &self,
        frame: &[u8],
        fds: &[OwnedFd],
        bell: &AtomicU64,
        conn: &Connection,
    ) -> Result<(), SendError> {
        if fds.is_empty() && self.put(&frame[codec::HEADER_LEN..], bell, conn)? {
            return Ok(());
        }
        conn.write_frame(frame, fds)
    }

    /// Puts `payload` into the ring if it fits, then rings `bell` if the
    /// reader sleeps; `false` if it did not fit.
    fn put(&self, payload: &[u8], bell: &AtomicU64, conn: &Connection) -> Result<bool, SendError> {
        if payload.len() > self.max || self.ring.try_put_bytes(payload).is_err() {
            return Ok(false);
        }
        // The put committed; now the bell (see the module docs).
        fence(Ordering::SeqCst);
        if bell.load(Ordering::Relaxed) != 0 && bell.swap(0, Ordering::AcqRel) != 0 {
            conn.send_bytes(&[])?;
        }
        Ok(true)
    }

    /// Reader: about to sleep on its socket; whether a message is waiting
    /// in the ring (then it must not sleep).
    pub(crate) fn arm(&self, bell: &AtomicU64) -> bool {
        bell.store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        !self.ring.is_empty()
    }

    /// Reader: awake again; posters need not ring.
    pub(crate) fn disarm(bell: &AtomicU64) {
        bell.store(0, Ordering::Relaxed);
    }

    /// Reader: the next message in the ring, if any; an error means the
    /// ring's memory was damaged (the worker must go).
    pub(crate) fn take(&self) -> Result<Option<Payload>, GetError> {
        if self.ring.is_empty() {
            return Ok(None);
        }
        match self.ring.try_get_bytes() {
            Ok(bytes) => Ok(Some(bytes.into())),
            Err(GetError::Empty) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether a message waits in the ring.
    pub(crate) fn waiting(&self) -> bool {
        !self.ring.is_empty()
    }
}

/// Whether a payload from the socket is a bell, not a message.
pub(crate) fn is_bell(payload: &Payload) -> bool {
    payload.bytes().is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipc::Pipe;

    #[test]
    fn an_armed_bell_rings_once_and_a_disarmed_one_never() {
        let (manager, worker) = Pipe::duplex().unwrap();
        let claims = Claims::new().unwrap();
        let answers = BellRing::answers().unwrap();
        // Awake manager: the answer waits in the ring, nothing on the socket.
        answers
            .post(b"one", claims.manager_bell(), &worker)
            .unwrap();
        assert!(matches!(
            manager.try_recv_bytes(),
            Err(ipc::RecvError::Empty)
        ));
        assert!(
            answers.arm(claims.manager_bell()),
            "an answer waits: no sleeping"
        );
        assert_eq!(answers.take().unwrap().unwrap().bytes(), b"one");
        assert!(!answers.arm(claims.manager_bell()));
        // Asleep: the first answer rings, the second does not.
        answers
            .post(b"two", claims.manager_bell(), &worker)
            .unwrap();
        answers
            .post(b"three", claims.manager_bell(), &worker)
            .unwrap();
        assert_eq!(manager.try_recv_bytes().unwrap(), b"");
        assert!(matches!(
            manager.try_recv_bytes(),
            Err(ipc::RecvError::Empty)
        ));
        BellRing::disarm(claims.manager_bell());
        assert_eq!(answers.take().unwrap().unwrap().bytes(), b"two");
        assert_eq!(answers.take().unwrap().unwrap().bytes(), b"three");
        assert!(answers.take().unwrap().is_none());
    }

    #[test]
    fn jobs_without_descriptors_go_by_the_ring_and_the_others_by_the_socket() {
        use crate::codec::handles::Fd;
        let (manager, worker) = Pipe::duplex().unwrap();
        let claims = Claims::new().unwrap();
        let jobs = BellRing::jobs().unwrap();
        let bell = claims.worker_bell();
        let mut frame = Vec::new();
        // No descriptors: the payload goes into the ring; the worker is
        // awake (bell not armed), so nothing is written to the socket.
        let fds = codec::encode_into(&(7u32, "seven"), 1 << 20, &mut frame).unwrap();
        jobs.post_frame(&frame, &fds, bell, &manager).unwrap();
        assert!(matches!(
            worker.try_recv_bytes(),
            Err(ipc::RecvError::Empty)
        ));
        let p = jobs.take().unwrap().unwrap();
        let back: (u32, String) = codec::decode(p.bytes(), Vec::new()).unwrap();
        assert_eq!(back, (7, "seven".to_string()));
        // A sleeping worker is rung.
        assert!(!jobs.arm(bell));
        jobs.post_frame(&frame, &fds, bell, &manager).unwrap();
        assert_eq!(worker.try_recv_bytes().unwrap(), b"");
        BellRing::disarm(bell);
        assert!(jobs.take().unwrap().is_some());
        // A descriptor goes with its frame, by the socket.
        let (r, _w) = rustix::pipe::pipe().unwrap();
        let fds = codec::encode_into(&Fd(r), 1 << 20, &mut frame).unwrap();
        assert_eq!(fds.len(), 1);
        jobs.post_frame(&frame, &fds, bell, &manager).unwrap();
        assert!(!jobs.waiting());
        let _fd: Fd = worker.try_recv().unwrap();
        // So does a frame larger than the ring takes.
        let big = vec![1u8; JOB_MAX + 1];
        let fds = codec::encode_into(&serde_bytes::Bytes::new(&big), 1 << 20, &mut frame).unwrap();
        jobs.post_frame(&frame, &fds, bell, &manager).unwrap();
        assert!(!jobs.waiting());
        let got: serde_bytes::ByteBuf = worker.try_recv().unwrap();
        assert_eq!(got.into_vec(), big);
    }

    #[test]
    fn large_answers_go_by_the_socket() {
        let (manager, worker) = Pipe::duplex().unwrap();
        let claims = Claims::new().unwrap();
        let answers = BellRing::answers().unwrap();
        let big = vec![7u8; ANSWER_MAX + 1];
        answers.post(&big, claims.manager_bell(), &worker).unwrap();
        assert!(!answers.waiting());
        assert_eq!(manager.try_recv_bytes().unwrap(), big);
        // A full ring: the socket too.
        let small = vec![1u8; ANSWER_MAX];
        let mut by_socket = 0;
        for _ in 0..2 * ANSWER_RING / ANSWER_MAX {
            answers
                .post(&small, claims.manager_bell(), &worker)
                .unwrap();
            if manager.try_recv_bytes().is_ok() {
                by_socket += 1;
            }
        }
        assert!(by_socket > 0, "a full ring sends by the socket");
    }

    #[test]
    fn a_bell_races_a_sleeping_manager_without_losing_a_wake_up() {
        // The worker posts while the manager arms and sleeps: every answer
        // is either seen before sleeping or rung for.
        let (manager, worker) = Pipe::duplex().unwrap();
        let claims = Claims::new().unwrap();
        let answers = BellRing::answers().unwrap();
        let (c2, a2) = (claims.clone(), answers.clone());
        const N: usize = 5_000;
        let t = std::thread::spawn(move || {
            for i in 0..N {
                a2.post(&(i as u64).to_le_bytes(), c2.manager_bell(), &worker)
                    .unwrap();
            }
        });
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let take = |bytes: &[u8], got: &mut Vec<u64>| {
            if !bytes.is_empty() {
                got.push(u64::from_le_bytes(bytes.try_into().unwrap()));
            }
        };
        while got.len() < N {
            assert!(
                std::time::Instant::now() < deadline,
                "lost a wake-up at {}",
                got.len()
            );
            if !answers.arm(claims.manager_bell()) {
                // Sleep: a bell (or an answer by the socket, the ring being
                // full) must come, or the deadline fails the test.
                if let Ok(b) = manager.recv_bytes_timeout(std::time::Duration::from_secs(60)) {
                    take(&b, &mut got);
                }
            }
            BellRing::disarm(claims.manager_bell());
            while let Some(p) = answers.take().unwrap() {
                take(p.bytes(), &mut got);
            }
            while let Ok(b) = manager.try_recv_bytes() {
                take(&b, &mut got);
            }
        }
        got.sort_unstable();
        assert!(got.iter().copied().eq(0..N as u64), "each answer once");
        // Every answer came, so the poster is done (or about to be).
        while !t.is_finished() {
            assert!(std::time::Instant::now() < deadline, "the poster hangs");
            std::thread::yield_now();
        }
        t.join().unwrap();
    }
}
