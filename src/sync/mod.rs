//! Primitives that work between threads *and* processes, because they live
//! in shared memory: [`Mutex<T>`](Mutex) over plain data, [`Lock`],
//! [`RLock`], [`Condvar`] (Python's `Condition`), [`Semaphore`] (and
//! bounded), [`Event`], [`Barrier`]. Waiting is a shared futex: no syscall
//! while uncontended.
//!
//! Each is a handle: clone it for another thread, pass it to a child process
//! as its argument or inside a message, and the other side maps the same
//! memory (a `memfd`, so nothing is ever left in `/dev/shm`, even after
//! `kill -9` of everyone).
//!
//! A lock whose holder dies is not lost: the next locker gets it, told by a
//! [`Poisoned`] error whose cause is [`PoisonCause::OwnerDied`]. The module
//! `raw` explains how (owner identity = pid + start time, checked by
//! waiters every 5 ms) and why not the kernel's robust list.
//!
//! For threads alone, prefer `std::sync::Mutex` (or `parking_lot`): they
//! need no segment and no `Pod` bound.

mod barrier;
mod condvar;
mod event;
pub(crate) mod mutex;
pub(crate) mod raw;
pub(crate) mod region;
pub(crate) mod ring;
mod rlock;
mod semaphore;
pub(crate) mod words;

pub use barrier::{Barrier, BarrierError, MAX_PARTIES};
pub use condvar::Condvar;
pub use event::Event;
pub use mutex::{Lock, LockGuard, Mutex, MutexGuard, PoisonCause, Poisoned, TryLockError};
pub use rlock::{RLock, RLockGuard};
pub use semaphore::{OverRelease, Semaphore, SemaphoreGuard, TRACKED_HOLDERS};
