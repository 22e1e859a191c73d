//! What every thread queue shares: blocking with timeouts, the count of
//! unfinished tasks for `join`, and shutdown. The order lives in the
//! [`Store`].

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use crossbeam_utils::CachePadded;

use super::error::{GetError, PutError, TaskDoneError};
use super::store::Store;
use super::waitlist::Waitlist;

/// `state`, bit 0: shut down.
const SHUT_DOWN: usize = 1;
/// `state`, bits 1 to 20: the puts between their shutdown check and the end
/// of their push (one each).
const PUTTING: usize = 1 << 1;
const PUTTING_MASK: usize = ((1 << 20) - 1) << 1;
/// `state`, bits 21 and up: items put and not yet marked done with
/// `task_done` (for `join`).
const UNFINISHED: usize = 1 << 21;

pub(crate) struct Core<T, S> {
    store: S,
    /// One word: shut down, the puts in progress, the unfinished items. A
    /// put's shutdown check, its count as in progress and as unfinished
    /// are one atomic add, so its check and push are one step against
    /// `shutdown` (which sets the bit, then waits for the puts that passed
    /// the check before it), at the cost of one more atomic per put.
    /// Written by producers on every `put`, so kept off the line consumers
    /// read.
    state: CachePadded<AtomicUsize>,
    /// Shut down, too, on a line of its own that nobody writes before
    /// `shutdown`: what consumers and a put's first look read, so that an
    /// empty queue's polling does not fight the producers for `state`.
    closed: CachePadded<AtomicBool>,
    getters: Waitlist,
    putters: Waitlist,
    joiners: Waitlist,
    _t: PhantomData<fn(T) -> T>,
}

impl<T, S: Store<T>> Core<T, S> {
    /// `maxsize` 0 means unbounded, as in Python.
    pub(crate) fn new(maxsize: usize) -> Self {
        Core {
            store: S::new((maxsize > 0).then_some(maxsize)),
            state: CachePadded::new(AtomicUsize::new(0)),
            closed: CachePadded::new(AtomicBool::new(false)),
            getters: Waitlist::new(),
            putters: Waitlist::new(),
            joiners: Waitlist::new(),
            _t: PhantomData,
        }
    }

    fn is_shut_down(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// One attempt; on failure the item comes back with why.
    pub(crate) fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_inner(item, None, true)
    }

    pub(crate) fn put_until(&self, item: T, deadline: Option<Instant>) -> Result<(), PutError<T>> {
        self.put_inner(item, deadline, false)
    }

    /// Puts `item`, waiting until `deadline` for room. Each attempt is one
    /// step against `shutdown` (counted in `state` from its check to its
    /// end), and counts the item unfinished (for `join`) before it pushes,
    /// so that a `get` and `task_done` racing with the end of the `put`
    /// cannot count it done before it was counted; an attempt that finds no
    /// room takes it back.
    fn put_inner(&self, item: T, deadline: Option<Instant>, once: bool) -> Result<(), PutError<T>> {
        if self.is_shut_down() {
            return Err(PutError::ShutDown(item));
        }
        let mut item = Some(item);
        let mut attempt = || {
            let it = item.take().expect("an item to put");
            if self.is_shut_down() {
                return Some(Err(PutError::ShutDown(it)));
            }
            if self.state.fetch_add(PUTTING + UNFINISHED, Ordering::SeqCst) & SHUT_DOWN != 0 {
                self.take_back(PUTTING + UNFINISHED);
                return Some(Err(PutError::ShutDown(it)));
            }
            let pushed = self.store.try_push(it);
            match &pushed {
                Ok(()) => {
                    self.state.fetch_sub(PUTTING, Ordering::Release);
                }
                Err(_) => self.take_back(PUTTING + UNFINISHED),
            }
            match pushed {
                Ok(()) => Some(Ok(())),
                Err(back) => {
                    item = Some(back);
                    None
                }
            }
        };
        let outcome = if once {
            attempt()
        } else {
            self.putters.wait_until(deadline, attempt)
        };
        match outcome {
            Some(Ok(())) => {
                self.getters.notify_one();
                Ok(())
            }
            failed => Err(match failed {
                Some(Err(e)) => e,
                _ => PutError::Full(item.expect("not put")),
            }),
        }
    }

    #[inline]
    pub(crate) fn try_get(&self) -> Result<T, GetError> {
        match self.store.try_pop() {
            Some(item) => {
                self.putters.notify_one();
                Ok(item)
            }
            None if self.is_shut_down() => {
                // An item put just before the shutdown is still to be had.
                self.store.try_pop().ok_or(GetError::ShutDown)
            }
            None => Err(GetError::Empty),
        }
    }

    pub(crate) fn get_until(&self, deadline: Option<Instant>) -> Result<T, GetError> {
        self.getters
            .wait_until(deadline, || match self.try_get() {
                Err(GetError::Empty) => None,
                other => Some(other),
            })
            .unwrap_or(Err(GetError::Empty))
    }

    pub(crate) fn len(&self) -> usize {
        self.store.len()
    }

    pub(crate) fn capacity(&self) -> Option<usize> {
        self.store.capacity()
    }

    pub(crate) fn unfinished_tasks(&self) -> usize {
        self.state.load(Ordering::Acquire) / UNFINISHED
    }

    /// An attempt that did not put gives back what it added.
    fn take_back(&self, added: usize) {
        let before = self.state.fetch_sub(added, Ordering::AcqRel);
        if before / UNFINISHED == 1 {
            self.joiners.notify_all();
        }
    }

    pub(crate) fn task_done(&self) -> Result<(), TaskDoneError> {
        let before = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                (w >= UNFINISHED).then(|| w - UNFINISHED)
            })
            .map_err(|_| TaskDoneError)?;
        if before / UNFINISHED == 1 {
            self.joiners.notify_all();
        }
        Ok(())
    }

    fn task_done_silently(&self) {
        let _ = self.task_done();
    }

    /// Waits until every item put has been marked done; false on timeout.
    pub(crate) fn join_until(&self, deadline: Option<Instant>) -> bool {
        self.joiners
            .wait_until(deadline, || (self.unfinished_tasks() == 0).then_some(()))
            .is_some()
    }

    pub(crate) fn shutdown(&self, immediate: bool) {
        self.closed.store(true, Ordering::SeqCst);
        self.state.fetch_or(SHUT_DOWN, Ordering::SeqCst);
        // A put that passed its check before the bit was set finishes its
        // push (one push, no waiting); after this none can succeed, so the
        // drain below leaves the queue empty for good.
        while self.state.load(Ordering::SeqCst) & PUTTING_MASK != 0 {
            std::thread::yield_now();
        }
        if immediate {
            while self.store.try_pop().is_some() {
                self.task_done_silently();
            }
            self.joiners.notify_all();
        }
        self.getters.notify_all();
        self.putters.notify_all();
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.is_shut_down()
    }
}
