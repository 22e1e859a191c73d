//! `RawArray<T>`: a shared array without a lock, read-only once made.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::ops::Deref;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

use bytemuck::Pod;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec::handles::{Fd, FdRef};
use crate::os::shm::Sealed;

/// A fixed-length array of plain data in shared memory, filled once and
/// then read by every process at memory speed, without a lock — Python's
/// `multiprocessing.RawArray` for the read-mostly case (a table, a model,
/// a data set shared by pool workers).
///
/// It dereferences to `&[T]`: no lock, no copy, no `unsafe`. That is sound
/// because nobody can ever write it again: the memory is sealed read-only
/// by the kernel (`F_SEAL_WRITE`) before anyone else sees it, and a
/// receiving process refuses memory that is not sealed.
///
/// ```
/// use multiproc::executor::ProcessPool;
/// use multiproc::shared::RawArray;
///
/// let data = RawArray::from_fn(1_000_000, |xs: &mut [f64]| {
///     for (i, x) in xs.iter_mut().enumerate() { *x = i as f64; }
/// })?;
/// let pool = ProcessPool::new(2);
/// let halves = [(data.clone(), 0..500_000), (data.clone(), 500_000..1_000_000)];
/// let sums: Vec<f64> = pool
///     .map(|(d, r): (RawArray<f64>, std::ops::Range<usize>)| d[r].iter().sum(), halves)
///     .map(Result::unwrap)
///     .collect();
/// assert_eq!(sums.iter().sum::<f64>(), data.iter().sum::<f64>());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Differences from Python
///
/// Python's `RawArray` is writable by everyone with no synchronization —
/// a data race in Rust. Here it is read-only after [`new`](Self::new) or
/// [`from_fn`](Self::from_fn); to write from several processes use
/// [`Array`](super::Array) (with its lock) or [`Atomic`](super::Atomic)
/// values.
#[derive(Clone)]
pub struct RawArray<T: Pod> {
    seg: Arc<Sealed>,
    len: usize,
    _t: PhantomData<T>,
}

impl<T: Pod> RawArray<T> {
    /// A shared copy of `values`.
    pub fn new(values: &[T]) -> io::Result<RawArray<T>> {
        RawArray::from_fn(values.len(), |xs| xs.copy_from_slice(values))
    }

    /// `len` zeroed values, filled in place by `fill` (no copy: for a large
    /// array), then sealed read-only.
    pub fn from_fn(len: usize, fill: impl FnOnce(&mut [T])) -> io::Result<RawArray<T>> {
        let size = std::mem::size_of::<T>();
        if size == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a RawArray of a zero-sized type",
            ));
        }
        let bytes = len
            .checked_mul(size)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "a RawArray too large"))?;
        let seg = Sealed::create("multiproc-rawarray", bytes, |b| {
            fill(bytemuck::cast_slice_mut(&mut b[..bytes]))
        })?;
        Ok(RawArray {
            seg: Arc::new(seg),
            len,
            _t: PhantomData,
        })
    }
}

impl<T: Pod> Deref for RawArray<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        // A mapping starts on a page boundary: aligned for any `T`.
        bytemuck::cast_slice(&self.seg.bytes()[..self.len * std::mem::size_of::<T>()])
    }
}

impl<T: Pod> AsRef<[T]> for RawArray<T> {
    fn as_ref(&self) -> &[T] {
        self
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for RawArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawArray")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl<T: Pod> AsFd for RawArray<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.seg.as_fd()
    }
}

impl<T: Pod> Serialize for RawArray<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (FdRef(self.seg.as_fd()), self.len as u64).serialize(s)
    }
}

impl<'de, T: Pod> Deserialize<'de> for RawArray<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let (Fd(fd), len) = <(Fd, u64)>::deserialize(d)?;
        let seg = Sealed::open(fd).map_err(D::Error::custom)?;
        let len = usize::try_from(len).map_err(D::Error::custom)?;
        if len
            .checked_mul(std::mem::size_of::<T>())
            .is_none_or(|b| b > seg.bytes().len())
            || std::mem::size_of::<T>() == 0
        {
            return Err(D::Error::custom("a RawArray longer than its memory"));
        }
        Ok(RawArray {
            seg: Arc::new(seg),
            len,
            _t: PhantomData,
        })
    }
}
