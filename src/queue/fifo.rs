//! The engine of [`Queue`](super::Queue): a bounded queue of up to
//! [`RING_LIMIT`] items runs on the lock-free ring of `sync::ring` (one
//! compare-and-swap per `put` and per `get`; the ring's words carry the
//! shutdown, the sleepers and the count for `join`); an unbounded one, or
//! one bounded higher, on the generic [`Core`].

use std::time::Instant;

use super::core::Core;
use super::error::{GetError, PutError, TaskDoneError};
use super::store::{Fifo, RING_LIMIT};
use crate::sync::ring::{Nothing, Refused, Ring};

// One per queue, behind its `Arc`: the variants' sizes do not matter, and a
// box would add a pointer to follow on every `put` and `get`.
#[allow(clippy::large_enum_variant)]
pub(crate) enum FifoCore<T> {
    Ring(Ring<T>),
    Other(Core<T, Fifo<T>>),
}

fn put_error<T>((item, why): (T, Refused)) -> PutError<T> {
    match why {
        Refused::Full => PutError::Full(item),
        Refused::ShutDown => PutError::ShutDown(item),
    }
}

fn get_error(nothing: Nothing) -> GetError {
    match nothing {
        Nothing::Empty => GetError::Empty,
        Nothing::ShutDown => GetError::ShutDown,
    }
}

impl<T: Send> FifoCore<T> {
    /// `maxsize` 0 means unbounded, as in Python.
    pub(crate) fn new(maxsize: usize) -> Self {
        if (1..=RING_LIMIT).contains(&maxsize) {
            FifoCore::Ring(Ring::new(maxsize))
        } else {
            FifoCore::Other(Core::new(maxsize))
        }
    }

    pub(crate) fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        match self {
            FifoCore::Ring(r) => r.try_push(item).map_err(put_error),
            FifoCore::Other(c) => c.try_put(item),
        }
    }

    #[inline]
    pub(crate) fn put_until(&self, item: T, deadline: Option<Instant>) -> Result<(), PutError<T>> {
        match self {
            FifoCore::Ring(r) => r.push_until(item, deadline).map_err(put_error),
            FifoCore::Other(c) => c.put_until(item, deadline),
        }
    }

    pub(crate) fn try_get(&self) -> Result<T, GetError> {
        match self {
            FifoCore::Ring(r) => r.try_pop().map_err(get_error),
            FifoCore::Other(c) => c.try_get(),
        }
    }

    #[inline]
    pub(crate) fn get_until(&self, deadline: Option<Instant>) -> Result<T, GetError> {
        match self {
            FifoCore::Ring(r) => r.pop_until(deadline).map_err(get_error),
            FifoCore::Other(c) => c.get_until(deadline),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            FifoCore::Ring(r) => r.len(),
            FifoCore::Other(c) => c.len(),
        }
    }

    pub(crate) fn capacity(&self) -> Option<usize> {
        match self {
            FifoCore::Ring(r) => Some(r.capacity()),
            FifoCore::Other(c) => c.capacity(),
        }
    }

    pub(crate) fn unfinished_tasks(&self) -> usize {
        match self {
            FifoCore::Ring(r) => r.unfinished(),
            FifoCore::Other(c) => c.unfinished_tasks(),
        }
    }

    pub(crate) fn task_done(&self) -> Result<(), TaskDoneError> {
        match self {
            FifoCore::Ring(r) => r.task_done().then_some(()).ok_or(TaskDoneError),
            FifoCore::Other(c) => c.task_done(),
        }
    }

    pub(crate) fn join_until(&self, deadline: Option<Instant>) -> bool {
        match self {
            FifoCore::Ring(r) => r.join_until(deadline),
            FifoCore::Other(c) => c.join_until(deadline),
        }
    }

    pub(crate) fn shutdown(&self, immediate: bool) {
        match self {
            FifoCore::Ring(r) => {
                r.shut();
                if immediate {
                    // Puts that claimed a slot before the shutdown finish
                    // (a get waits for them): the drain leaves it empty.
                    while r.try_pop().is_ok() {
                        r.task_done();
                    }
                }
            }
            FifoCore::Other(c) => c.shutdown(immediate),
        }
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        match self {
            FifoCore::Ring(r) => r.is_shut(),
            FifoCore::Other(c) => c.is_shutdown(),
        }
    }
}
