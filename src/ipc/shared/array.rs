//! `Array<T>`: a shared fixed-length array with its lock.

use std::fmt;
use std::io;
use std::ops::{Deref, DerefMut};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use bytemuck::Pod;
use serde::{Deserialize, Serialize};

use crate::blocking::Wait;
use crate::sync::mutex::{Cells, guarded, untimed};
use crate::sync::{Poisoned, TryLockError};

/// A fixed-length array of plain data in shared memory with its
/// process-shared lock; Python's `multiprocessing.Array`.
///
/// ```
/// use multiproc::process::Process;
/// use multiproc::shared::Array;
/// let a = Array::new(&[0u32; 8])?;
/// let mut p = Process::start(|a: Array<u32>| {
///     let mut g = a.lock().unwrap();
///     for (i, x) in g.iter_mut().enumerate() { *x = i as u32 * 10; }
/// }, a.clone())?;
/// p.join()?;
/// assert_eq!(a.to_vec(), [0, 10, 20, 30, 40, 50, 60, 70]);
/// assert_eq!((a.len(), a.get(3), a.get(8)), (8, Some(30), None));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Robustness and poisoning as for [`Mutex`](crate::sync::Mutex); `get`,
/// `set` and `to_vec` ignore poisoning.
#[derive(Clone, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Array<T: Pod> {
    cells: Cells<T>,
}

/// A held [`Array`]: derefs to the slice; unlocks on drop.
pub struct ArrayGuard<'a, T: Pod> {
    array: &'a Array<T>,
}

impl<T: Pod> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Array")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl<T: Pod> Array<T> {
    /// A new shared array holding a copy of `values`.
    pub fn new(values: &[T]) -> io::Result<Array<T>> {
        Ok(Array {
            cells: Cells::new(values)?,
        })
    }

    /// A new shared array of `len` zeroed elements.
    pub fn zeroed(len: usize) -> io::Result<Array<T>> {
        Array::new(&vec![T::zeroed(); len])
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// `true` for an array of no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn take(&self, wait: Wait) -> Result<ArrayGuard<'_, T>, TryLockError<ArrayGuard<'_, T>>> {
        guarded(self.cells.acquire(wait), || ArrayGuard { array: self })
    }

    /// Locks the array, waiting as long as it takes.
    pub fn lock(&self) -> Result<ArrayGuard<'_, T>, Poisoned<ArrayGuard<'_, T>>> {
        untimed(self.take(Wait::Forever))
    }

    /// Locks if nobody holds it.
    pub fn try_lock(&self) -> Result<ArrayGuard<'_, T>, TryLockError<ArrayGuard<'_, T>>> {
        self.take(Wait::No)
    }

    /// Locks, waiting at most `timeout`.
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<ArrayGuard<'_, T>, TryLockError<ArrayGuard<'_, T>>> {
        self.take(Wait::timeout(timeout))
    }

    fn locked(&self) -> ArrayGuard<'_, T> {
        self.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Element `i`, or `None` past the end.
    pub fn get(&self, i: usize) -> Option<T> {
        self.locked().get(i).copied()
    }

    /// Sets element `i`; `false` (and no change) past the end.
    pub fn set(&self, i: usize, value: T) -> bool {
        match self.locked().get_mut(i) {
            Some(x) => {
                *x = value;
                true
            }
            None => false,
        }
    }

    /// A copy of every element.
    pub fn to_vec(&self) -> Vec<T> {
        self.locked().to_vec()
    }

    /// `true` if a holder died or panicked and nobody cleared it since.
    pub fn is_poisoned(&self) -> bool {
        self.cells.is_poisoned()
    }

    /// Declares the data consistent again.
    pub fn clear_poison(&self) {
        self.cells.clear_poison()
    }
}

impl<T: Pod> Deref for ArrayGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        let cells = &self.array.cells;
        // SAFETY: the lock is held; the region holds `len` aligned `T`s
        // (checked in `Cells::open`); `T: Pod` makes any bytes valid.
        unsafe { std::slice::from_raw_parts(cells.ptr(), cells.len()) }
    }
}

impl<T: Pod> DerefMut for ArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        let cells = &self.array.cells;
        // SAFETY: as in `deref`; the guard is unique, so is the slice.
        unsafe { std::slice::from_raw_parts_mut(cells.ptr(), cells.len()) }
    }
}

impl<T: Pod> Drop for ArrayGuard<'_, T> {
    fn drop(&mut self) {
        self.array.cells.release();
    }
}

impl<T: Pod> AsFd for Array<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.cells.as_fd()
    }
}
