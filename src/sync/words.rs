//! `Words`: a fixed array of atomic 64-bit words in shared memory, for the
//! lock-free protocols of the layers above (the process pool's claims
//! board). Safe to use from any process that holds a handle: every access
//! is an atomic operation.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64};

use super::region::{Region, SharedSafe};

/// The number of words in a [`Words`] array.
pub(crate) const WORDS: usize = 72;
/// The number of 32-bit words beside them, which a process can sleep on
/// (a futex is 32 bits).
pub(crate) const WORDS32: usize = 2;

#[repr(C)]
pub(crate) struct WordsState {
    words: [AtomicU64; WORDS],
    words32: [AtomicU32; WORDS32],
}

// SAFETY: atomics only; all zero is a valid array of zero words.
unsafe impl SharedSafe for WordsState {}

/// [`WORDS`] atomic words shared between processes; a handle, passed to
/// another process as its descriptor (`Clone` maps it again).
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub(crate) struct Words {
    region: Region<WordsState>,
}

impl fmt::Debug for Words {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Words").finish_non_exhaustive()
    }
}

impl Words {
    /// A new array, every word zero.
    pub(crate) fn new() -> io::Result<Words> {
        Ok(Words {
            region: Region::create(0, |_| {})?,
        })
    }

    /// Word `i` (panics past [`WORDS`]: a bug of the caller).
    pub(crate) fn get(&self, i: usize) -> &AtomicU64 {
        &self.region.header().words[i]
    }

    /// 32-bit word `i`, to sleep on with [`wait`](crate::os::shm::wait)
    /// (panics past [`WORDS32`]).
    pub(crate) fn get32(&self, i: usize) -> &AtomicU32 {
        &self.region.header().words32[i]
    }
}
