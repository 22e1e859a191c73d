//! Reading another process's memory (`process_vm_readv`): a large value
//! crosses from a worker process in one copy, made by the reader, instead
//! of two through a socket (into the kernel and out again) with a wake-up
//! per socket buffer.
//!
//! The kernel allows it where the reader may trace the other process: the
//! same user, and — under Yama's `ptrace_scope` 1 — an ancestor of it (a
//! pool reads its own workers, started by it or by its fork server). Where
//! it is refused ([`read`]'s error), the caller falls back on its socket.

use std::io;
use std::mem::MaybeUninit;

/// A part smaller than this is not worth a thread of its own.
const PART_MIN: usize = 8 << 20;
/// At most this many threads copy one value.
const PARTS_MAX: usize = 4;

/// Copies the `len` bytes at `addr` in process `pid` into a new vector.
/// A large value is copied in parts, by up to four threads at once (the
/// caller's and scoped ones), as the machine's cores allow: on the 2-core
/// machine 128 MiB took 50 ms in one part, 29 ms in two.
///
/// An error leaves nothing behind: `EPERM` (not allowed to read that
/// process), `ESRCH` (it is gone), `EFAULT` (no such memory there), or no
/// thread to be had for a part. The caller must make sure `pid` still
/// names the process it meant once the copy is done (a pidfd, say): a pid
/// is reused once its process is reaped.
pub(crate) fn read(pid: u32, addr: u64, len: usize) -> io::Result<Vec<u8>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let parts = (len / PART_MIN).clamp(1, cores.min(PARTS_MAX));
    let mut out: Vec<u8> = Vec::new();
    out.try_reserve_exact(len)
        .map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    let spare = &mut out.spare_capacity_mut()[..len];
    let part_len = len.div_ceil(parts).max(1);
    let results: Vec<io::Result<()>> = std::thread::scope(|s| {
        let mut chunks = spare.chunks_mut(part_len).enumerate();
        let first = chunks.next();
        let others: Vec<io::Result<_>> = chunks
            .map(|(i, chunk)| {
                let at = addr + (i * part_len) as u64;
                std::thread::Builder::new()
                    .name("multiproc-copy".into())
                    .spawn_scoped(s, move || read_into(pid, at, chunk))
            })
            .collect();
        let mut results = vec![first.map_or(Ok(()), |(_, chunk)| read_into(pid, addr, chunk))];
        for other in others {
            results.push(other.and_then(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("a copying thread panicked")))
            }));
        }
        results
    });
    for r in results {
        r?;
    }
    // SAFETY: the capacity is at least `len`, and every one of its first
    // `len` bytes was written by the kernel: each part's copy returned only
    // once it had written the whole part (`read_into`).
    unsafe { out.set_len(len) };
    Ok(out)
}

/// Fills `into` with the bytes at `addr` in process `pid`, whole or not at
/// all (an error).
fn read_into(pid: u32, mut addr: u64, into: &mut [MaybeUninit<u8>]) -> io::Result<()> {
    let mut done = 0;
    while done < into.len() {
        let rest = &mut into[done..];
        let local = libc::iovec {
            iov_base: rest.as_mut_ptr().cast(),
            iov_len: rest.len(),
        };
        let remote = libc::iovec {
            iov_base: addr as usize as *mut libc::c_void,
            iov_len: rest.len(),
        };
        // SAFETY: `local` describes `rest`, memory this thread holds
        // exclusively (`&mut`), into which the kernel writes at most
        // `rest.len()` bytes; `remote` is only read, in the other process,
        // by the kernel, which checks it (EFAULT).
        let n = unsafe { libc::process_vm_readv(pid as libc::pid_t, &local, 1, &remote, 1, 0) };
        match n {
            -1 => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            // A partial copy stops where the other process's memory does;
            // the next call says why.
            0 => return Err(io::Error::from_raw_os_error(libc::EFAULT)),
            n => {
                done += n as usize;
                addr += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn reads_this_processs_memory_whole_in_parts() {
        let me = std::process::id();
        let src: Vec<u8> = (0..(20usize << 20)).map(|i| (i % 251) as u8).collect();
        let got = read(me, src.as_ptr() as u64, src.len()).unwrap();
        assert!(got == src);
        let small = read(me, src[5..].as_ptr() as u64, 1000).unwrap();
        assert_eq!(small, src[5..1005]);
        assert_eq!(read(me, src.as_ptr() as u64, 0).unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn memory_that_is_not_there_is_an_error() {
        let e = read(std::process::id(), 8, 4096).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EFAULT));
    }
}
