//! A value on the server.

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::number::{Number, num};
use super::proxy;
use crate::manager::ManagerError;
use crate::manager::link::{Handle, dec, done, enc, unexpected, value};
use crate::manager::protocol::{Op, Reply, Update};

/// One value of any serde type held by a manager's server; Python's
/// `Manager().Value()`. For plain numbers shared on one machine,
/// [`shared::Value`](crate::shared::Value) in shared memory is far faster.
///
/// ```
/// # let manager = multiproc::manager::Manager::start()?;
/// let total = manager.value(&0i64)?;
/// assert_eq!(total.increment(5)?, 5);
/// assert_eq!(total.update(|v| v * 10)?, 50);
/// assert_eq!(total.swap(&1)?, 50);
/// assert_eq!(total.get()?, 1);
/// # Ok::<(), multiproc::manager::ManagerError>(())
/// ```
pub struct Value<T> {
    handle: Handle,
    _types: PhantomData<fn() -> T>,
}

proxy!(Value<T>);

impl<T: Serialize + DeserializeOwned> Value<T> {
    /// The value.
    pub fn get(&self) -> Result<T, ManagerError> {
        value(self.handle.call(Op::Load)?)
    }

    /// Replaces the value.
    pub fn set(&self, v: &T) -> Result<(), ManagerError> {
        done(self.handle.call(Op::Store(enc(v)?))?)
    }

    /// Replaces the value; returns the one it had.
    pub fn swap(&self, v: &T) -> Result<T, ManagerError> {
        value(self.handle.call(Op::Swap(enc(v)?))?)
    }

    /// Sets `new` only if the value is `expected`, in one step:
    /// `Ok(Ok(()))` if so, `Ok(Err(actual))` if not.
    pub fn compare_and_swap(&self, expected: &T, new: &T) -> Result<Result<(), T>, ManagerError> {
        let op = Op::Exchange {
            expected: enc(expected)?,
            new: enc(new)?,
        };
        match self.handle.call(op)? {
            Reply::Done => Ok(Ok(())),
            Reply::Conflict(Some(actual)) => Ok(Err(dec(&actual)?)),
            r => Err(unexpected(r)),
        }
    }

    /// Sets the value to `f(value)` atomically, whatever other clients do
    /// meanwhile; returns the new value. `f` runs here and may run more
    /// than once (see [`Dict::update`](super::Dict::update)).
    pub fn update(&self, mut f: impl FnMut(T) -> T) -> Result<T, ManagerError> {
        let mut seen_bytes = match self.handle.call(Op::Load)? {
            Reply::Value(v) => v,
            r => return Err(unexpected(r)),
        };
        loop {
            let new = f(dec(&seen_bytes)?);
            let op = Op::Exchange {
                expected: seen_bytes,
                new: enc(&new)?,
            };
            match self.handle.call(op)? {
                Reply::Done => return Ok(new),
                Reply::Conflict(Some(actual)) => seen_bytes = actual,
                r => return Err(unexpected(r)),
            }
        }
    }
}

impl<T: Number> Value<T> {
    /// Adds `by` on the server, in one step; returns the new value. An
    /// integer overflow is [`ManagerError::Update`], and nothing is stored.
    pub fn increment(&self, by: T) -> Result<T, ManagerError> {
        value(self.handle.call(Op::UpdateValue(Update::Add(num(by))))?)
    }
}
