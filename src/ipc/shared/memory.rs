//! `SharedMemory`: a named segment for processes we did not start.

use std::fmt;
use std::io;

use std::os::fd::AsFd;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec::handles::{Fd, FdRef};
use crate::os::shm::Segment;

/// A named block of shared memory (`/dev/shm/NAME`); Python's
/// `multiprocessing.shared_memory.SharedMemory`.
///
/// For processes that were not started by us (any program can open it by
/// name). Unlike every other shared object of this crate, a named segment
/// outlives its processes until [`unlink`](Self::unlink) removes the name —
/// as in Python. Between processes we start, prefer [`Array`](super::Array):
/// anonymous, locked, and never left behind.
///
/// A `SharedMemory` also travels as an argument — to a
/// [`Process`](crate::process::Process), a pool task, over a
/// [`Connection`](crate::ipc::Connection) — by its descriptor, with its
/// name (so the receiver may [`unlink`](Self::unlink) it): no open by name,
/// and it works after the name is gone.
///
/// ```
/// use multiproc::shared::SharedMemory;
/// let name = format!("mp-doc-{}", std::process::id());
/// let a = SharedMemory::create(&name, 4096)?;
/// a.write_at(0, b"hello")?;
/// let b = SharedMemory::open(&name)?;   // say, in another program
/// let mut buf = [0u8; 5];
/// b.read_at(0, &mut buf)?;
/// assert_eq!(&buf, b"hello");
/// a.unlink()?;
/// assert!(SharedMemory::open(&name).is_err());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct SharedMemory {
    /// Clones share one mapping.
    seg: Arc<Segment>,
    name: String,
}

impl Serialize for SharedMemory {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (FdRef(self.seg.as_fd()), &self.name).serialize(s)
    }
}

impl<'de> Deserialize<'de> for SharedMemory {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (Fd(fd), name) = <(Fd, String)>::deserialize(d)?;
        let name = path(&name).map_err(serde::de::Error::custom)?;
        let seg = Segment::open(fd).map_err(serde::de::Error::custom)?;
        Ok(SharedMemory {
            seg: Arc::new(seg),
            name,
        })
    }
}

impl fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedMemory")
            .field("name", &self.name)
            .field("len", &self.len())
            .finish()
    }
}

/// `/name` for the kernel, refusing names with another `/` or none at all.
fn path(name: &str) -> io::Result<String> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    if bare.is_empty() || bare.contains('/') || bare.contains('\0') || bare.len() > 250 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a shared-memory name (one component, no '/')"),
        ));
    }
    Ok(format!("/{bare}"))
}

impl SharedMemory {
    /// Creates a segment of `size` zero bytes under `name` (an error if the
    /// name exists: [`io::ErrorKind::AlreadyExists`]). Readable and writable
    /// by its owner only.
    pub fn create(name: &str, size: usize) -> io::Result<SharedMemory> {
        let p = path(name)?;
        Ok(SharedMemory {
            seg: Arc::new(Segment::named(&p, Some(size))?),
            name: p,
        })
    }

    /// Opens an existing segment by name ([`io::ErrorKind::NotFound`] if
    /// there is none).
    pub fn open(name: &str) -> io::Result<SharedMemory> {
        let p = path(name)?;
        Ok(SharedMemory {
            seg: Arc::new(Segment::named(&p, None)?),
            name: p,
        })
    }

    /// The name, with its leading `/`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The size in bytes.
    pub fn len(&self) -> usize {
        self.seg.len()
    }

    /// `false`: a segment is never empty.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Removes the name; mappings that exist stay valid until dropped.
    pub fn unlink(&self) -> io::Result<()> {
        Segment::unlink(&self.name)
    }

    fn range(&self, offset: usize, len: usize) -> io::Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len() => Ok(()),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "bytes {offset}..{} are outside the segment of {} bytes",
                    offset.saturating_add(len),
                    self.len()
                ),
            )),
        }
    }

    /// Copies `buf.len()` bytes from `offset` into `buf`. If another process
    /// writes the same bytes meanwhile, the copy may mix old and new bytes:
    /// synchronize through other means (a [`Lock`](crate::sync::Lock)).
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> io::Result<()> {
        self.range(offset, buf.len())?;
        // SAFETY: the range lies inside the mapping (checked); the bytes are
        // copied with volatile reads, one at a time, so a concurrent writer
        // in another process changes values, not the soundness of the copy.
        unsafe {
            let src = self.seg.as_ptr().add(offset);
            for (i, b) in buf.iter_mut().enumerate() {
                *b = src.add(i).read_volatile();
            }
        }
        Ok(())
    }

    /// Copies `data` into the segment at `offset` (see
    /// [`read_at`](Self::read_at) about concurrent access).
    pub fn write_at(&self, offset: usize, data: &[u8]) -> io::Result<()> {
        self.range(offset, data.len())?;
        // SAFETY: the range lies inside the mapping (checked); volatile
        // writes, as in `read_at`.
        unsafe {
            let dst = self.seg.as_ptr().add(offset);
            for (i, b) in data.iter().enumerate() {
                dst.add(i).write_volatile(*b);
            }
        }
        Ok(())
    }

    /// The whole segment as a byte slice.
    ///
    /// # Safety
    ///
    /// While the slice lives, no process (this one included) may write the
    /// segment.
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: the mapping covers `len` bytes and lives as long as `self`;
        // the caller rules out writers.
        unsafe { std::slice::from_raw_parts(self.seg.as_ptr(), self.len()) }
    }

    /// The whole segment as a mutable byte slice.
    ///
    /// # Safety
    ///
    /// While the slice lives, no other process or thread may read or write
    /// the segment, and no other slice of it may exist.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn as_mut_slice(&self) -> &mut [u8] {
        // SAFETY: as in `as_slice`; the caller guarantees exclusivity.
        unsafe { std::slice::from_raw_parts_mut(self.seg.as_ptr(), self.len()) }
    }
}
