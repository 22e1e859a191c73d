//! What a re-executed child finds in its environment.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use crate::os::proc::MARKER;

/// Why this process was started, read from the marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Run one function, then exit.
    Child,
    /// Serve fork requests until the parent goes away.
    ForkServer,
}

/// In a process started by [`crate::os::proc::spawn_self`]: removes the marker
/// from the environment (so that programs this one starts do not see it),
/// takes ownership of the inherited descriptor and marks it close-on-exec.
/// Returns `None` in any other process.
///
/// Must only be called from the constructor that runs before `main`, while the
/// process has a single thread; it is called once.
pub(crate) fn take_marker() -> Option<(OwnedFd, Mode)> {
    let value = std::env::var_os(MARKER)?;
    // SAFETY: called once, from the pre-`main` constructor of a process that
    // has one thread, so no other thread reads or writes the environment.
    unsafe { std::env::remove_var(MARKER) };
    let value = value.to_str()?;
    let (fd, mode) = value.split_once(':')?;
    let fd: RawFd = fd.parse().ok().filter(|fd: &RawFd| *fd >= 0)?;
    let mode = match mode {
        "child" => Mode::Child,
        "forkserver" => Mode::ForkServer,
        _ => return None,
    };
    // The marker names a descriptor our parent left open for us; check that
    // something is there before owning it.
    rustix::io::fcntl_getfd(
        // SAFETY: `fd` is not negative and only borrowed for this call; `fcntl(F_GETFD)` on a
        // number that is not open fails with EBADF and touches nothing.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
    )
    .ok()?;
    // SAFETY: the parent passed this descriptor to us through the marker and
    // nothing else in this process knows it: we become its only owner.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC).ok()?;
    Some((owned, mode))
}

/// In a process that is *not* a re-executed child (no marker): if `first`
/// is set in the environment, removes `first` and every name of `rest` from
/// it (so that programs this one starts do not inherit them) and returns
/// their values. Returns `None` otherwise, touching nothing.
///
/// Must only be called from a constructor that runs before `main`, while
/// the process has a single thread.
#[cfg(feature = "redis")]
pub(crate) fn take_settings(first: &str, rest: &[&str]) -> Option<(String, Vec<Option<String>>)> {
    if std::env::var_os(MARKER).is_some() {
        return None;
    }
    let value = std::env::var(first).ok()?;
    let values = rest.iter().map(|n| std::env::var(n).ok()).collect();
    for name in std::iter::once(&first).chain(rest) {
        // SAFETY: called from a pre-`main` constructor of a process that has
        // one thread, so no other thread reads or writes the environment.
        unsafe { std::env::remove_var(name) };
    }
    Some((value, values))
}
