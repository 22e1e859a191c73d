//! A queue on the server.

use std::marker::PhantomData;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::proxy;
use crate::blocking::Wait;
use crate::manager::ManagerError;
use crate::manager::link::{Handle, count, done, enc, flag, items, unexpected, wait_micros};
use crate::manager::protocol::Op;

/// A FIFO queue held by a manager's server, shared by processes on any
/// machine that reaches it; Python's `Manager().Queue()`.
///
/// The blocking calls come in families: `put`/`try_put`/`put_timeout`
/// ([`ManagerError::Full`] when no room came in time) and
/// `get`/`try_get`/`get_timeout` ([`ManagerError::Empty`]). The wait
/// happens on the server; if the server goes away meanwhile, the call
/// fails with [`ManagerError::ServerGone`] instead of waiting for ever.
/// An item taken for a client that vanished before it got the answer is
/// put back at the front.
///
/// ```
/// use std::time::Duration;
/// use multiproc::manager::{Manager, ManagerError};
/// let manager = Manager::start()?;
/// let q = manager.queue::<String>(2)?;
/// q.put(&"a".into())?;
/// q.put(&"b".into())?;
/// assert!(matches!(q.try_put(&"c".into()), Err(ManagerError::Full)));
/// assert_eq!(q.get_timeout(Duration::from_secs(10))?, "a");
/// assert_eq!(q.len()?, 1);
/// assert_eq!(q.get_many(10, Duration::ZERO)?, ["b"]);
/// assert!(matches!(q.try_get(), Err(ManagerError::Empty)));
/// // Python's task_done/join: two items were put, two are marked done.
/// assert!(!q.join_timeout(Duration::ZERO)?);
/// q.task_done()?;
/// q.task_done()?;
/// assert!(q.join_timeout(Duration::from_secs(10))?);
/// assert!(matches!(q.task_done(), Err(ManagerError::TaskDone(_))));
/// # Ok::<(), ManagerError>(())
/// ```
pub struct Queue<T> {
    handle: Handle,
    _types: PhantomData<fn() -> T>,
}

proxy!(Queue<T>);

impl<T: Serialize + DeserializeOwned> Queue<T> {
    fn put_waiting(&self, item: &T, wait: Wait) -> Result<(), ManagerError> {
        let item = enc(item)?;
        done(self.handle.call(Op::Put {
            item,
            wait: wait_micros(wait),
        })?)
    }

    fn take(&self, max: usize, wait: Wait) -> Result<Vec<T>, ManagerError> {
        items(self.handle.call(Op::Take {
            max: max as u64,
            wait: wait_micros(wait),
        })?)
    }

    fn get_waiting(&self, wait: Wait) -> Result<T, ManagerError> {
        let mut got = self.take(1, wait)?;
        match got.pop() {
            Some(item) if got.is_empty() => Ok(item),
            _ => Err(unexpected(crate::manager::protocol::Reply::Items(
                Vec::new(),
            ))),
        }
    }

    /// Puts `item` at the back, waiting while the queue is full.
    pub fn put(&self, item: &T) -> Result<(), ManagerError> {
        self.put_waiting(item, Wait::Forever)
    }

    /// Puts `item` if there is room now ([`ManagerError::Full`] if not).
    pub fn try_put(&self, item: &T) -> Result<(), ManagerError> {
        self.put_waiting(item, Wait::No)
    }

    /// Puts `item`, waiting at most `timeout` for room
    /// ([`ManagerError::Full`]).
    pub fn put_timeout(&self, item: &T, timeout: Duration) -> Result<(), ManagerError> {
        self.put_waiting(item, Wait::timeout(timeout))
    }

    /// Takes the item at the front, waiting while the queue is empty.
    pub fn get(&self) -> Result<T, ManagerError> {
        self.get_waiting(Wait::Forever)
    }

    /// Takes the item at the front if there is one
    /// ([`ManagerError::Empty`] if not).
    pub fn try_get(&self) -> Result<T, ManagerError> {
        self.get_waiting(Wait::No)
    }

    /// Takes the item at the front, waiting at most `timeout`
    /// ([`ManagerError::Empty`]).
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, ManagerError> {
        self.get_waiting(Wait::timeout(timeout))
    }

    /// Takes up to `max` items from the front in one round trip, waiting at
    /// most `timeout` for the first ([`ManagerError::Empty`] if none came).
    pub fn get_many(&self, max: usize, timeout: Duration) -> Result<Vec<T>, ManagerError> {
        self.take(max, Wait::timeout(timeout))
    }

    /// Marks one item taken from the queue as done (Python's
    /// `task_done`): [`join`](Queue::join) returns once every item put was
    /// marked so. More calls than items put is [`ManagerError::TaskDone`].
    pub fn task_done(&self) -> Result<(), ManagerError> {
        done(self.handle.call(Op::TaskDone)?)
    }

    /// Waits until every item put has been marked done.
    pub fn join(&self) -> Result<(), ManagerError> {
        flag(self.handle.call(Op::JoinQueue {
            wait: wait_micros(Wait::Forever),
        })?)
        .map(drop)
    }

    /// Like [`join`](Queue::join), waiting at most `timeout`: `true` if
    /// every item put has been marked done.
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
        flag(self.handle.call(Op::JoinQueue {
            wait: wait_micros(Wait::timeout(timeout)),
        })?)
    }

    /// The number of items in the queue now (exact: counted by the server).
    pub fn len(&self) -> Result<usize, ManagerError> {
        count(self.handle.call(Op::Len)?)
    }

    /// Whether the queue is empty now.
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        Ok(self.len()? == 0)
    }
}
