//! The executable image: naming a function across processes of one binary.
//!
//! ASLR moves the whole image by one amount, so the distance between two
//! functions of the same binary is the same in every process that runs it.
//! A function is therefore sent as its offset from [`anchor`], and turned back
//! into a pointer on the other side. This is sound only when both processes run
//! the very same executable, which [`ImageId`] checks.

use std::marker::PhantomData;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The reference point that entry offsets are measured from.
#[inline(never)]
fn anchor() -> i32 {
    std::hint::black_box(0x6d70)
}

/// A second function whose distance from [`anchor`] differs between builds
/// almost always; part of the image identity.
#[inline(never)]
fn probe() -> i32 {
    std::hint::black_box(0x7072)
}

fn address_of_anchor() -> usize {
    anchor as fn() -> i32 as usize
}

/// Identity of the running executable: the file (device, inode, size,
/// modification time) and a fingerprint of its code layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ImageId {
    dev: u64,
    ino: u64,
    size: i64,
    mtime: i64,
    mtime_nsec: i64,
    layout: i64,
}

impl ImageId {
    /// The identity of another build of this program: same file, other
    /// modification time (for testing the refusal).
    #[cfg(test)]
    pub(crate) fn other_build() -> ImageId {
        ImageId {
            mtime: Self::current().mtime + 1,
            ..Self::current()
        }
    }

    /// The identity of this process's executable, computed once.
    pub(crate) fn current() -> ImageId {
        static ID: OnceLock<ImageId> = OnceLock::new();
        *ID.get_or_init(|| {
            let layout = probe as fn() -> i32 as usize as i64 - address_of_anchor() as i64;
            match rustix::fs::stat("/proc/self/exe") {
                Ok(st) => ImageId {
                    dev: st.st_dev,
                    ino: st.st_ino,
                    size: st.st_size,
                    mtime: st.st_mtime,
                    mtime_nsec: st.st_mtime_nsec as i64,
                    layout,
                },
                Err(_) => ImageId {
                    dev: 0,
                    ino: 0,
                    size: 0,
                    mtime: 0,
                    mtime_nsec: 0,
                    layout,
                },
            }
        })
    }
}

/// A function `fn(C) -> i32` of this executable, named by its offset from the
/// anchor so that it can be sent to another process of the same executable.
pub(crate) struct Entry<C> {
    offset: i64,
    _sig: PhantomData<fn(C) -> i32>,
}

impl<C> Clone for Entry<C> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<C> Copy for Entry<C> {}

impl<C> Entry<C> {
    /// Names `f`.
    pub(crate) fn of(f: fn(C) -> i32) -> Self {
        Entry {
            offset: f as usize as i64 - address_of_anchor() as i64,
            _sig: PhantomData,
        }
    }

    /// The offset, for the wire.
    pub(crate) fn to_wire(self) -> i64 {
        self.offset
    }

    /// Turns an offset received from another process back into an entry.
    ///
    /// Returns `None` unless `image` is this process's own [`ImageId`].
    ///
    /// # Safety
    ///
    /// `offset` must have been produced by [`Entry::to_wire`] for an
    /// `Entry<C>` (the same `C`) in a process running this image. The image
    /// check cannot tell a forged offset from a real one: calling the entry
    /// jumps to `anchor + offset`, so an offset from anyone else is arbitrary
    /// code execution. The crate reads offsets only from sockets that the
    /// parent created for this process (or for its fork server), which no
    /// other process can write to.
    pub(crate) unsafe fn from_wire(image: &ImageId, offset: i64) -> Option<Self> {
        (*image == ImageId::current()).then_some(Entry {
            offset,
            _sig: PhantomData,
        })
    }

    /// Calls the function.
    pub(crate) fn call(self, ctx: C) -> i32 {
        let addr = (address_of_anchor() as i64 + self.offset) as usize;
        // SAFETY: `self` was built by `Entry::of` from a `fn(C) -> i32`, in this
        // process or in one running the same executable image (checked by
        // `from_wire`, whose caller vouched for the offset's origin); the image is shifted as a whole by ASLR, so
        // anchor + offset is that function's address here, and a function
        // pointer has the size and representation of `usize` on the supported
        // targets.
        let f: fn(C) -> i32 = unsafe { std::mem::transmute::<usize, fn(C) -> i32>(addr) };
        f(ctx)
    }
}

/// Produces the value of a zero-sized `Copy` function type — a fn item or a
/// closure that captures nothing — in a process that did not create it.
///
/// Fails to compile (at monomorphization) when `F` is not zero-sized, that is
/// when a closure captures something: this is the crate's one capture check,
/// and its message is the one a user sees.
pub(crate) fn zero_sized_fn<F: Copy>() -> F {
    const {
        assert!(
            std::mem::size_of::<F>() == 0,
            "multiproc: a closure run in another process must not capture anything; \
             pass the data it needs as the argument instead"
        )
    };
    // SAFETY: `F` is zero-sized (checked above at compile time), so it has no
    // bytes to initialize; it is `Copy`, so it has no destructor; and only fn
    // items and closures implement the `Fn*` traits that the callers require,
    // so `F` is a function type that captured nothing, whose value the parent
    // process held (the public API takes it by value).
    unsafe { std::mem::zeroed::<F>() }
}

/// The identity of this build across machines: SHA-256 of the executable's
/// content and of the target it was compiled for, computed once. Unlike
/// [`ImageId`] (the file's inode and times, which differ on every machine it
/// is copied to), two copies of one build agree, and two builds never do.
#[cfg(feature = "redis")]
pub(crate) fn build_digest() -> std::io::Result<[u8; 32]> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    static DIGEST: OnceLock<Result<[u8; 32], std::io::ErrorKind>> = OnceLock::new();
    let digest = DIGEST.get_or_init(|| {
        let mut file = std::fs::File::open("/proc/self/exe").map_err(|e| e.kind())?;
        let mut hasher = Sha256::new();
        hasher.update(std::env::consts::ARCH.as_bytes());
        hasher.update(std::env::consts::OS.as_bytes());
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).map_err(|e| e.kind())?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok(hasher.finalize().into())
    });
    digest.map_err(|kind| {
        std::io::Error::new(
            kind,
            "cannot read this program's executable to identify its build",
        )
    })
}
