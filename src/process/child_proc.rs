//! A started child as the parent sees it: pidfd, exit status, who reaps it.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::OnceLock;

use crate::ipc::Connection;
use crate::os::proc::{ExitStatus, Pidfd};

use super::forkserver::Reply;

/// Who collects the exit status.
#[derive(Debug)]
pub(crate) enum Reaper {
    /// Our own child: we `waitid` on its pidfd.
    Direct,
    /// A child of the fork server, which reports the status on this channel.
    Served(Connection),
}

#[derive(Debug)]
pub(crate) struct ChildProc {
    name: String,
    pidfd: Pidfd,
    reaper: Reaper,
    status: OnceLock<ExitStatus>,
}

impl ChildProc {
    pub(crate) fn new(name: String, pidfd: Pidfd, reaper: Reaper) -> ChildProc {
        ChildProc {
            name,
            pidfd,
            reaper,
            status: OnceLock::new(),
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pidfd.pid()
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Readable once the process has ended.
    pub(crate) fn exit_fd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    pub(crate) fn has_exited(&self) -> bool {
        self.status.get().is_some() || self.pidfd.has_exited()
    }

    /// The exit status if the process has ended (reaping it), `None` if it
    /// still runs.
    pub(crate) fn try_status(&self) -> io::Result<Option<ExitStatus>> {
        if let Some(s) = self.status.get() {
            return Ok(Some(*s));
        }
        if !self.pidfd.has_exited() {
            return Ok(None);
        }
        let status = match &self.reaper {
            Reaper::Direct => self.pidfd.try_wait()?,
            // The server reaps it right after it ends and reports at once.
            Reaper::Served(conn) => match conn.recv::<Reply>() {
                Ok(Reply::Exited(status)) => Some(status),
                Ok(_) => return Err(io::Error::other("the fork server sent an unexpected reply")),
                Err(e) => {
                    return Err(io::Error::other(format!(
                        "the fork server is gone, and with it this child's exit status: {e}"
                    )));
                }
            },
        };
        if let Some(s) = status {
            let _ = self.status.set(s);
        }
        Ok(status)
    }

    pub(crate) fn signal(&self, sig: i32) -> io::Result<()> {
        if self.status.get().is_some() {
            return Ok(());
        }
        self.pidfd.send_signal(sig)
    }
}
