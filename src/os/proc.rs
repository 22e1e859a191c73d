//! Process creation, pidfds, signals and exit statuses.

use std::ffi::{CString, OsString};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;

use rustix::process::{Pid, PidfdFlags, Signal, WaitId, WaitIdOptions};
use serde::{Deserialize, Serialize};

/// How a process ended: its exit code, or the signal that killed it.
///
/// Python's `Process.exitcode` is [`ExitStatus::python_exitcode`]: the code, or
/// `-N` for signal `N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExitStatus {
    /// The process exited with this code.
    Code(i32),
    /// The process was killed by this signal number.
    Signal(i32),
}

impl ExitStatus {
    /// `true` for exit code 0.
    ///
    /// ```
    /// use multiproc::process::ExitStatus;
    /// assert!(ExitStatus::Code(0).success());
    /// assert!(!ExitStatus::Signal(9).success());
    /// ```
    pub fn success(self) -> bool {
        self == ExitStatus::Code(0)
    }

    /// The exit code, if the process exited rather than being killed.
    pub fn code(self) -> Option<i32> {
        match self {
            ExitStatus::Code(c) => Some(c),
            ExitStatus::Signal(_) => None,
        }
    }

    /// The signal that killed the process, if any.
    pub fn signal(self) -> Option<i32> {
        match self {
            ExitStatus::Signal(s) => Some(s),
            ExitStatus::Code(_) => None,
        }
    }

    /// Python's convention: the exit code, or `-N` when signal `N` killed it.
    ///
    /// ```
    /// use multiproc::process::ExitStatus;
    /// assert_eq!(ExitStatus::Signal(15).python_exitcode(), -15);
    /// assert_eq!(ExitStatus::Code(3).python_exitcode(), 3);
    /// ```
    pub fn python_exitcode(self) -> i32 {
        match self {
            ExitStatus::Code(c) => c,
            ExitStatus::Signal(s) => -s,
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ExitStatus::Code(c) => write!(f, "exit code {c}"),
            ExitStatus::Signal(s) => match signal_name(s) {
                Some(name) => write!(f, "signal {s} ({name})"),
                None => write!(f, "signal {s}"),
            },
        }
    }
}

fn signal_name(s: i32) -> Option<&'static str> {
    Some(match s {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        _ => return None,
    })
}

/// This process's id.
pub(crate) fn getpid() -> u32 {
    rustix::process::getpid().as_raw_nonzero().get() as u32
}

/// The resident memory of process `pid`, in bytes (`/proc/PID/statm`).
pub(crate) fn resident_bytes(pid: u32) -> io::Result<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm"))?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unreadable /proc/PID/statm"))?;
    Ok(pages * rustix::param::page_size() as u64)
}

/// Names this process as `ps`, `top` and `/proc/PID/comm` show it (the
/// kernel keeps 15 bytes): a longer name keeps its `-N` suffix and as much
/// of the rest as fits (`ProcessPoolWorker-3` shows as `ProcessPoolWo-3`).
pub(crate) fn set_name(name: &str) {
    let _ = rustix::thread::set_name(&comm(name));
}

/// `name` cut to what the kernel keeps, without NULs.
fn comm(name: &str) -> std::ffi::CString {
    const KEEP: usize = 15;
    let name: String = name.chars().filter(|c| *c != '\0').collect();
    let short = if name.len() <= KEEP {
        name
    } else {
        let suffix = match name.rfind('-') {
            Some(i)
                if name.len() - i < KEEP && name[i + 1..].bytes().all(|b| b.is_ascii_digit()) =>
            {
                &name[i..]
            }
            _ => "",
        };
        let mut end = KEEP - suffix.len();
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}{suffix}", &name[..end])
    };
    std::ffi::CString::new(short).expect("NULs were removed")
}

/// The name of the environment variable that marks a re-executed child.
pub(crate) const MARKER: &str = "MULTIPROC_BOOTSTRAP";

/// Starts this very executable again (through `/proc/self/exe`) with
/// `MARKER=<fd>:<mode>` in its environment and `keep` inherited at the same
/// descriptor number; every other descriptor of ours is close-on-exec.
///
/// `posix_spawn` (a `vfork`-style clone in glibc) keeps the cost of starting a
/// large parent as low as `std::process::Command`'s.
pub(crate) fn spawn_self(keep: BorrowedFd<'_>, mode: &str) -> io::Result<u32> {
    let fd = keep.as_raw_fd();
    let cstr =
        |v: Vec<u8>| CString::new(v).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e));
    let argv0 = std::env::args_os()
        .next()
        .unwrap_or_else(|| OsString::from("multiproc-child"));
    let argv = [cstr(argv0.into_vec())?];
    let mut envp = Vec::new();
    for (k, v) in std::env::vars_os() {
        if k == MARKER {
            continue;
        }
        let mut kv = k.into_vec();
        kv.push(b'=');
        kv.extend(v.into_vec());
        if let Ok(c) = CString::new(kv) {
            envp.push(c);
        }
    }
    envp.push(cstr(format!("{MARKER}={fd}:{mode}").into_bytes())?);
    let argv_ptrs: Vec<*mut libc::c_char> = argv
        .iter()
        .map(|c| c.as_ptr() as *mut libc::c_char)
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect();
    let envp_ptrs: Vec<*mut libc::c_char> = envp
        .iter()
        .map(|c| c.as_ptr() as *mut libc::c_char)
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect();

    // SAFETY: the file-actions and attribute objects are initialised before use
    // and destroyed on every path; `argv_ptrs` and `envp_ptrs` are
    // null-terminated arrays of pointers to NUL-terminated strings that outlive
    // the call; `pid` is a valid out-pointer. `adddup2(fd, fd)` clears
    // FD_CLOEXEC on `fd` in the child only (POSIX 2024, glibc >= 2.29), and
    // `keep` is borrowed, so `fd` is open for the duration of the call.
    unsafe {
        let mut actions = std::mem::MaybeUninit::<libc::posix_spawn_file_actions_t>::uninit();
        let rc = libc::posix_spawn_file_actions_init(actions.as_mut_ptr());
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        let mut attr = std::mem::MaybeUninit::<libc::posix_spawnattr_t>::uninit();
        let rc = libc::posix_spawnattr_init(attr.as_mut_ptr());
        if rc != 0 {
            libc::posix_spawn_file_actions_destroy(actions.as_mut_ptr());
            return Err(io::Error::from_raw_os_error(rc));
        }
        let mut empty = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(empty.as_mut_ptr());
        let mut rc = libc::posix_spawn_file_actions_adddup2(actions.as_mut_ptr(), fd, fd);
        if rc == 0 {
            rc = libc::posix_spawnattr_setsigmask(attr.as_mut_ptr(), empty.as_ptr());
        }
        if rc == 0 {
            rc = libc::posix_spawnattr_setflags(
                attr.as_mut_ptr(),
                libc::POSIX_SPAWN_SETSIGMASK as _,
            );
        }
        let mut pid: libc::pid_t = 0;
        if rc == 0 {
            rc = libc::posix_spawn(
                &mut pid,
                c"/proc/self/exe".as_ptr(),
                actions.as_ptr(),
                attr.as_ptr(),
                argv_ptrs.as_ptr(),
                envp_ptrs.as_ptr(),
            );
        }
        libc::posix_spawnattr_destroy(attr.as_mut_ptr());
        libc::posix_spawn_file_actions_destroy(actions.as_mut_ptr());
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(pid as u32)
    }
}

/// Forks. The child runs `child`, flushes Rust's standard streams and leaves
/// with `_exit(code)`, never returning into the caller's stack (a panic that
/// escapes `child` exits with code 101). Returns the child's pid in the parent.
///
/// After `fork` only the calling thread exists in the child: a lock held by
/// another thread at that instant stays locked forever there. This is the
/// documented hazard of the `Fork` start method.
///
/// The child closes its copy of the parent's lifeline first (see
/// [`lifeline`](super::lifeline)), so that it hangs up with the parent.
pub(crate) fn fork_with(child: impl FnOnce() -> i32) -> io::Result<u32> {
    fork_adopting(None, child)
}

/// What file (pipe, socket, …) `fd` is open on: its device and inode.
pub(crate) fn file_id(fd: BorrowedFd<'_>) -> Option<(u64, u64)> {
    rustix::fs::fstat(fd).ok().map(|s| (s.st_dev, s.st_ino))
}

/// Makes this process end (SIGKILL) when its parent does — the kernel's
/// parent-death signal, tied to the thread that forked it, here the only
/// thread of the fork server. Where the parent is not `parent` any more (it
/// ended before the signal was set), ends at once. `false` where the
/// kernel refused the setting (nothing changed then).
pub(crate) fn die_with_parent(parent: u32) -> bool {
    use rustix::process::{Signal, getppid, set_parent_process_death_signal};
    if set_parent_process_death_signal(Some(Signal::KILL)).is_err() {
        return false;
    }
    if getppid().map(|p| p.as_raw_nonzero().get() as u32) != Some(parent) {
        let _ = rustix::process::kill_process(rustix::process::getpid(), Signal::KILL);
        exit_now(137)
    }
    true
}

/// [`fork_with`], with the child taking over `adopt` first (when given): if
/// that fails, the child exits with code 3 and says why on its standard
/// error.
pub(crate) fn fork_adopting(
    adopt: Option<super::surroundings::Changes>,
    child: impl FnOnce() -> i32,
) -> io::Result<u32> {
    super::lifeline::before_fork();
    // SAFETY: `fork` has no memory-safety preconditions of its own; the child
    // runs `child` and leaves through `_exit`, so it never unwinds or returns
    // into frames that the parent also owns.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            super::lifeline::forget_after_fork();
            // SAFETY: a child just forked has one thread, this one.
            if let Some(Err(e)) = adopt.map(|a| unsafe { a.adopt() }) {
                eprintln!(
                    "multiproc: a child of the fork server could not take over its parent's surroundings: {e}"
                );
                exit_now(3)
            }
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(101);
            exit_now(code)
        }
        pid => Ok(pid as u32),
    }
}

/// Flushes Rust's standard streams and ends this process at once with `code`,
/// without running `atexit` handlers (which belong to the parent after a fork).
pub(crate) fn exit_now(code: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: `_exit` is always safe to call; it does not return.
    unsafe { libc::_exit(code) }
}

/// A process referred to by a pidfd: no pid-reuse race for signals or waits.
#[derive(Debug)]
pub(crate) struct Pidfd {
    pid: u32,
    fd: OwnedFd,
}

impl Pidfd {
    /// Opens a pidfd for `pid`, which must be a child of ours not yet reaped
    /// (so that the pid cannot have been reused).
    pub(crate) fn open(pid: u32) -> io::Result<Pidfd> {
        let raw = Pid::from_raw(pid as i32)
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        let fd = rustix::process::pidfd_open(raw, PidfdFlags::empty())?;
        Ok(Pidfd { pid, fd })
    }

    /// Wraps a pidfd received from another process (the fork server).
    pub(crate) fn from_owned(pid: u32, fd: OwnedFd) -> Pidfd {
        Pidfd { pid, fd }
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// `true` once the process has ended (the pidfd polls readable).
    pub(crate) fn has_exited(&self) -> bool {
        crate::os::sock::readable_now(self.fd.as_fd())
    }

    /// Reaps the process if it has ended (it must be our child).
    pub(crate) fn try_wait(&self) -> io::Result<Option<ExitStatus>> {
        let status = loop {
            match rustix::process::waitid(
                WaitId::PidFd(self.fd.as_fd()),
                WaitIdOptions::EXITED | WaitIdOptions::NOHANG,
            ) {
                Err(rustix::io::Errno::INTR) => continue,
                other => break other?,
            }
        };
        Ok(status.and_then(|st| {
            if st.exited() {
                st.exit_status().map(ExitStatus::Code)
            } else if st.killed() || st.dumped() {
                st.terminating_signal().map(ExitStatus::Signal)
            } else {
                None
            }
        }))
    }

    /// Sends `signal`; a process that has already ended is not an error.
    pub(crate) fn send_signal(&self, signal: i32) -> io::Result<()> {
        let sig = match signal {
            libc::SIGTERM => Signal::TERM,
            libc::SIGKILL => Signal::KILL,
            libc::SIGINT => Signal::INT,
            _ => return Err(io::Error::from(io::ErrorKind::InvalidInput)),
        };
        match rustix::process::pidfd_send_signal(self.fd.as_fd(), sig) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

impl AsFd for Pidfd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    #[test]
    fn comm_keeps_the_suffix_and_fits() {
        let c = |n: &str| super::comm(n).into_string().unwrap();
        assert_eq!(c("Process-1"), "Process-1");
        assert_eq!(c("ProcessPoolWorker-3"), "ProcessPoolWo-3");
        assert_eq!(c("ProcessPoolWorker-123"), "ProcessPool-123");
        assert_eq!(c("a-very-long-name-without-number"), "a-very-long-nam");
        assert_eq!(c("ééééééééé"), "ééééééé"); // 14 bytes: no char is cut
        assert_eq!(c("nul\0inside"), "nulinside");
    }
}
