//! `Mutex<T>`: plain data in shared memory under a robust process-shared
//! lock; `Lock`: the same lock without data (Python's `multiprocessing.Lock`).

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytemuck::Pod;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::raw::{Acquired, RawLock};
use super::region::{Region, SharedSafe};
use crate::blocking::deadline_after;

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
    raw: RawLock,
    /// 0, or a `PoisonCause` + 1.
    poison: AtomicU32,
}

// SAFETY: atomics only; all zero is "free, not poisoned".
unsafe impl SharedSafe for LockState {}

fn cause_code(c: PoisonCause) -> u32 {
    match c {
        PoisonCause::OwnerDied => 1,
        PoisonCause::Panicked => 2,
    }
}

impl LockState {
    /// Takes the lock; `Ok(poisoned cause)` or `Err(())` on timeout.
    fn acquire(&self, deadline: Option<Instant>) -> Result<Option<PoisonCause>, ()> {
        let got = self.raw.lock(deadline).ok_or(())?;
        if got == Acquired::OwnerDied {
            let _ = self.poison.compare_exchange(
                0,
                cause_code(PoisonCause::OwnerDied),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        Ok(self.poisoned())
    }

    fn try_acquire(&self) -> Option<Option<PoisonCause>> {
        let got = self.raw.try_lock()?;
        if got == Acquired::OwnerDied {
            let _ = self
                .poison
                .compare_exchange(0, 1, Ordering::Relaxed, Ordering::Relaxed);
        }
        Some(self.poisoned())
    }

    fn poisoned(&self) -> Option<PoisonCause> {
        match self.poison.load(Ordering::Relaxed) {
            0 => None,
            1 => Some(PoisonCause::OwnerDied),
            _ => Some(PoisonCause::Panicked),
        }
    }

    fn release(&self) {
        if std::thread::panicking() {
            let _ = self.poison.compare_exchange(
                0,
                cause_code(PoisonCause::Panicked),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        self.raw.unlock();
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
/// [`PoisonCause::OwnerDied`] — see [`raw`](super) for how. A panic while
/// holding the guard poisons it too, as in std. Poison stays until
/// [`clear_poison`](Self::clear_poison).
///
/// # Differences from the standard library
///
/// - `new` can fail (it creates a shared-memory segment) and returns
///   `io::Result`.
/// - `clone` gives another handle to the same mutex, not a copy of the data.
pub struct Mutex<T: Pod> {
    region: Region<LockState>,
    _data: PhantomData<T>,
}

impl<T: Pod> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mutex")
            .field("locked", &self.region.header().raw.is_locked())
            .finish_non_exhaustive()
    }
}

/// A held [`Mutex`]: derefs to the data; unlocks on drop.
pub struct MutexGuard<'a, T: Pod> {
    mutex: &'a Mutex<T>,
}

impl<T: Pod> Mutex<T> {
    /// A new mutex holding `value`, in a fresh shared-memory segment.
    pub fn new(value: T) -> io::Result<Mutex<T>> {
        let region = Region::<LockState>::create(size_of::<T>().max(1), |_| {})?;
        let m: Mutex<T> = Mutex {
            region,
            _data: PhantomData,
        };
        // SAFETY: nobody else can see the fresh region yet.
        unsafe { m.data().write(value) };
        Ok(m)
    }

    fn data(&self) -> *mut T {
        const { assert!(align_of::<T>() <= 64) };
        self.region.tail().0.cast::<T>()
    }

    fn guard(
        &self,
        cause: Option<PoisonCause>,
    ) -> Result<MutexGuard<'_, T>, Poisoned<MutexGuard<'_, T>>> {
        let guard = MutexGuard { mutex: self };
        match cause {
            None => Ok(guard),
            Some(cause) => Err(Poisoned { guard, cause }),
        }
    }

    /// Locks, waiting as long as it takes (a dead holder does not make it
    /// wait forever: see Robustness).
    pub fn lock(&self) -> Result<MutexGuard<'_, T>, Poisoned<MutexGuard<'_, T>>> {
        let cause = self.region.header().acquire(None).expect("no deadline");
        self.guard(cause)
    }

    /// Locks if nobody holds it.
    pub fn try_lock(&self) -> Result<MutexGuard<'_, T>, TryLockError<MutexGuard<'_, T>>> {
        let cause = self
            .region
            .header()
            .try_acquire()
            .ok_or(TryLockError::WouldBlock)?;
        Ok(self.guard(cause)?)
    }

    /// Locks, waiting at most `timeout`.
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<MutexGuard<'_, T>, TryLockError<MutexGuard<'_, T>>> {
        let cause = self
            .region
            .header()
            .acquire(Some(deadline_after(timeout)))
            .map_err(|()| TryLockError::WouldBlock)?;
        Ok(self.guard(cause)?)
    }

    /// `true` if a holder died or panicked and nobody cleared it since.
    pub fn is_poisoned(&self) -> bool {
        self.region.header().poisoned().is_some()
    }

    /// Declares the data consistent again.
    pub fn clear_poison(&self) {
        self.region.header().poison.store(0, Ordering::Relaxed);
    }
}

impl<T: Pod> Clone for Mutex<T> {
    /// Another handle to the same shared mutex.
    fn clone(&self) -> Self {
        Mutex {
            region: self.region.try_clone().expect("mapping a segment again"),
            _data: PhantomData,
        }
    }
}

impl<T: Pod> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the lock is held, so no other thread or process touches the
        // data; `T: Pod` makes any bytes there a valid `T`; the region is
        // aligned for `T` and outlives the guard.
        unsafe { &*self.mutex.data() }
    }
}

impl<T: Pod> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; the guard is unique, so is the reference.
        unsafe { &mut *self.mutex.data() }
    }
}

impl<T: Pod> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.mutex.region.header().release();
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: Pod> AsFd for Mutex<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.region.as_fd()
    }
}

impl<T: Pod> Serialize for Mutex<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::codec::handles::serialize_fd(self.region.as_fd(), s)
    }
}

impl<'de, T: Pod> Deserialize<'de> for Mutex<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let fd: OwnedFd = crate::codec::handles::deserialize_fd(d)?;
        let region = Region::open(fd).map_err(serde::de::Error::custom)?;
        if region.tail().1 < size_of::<T>() {
            return Err(serde::de::Error::custom(
                "shared-memory handle refused: too small for the type",
            ));
        }
        Ok(Mutex {
            region,
            _data: PhantomData,
        })
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
