//! A typed header at the start of a shared segment, and the bytes after it.

use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::os::shm::Segment;

/// A type that may live in memory shared with other processes.
///
/// # Safety
///
/// Every bit pattern, all zeros included, must be a valid value (another
/// process may have written any bytes), the type must hold no pointers or
/// descriptors (they mean nothing in another process), and all mutation
/// through `&Self` must go through atomics or through memory whose access is
/// synchronized by atomics of the type.
pub(crate) unsafe trait SharedSafe: Sync + Send {}

/// Checked by a process that maps a region it did not create.
#[repr(C)]
struct Preamble {
    magic: AtomicU64,
    layout: AtomicU64,
}

const MAGIC: u64 = u64::from_le_bytes(*b"mprocshm");
/// The header starts two cache lines in (a pair, as adjacent-line
/// prefetching moves them together), and so does the data after it.
const ALIGN: usize = 128;

/// A shared segment that starts with an `H` and has `tail` bytes after it.
#[derive(Debug)]
pub(crate) struct Region<H: SharedSafe> {
    seg: Segment,
    _header: PhantomData<H>,
}

fn header_end<H>() -> usize {
    (ALIGN + size_of::<H>()).div_ceil(ALIGN) * ALIGN
}

/// A fingerprint of `H`'s layout (name and size): a segment made for another
/// type is refused rather than misread. FNV-1a, the same in every process.
fn layout<H>() -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let size = size_of::<H>() as u64;
    for b in std::any::type_name::<H>().bytes().chain(size.to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    h
}

impl<H: SharedSafe> Region<H> {
    /// A new region, zero-filled, with `tail` bytes after the header.
    /// `init` sets up the header before anyone else can see it.
    pub(crate) fn create(tail: usize, init: impl FnOnce(&H)) -> io::Result<Region<H>> {
        const { assert!(align_of::<H>() <= ALIGN) };
        let len = header_end::<H>()
            .checked_add(tail)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "region too large"))?;
        let name = std::any::type_name::<H>()
            .rsplit("::")
            .next()
            .unwrap_or("multiproc");
        let region = Region {
            seg: Segment::create(name, len)?,
            _header: PhantomData,
        };
        init(region.header());
        let pre = region.preamble();
        pre.layout.store(layout::<H>(), Ordering::Relaxed);
        pre.magic.store(MAGIC, Ordering::Release);
        Ok(region)
    }

    /// Maps a region made by [`create`](Self::create), in this process or
    /// another, from its descriptor.
    pub(crate) fn open(fd: OwnedFd) -> io::Result<Region<H>> {
        let seg = Segment::open(fd)?;
        if seg.len() < header_end::<H>() {
            return Err(malformed("too small"));
        }
        let region = Region {
            seg,
            _header: PhantomData,
        };
        let pre = region.preamble();
        if pre.magic.load(Ordering::Acquire) != MAGIC {
            return Err(malformed("not a multiproc segment"));
        }
        if pre.layout.load(Ordering::Relaxed) != layout::<H>() {
            return Err(malformed("made for another type"));
        }
        Ok(region)
    }

    fn preamble(&self) -> &Preamble {
        // SAFETY: the segment is at least `header_end` ≥ 128 bytes, page
        // aligned, lives as long as `self`, and `Preamble` is two atomics
        // (any bit pattern valid, mutation only through atomics).
        unsafe { &*self.seg.as_ptr().cast::<Preamble>() }
    }

    /// The header.
    pub(crate) fn header(&self) -> &H {
        // SAFETY: `ALIGN` bytes in, the segment holds `size_of::<H>()` more
        // (checked in `open`, sized in `create`), aligned (the mapping is page
        // aligned and `align_of::<H>() <= ALIGN`), alive as long as `self`;
        // `H: SharedSafe` makes any bytes found there a valid `H` whose
        // mutation goes through atomics.
        unsafe { &*self.seg.as_ptr().add(ALIGN).cast::<H>() }
    }

    /// The bytes after the header: pointer and length, valid while `self`
    /// lives. Accesses must be synchronized by the header's atomics.
    pub(crate) fn tail(&self) -> (*mut u8, usize) {
        let end = header_end::<H>();
        // SAFETY: `end <= len` (checked in `open`, sized in `create`): the
        // pointer stays inside the mapping (or one past its end).
        (unsafe { self.seg.as_ptr().add(end) }, self.seg.len() - end)
    }
}

impl<H: SharedSafe> AsFd for Region<H> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.seg.as_fd()
    }
}

fn malformed(why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("shared-memory handle refused: {why}"),
    )
}

impl<H: SharedSafe> Clone for Region<H> {
    /// Another mapping of the same region.
    fn clone(&self) -> Self {
        Region {
            seg: self.seg.try_clone().expect("mapping a segment again"),
            _header: PhantomData,
        }
    }
}

/// A region travels as its descriptor (see [`codec::handles`]); the
/// receiving side maps it and checks it was made for `H`.
///
/// [`codec::handles`]: crate::codec::handles
impl<H: SharedSafe> Serialize for Region<H> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::codec::handles::serialize_fd(self.seg.as_fd(), s)
    }
}

impl<'de, H: SharedSafe> Deserialize<'de> for Region<H> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let fd = crate::codec::handles::deserialize_fd(d)?;
        Region::open(fd).map_err(serde::de::Error::custom)
    }
}

/// `AsFd` for a public handle that is one `region` (its `Clone`, `Serialize`
/// and `Deserialize` derive from the region's).
macro_rules! shared_handle {
    ($handle:ident) => {
        impl std::os::fd::AsFd for $handle {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                self.region.as_fd()
            }
        }
    };
}

pub(crate) use shared_handle;
