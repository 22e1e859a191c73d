//! What a child takes over from its parent: the environment, the working
//! directory and the standard streams that a re-executed child would start
//! with. A fork server's children take them over from the program that
//! asks for them ([`Surroundings::changes`], [`Changes`]).

use std::ffi::OsString;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

/// Where a process is: what a re-executed child of it would start with —
/// its environment, working directory and standard streams (the latter
/// two by identity: device and inode).
#[derive(Debug)]
pub(crate) struct Surroundings {
    env: std::collections::HashMap<OsString, OsString>,
    cwd: Option<(u64, u64)>,
    stdio: [Option<(u64, u64)>; 3],
}

fn stdio() -> [BorrowedFd<'static>; 3] {
    use rustix::stdio;
    [stdio::stdin(), stdio::stdout(), stdio::stderr()]
}

impl Surroundings {
    /// This process's, now.
    pub(crate) fn here() -> Surroundings {
        Surroundings {
            env: std::env::vars_os().collect(),
            cwd: (rustix::fs::stat(c".").ok()).map(|s| (s.st_dev, s.st_ino)),
            stdio: stdio().map(super::proc::file_id),
        }
    }

    /// How this process's surroundings now differ from `self` (those of a
    /// process that started as a re-executed child of this one).
    pub(crate) fn changes(&self) -> io::Result<Changes> {
        let now = Surroundings::here();
        let mut env: Vec<(OsString, Option<OsString>)> = (now.env.iter())
            .filter(|&(k, v)| self.env.get(k) != Some(v))
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect();
        env.extend(
            (self.env.keys())
                .filter(|k| !now.env.contains_key(*k))
                .map(|k| (k.clone(), None)),
        );
        let cwd = match now.cwd {
            Some(id) if Some(id) == self.cwd => None,
            _ => {
                use rustix::fs::{CWD, Mode, OFlags};
                let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
                Some(rustix::fs::openat(CWD, c".", flags, Mode::empty())?)
            }
        };
        let mut streams = [None, None, None];
        for (i, fd) in stdio().into_iter().enumerate() {
            if now.stdio[i].is_none() || now.stdio[i] != self.stdio[i] {
                streams[i] = fd.try_clone_to_owned().ok();
            }
        }
        Ok(Changes {
            env,
            cwd,
            stdio: streams,
        })
    }
}

/// What a forked child takes over before it runs, to be where another
/// process is ([`Surroundings::changes`]): environment variables to set
/// (`Some`) or remove (`None`), a working directory (opened `O_PATH`: one
/// since renamed or deleted still works), standard streams.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    pub(crate) env: Vec<(OsString, Option<OsString>)>,
    pub(crate) cwd: Option<OwnedFd>,
    pub(crate) stdio: [Option<OwnedFd>; 3],
}

impl Changes {
    /// Takes them over.
    ///
    /// # Safety
    ///
    /// Only in a process that has one thread — a child just forked
    /// ([`fork_adopting`](super::proc::fork_adopting)) — since it changes
    /// the environment, which another thread could be reading.
    pub(crate) unsafe fn adopt(self) -> io::Result<()> {
        let Changes { env, cwd, stdio } = self;
        if let Some(cwd) = cwd {
            rustix::process::fchdir(&cwd)?;
        }
        let [stdin, stdout, stderr] = stdio;
        if let Some(fd) = stdin {
            rustix::stdio::dup2_stdin(&fd)?;
        }
        if let Some(fd) = stdout {
            rustix::stdio::dup2_stdout(&fd)?;
        }
        if let Some(fd) = stderr {
            rustix::stdio::dup2_stderr(&fd)?;
        }
        for (k, v) in env {
            match v {
                // SAFETY: the caller guarantees this process has one
                // thread: nothing reads or writes the environment meanwhile.
                Some(v) => unsafe { std::env::set_var(k, v) },
                // SAFETY: as above.
                None => unsafe { std::env::remove_var(k) },
            }
        }
        Ok(())
    }
}
