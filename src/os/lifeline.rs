//! The program's lifeline: a pipe whose write end only this process holds.
//! A child given a read end sees it hang up when the program ends, however
//! it ends — `main` returns, `exit`, a crash, SIGKILL — because the kernel
//! closes the write end with the process. That is how daemon processes and
//! pool workers die with their program (Python's `daemon`, made to hold even
//! when the parent is killed), with no signal tied to the thread that
//! started them (as `PR_SET_PDEATHSIG` is).
//!
//! The write end is close-on-exec, so a re-executed child never holds it; a
//! forked child closes its copy first thing ([`forget_after_fork`]), so the
//! pipe hangs up with this process alone.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;
use rustix::pipe::PipeFlags;

/// The two ends, `(read + 1) << 32 | (write + 1)`; 0 before first use (and
/// in a forked child, which forgets its parent's).
static ENDS: AtomicU64 = AtomicU64::new(0);

fn pack(read: RawFd, write: RawFd) -> u64 {
    ((read as u64 + 1) << 32) | (write as u64 + 1)
}

fn unpack(ends: u64) -> (RawFd, RawFd) {
    (
        ((ends >> 32) - 1) as RawFd,
        ((ends & 0xffff_ffff) - 1) as RawFd,
    )
}

/// Makes the lifeline if this process has none yet; returns its ends.
fn ensure() -> io::Result<u64> {
    let ends = ENDS.load(Ordering::Acquire);
    if ends != 0 {
        return Ok(ends);
    }
    let (read, write) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC)?;
    let new = pack(read.as_raw_fd(), write.as_raw_fd());
    match ENDS.compare_exchange(0, new, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            // Owned by the static from now on: open for the process's life.
            let _ = (read.into_raw_fd(), write.into_raw_fd());
            Ok(new)
        }
        Err(won) => Ok(won), // another thread made it first; ours closes
    }
}

/// Makes sure the lifeline exists before a fork, so that the child's copy
/// of [`ENDS`] names it (a lifeline made by another thread during the fork
/// would otherwise be held open by a child that does not know it).
pub(crate) fn before_fork() {
    let _ = ensure();
}

/// A new descriptor for the read end of this process's lifeline, to hand to
/// a child that must die with this process.
pub(crate) fn read_end() -> io::Result<OwnedFd> {
    let (read, _) = unpack(ensure()?);
    // SAFETY: `read` came from `ensure`, which never closes a published end;
    // only a forked child closes its copies, and it does so before anything
    // else runs in it. The borrow lasts for the `dup` call only.
    let fd = unsafe { BorrowedFd::borrow_raw(read) };
    crate::os::sock::dup(fd)
}

/// In a child just forked, while it has one thread: closes its copies of
/// the parent's lifeline, so that the parent's lifeline hangs up when the
/// parent ends whatever this child does. A read end the child was handed
/// ([`read_end`]) is a separate descriptor and stays open.
pub(crate) fn forget_after_fork() {
    let ends = ENDS.swap(0, Ordering::AcqRel);
    if ends != 0 {
        let (read, write) = unpack(ends);
        // SAFETY: the descriptors named by `ENDS` were owned by the static
        // in the parent; in this child the static's copy was just taken out,
        // so these are the only owners, dropped (closed) at once.
        drop(unsafe { (OwnedFd::from_raw_fd(read), OwnedFd::from_raw_fd(write)) });
    }
}

/// Whether `end` (a lifeline's read end) has hung up: the program that made
/// it has ended.
pub(crate) fn hung_up(end: BorrowedFd<'_>) -> bool {
    let mut fds = [PollFd::from_borrowed_fd(end, PollFlags::IN)];
    matches!(rustix::event::poll(&mut fds, Some(&rustix::time::Timespec { tv_sec: 0, tv_nsec: 0 })), Ok(n) if n > 0)
}

/// Ends this process (SIGKILL) as soon as `end`, the read end of its
/// parent's lifeline, hangs up: a thread waits for it. If the parent is
/// already gone, this process ends before this returns.
pub(crate) fn die_with(end: OwnedFd) -> io::Result<()> {
    if hung_up(end.as_fd()) {
        kill_self();
    }
    std::thread::Builder::new()
        .name("multiproc-lifeline".into())
        .spawn(move || {
            let mut fds = [PollFd::from_borrowed_fd(end.as_fd(), PollFlags::IN)];
            loop {
                match rustix::event::poll(&mut fds, None) {
                    // A pipe nobody writes to is ready only once it hangs up.
                    Ok(_) => break,
                    Err(Errno::INTR) => {}
                    // Out of memory for the poll, say: look again soon.
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
                }
            }
            kill_self()
        })?;
    Ok(())
}

fn kill_self() -> ! {
    let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    // SIGKILL cannot be caught: this is not reached, but in case it were,
    // leave at once.
    crate::os::proc::exit_now(137)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_read_end_hangs_up_only_when_every_write_end_is_closed() {
        let end = read_end().unwrap();
        assert!(!hung_up(end.as_fd()), "this process holds the write end");
        assert_eq!(ensure().unwrap(), ENDS.load(Ordering::Acquire), "made once");
        let (r, w) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC).unwrap();
        assert!(!hung_up(r.as_fd()));
        drop(w);
        assert!(hung_up(r.as_fd()));
    }
}
