//! `Answers`: a worker's answers in shared memory, and the doorbell that
//! wakes the manager only when it sleeps.
//!
//! Writing each answer to the worker's socket costs a system call per task
//! on both sides (and the manager's wake-up). Instead a worker puts a small
//! answer into a ring in shared memory ([`ipc::Queue`], whose guarantees
//! hold when a worker dies in the middle of a put: an answer not committed
//! is not there) and the manager takes what is there whenever it looks.
//!
//! The manager sleeps in `poll` on the workers' sockets; before it does, it
//! *arms* each worker's bell (a word on the worker's claims board), then
//! looks at the rings one last time. A worker that finds its bell armed
//! after a put takes it (so it rings once) and writes an empty message on
//! its socket, which wakes the manager. Each side writes its own word, then
//! a `SeqCst` fence, then reads the other's: either the worker sees the bell
//! armed or the manager sees the answer, so no answer waits for a manager
//! that sleeps on.
//!
//! Answers that do not fit — large ones, or a ring full because the manager
//! is busy — go by the socket as before; each answer carries its job's
//! number, so the order between the two ways does not matter.

use std::io;
use std::sync::atomic::{Ordering, fence};

use serde::{Deserialize, Serialize};

use super::claims::Claims;
use super::protocol::{Done, Outcome};
use crate::codec;
use crate::ipc::{self, Connection, GetError, Payload, SendError};

/// The ring's size: 16 of the largest answers it takes.
const RING_BYTES: usize = 256 << 10;

/// Answers larger than this go by the socket (a large copy costs more than
/// the system call saves). A map's chunk of 1,000 numbers (8 KB) still
/// goes by the ring: through the socket, its send, receive and the wake-ups
/// they cause made the kernel's time three times the program's.
const MAX_POSTED: usize = 16 << 10;

/// One worker's ring of answers; the manager and the worker each hold a
/// handle.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Answers {
    ring: ipc::Queue<()>,
}

impl Answers {
    pub(crate) fn new() -> io::Result<Answers> {
        Ok(Answers {
            ring: ipc::Queue::with_capacity(0, RING_BYTES)?,
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
            Outcome::Returned(value) => value.len() < MAX_POSTED,
            _ => true,
        };
        if small && codec::to_bytes(done, buf, "").is_ok() {
            return self.send(buf, claims, conn);
        }
        done.send(conn)
    }

    /// Worker: sends an answer's bytes (the payload a [`Done`] is sent as):
    /// into the ring when it fits, ringing the bell if the manager sleeps;
    /// by the socket otherwise.
    pub(crate) fn send(
        &self,
        bytes: &[u8],
        claims: &Claims,
        conn: &Connection,
    ) -> Result<(), SendError> {
        // (An answer is never empty: an empty message is the bell.)
        if bytes.len() > MAX_POSTED || self.ring.try_put_bytes(bytes).is_err() {
            return conn.send_bytes(bytes);
        }
        // The put committed; now the bell (see the module docs).
        fence(Ordering::SeqCst);
        let bell = claims.bell();
        if bell.load(Ordering::Relaxed) != 0 && bell.swap(0, Ordering::AcqRel) != 0 {
            return conn.send_bytes(&[]);
        }
        Ok(())
    }

    /// Manager: about to sleep on the worker's socket; whether an answer is
    /// waiting in the ring (then it must not sleep).
    pub(crate) fn arm(&self, claims: &Claims) -> bool {
        claims.bell().store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        !self.ring.is_empty()
    }

    /// Manager: awake again; workers need not ring.
    pub(crate) fn disarm(claims: &Claims) {
        claims.bell().store(0, Ordering::Relaxed);
    }

    /// Manager: the next answer in the ring, if any; an error means the
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

    /// Whether an answer waits in the ring.
    pub(crate) fn waiting(&self) -> bool {
        !self.ring.is_empty()
    }
}

/// Whether a payload from the worker's socket is a bell, not an answer.
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
        let answers = Answers::new().unwrap();
        // Awake manager: the answer waits in the ring, nothing on the socket.
        answers.send(b"one", &claims, &worker).unwrap();
        assert!(matches!(
            manager.try_recv_bytes(),
            Err(ipc::RecvError::Empty)
        ));
        assert!(answers.arm(&claims), "an answer waits: no sleeping");
        assert_eq!(answers.take().unwrap().unwrap().bytes(), b"one");
        assert!(!answers.arm(&claims));
        // Asleep: the first answer rings, the second does not.
        answers.send(b"two", &claims, &worker).unwrap();
        answers.send(b"three", &claims, &worker).unwrap();
        assert_eq!(manager.try_recv_bytes().unwrap(), b"");
        assert!(matches!(
            manager.try_recv_bytes(),
            Err(ipc::RecvError::Empty)
        ));
        Answers::disarm(&claims);
        assert_eq!(answers.take().unwrap().unwrap().bytes(), b"two");
        assert_eq!(answers.take().unwrap().unwrap().bytes(), b"three");
        assert!(answers.take().unwrap().is_none());
    }

    #[test]
    fn large_answers_go_by_the_socket() {
        let (manager, worker) = Pipe::duplex().unwrap();
        let claims = Claims::new().unwrap();
        let answers = Answers::new().unwrap();
        let big = vec![7u8; MAX_POSTED + 1];
        answers.send(&big, &claims, &worker).unwrap();
        assert!(!answers.waiting());
        assert_eq!(manager.try_recv_bytes().unwrap(), big);
        // A full ring: the socket too.
        let small = vec![1u8; MAX_POSTED];
        let mut by_socket = 0;
        for _ in 0..2 * RING_BYTES / MAX_POSTED {
            answers.send(&small, &claims, &worker).unwrap();
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
        let answers = Answers::new().unwrap();
        let (c2, a2) = (claims.clone(), answers.clone());
        const N: usize = 5_000;
        let t = std::thread::spawn(move || {
            for i in 0..N {
                a2.send(&(i as u64).to_le_bytes(), &c2, &worker).unwrap();
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
            if !answers.arm(&claims) {
                // Sleep: a bell (or an answer by the socket, the ring being
                // full) must come, or the deadline fails the test.
                if let Ok(b) = manager.recv_bytes_timeout(std::time::Duration::from_secs(60)) {
                    take(&b, &mut got);
                }
            }
            Answers::disarm(&claims);
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
