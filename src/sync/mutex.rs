//! `Mutex<T>`: plain data in shared memory under a robust process-shared
//! lock; `Lock`: the same lock without data (Python's `multiprocessing.Lock`).

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use bytemuck::Pod;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::raw::{Acquired, RawLock};
use super::region::{Region, SharedSafe};
use crate::blocking::Wait;

/// Why the data behind a lock may be inconsistent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoisonCause {
    /// A process died (killed, aborted) while it held the lock.
    OwnerDied,
    /// A thread panicked while it held the lock.
    Panicked,
}

/// The lock was taken, but a holder died or panicked earlier: the guard is
/// inside. Like [`std::sync::PoisonError`], the lock stays poisoned until
/// `clear_poison`.
pub struct Poisoned<G> {
    guard: G,
    cause: PoisonCause,
}

impl<G> Poisoned<G> {
    pub(crate) fn new(guard: G, cause: PoisonCause) -> Self {
        Poisoned { guard, cause }
    }

    /// The guard: the lock is held.
    pub fn into_inner(self) -> G {
        self.guard
    }
    /// What poisoned the lock (the first cause seen by this locker).
    pub fn cause(&self) -> PoisonCause {
        self.cause
    }
}

impl<G> fmt::Debug for Poisoned<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Poisoned")
            .field("cause", &self.cause)
            .finish_non_exhaustive()
    }
}

impl<G> fmt::Display for Poisoned<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cause {
            PoisonCause::OwnerDied => f.write_str("a process died while holding the lock"),
            PoisonCause::Panicked => f.write_str("a thread panicked while holding the lock"),
        }
    }
}

impl<G> std::error::Error for Poisoned<G> {}

/// Why `try_lock` or `lock_timeout` gave no clean guard.
pub enum TryLockError<G> {
    /// Taken, but poisoned: see [`Poisoned`].
    Poisoned(Poisoned<G>),
    /// `try_lock`: someone else holds it; `lock_timeout`: still held at the
    /// deadline.
    WouldBlock,
}

impl<G> fmt::Debug for TryLockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryLockError::Poisoned(p) => p.fmt(f),
            TryLockError::WouldBlock => f.write_str("WouldBlock"),
        }
    }
}

impl<G> fmt::Display for TryLockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryLockError::Poisoned(p) => p.fmt(f),
            TryLockError::WouldBlock => f.write_str("the lock is held by someone else"),
        }
    }
}

impl<G> std::error::Error for TryLockError<G> {}

impl<G> From<Poisoned<G>> for TryLockError<G> {
    fn from(p: Poisoned<G>) -> Self {
        TryLockError::Poisoned(p)
    }
}

/// What lives at the start of every locked region.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct LockState {
    pub(crate) raw: RawLock,
    /// 0, or a `PoisonCause` code.
    poison: AtomicU32,
    /// Elements of data after the header.
    len: AtomicU64,
}

// SAFETY: atomics only; all zero is "free, not poisoned, no data".
unsafe impl SharedSafe for LockState {}

fn cause_code(c: PoisonCause) -> u32 {
    match c {
        PoisonCause::OwnerDied => 1,
        PoisonCause::Panicked => 2,
    }
}

impl LockState {
    /// Records an owner's death as poison; returns the poison, if any.
    pub(crate) fn note(&self, got: Acquired) -> Option<PoisonCause> {
        if got == Acquired::OwnerDied {
            let code = cause_code(PoisonCause::OwnerDied);
            let _ = self
                .poison
                .compare_exchange(0, code, Ordering::Relaxed, Ordering::Relaxed);
        }
        match self.poison.load(Ordering::Relaxed) {
            0 => None,
            1 => Some(PoisonCause::OwnerDied),
            _ => Some(PoisonCause::Panicked),
        }
    }

    /// Unlocks, poisoning first if the thread is panicking.
    pub(crate) fn is_poisoned(&self) -> bool {
        self.poison.load(Ordering::Relaxed) != 0
    }

    pub(crate) fn clear_poison(&self) {
        self.poison.store(0, Ordering::Relaxed);
    }

    pub(crate) fn release(&self) {
        if std::thread::panicking() {
            let code = cause_code(PoisonCause::Panicked);
            let _ = self
                .poison
                .compare_exchange(0, code, Ordering::Relaxed, Ordering::Relaxed);
        }
        self.raw.unlock();
    }
}

/// `len` values of `T` after a [`LockState`], in shared memory: the core of
/// [`Mutex`] and of [`Array`](crate::shared::Array).
pub(crate) struct Cells<T: Pod> {
    region: Region<LockState>,
    len: usize,
    _data: PhantomData<T>,
}

impl<T: Pod> Cells<T> {
    pub(crate) fn new(values: &[T]) -> io::Result<Cells<T>> {
        const { assert!(align_of::<T>() <= 128) };
        let bytes = size_of_val(values);
        let region = Region::<LockState>::create(bytes.max(1), |h| {
            h.len.store(values.len() as u64, Ordering::Relaxed)
        })?;
        let cells = Cells {
            region,
            len: values.len(),
            _data: PhantomData,
        };
        // SAFETY: nobody else can see the fresh region yet; it has room for
        // `values.len()` aligned `T`s after the header.
        unsafe { std::ptr::copy_nonoverlapping(values.as_ptr(), cells.ptr(), values.len()) };
        Ok(cells)
    }

    /// Cells over a region received from another process, if it holds as
    /// many `T`s as its header says.
    fn from_region(region: Region<LockState>) -> io::Result<Cells<T>> {
        let len = region.header().len.load(Ordering::Relaxed);
        let fits = usize::try_from(len)
            .ok()
            .and_then(|n| n.checked_mul(size_of::<T>()))
            .is_some_and(|b| b <= region.tail().1);
        if !fits {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "shared-memory handle refused: too small for the type",
            ));
        }
        Ok(Cells {
            region,
            len: len as usize,
            _data: PhantomData,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn ptr(&self) -> *mut T {
        self.region.tail().0.cast::<T>()
    }

    fn state(&self) -> &LockState {
        self.region.header()
    }

    /// Takes the lock: `Ok(poison)`, or `Err(())` when `wait` ran out.
    pub(crate) fn acquire(&self, wait: Wait) -> Result<Option<PoisonCause>, ()> {
        let got = match wait {
            Wait::Forever => self.state().raw.lock(None),
            Wait::No => self.state().raw.try_lock(),
            Wait::Until(d) => self.state().raw.lock(Some(d)),
        };
        got.map(|g| self.state().note(g)).ok_or(())
    }

    pub(crate) fn release(&self) {
        self.state().release()
    }

    pub(crate) fn is_locked(&self) -> bool {
        self.state().raw.is_locked()
    }

    pub(crate) fn is_poisoned(&self) -> bool {
        self.state().is_poisoned()
    }

    pub(crate) fn clear_poison(&self) {
        self.state().clear_poison()
    }
}

impl<T: Pod> Clone for Cells<T> {
    fn clone(&self) -> Self {
        Cells {
            region: self.region.clone(),
            len: self.len,
            _data: PhantomData,
        }
    }
}

impl<T: Pod> AsFd for Cells<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.region.as_fd()
    }
}

impl<T: Pod> Serialize for Cells<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.region.serialize(s)
    }
}

impl<'de, T: Pod> Deserialize<'de> for Cells<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Cells::from_region(Region::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Turns the outcome of [`Cells::acquire`] into a guard or an error.
pub(crate) fn guarded<G>(
    got: Result<Option<PoisonCause>, ()>,
    guard: impl FnOnce() -> G,
) -> Result<G, TryLockError<G>> {
    match got {
        Err(()) => Err(TryLockError::WouldBlock),
        Ok(None) => Ok(guard()),
        Ok(Some(cause)) => Err(TryLockError::Poisoned(Poisoned {
            guard: guard(),
            cause,
        })),
    }
}

/// `lock()` cannot time out: only the poisoned case remains.
pub(crate) fn untimed<G>(r: Result<G, TryLockError<G>>) -> Result<G, Poisoned<G>> {
    match r {
        Ok(g) => Ok(g),
        Err(TryLockError::Poisoned(p)) => Err(p),
        Err(TryLockError::WouldBlock) => unreachable!("a lock without deadline does not give up"),
    }
}

/// A process-shared mutex over plain data `T` in shared memory: the Rust
/// idiom for Python's `multiprocessing.Lock` plus the data it protects.
///
/// Clone it to share between threads; pass it to a child process as its
/// argument (or send it over a [`Connection`](crate::ipc::Connection)) to
/// share between processes. `T` must be [`Pod`] (plain old data: integers,
/// floats, arrays of them, `#[derive(Pod, Zeroable)]` structs) since another
/// process reads its bytes.
///
/// ```
/// use multiproc::process::Process;
/// use multiproc::sync::Mutex;
/// let tickets = Mutex::new(100u32)?;
/// let mut sellers: Vec<_> = (0..2)
///     .map(|_| Process::start(|t: Mutex<u32>| for _ in 0..10 {
///         *t.lock().unwrap() -= 1;
///     }, tickets.clone()))
///     .collect::<Result<_, _>>()?;
/// for s in &mut sellers { s.join()?; }
/// assert_eq!(*tickets.lock().unwrap(), 80);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Robustness
///
/// If the holder dies (killed, aborted) the next locker gets the lock within
/// milliseconds, inside a [`Poisoned`] error with cause
/// [`PoisonCause::OwnerDied`] — see the [module docs](super) for how. A panic
/// while holding the guard poisons it too, as in std. Poison stays until
/// [`clear_poison`](Self::clear_poison).
///
/// # Differences from the standard library
///
/// - `new` can fail (it creates a shared-memory segment) and returns
///   `io::Result`.
/// - `clone` gives another handle to the same mutex, not a copy of the data.
/// - `lock_timeout` exists (Python's `acquire(timeout=...)`).
#[derive(Clone, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Mutex<T: Pod> {
    cells: Cells<T>,
}

impl<T: Pod> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mutex")
            .field("locked", &self.cells.is_locked())
            .finish_non_exhaustive()
    }
}

/// A held [`Mutex`]: derefs to the data; unlocks on drop.
pub struct MutexGuard<'a, T: Pod> {
    pub(crate) mutex: &'a Mutex<T>,
}

impl<T: Pod> Mutex<T> {
    /// A new mutex holding `value`, in a fresh shared-memory segment.
    pub fn new(value: T) -> io::Result<Mutex<T>> {
        Ok(Mutex {
            cells: Cells::new(std::slice::from_ref(&value))?,
        })
    }

    fn take(&self, wait: Wait) -> Result<MutexGuard<'_, T>, TryLockError<MutexGuard<'_, T>>> {
        guarded(self.cells.acquire(wait), || MutexGuard { mutex: self })
    }

    /// Locks, waiting as long as it takes (a dead holder does not make it
    /// wait forever: see Robustness).
    pub fn lock(&self) -> Result<MutexGuard<'_, T>, Poisoned<MutexGuard<'_, T>>> {
        untimed(self.take(Wait::Forever))
    }

    /// Locks if nobody holds it.
    pub fn try_lock(&self) -> Result<MutexGuard<'_, T>, TryLockError<MutexGuard<'_, T>>> {
        self.take(Wait::No)
    }

    /// Locks, waiting at most `timeout`.
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<MutexGuard<'_, T>, TryLockError<MutexGuard<'_, T>>> {
        self.take(Wait::timeout(timeout))
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

impl<T: Pod> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the lock is held, so no other thread or process touches the
        // data; `T: Pod` makes any bytes there a valid `T`; the region holds
        // one aligned `T` (checked in `Cells::open`) and outlives the guard.
        unsafe { &*self.mutex.cells.ptr() }
    }
}

impl<T: Pod> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; the guard is unique, so is the reference.
        unsafe { &mut *self.mutex.cells.ptr() }
    }
}

impl<T: Pod> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.mutex.cells.release();
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: Pod> AsFd for Mutex<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.cells.as_fd()
    }
}

/// A process-shared lock without data; Python's `multiprocessing.Lock`.
///
/// ```
/// let lock = multiproc::sync::Lock::new()?;
/// {
///     let _held = lock.lock().unwrap();
///     assert!(lock.try_lock().is_err());
/// }
/// assert!(lock.try_lock().is_ok());
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// A `Mutex<()>`-like guard API; see [`Mutex`] for robustness and sharing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lock(Mutex<u8>);

/// A held [`Lock`].
pub type LockGuard<'a> = MutexGuard<'a, u8>;

impl Lock {
    /// A new, free lock in a fresh shared-memory segment.
    pub fn new() -> io::Result<Lock> {
        Ok(Lock(Mutex::new(0)?))
    }
    /// See [`Mutex::lock`].
    pub fn lock(&self) -> Result<LockGuard<'_>, Poisoned<LockGuard<'_>>> {
        self.0.lock()
    }
    /// See [`Mutex::try_lock`].
    pub fn try_lock(&self) -> Result<LockGuard<'_>, TryLockError<LockGuard<'_>>> {
        self.0.try_lock()
    }
    /// See [`Mutex::lock_timeout`].
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<LockGuard<'_>, TryLockError<LockGuard<'_>>> {
        self.0.lock_timeout(timeout)
    }
    /// See [`Mutex::is_poisoned`].
    pub fn is_poisoned(&self) -> bool {
        self.0.is_poisoned()
    }
    /// See [`Mutex::clear_poison`].
    pub fn clear_poison(&self) {
        self.0.clear_poison()
    }
}
