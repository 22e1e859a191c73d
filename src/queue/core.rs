//! What every thread queue shares: blocking with timeouts, the count of
//! unfinished tasks for `join`, and shutdown. The order lives in the
//! [`Store`].

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use super::error::{GetError, PutError, TaskDoneError};
use super::store::Store;
use super::waitlist::Waitlist;
use crate::blocking::deadline_after;

const OPEN: u8 = 0;
const SHUT_DOWN: u8 = 1;

pub(crate) struct Core<T, S> {
    store: S,
    state: AtomicU8,
    /// Items put and not yet marked done with `task_done`: written by
    /// producers on every `put`, so kept off the line consumers read.
    unfinished: CachePadded<AtomicUsize>,
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
            state: AtomicU8::new(OPEN),
            unfinished: CachePadded::new(AtomicUsize::new(0)),
            getters: Waitlist::new(),
            putters: Waitlist::new(),
            joiners: Waitlist::new(),
            _t: PhantomData,
        }
    }

    fn is_shut_down(&self) -> bool {
        self.state.load(Ordering::Acquire) != OPEN
    }

    /// One attempt; on failure the item comes back with why.
    pub(crate) fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_inner(item, None, true)
    }

    pub(crate) fn put_until(&self, item: T, deadline: Option<Instant>) -> Result<(), PutError<T>> {
        self.put_inner(item, deadline, false)
    }

    /// Puts `item`, waiting until `deadline` for room. The item counts as
    /// unfinished (for `join`) from the start of the call, so that a `get`
    /// and `task_done` racing with the end of the `put` cannot count it done
    /// before it was counted; a `put` that fails takes it back.
    fn put_inner(&self, item: T, deadline: Option<Instant>, once: bool) -> Result<(), PutError<T>> {
        if self.is_shut_down() {
            return Err(PutError::ShutDown(item));
        }
        self.unfinished.fetch_add(1, Ordering::Relaxed);
        let mut item = Some(item);
        let mut attempt = || {
            let it = item.take().expect("an item to put");
            if self.is_shut_down() {
                return Some(Err(PutError::ShutDown(it)));
            }
            match self.store.try_push(it) {
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
            failed => {
                self.task_done_silently();
                Err(match failed {
                    Some(Err(e)) => e,
                    _ => PutError::Full(item.expect("not put")),
                })
            }
        }
    }

    pub(crate) fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.put_until(item, Some(deadline_after(timeout)))
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

    pub(crate) fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.get_until(Some(deadline_after(timeout)))
    }

    pub(crate) fn len(&self) -> usize {
        self.store.len()
    }

    pub(crate) fn capacity(&self) -> Option<usize> {
        self.store.capacity()
    }

    pub(crate) fn is_full(&self) -> bool {
        self.capacity().is_some_and(|c| self.len() >= c)
    }

    pub(crate) fn unfinished_tasks(&self) -> usize {
        self.unfinished.load(Ordering::Acquire)
    }

    pub(crate) fn task_done(&self) -> Result<(), TaskDoneError> {
        let before = self
            .unfinished
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .map_err(|_| TaskDoneError)?;
        if before == 1 {
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
        self.state.store(SHUT_DOWN, Ordering::Release);
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
