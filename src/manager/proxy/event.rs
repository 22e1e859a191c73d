//! An event on the server.

use std::time::Duration;

use super::proxy;
use crate::blocking::Wait;
use crate::manager::ManagerError;
use crate::manager::link::{Handle, done, flag, wait_micros};
use crate::manager::protocol::Op;

/// A flag that processes on any machine can wait for, held by a manager's
/// server; Python's `Manager().Event()`.
///
/// ```
/// use std::time::Duration;
/// # let manager = multiproc::manager::Manager::start()?;
/// let ready = manager.event()?;
/// assert!(!ready.wait_timeout(Duration::from_millis(10))?);
/// ready.set()?;
/// assert!(ready.is_set()?);
/// assert!(ready.wait_timeout(Duration::from_secs(10))?);
/// # Ok::<(), multiproc::manager::ManagerError>(())
/// ```
pub struct Event {
    handle: Handle,
}

proxy!(Event);

impl Event {
    /// Sets the flag and wakes every waiter.
    pub fn set(&self) -> Result<(), ManagerError> {
        done(self.handle.call(Op::Set)?)
    }

    /// Clears the flag.
    pub fn clear(&self) -> Result<(), ManagerError> {
        done(self.handle.call(Op::Unset)?)
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> Result<bool, ManagerError> {
        flag(self.handle.call(Op::IsSet)?)
    }

    /// Waits until the flag is set.
    pub fn wait(&self) -> Result<(), ManagerError> {
        flag(self.handle.call(Op::WaitSet {
            wait: wait_micros(Wait::Forever),
        })?)
        .map(drop)
    }

    /// Waits at most `timeout` for the flag; `true` if it is set.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
        flag(self.handle.call(Op::WaitSet {
            wait: wait_micros(Wait::timeout(timeout)),
        })?)
    }
}
