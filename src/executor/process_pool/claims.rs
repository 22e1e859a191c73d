//! `Claims`: who runs each task handed to a worker process ahead of time.
//!
//! A dispatcher sends a worker several tasks at once, numbered 1, 2, 3 …
//! for that worker. Before running task `n` the worker *claims* it; until
//! then the dispatcher may *revoke* it (to cancel it, or to give it to an
//! idle worker). Both are one compare-and-swap on the same word, so exactly
//! one of them wins, whatever the timing — and when the worker dies, the
//! words say which task it was running (that one failed) and which it never
//! started (those run elsewhere).
//!
//! Stopping a running task is the same dance: once it has answered, the
//! worker marks the task done before it claims the next; the dispatcher
//! kills it only if it first marked the task *stopping*. A worker that
//! finds its task stopping starts nothing more, so a kill meant for one
//! task never hits the next.
//!
//! The board is a ring of `WINDOW` words in shared memory; task `n` uses
//! word `n % WINDOW` and writes `n` into it with its state, so a word left
//! by an older task never passes for a newer one. The dispatcher keeps at
//! most `WINDOW` unrevoked tasks outstanding.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::os::shm;
use crate::sync::words::{WORDS, Words};

/// Words on the board: the most tasks a worker may be handed ahead.
pub(crate) const WINDOW: usize = 64;
/// The word after the ring: the last task number the worker has read.
const RECEIVED: usize = WINDOW;
/// The word after that: the manager's doorbell, for the worker's answers
/// ([`BellRing`](super::bell_ring::BellRing)).
const MANAGER_BELL: usize = WINDOW + 1;
/// Then the worker's doorbell, for its jobs.
const WORKER_BELL: usize = WINDOW + 2;
const _: () = assert!(WORKER_BELL < WORDS);
/// The 32-bit word on which a worker waits for the manager's reply to a
/// value it offered to be read from its memory: 0 while it waits.
const READ_REPLY: usize = 0;
/// The manager's replies.
const READ_TAKEN: u32 = 1;
const READ_REFUSED: u32 = 2;

const OFFERED: u64 = 1;
const RUNNING: u64 = 2;
const REVOKED: u64 = 3;
/// Ran, and the worker has sent its answer.
const DONE: u64 = 4;
/// The dispatcher is killing the worker for this task: the worker must
/// not start another.
const STOPPING: u64 = 5;

fn word(n: u64, state: u64) -> u64 {
    (n << 3) | state
}

/// One worker's board; the dispatcher and the worker each hold a handle.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub(crate) struct Claims {
    words: Words,
}

impl fmt::Debug for Claims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claims").finish_non_exhaustive()
    }
}

impl Claims {
    /// A new, empty board.
    pub(crate) fn new() -> io::Result<Claims> {
        // All zero is "nothing offered, nothing received".
        Ok(Claims {
            words: Words::new()?,
        })
    }

    fn slot(&self, n: u64) -> &AtomicU64 {
        self.words.get((n % WINDOW as u64) as usize)
    }

    /// Dispatcher: task `n` is being handed over (before it is sent).
    pub(crate) fn offer(&self, n: u64) {
        self.slot(n).store(word(n, OFFERED), Ordering::Release);
    }

    /// Worker: takes task `n` before running it; false if it was revoked.
    pub(crate) fn claim(&self, n: u64) -> bool {
        self.slot(n)
            .compare_exchange(
                word(n, OFFERED),
                word(n, RUNNING),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    fn swap(&self, n: u64, from: u64, to: u64) -> bool {
        self.slot(n)
            .compare_exchange(
                word(n, from),
                word(n, to),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// Dispatcher: takes task `n` back; false if the worker claimed it.
    pub(crate) fn revoke(&self, n: u64) -> bool {
        self.swap(n, OFFERED, REVOKED)
    }

    /// Worker: task `n` ran and is answered; false if the dispatcher is
    /// killing this worker for it (then start nothing more).
    pub(crate) fn finish(&self, n: u64) -> bool {
        self.swap(n, RUNNING, DONE)
    }

    /// Dispatcher: about to kill the worker for task `n`; false if the task
    /// is not running (answered already, or never claimed).
    pub(crate) fn stop(&self, n: u64) -> bool {
        self.swap(n, RUNNING, STOPPING)
    }

    /// Worker: it has read every task up to number `n`. (Never backwards:
    /// should a batch by the socket overtake one in the ring, the later
    /// number stands.)
    pub(crate) fn received(&self, n: u64) {
        self.words.get(RECEIVED).fetch_max(n, Ordering::AcqRel);
    }

    /// Dispatcher: whether the worker has read every task up to `n` (so
    /// nothing it was sent waits in the pipe).
    pub(crate) fn has_received(&self, n: u64) -> bool {
        self.words.get(RECEIVED).load(Ordering::Acquire) >= n
    }

    /// The word the manager arms before it sleeps and a worker takes to
    /// ring it after posting an answer
    /// ([`BellRing`](super::bell_ring::BellRing)).
    pub(crate) fn manager_bell(&self) -> &AtomicU64 {
        self.words.get(MANAGER_BELL)
    }

    /// The word the worker arms before it sleeps and the manager takes to
    /// ring it after posting jobs.
    pub(crate) fn worker_bell(&self) -> &AtomicU64 {
        self.words.get(WORKER_BELL)
    }

    fn read_reply(&self) -> &AtomicU32 {
        self.words.get32(READ_REPLY)
    }

    /// Worker: about to offer a value to be read from its memory (before
    /// it says so): no reply yet.
    pub(crate) fn offer_read(&self) {
        self.read_reply().store(0, Ordering::Relaxed);
    }

    /// Manager: the value offered was read (`true`) or cannot be (`false`);
    /// wakes the worker.
    pub(crate) fn reply_read(&self, taken: bool) {
        let reply = if taken { READ_TAKEN } else { READ_REFUSED };
        self.read_reply().store(reply, Ordering::Release);
        shm::wake(self.read_reply(), 1);
    }

    /// Worker: waits for the reply to its offer — whether the value was
    /// read — looking every `every` whether `gone` (the pool gone: `None`).
    pub(crate) fn wait_read(&self, every: Duration, gone: impl Fn() -> bool) -> Option<bool> {
        loop {
            match self.read_reply().load(Ordering::Acquire) {
                READ_TAKEN => return Some(true),
                READ_REFUSED => return Some(false),
                _ if gone() => return None,
                now => shm::wait(self.read_reply(), now, Some(Instant::now() + every)),
            }
        }
    }

    /// Whether the worker has claimed task `n` (it is running, or ran).
    pub(crate) fn claimed(&self, n: u64) -> bool {
        let w = self.slot(n).load(Ordering::Acquire);
        [RUNNING, DONE, STOPPING].iter().any(|s| w == word(n, *s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_and_revoke_exclude_each_other() {
        let board = Claims::new().unwrap();
        let worker = board.clone();
        board.offer(1);
        board.offer(2);
        assert!(worker.claim(1));
        assert!(!board.revoke(1));
        assert!(board.claimed(1));
        assert!(board.revoke(2));
        assert!(!worker.claim(2));
        assert!(!board.claimed(2));
        // A word reused by task 2 + WINDOW: the old number is refused.
        board.offer(2 + WINDOW as u64);
        assert!(!worker.claim(2));
        assert!(worker.claim(2 + WINDOW as u64));
        // Stopping and finishing a running task exclude each other too.
        board.offer(3);
        board.offer(4);
        assert!(worker.claim(3) && board.stop(3));
        assert!(!worker.finish(3), "the worker must start nothing more");
        assert!(board.claimed(3));
        assert!(worker.claim(4) && worker.finish(4));
        assert!(!board.stop(4), "a finished task is not stopped");
        assert!(board.claimed(4));
        assert!(!board.has_received(3));
        worker.received(3);
        assert!(board.has_received(3) && board.has_received(2));
    }

    #[test]
    fn a_stop_racing_a_finish_has_one_winner() {
        let board = Claims::new().unwrap();
        for n in 1..=2000u64 {
            board.offer(n);
            assert!(board.claim(n));
            let worker = board.clone();
            let t = std::thread::spawn(move || worker.finish(n));
            let stopped = board.stop(n);
            let finished = t.join().unwrap();
            assert!(
                stopped != finished,
                "task {n}: stopped {stopped}, finished {finished}"
            );
        }
    }

    #[test]
    fn a_race_has_one_winner() {
        let board = Claims::new().unwrap();
        for n in 1..=2000u64 {
            board.offer(n);
            let worker = board.clone();
            let t = std::thread::spawn(move || worker.claim(n));
            let revoked = board.revoke(n);
            let claimed = t.join().unwrap();
            assert!(
                revoked != claimed,
                "task {n}: revoked {revoked}, claimed {claimed}"
            );
            assert_eq!(board.claimed(n), claimed);
        }
    }
}
