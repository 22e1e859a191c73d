//! A dict on the server.

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::number::{Number, num};
use super::proxy;
use crate::manager::ManagerError;
use crate::manager::link::{Handle, count, dec, done, enc, flag, items, maybe, unexpected, value};
use crate::manager::protocol::{Op, Reply, Update};

/// A `HashMap<K, V>` held by a manager's server; Python's `Manager().dict()`.
///
/// Keys are compared by their encoding (equal values of the usual key
/// types — integers, strings, tuples of them — encode equally; a float
/// `-0.0` and `0.0` are two keys).
///
/// ```
/// use multiproc::manager::Manager;
/// use multiproc::process::Process;
///
/// let manager = Manager::start()?;
/// let hits = manager.dict::<String, u64>()?;
/// // The classic lost update (`d[k] += 1` from many processes) cannot
/// // happen: `increment` is one step on the server.
/// let mut workers: Vec<_> = (0..2)
///     .map(|_| Process::start(|d: multiproc::manager::Dict<String, u64>| {
///         for _ in 0..100 { d.increment(&"page".to_string(), 1).unwrap(); }
///     }, hits.clone()))
///     .collect::<Result<_, _>>()?;
/// for w in &mut workers { w.join_timeout(std::time::Duration::from_secs(60))?; }
/// assert_eq!(hits.get(&"page".to_string())?, Some(200));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Dict<K, V> {
    handle: Handle,
    _types: PhantomData<fn() -> (K, V)>,
}

proxy!(Dict<K, V>);

impl<K, V> Dict<K, V>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    /// The value of `key`.
    pub fn get(&self, key: &K) -> Result<Option<V>, ManagerError> {
        maybe(self.handle.call(Op::Get(enc(key)?))?)
    }

    /// The values of many keys, in one round trip.
    pub fn get_many<'a>(
        &self,
        keys: impl IntoIterator<Item = &'a K>,
    ) -> Result<Vec<Option<V>>, ManagerError>
    where
        K: 'a,
    {
        let keys = keys.into_iter().map(enc).collect::<Result<_, _>>()?;
        match self.handle.call(Op::GetMany(keys))? {
            Reply::Many(values) => values
                .iter()
                .map(|v| v.as_ref().map(|v| dec(v)).transpose())
                .collect(),
            r => Err(unexpected(r)),
        }
    }

    /// Sets `key` to `value`; returns the value it had.
    pub fn insert(&self, key: &K, value: &V) -> Result<Option<V>, ManagerError> {
        maybe(self.handle.call(Op::Insert(enc(key)?, enc(value)?))?)
    }

    /// Sets many keys, in one round trip.
    pub fn insert_many<'a>(
        &self,
        pairs: impl IntoIterator<Item = (&'a K, &'a V)>,
    ) -> Result<(), ManagerError>
    where
        K: 'a,
        V: 'a,
    {
        let pairs = pairs
            .into_iter()
            .map(|(k, v)| Ok((enc(k)?, enc(v)?)))
            .collect::<Result<_, ManagerError>>()?;
        done(self.handle.call(Op::InsertMany(pairs))?)
    }

    /// Removes `key`; returns the value it had.
    pub fn remove(&self, key: &K) -> Result<Option<V>, ManagerError> {
        maybe(self.handle.call(Op::Remove(enc(key)?))?)
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: &K) -> Result<bool, ManagerError> {
        flag(self.handle.call(Op::Contains(enc(key)?))?)
    }

    /// The number of keys.
    pub fn len(&self) -> Result<usize, ManagerError> {
        count(self.handle.call(Op::Len)?)
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        Ok(self.len()? == 0)
    }

    /// The keys, as they are now.
    pub fn keys(&self) -> Result<Vec<K>, ManagerError> {
        items(self.handle.call(Op::Keys)?)
    }

    /// The values, as they are now.
    pub fn values(&self) -> Result<Vec<V>, ManagerError> {
        items(self.handle.call(Op::Values)?)
    }

    /// The pairs, as they are now.
    pub fn items(&self) -> Result<Vec<(K, V)>, ManagerError> {
        match self.handle.call(Op::Items)? {
            Reply::Pairs(pairs) => pairs.iter().map(|(k, v)| Ok((dec(k)?, dec(v)?))).collect(),
            r => Err(unexpected(r)),
        }
    }

    /// Removes every key.
    pub fn clear(&self) -> Result<(), ManagerError> {
        done(self.handle.call(Op::Clear)?)
    }

    /// The value of `key`, setting it to `default` first if it has none
    /// (Python's `setdefault`), in one step.
    pub fn get_or_insert(&self, key: &K, default: &V) -> Result<V, ManagerError> {
        value(self.handle.call(Op::SetDefault(enc(key)?, enc(default)?))?)
    }

    /// Sets `key` to `new` (`None`: removes it) only if its value is
    /// `expected` (`None`: it has none), in one step: `Ok(Ok(()))` if so,
    /// `Ok(Err(actual))` with the value found if not.
    pub fn compare_and_swap(
        &self,
        key: &K,
        expected: Option<&V>,
        new: Option<&V>,
    ) -> Result<Result<(), Option<V>>, ManagerError> {
        let op = Op::SwapKey {
            key: enc(key)?,
            expected: expected.map(enc).transpose()?,
            new: new.map(enc).transpose()?,
        };
        match self.handle.call(op)? {
            Reply::Done => Ok(Ok(())),
            Reply::Conflict(actual) => Ok(Err(actual.map(|v| dec(&v)).transpose()?)),
            r => Err(unexpected(r)),
        }
    }

    /// Sets `key` to `f(its value)` atomically, whatever other clients do
    /// meanwhile, and returns the new value: `f` runs here and the server
    /// stores its result only if the value is still the one `f` saw (else
    /// `f` runs again on the new one). So `f` may run more than once.
    ///
    /// ```
    /// # let manager = multiproc::manager::Manager::start()?;
    /// let d = manager.dict::<u8, Vec<String>>()?;
    /// d.update(&1, |v| { let mut v = v.unwrap_or_default(); v.push("x".into()); v })?;
    /// assert_eq!(d.get(&1)?, Some(vec!["x".to_string()]));
    /// # Ok::<(), multiproc::manager::ManagerError>(())
    /// ```
    pub fn update(&self, key: &K, mut f: impl FnMut(Option<V>) -> V) -> Result<V, ManagerError> {
        let key_bytes = enc(key)?;
        let mut seen = maybe::<V>(self.handle.call(Op::Get(key_bytes.clone()))?)?;
        loop {
            let expected = seen.as_ref().map(enc).transpose()?;
            let new = f(seen);
            let op = Op::SwapKey {
                key: key_bytes.clone(),
                expected,
                new: Some(enc(&new)?),
            };
            match self.handle.call(op)? {
                Reply::Done => return Ok(new),
                Reply::Conflict(actual) => seen = actual.map(|v| dec(&v)).transpose()?,
                r => return Err(unexpected(r)),
            }
        }
    }
}

impl<K, V> Dict<K, V>
where
    K: Serialize + DeserializeOwned,
    V: Number,
{
    /// Adds `by` to the value of `key` (a missing key counts as 0) on the
    /// server, in one step; returns the new value. An integer overflow is
    /// [`ManagerError::Update`], and nothing is stored.
    pub fn increment(&self, key: &K, by: V) -> Result<V, ManagerError> {
        value(
            self.handle
                .call(Op::UpdateKey(enc(key)?, Update::Add(num(by))))?,
        )
    }
}

impl<K, T> Dict<K, Vec<T>>
where
    K: Serialize + DeserializeOwned,
    T: Serialize + DeserializeOwned,
{
    /// Appends `item` to the list that is the value of `key` (a missing key
    /// counts as an empty list) on the server, in one step; returns the new
    /// length.
    pub fn push(&self, key: &K, item: &T) -> Result<usize, ManagerError> {
        let reply = self
            .handle
            .call(Op::UpdateKey(enc(key)?, Update::Push(enc(item)?)))?;
        seq_len(reply)
    }
}

impl<K> Dict<K, String>
where
    K: Serialize + DeserializeOwned,
{
    /// Appends `s` to the string that is the value of `key` (a missing key
    /// counts as empty) on the server, in one step; returns the new length
    /// in bytes.
    pub fn push_str(&self, key: &K, s: &str) -> Result<usize, ManagerError> {
        let bytes = crate::manager::protocol::Bytes::from(s.as_bytes().to_vec());
        seq_len(
            self.handle
                .call(Op::UpdateKey(enc(key)?, Update::PushStr(bytes)))?,
        )
    }
}

/// The length of the sequence or string a reply holds (its first 8 bytes).
fn seq_len(reply: Reply) -> Result<usize, ManagerError> {
    match reply {
        Reply::Value(v) if v.len() >= 8 => {
            Ok(u64::from_le_bytes(v[..8].try_into().expect("8 bytes")) as usize)
        }
        r => Err(unexpected(r)),
    }
}
