//! [`Barrier`]: threads wait for each other, with timeouts, `abort` and
//! `reset`.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::blocking::{deadline_after, lock, wait_while};
use crate::panic::{self, Report};

pub use crate::sync::BarrierError;

/// How one round of the barrier ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Round {
    Filling,
    Passed,
    Broken,
}

struct State {
    arrived: usize,
    broken: bool,
    /// The round that arriving threads join; replaced when it ends.
    round: Arc<Mutex<Round>>,
}

/// A point `parties` threads must all reach before any goes on — Python's
/// `threading.Barrier`. Unlike `std::sync::Barrier` it has timeouts, can be
/// broken with [`abort`](Self::abort) and rebuilt with
/// [`reset`](Self::reset), and runs an optional action once per round.
///
/// ```
/// use std::sync::Arc;
/// use multiproc::threading::Barrier;
///
/// let barrier = Arc::new(Barrier::new(3));
/// let threads: Vec<_> = (0..3).map(|_| {
///     let b = barrier.clone();
///     std::thread::spawn(move || b.wait().unwrap())
/// }).collect();
/// let mut indices: Vec<usize> = threads.into_iter().map(|t| t.join().unwrap()).collect();
/// indices.sort();
/// assert_eq!(indices, [0, 1, 2]); // each thread its own arrival index
/// ```
///
/// # Panic handling
///
/// If the action panics, the barrier is broken: the thread that ran it and
/// every waiter get [`BarrierError::Broken`].
pub struct Barrier {
    parties: usize,
    action: Option<Box<dyn Fn() + Send + Sync>>,
    state: Mutex<State>,
    cond: Condvar,
}

impl Barrier {
    /// A barrier for `parties` threads.
    ///
    /// # Panics
    ///
    /// If `parties` is 0 (Python raises `ValueError`; the process-shared
    /// [`sync::Barrier::new`](crate::sync::Barrier::new) returns
    /// `InvalidInput`, its constructor returning `io::Result` already).
    pub fn new(parties: usize) -> Barrier {
        assert!(parties > 0, "a barrier needs at least one party, not 0");
        Barrier {
            parties,
            action: None,
            state: Mutex::new(State {
                arrived: 0,
                broken: false,
                round: Arc::new(Mutex::new(Round::Filling)),
            }),
            cond: Condvar::new(),
        }
    }

    /// A barrier whose `action` runs once per round, in the last thread to
    /// arrive, before any thread is let through.
    pub fn with_action(parties: usize, action: impl Fn() + Send + Sync + 'static) -> Barrier {
        Barrier {
            action: Some(Box::new(action)),
            ..Barrier::new(parties)
        }
    }

    /// Waits for the other parties; returns this thread's arrival index
    /// (0 for the first, `parties - 1` for the last).
    pub fn wait(&self) -> Result<usize, BarrierError> {
        self.wait_until(None)
    }

    /// [`wait`](Self::wait) for at most `timeout`. When it passes, this
    /// thread gets [`BarrierError::Timeout`] and the barrier breaks.
    ///
    /// ```
    /// use std::time::Duration;
    /// use multiproc::threading::{Barrier, BarrierError};
    ///
    /// let b = Barrier::new(2);
    /// assert_eq!(b.wait_timeout(Duration::from_millis(10)), Err(BarrierError::Timeout));
    /// assert!(b.is_broken());
    /// assert_eq!(b.wait(), Err(BarrierError::Broken));
    /// b.reset();
    /// assert!(!b.is_broken());
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, BarrierError> {
        self.wait_until(Some(deadline_after(timeout)))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<usize, BarrierError> {
        let mut st = lock(&self.state);
        if st.broken {
            return Err(BarrierError::Broken);
        }
        let index = st.arrived;
        st.arrived += 1;
        let round = st.round.clone();
        if st.arrived == self.parties {
            let ok = match &self.action {
                Some(action) => panic::capture(Report::Print, action).is_ok(),
                None => true,
            };
            if !ok {
                self.break_locked(&mut st);
                return Err(BarrierError::Broken);
            }
            self.end_round(&mut st, Round::Passed);
            return Ok(index);
        }
        let filling = |_: &mut State| *lock(&round) == Round::Filling;
        let (mut st, timed_out) = wait_while(&self.cond, st, deadline, filling);
        if timed_out {
            self.break_locked(&mut st);
            return Err(BarrierError::Timeout);
        }
        match *lock(&round) {
            Round::Passed => Ok(index),
            _ => Err(BarrierError::Broken),
        }
    }

    /// Ends the current round with `how` and opens a fresh one.
    fn end_round(&self, st: &mut State, how: Round) {
        *lock(&st.round) = how;
        st.round = Arc::new(Mutex::new(Round::Filling));
        st.arrived = 0;
        self.cond.notify_all();
    }

    fn break_locked(&self, st: &mut State) {
        st.broken = true;
        self.end_round(st, Round::Broken);
    }

    /// Breaks the barrier: waiting and later `wait`s fail with
    /// [`BarrierError::Broken`] until [`reset`](Self::reset).
    pub fn abort(&self) {
        self.break_locked(&mut lock(&self.state));
    }

    /// Empties the barrier and mends it: threads waiting now get
    /// [`BarrierError::Broken`]; later ones start a fresh round.
    pub fn reset(&self) {
        let mut st = lock(&self.state);
        if st.arrived > 0 {
            self.end_round(&mut st, Round::Broken);
        }
        st.broken = false;
    }

    /// The number of threads needed to pass.
    pub fn parties(&self) -> usize {
        self.parties
    }

    /// The threads waiting now.
    pub fn n_waiting(&self) -> usize {
        lock(&self.state).arrived
    }

    /// True if the barrier is broken.
    pub fn is_broken(&self) -> bool {
        lock(&self.state).broken
    }
}

impl std::fmt::Debug for Barrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties)
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.is_broken())
            .finish()
    }
}
