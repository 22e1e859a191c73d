//! A list on the server.

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::proxy;
use crate::manager::ManagerError;
use crate::manager::link::{Handle, count, done, enc, items, maybe, value};
use crate::manager::protocol::Op;

/// A `Vec<T>` held by a manager's server; Python's `Manager().list()`.
/// An index past the end is [`ManagerError::IndexOutOfRange`].
///
/// ```
/// # let manager = multiproc::manager::Manager::start()?;
/// let l = manager.list::<char>()?;
/// l.extend(&['b', 'c'])?;
/// l.insert(0, &'a')?;
/// assert_eq!(l.to_vec()?, ['a', 'b', 'c']);
/// assert_eq!(l.pop()?, Some('c'));
/// assert!(matches!(l.get(5), Err(multiproc::manager::ManagerError::IndexOutOfRange { index: 5, len: 2 })));
/// # Ok::<(), multiproc::manager::ManagerError>(())
/// ```
pub struct List<T> {
    handle: Handle,
    _types: PhantomData<fn() -> T>,
}

proxy!(List<T>);

impl<T: Serialize + DeserializeOwned> List<T> {
    /// The item at `index`.
    pub fn get(&self, index: usize) -> Result<T, ManagerError> {
        value(self.handle.call(Op::At(index as u64))?)
    }

    /// Replaces the item at `index`.
    pub fn set(&self, index: usize, item: &T) -> Result<(), ManagerError> {
        done(self.handle.call(Op::SetAt(index as u64, enc(item)?))?)
    }

    /// Appends an item.
    pub fn push(&self, item: &T) -> Result<(), ManagerError> {
        done(self.handle.call(Op::Push(enc(item)?))?)
    }

    /// Appends many items, in one round trip.
    pub fn extend<'a>(&self, items: impl IntoIterator<Item = &'a T>) -> Result<(), ManagerError>
    where
        T: 'a,
    {
        let items = items.into_iter().map(enc).collect::<Result<_, _>>()?;
        done(self.handle.call(Op::Extend(items))?)
    }

    /// Removes and returns the last item.
    pub fn pop(&self) -> Result<Option<T>, ManagerError> {
        maybe(self.handle.call(Op::Pop)?)
    }

    /// Inserts an item at `index` (at most the length), shifting the rest.
    pub fn insert(&self, index: usize, item: &T) -> Result<(), ManagerError> {
        done(self.handle.call(Op::InsertAt(index as u64, enc(item)?))?)
    }

    /// Removes and returns the item at `index`, shifting the rest.
    pub fn remove(&self, index: usize) -> Result<T, ManagerError> {
        value(self.handle.call(Op::RemoveAt(index as u64))?)
    }

    /// The number of items.
    pub fn len(&self) -> Result<usize, ManagerError> {
        count(self.handle.call(Op::Len)?)
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        Ok(self.len()? == 0)
    }

    /// The items, as they are now.
    pub fn to_vec(&self) -> Result<Vec<T>, ManagerError> {
        items(self.handle.call(Op::Values)?)
    }

    /// Removes every item.
    pub fn clear(&self) -> Result<(), ManagerError> {
        done(self.handle.call(Op::Clear)?)
    }
}
