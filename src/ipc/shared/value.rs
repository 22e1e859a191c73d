//! `Value<T>`: one shared plain-data value with its lock.

use std::io;

use bytemuck::Pod;
use serde::{Deserialize, Serialize};

use crate::sync::Mutex;

/// One plain-data value in shared memory with its process-shared lock;
/// Python's `multiprocessing.Value`.
///
/// `get` and `set` take the lock for one read or write; for a
/// read-modify-write (the ticket counter), hold the lock:
///
/// ```
/// use multiproc::process::Process;
/// use multiproc::shared::Value;
/// let left = Value::new(10i64)?;
/// let mut p = Process::start(|v: Value<i64>| {
///     for _ in 0..4 {
///         *v.get_lock().lock().unwrap() -= 1; // read and write under one lock
///     }
/// }, left.clone())?;
/// p.join()?;
/// assert_eq!(left.get(), 6);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// `get` and `set` ignore poisoning (the value is plain data, valid
/// whatever happened); the lock reports it to those who ask
/// ([`Mutex::is_poisoned`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Value<T: Pod> {
    lock: Mutex<T>,
}

impl<T: Pod> Value<T> {
    /// A new shared value.
    pub fn new(value: T) -> io::Result<Value<T>> {
        Ok(Value {
            lock: Mutex::new(value)?,
        })
    }

    /// The lock, and through it the value (Python's `get_lock()`).
    pub fn get_lock(&self) -> &Mutex<T> {
        &self.lock
    }

    /// The value now.
    pub fn get(&self) -> T {
        *self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the value.
    pub fn set(&self, value: T) {
        *self.lock.lock().unwrap_or_else(|p| p.into_inner()) = value;
    }
}
