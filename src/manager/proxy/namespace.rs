//! A namespace on the server.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::number::{Number, num};
use super::proxy;
use crate::manager::ManagerError;
use crate::manager::link::{Handle, done, enc, flag, items, maybe, unexpected, value};
use crate::manager::protocol::{Op, Reply, Update};

/// Named fields of any types held by a manager's server; Python's
/// `Manager().Namespace()` (`ns.x = 1` is `ns.set("x", &1)`). A field is
/// read as the type it was written as; reading it as another type is an
/// error ([`ManagerError::Codec`]), not a wrong value… as far as the
/// encodings differ (an `i64` read as a `u64` is not caught).
///
/// ```
/// # let manager = multiproc::manager::Manager::start()?;
/// let settings = manager.namespace()?;
/// settings.set("workers", &4u32)?;
/// settings.set("name", &"batch")?;
/// assert_eq!(settings.get::<u32>("workers")?, Some(4));
/// assert_eq!(settings.increment("workers", 1u32)?, 5);
/// assert_eq!(settings.get::<String>("name")?.as_deref(), Some("batch"));
/// assert_eq!(settings.get::<u32>("missing")?, None);
/// # Ok::<(), multiproc::manager::ManagerError>(())
/// ```
pub struct Namespace {
    handle: Handle,
}

proxy!(Namespace);

impl Namespace {
    /// The field `name`, read as a `T`.
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, ManagerError> {
        maybe(self.handle.call(Op::Get(enc(name)?))?)
    }

    /// Sets the field `name`.
    pub fn set<T: Serialize + ?Sized>(&self, name: &str, value: &T) -> Result<(), ManagerError> {
        self.handle.call(Op::Insert(enc(name)?, enc(value)?))?;
        Ok(())
    }

    /// Removes the field `name`; `true` if it was there.
    pub fn remove(&self, name: &str) -> Result<bool, ManagerError> {
        match self.handle.call(Op::Remove(enc(name)?))? {
            Reply::Maybe(old) => Ok(old.is_some()),
            r => Err(unexpected(r)),
        }
    }

    /// Whether the field `name` is set.
    pub fn contains(&self, name: &str) -> Result<bool, ManagerError> {
        flag(self.handle.call(Op::Contains(enc(name)?))?)
    }

    /// The names of the fields, as they are now.
    pub fn fields(&self) -> Result<Vec<String>, ManagerError> {
        items(self.handle.call(Op::Keys)?)
    }

    /// Adds `by` to the numeric field `name` (a missing one counts as 0) on
    /// the server, in one step; returns the new value.
    pub fn increment<N: Number>(&self, name: &str, by: N) -> Result<N, ManagerError> {
        value(
            self.handle
                .call(Op::UpdateKey(enc(name)?, Update::Add(num(by))))?,
        )
    }

    /// Removes every field.
    pub fn clear(&self) -> Result<(), ManagerError> {
        done(self.handle.call(Op::Clear)?)
    }
}
