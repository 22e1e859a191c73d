//! Shared-memory segments (`memfd_create` + `mmap`), futex waits and wakes
//! across processes, and the identity of a process instance.
//!
//! A segment is an anonymous memory file: it has no name in `/dev/shm` and
//! disappears when the last process that maps it or holds its descriptor is
//! gone, however it ended. It travels to other processes as its descriptor.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;
use std::time::Instant;

use rustix::io::Errno;
use rustix::mm::{MapFlags, ProtFlags};
use rustix::thread::futex;

/// A shared mapping of a memory file (and the file), unmapped on drop.
#[derive(Debug)]
struct Mapping {
    fd: OwnedFd,
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(fd: OwnedFd, len: usize, prot: ProtFlags) -> io::Result<Mapping> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a shared-memory segment cannot be empty",
            ));
        }
        // SAFETY: a fresh mapping chosen by the kernel (null hint) overlaps
        // nothing of ours; `fd` is a memory file of at least `len` bytes.
        let ptr =
            unsafe { rustix::mm::mmap(std::ptr::null_mut(), len, prot, MapFlags::SHARED, &fd, 0)? };
        let ptr =
            NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave null"))?;
        Ok(Mapping { fd, ptr, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly the mapping made in `new`, and no
        // reference into it outlives the segment that owns it (users borrow
        // from the segment).
        unsafe {
            let _ = rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// A mapping of a shared memory file, read-write, shared.
#[derive(Debug)]
pub(crate) struct Segment {
    map: Mapping,
}

// SAFETY: the mapping is plain memory shared by design; every user of the
// bytes synchronizes through atomics in them (see the `sync` and `ipc`
// layers), so the handle itself may move and be shared between threads.
unsafe impl Send for Segment {}
// SAFETY: as above.
unsafe impl Sync for Segment {}

impl Segment {
    /// A new zero-filled anonymous segment of `len` bytes (`name` shows in
    /// `/proc/PID/maps` only).
    pub(crate) fn create(name: &str, len: usize) -> io::Result<Segment> {
        let fd = rustix::fs::memfd_create(name, rustix::fs::MemfdFlags::CLOEXEC)?;
        rustix::fs::ftruncate(&fd, len as u64)?;
        Segment::map(fd, len)
    }

    /// Maps a segment received from another process; its size is the file's.
    pub(crate) fn open(fd: OwnedFd) -> io::Result<Segment> {
        let len = rustix::fs::fstat(&fd)?.st_size;
        let len = usize::try_from(len).map_err(|_| io::Error::other("segment size"))?;
        Segment::map(fd, len)
    }

    /// A named POSIX shared-memory object (`/dev/shm/NAME`), created when
    /// `create` (failing if it exists) or opened.
    pub(crate) fn named(name: &str, create: Option<usize>) -> io::Result<Segment> {
        use rustix::shm::{Mode, OFlags};
        let flags = match create {
            Some(_) => OFlags::RDWR | OFlags::CREATE | OFlags::EXCL,
            None => OFlags::RDWR,
        };
        let fd = rustix::shm::open(name, flags, Mode::RUSR | Mode::WUSR)?;
        match create {
            Some(len) => {
                // Whatever fails after the name exists removes it again.
                let made = rustix::fs::ftruncate(&fd, len as u64)
                    .map_err(io::Error::from)
                    .and_then(|()| Segment::map(fd, len));
                if made.is_err() {
                    let _ = rustix::shm::unlink(name);
                }
                made
            }
            None => Segment::open(fd),
        }
    }

    /// Removes a named object; processes that mapped it keep their mapping.
    pub(crate) fn unlink(name: &str) -> io::Result<()> {
        Ok(rustix::shm::unlink(name)?)
    }

    fn map(fd: OwnedFd, len: usize) -> io::Result<Segment> {
        Ok(Segment {
            map: Mapping::new(fd, len, ProtFlags::READ | ProtFlags::WRITE)?,
        })
    }

    /// The first byte; valid for [`len`](Self::len) bytes while `self` lives.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.map.ptr.as_ptr()
    }

    /// The size in bytes.
    pub(crate) fn len(&self) -> usize {
        self.map.len
    }

    /// Another mapping of the same memory (for a handle that is cloned).
    pub(crate) fn try_clone(&self) -> io::Result<Segment> {
        Segment::map(self.map.fd.try_clone()?, self.map.len)
    }
}

impl AsFd for Segment {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.map.fd.as_fd()
    }
}

/// A shared-memory file sealed read-only (`F_SEAL_WRITE`, `F_SEAL_SHRINK`,
/// `F_SEAL_GROW`, `F_SEAL_SEAL`), mapped read-only: the kernel refuses any
/// write to it by anyone, for ever, so its bytes may be lent out as a
/// plain `&[u8]` in every process that maps it.
#[derive(Debug)]
pub(crate) struct Sealed {
    map: Mapping,
}

// SAFETY: the bytes can never change (the seals forbid every write), so
// sharing the handle and reading them from any thread is race-free.
unsafe impl Send for Sealed {}
// SAFETY: as above.
unsafe impl Sync for Sealed {}

const READ_ONLY: rustix::fs::SealFlags = rustix::fs::SealFlags::WRITE
    .union(rustix::fs::SealFlags::SHRINK)
    .union(rustix::fs::SealFlags::GROW)
    .union(rustix::fs::SealFlags::SEAL);

impl Sealed {
    /// A new segment of `len` bytes (at least 1), zero-filled, then given
    /// to `fill` through a writable mapping that is gone before the seals
    /// go on.
    pub(crate) fn create(
        name: &str,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> io::Result<Sealed> {
        use rustix::fs::MemfdFlags;
        let len = len.max(1);
        let fd = rustix::fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
        rustix::fs::ftruncate(&fd, len as u64)?;
        let writable = Segment::map(fd, len)?;
        // SAFETY: the mapping is ours alone (the file was just made and
        // has not been shared), `len` bytes long, and lives until the end
        // of this block.
        fill(unsafe { std::slice::from_raw_parts_mut(writable.as_ptr(), writable.len()) });
        let fd = writable.map.fd.try_clone()?;
        drop(writable); // F_SEAL_WRITE needs no writable mapping left
        rustix::fs::fcntl_add_seals(&fd, READ_ONLY)?;
        Sealed::map(fd, len)
    }

    /// Maps a segment received from another process, after checking that
    /// it is sealed read-only (a writable one is refused: its bytes could
    /// change under a reader).
    pub(crate) fn open(fd: OwnedFd) -> io::Result<Sealed> {
        let seals = rustix::fs::fcntl_get_seals(&fd)?;
        if !seals.contains(READ_ONLY) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the shared memory is not sealed read-only",
            ));
        }
        let len = rustix::fs::fstat(&fd)?.st_size;
        let len = usize::try_from(len).map_err(|_| io::Error::other("segment size"))?;
        Sealed::map(fd, len)
    }

    fn map(fd: OwnedFd, len: usize) -> io::Result<Sealed> {
        // Sealed: the file can no longer shrink, so every page stays backed.
        Ok(Sealed {
            map: Mapping::new(fd, len, ProtFlags::READ)?,
        })
    }

    /// The bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes while `self` lives, and
        // the seals guarantee no process ever writes them.
        unsafe { std::slice::from_raw_parts(self.map.ptr.as_ptr(), self.map.len) }
    }
}

impl AsFd for Sealed {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.map.fd.as_fd()
    }
}

/// Sleeps while `*word == expected`, at most until `deadline`, across
/// processes (a shared futex). Returns on a wake, a timeout, a signal or a
/// changed value: callers re-check their condition.
pub(crate) fn wait(word: &AtomicU32, expected: u32, deadline: Option<Instant>) {
    let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
    if left == Some(std::time::Duration::ZERO) {
        // The kernel would arm a timer for nothing: a zero timeout took
        // ~120 µs here (the timer's slack).
        return;
    }
    let timeout = left.map(|left| rustix::time::Timespec {
        tv_sec: left.as_secs() as _,
        tv_nsec: left.subsec_nanos() as _,
    });
    match futex::wait(word, futex::Flags::empty(), expected, timeout.as_ref()) {
        Ok(()) | Err(Errno::AGAIN) | Err(Errno::INTR) | Err(Errno::TIMEDOUT) => {}
        Err(e) => panic!("futex wait on a mapped word failed: {e}"),
    }
}

/// Wakes up to `n` processes or threads sleeping on `word`.
pub(crate) fn wake(word: &AtomicU32, n: u32) {
    let _ = futex::wake(word, futex::Flags::empty(), n);
}

/// Who a process is: its pid and its start time (clock ticks since boot),
/// packed in 64 bits. Unlike a pid alone this is never reused: a new process
/// with the same pid starts at another time.
pub(crate) type ProcessId = u64;

/// This process's [`ProcessId`] cached; 0 until computed, and again in a
/// forked child (reset by a `pthread_atfork` handler).
static PROCESS_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

extern "C" fn forget_process_id() {
    PROCESS_ID.store(0, std::sync::atomic::Ordering::Relaxed);
}

/// This process's [`ProcessId`] (never 0), computed once per process — no
/// syscall on the lock fast path.
pub(crate) fn process_id() -> ProcessId {
    use std::sync::atomic::Ordering;
    let cached = PROCESS_ID.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| {
        // SAFETY: `forget_process_id` is async-signal-safe (one atomic
        // store) and lives for the whole program, as atfork handlers must.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(forget_process_id)) };
        assert_eq!(rc, 0, "pthread_atfork failed");
    });
    let pid = std::process::id();
    let start = start_time(pid).expect("/proc/self/stat is readable");
    let id = pack(pid, start);
    PROCESS_ID.store(id, Ordering::Relaxed);
    id
}

fn pack(pid: u32, start: u64) -> ProcessId {
    (u64::from(pid) << 32) | (start & 0xffff_ffff)
}

/// The start time of `pid` and whether it has ended (a zombie counts as
/// ended); `None` if there is no such process.
fn stat(pid: u32) -> Option<(u64, bool)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ppid ...: comm may hold anything, so split after ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3 of the line, starttime field 22.
    let state = *fields.first()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((start, state == "Z" || state == "X"))
}

fn start_time(pid: u32) -> Option<u64> {
    stat(pid).map(|(s, _)| s)
}

/// `true` while the process instance `id` runs.
pub(crate) fn is_alive(id: ProcessId) -> bool {
    let pid = (id >> 32) as u32;
    match stat(pid) {
        Some((start, ended)) => !ended && pack(pid, start) == id,
        None => false,
    }
}
