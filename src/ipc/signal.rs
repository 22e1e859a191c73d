//! How one side of a ring waits for the other: announce, fence, re-check,
//! sleep on a shared futex; the other side commits, fences, and wakes only
//! if someone announced. Model-checked with loom (`loom_tests` below).

#[cfg(loom)]
use loom::sync::atomic::{AtomicU32, Ordering, fence};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicU32, Ordering, fence};
use std::time::Instant;

/// How long a side goes on spinning (checking for data or room), after a
/// first round of 64 looks, before it sleeps (see `Signal::spin`). A
/// sleeper costs the other side a `futex` wake — a syscall — per message;
/// a peer in the middle of a `put` or `get` is usually done well within
/// this.
///
/// Between looks the side hands the processor over (`sched_yield`) rather
/// than spinning on it: the other side — or the next of many producers —
/// may be waiting for this very processor. Measured on the 2-core machine
/// against a busy spin (`spin_loop`), 3 alternating runs, medians:
/// `queue_small` 6.6 → 9.4 M msg/s (serde 5.6 → 8.1 M), `queue_fan_in` with
/// 1 / 4 / 16 / 32 producers 6.6 / 2.0 / 1.37 / 1.3 → 8.7 / 2.8 / 2.7 /
/// 2.1 M msg/s, `queue_large` unchanged (13.7 → 13.6 GB/s), and a
/// manager's calls through a mailbox 19 k → 620 k a second (a busy spin
/// there burns the time slice the other side needs).
#[cfg(not(loom))]
const SPIN: std::time::Duration = std::time::Duration::from_micros(50);

/// How long [`Signal::wait`] sleeps at most before it looks again: the
/// caller may want to look for dead peers.
#[cfg(not(loom))]
const NAP: std::time::Duration = crate::sync::raw::DEATH_CHECK;
#[cfg(loom)]
const NAP: std::time::Duration = std::time::Duration::ZERO;

/// One side's wake-up words, in shared memory.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct Signal {
    seq: AtomicU32,
    waiting: AtomicU32,
    /// loom has no futex: a mutex and a condition variable play its part.
    #[cfg(loom)]
    futex: (loom::sync::Mutex<()>, loom::sync::Condvar),
}

impl Signal {
    /// Waits until `ready()` or `deadline`. Also returns after
    /// [`DEATH_CHECK`](crate::sync::raw::DEATH_CHECK) asleep, so that the
    /// caller can look for dead peers. `true` when ready.
    pub(crate) fn wait(&self, deadline: Option<Instant>, ready: impl FnMut() -> bool) -> bool {
        self.wait_napping(NAP, deadline, ready)
    }

    /// [`wait`](Self::wait), returning after `nap` asleep instead of
    /// `DEATH_CHECK`.
    pub(crate) fn wait_napping(
        &self,
        nap: std::time::Duration,
        deadline: Option<Instant>,
        mut ready: impl FnMut() -> bool,
    ) -> bool {
        self.wait_looking(nap, deadline, |_| ready())
    }

    /// [`wait`](Self::wait), but while it spins it waits for `plenty()`, a
    /// condition stronger than `ready()`; only before it sleeps, and after,
    /// does `ready()` suffice.
    ///
    /// A producer that finds its queue full waits for room for many
    /// messages, not one: otherwise a producer faster than its consumer
    /// takes each slot the moment it is freed, reading the consumer's head
    /// (a cache line the consumer writes) once per message and waking for
    /// every one. The extra wait is bounded by the spin (two rounds of 64
    /// looks and at least 50 µs), after which any room will do. Measured on the
    /// 2-core machine: see the queue ring's `plenty`.
    pub(crate) fn wait_for_plenty(
        &self,
        deadline: Option<Instant>,
        mut plenty: impl FnMut() -> bool,
        mut ready: impl FnMut() -> bool,
    ) -> bool {
        self.wait_looking(
            NAP,
            deadline,
            |spinning| {
                if spinning { plenty() } else { ready() }
            },
        )
    }

    /// Spins, then announces itself and sleeps, until `look(spinning)`. A
    /// deadline already past (a `try_` call) gets one look and no wait.
    fn wait_looking(
        &self,
        nap: std::time::Duration,
        deadline: Option<Instant>,
        mut look: impl FnMut(bool) -> bool,
    ) -> bool {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            // A `try_get` on an empty queue took 88 µs here: 64 yields
            // before the spin looked at the clock.
            return look(false);
        }
        if self.spin(deadline, &mut || look(true)) {
            return true;
        }
        let seq = self.seq.load(Ordering::SeqCst);
        self.waiting.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let ok = look(false);
        if !ok {
            self.sleep(seq, nap, deadline);
        }
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        ok || look(false)
    }

    #[cfg(not(loom))]
    fn spin(&self, deadline: Option<Instant>, ready: &mut impl FnMut() -> bool) -> bool {
        // Rounds of 64 looks, until SPIN has passed since the first round
        // ended: at least two rounds (70–180 µs here, as fast as the
        // processor is handed back). Ending after the first
        // round once SPIN had passed since the start slept more often:
        // `queue_large` 16.8 → 13.1 GB/s, `queue_small_batch` 63 → 54 M
        // (6 alternating runs).
        let mut start = None;
        loop {
            for _ in 0..64 {
                if ready() {
                    return true;
                }
                // A timeout is kept to the look, not to the round: a
                // `get_timeout` of 20 µs took a round's ~90 µs, now 20.4.
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return false;
                }
                std::thread::yield_now();
            }
            let now = Instant::now();
            if now - *start.get_or_insert(now) >= SPIN {
                return false;
            }
        }
    }

    #[cfg(loom)]
    fn spin(&self, _: Option<Instant>, ready: &mut impl FnMut() -> bool) -> bool {
        ready()
    }

    #[cfg(not(loom))]
    fn sleep(&self, seq: u32, nap: std::time::Duration, deadline: Option<Instant>) {
        let nap = Instant::now() + nap;
        crate::os::shm::wait(&self.seq, seq, Some(deadline.map_or(nap, |d| d.min(nap))));
    }

    /// A futex wait: sleeps unless `seq` moved, until a wake.
    #[cfg(loom)]
    fn sleep(&self, seq: u32, _: std::time::Duration, _: Option<Instant>) {
        let guard = self.futex.0.lock().unwrap();
        if self.seq.load(Ordering::SeqCst) == seq {
            drop(self.futex.1.wait(guard).unwrap());
        }
    }

    /// After a commit: wakes the other side if it sleeps.
    pub(crate) fn notify(&self) {
        fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::Relaxed) != 0 {
            self.wake_all();
        }
    }

    /// [`notify`](Self::notify) after a commit that a lock's release — a
    /// locked read-modify-write — has followed: on x86-64 that instruction
    /// is a full barrier already (the commit is visible before the look at
    /// `waiting`, as the fence would make it), so only the compiler is kept
    /// from moving the look ahead of it; elsewhere, and under loom (which
    /// models the language's rules, not the processor's), the fence stays.
    /// Measured on the 2-core machine: see the queue ring's `publish`.
    pub(crate) fn notify_after_unlock(&self) {
        #[cfg(all(target_arch = "x86_64", not(loom)))]
        std::sync::atomic::compiler_fence(Ordering::SeqCst);
        #[cfg(not(all(target_arch = "x86_64", not(loom))))]
        fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::Relaxed) != 0 {
            self.wake_all();
        }
    }

    /// Wakes every sleeper, whether or not it announced itself.
    pub(crate) fn wake_all(&self) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        #[cfg(not(loom))]
        crate::os::shm::wake(&self.seq, u32::MAX >> 1);
        #[cfg(loom)]
        {
            let _guard = self.futex.0.lock().unwrap();
            self.futex.1.notify_all();
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! The ring's two sides reduced to what the wake-up protocol sees: a
    //! slot, a committed count per side, and the two signals. A lost
    //! wake-up leaves a side asleep forever, which loom reports.
    use super::Signal;
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicU32, Ordering};

    #[derive(Default)]
    struct Ring {
        slot: UnsafeCell<u32>,
        /// Messages put (producer commits), taken (consumer commits).
        tail: AtomicU32,
        head: AtomicU32,
        data: Signal,
        space: Signal,
    }

    // SAFETY (model): the slot is written only while `tail == head` and
    // read only while `tail > head`, which the Release/Acquire commits order.
    unsafe impl Sync for Ring {}
    // SAFETY (model): as above; the ring moves between threads inside an Arc.
    unsafe impl Send for Ring {}

    fn put(r: &Ring, v: u32) {
        let tail = r.tail.load(Ordering::Relaxed);
        while !r
            .space
            .wait(None, || r.head.load(Ordering::Acquire) == tail)
        {}
        // SAFETY: the consumer reads the slot only after `tail` moves past
        // it, and released it (head == tail, Acquire) before we write.
        r.slot.with_mut(|p| unsafe { *p = v });
        r.tail.store(tail + 1, Ordering::Release);
        r.data.notify();
    }

    fn get(r: &Ring) -> u32 {
        let head = r.head.load(Ordering::Relaxed);
        while !r.data.wait(None, || r.tail.load(Ordering::Acquire) > head) {}
        // SAFETY: the producer wrote the slot before its Release of `tail`,
        // which we Acquired; it writes again only after our `head` moves.
        let v = r.slot.with(|p| unsafe { *p });
        r.head.store(head + 1, Ordering::Release);
        r.space.notify();
        v
    }

    /// Two messages through one slot: each side sleeps and wakes the other.
    /// Preemptions bounded to 3 (loom's advice for bigger models) keeps it
    /// to seconds.
    #[test]
    fn loom_ring_one_slot_two_messages() {
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(3);
        model.check(|| {
            let r = Arc::new(Ring::default());
            let p = {
                let r = r.clone();
                loom::thread::spawn(move || {
                    put(&r, 1);
                    put(&r, 2);
                })
            };
            assert_eq!(get(&r), 1);
            assert_eq!(get(&r), 2);
            p.join().unwrap();
        });
    }

    #[test]
    fn loom_close_wakes_a_sleeper() {
        loom::model(|| {
            let r = Arc::new(Ring::default());
            let closed = Arc::new(AtomicU32::new(0));
            let c = {
                let (r, closed) = (r.clone(), closed.clone());
                loom::thread::spawn(move || {
                    while !r.data.wait(None, || closed.load(Ordering::SeqCst) != 0) {}
                })
            };
            closed.store(1, Ordering::SeqCst);
            r.data.wake_all();
            c.join().unwrap();
        });
    }
}
