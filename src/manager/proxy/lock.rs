//! A lock on the server.

use std::time::Duration;

use super::proxy;
use crate::blocking::Wait;
use crate::manager::ManagerError;
use crate::manager::link::{Handle, done, flag, wait_micros};
use crate::manager::protocol::Op;

/// A lock held by a manager's server, for processes on any machine that
/// reaches it; Python's `Manager().Lock()`.
///
/// Like Python's `threading.Lock` it is not reentrant and has no owner for
/// [`release`](Lock::release): any client may release it. Unlike Python's,
/// a client that dies holding it does not leave it locked: the server
/// releases it when the client's connection ends.
///
/// ```
/// use std::time::Duration;
/// # let manager = multiproc::manager::Manager::start()?;
/// let lock = manager.lock()?;
/// {
///     let _guard = lock.lock()?;
///     assert!(!lock.try_acquire()?);
/// } // released here
/// assert!(lock.acquire_timeout(Duration::from_secs(10))?);
/// lock.release()?;
/// assert!(matches!(lock.release(), Err(multiproc::manager::ManagerError::NotLocked)));
/// # Ok::<(), multiproc::manager::ManagerError>(())
/// ```
pub struct Lock {
    handle: Handle,
}

proxy!(Lock);

impl Lock {
    fn acquire_waiting(&self, wait: Wait) -> Result<bool, ManagerError> {
        flag(self.handle.call(Op::Acquire {
            wait: wait_micros(wait),
        })?)
    }

    /// Takes the lock, waiting as long as it takes.
    pub fn acquire(&self) -> Result<(), ManagerError> {
        self.acquire_waiting(Wait::Forever).map(drop)
    }

    /// Takes the lock if it is free now; `false` if not.
    pub fn try_acquire(&self) -> Result<bool, ManagerError> {
        self.acquire_waiting(Wait::No)
    }

    /// Takes the lock, waiting at most `timeout`; `false` if it did not
    /// come free in time.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
        self.acquire_waiting(Wait::timeout(timeout))
    }

    /// Frees the lock ([`ManagerError::NotLocked`] if nobody holds it).
    pub fn release(&self) -> Result<(), ManagerError> {
        done(self.handle.call(Op::Release)?)
    }

    /// Whether somebody holds the lock now.
    pub fn is_locked(&self) -> Result<bool, ManagerError> {
        flag(self.handle.call(Op::Locked)?)
    }

    /// Takes the lock and returns a guard that releases it when dropped
    /// (Python's `with lock:`).
    pub fn lock(&self) -> Result<LockGuard<'_>, ManagerError> {
        self.acquire()?;
        Ok(LockGuard { lock: self })
    }
}

/// Holds a manager [`Lock`]; releases it when dropped. A release that
/// fails there (the server is gone: then nobody holds it any more) is
/// ignored; call [`LockGuard::release`] to see it.
#[must_use = "the lock is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct LockGuard<'a> {
    lock: &'a Lock,
}

impl LockGuard<'_> {
    /// Releases the lock now, saying whether that worked.
    pub fn release(self) -> Result<(), ManagerError> {
        let lock = self.lock;
        std::mem::forget(self);
        lock.release()
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        let _ = self.lock.release();
    }
}
