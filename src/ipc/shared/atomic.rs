//! `Atomic<A>`: a shared atomic integer, no lock.

use std::io;
use std::ops::Deref;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::Ordering;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::sync::region::{Region, SharedSafe};

mod sealed {
    pub trait Sealed {}
}

/// The std atomic types that can live in shared memory.
pub trait SharedAtomic: sealed::Sealed + Send + Sync + 'static {
    /// The plain type the atomic holds.
    type Value: Copy;
    #[doc(hidden)]
    fn init(&self, value: Self::Value);
}

macro_rules! shared_atomic {
    ($($a:ident: $v:ty),*) => {$(
        impl sealed::Sealed for std::sync::atomic::$a {}
        impl SharedAtomic for std::sync::atomic::$a {
            type Value = $v;
            fn init(&self, value: $v) {
                self.store(value, Ordering::Relaxed)
            }
        }
    )*};
}

shared_atomic!(
    AtomicU8: u8, AtomicU16: u16, AtomicU32: u32, AtomicU64: u64, AtomicUsize: usize,
    AtomicI8: i8, AtomicI16: i16, AtomicI32: i32, AtomicI64: i64, AtomicIsize: isize
);

/// The header of an `Atomic`'s region.
#[repr(transparent)]
#[derive(Debug)]
struct Slot<A>(A);

// SAFETY: `SharedAtomic` is sealed and implemented only for std's atomic
// integers: every bit pattern is valid, all zero included, and the value
// changes only through atomic operations.
unsafe impl<A: SharedAtomic> SharedSafe for Slot<A> {}

/// An atomic integer in shared memory: the lock-free variant of
/// [`Value`](super::Value) (Python's `Value(..., lock=False)`, but safe).
/// Derefs to the std atomic.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use multiproc::process::Process;
/// use multiproc::shared::Atomic;
/// let hits = Atomic::<AtomicU64>::new(0)?;
/// let mut ps: Vec<_> = (0..2)
///     .map(|_| Process::start(|h: Atomic<AtomicU64>| {
///         for _ in 0..1000 { h.fetch_add(1, Ordering::Relaxed); }
///     }, hits.clone()))
///     .collect::<Result<_, _>>()?;
/// for p in &mut ps { p.join()?; }
/// assert_eq!(hits.load(Ordering::Relaxed), 2000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Atomic<A: SharedAtomic> {
    region: Region<Slot<A>>,
}

impl<A: SharedAtomic> Atomic<A> {
    /// A new shared atomic holding `value`.
    pub fn new(value: A::Value) -> io::Result<Atomic<A>> {
        Ok(Atomic {
            region: Region::create(0, |a: &Slot<A>| a.0.init(value))?,
        })
    }
}

impl<A: SharedAtomic> Deref for Atomic<A> {
    type Target = A;
    fn deref(&self) -> &A {
        &self.region.header().0
    }
}

impl<A: SharedAtomic> Clone for Atomic<A> {
    fn clone(&self) -> Self {
        Atomic {
            region: self.region.clone(),
        }
    }
}

impl<A: SharedAtomic> AsFd for Atomic<A> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.region.as_fd()
    }
}

impl<A: SharedAtomic> Serialize for Atomic<A> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.region.serialize(s)
    }
}

impl<'de, A: SharedAtomic> Deserialize<'de> for Atomic<A> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Atomic {
            region: Region::deserialize(d)?,
        })
    }
}
