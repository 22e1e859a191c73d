//! The fork server: a clean, single-threaded copy of the program, started on
//! first use, that forks children on request.
//!
//! The parent asks over one socket (a [`Request`] carrying the child's two
//! channel ends). The server forks; the child closes every descriptor of the
//! server's and runs the function; the server opens a pidfd for it and sends
//! it back ([`Reply::Started`]), then reaps the child when it ends and reports
//! its status ([`Reply::Exited`]) on the child's status channel. The parent
//! signals and polls the child through that pidfd, so there is no pid-reuse
//! race even though the child is the server's, not the parent's.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::codec::handles::Fd;
use crate::ipc::{Connection, Pipe, RecvError};
use crate::os::lifeline;
use crate::os::proc::{self, ExitStatus, Pidfd};
use crate::os::sock;

use super::child::{EXIT_FAILED, StartHeader, run_child};
use super::child_proc::{ChildProc, Reaper};
use super::error::StartError;

#[derive(Serialize)]
struct RequestRef<'a> {
    header: &'a StartHeader,
    conn: &'a Connection,
    status: &'a Connection,
}

#[derive(Deserialize)]
struct Request {
    header: StartHeader,
    conn: Connection,
    status: Connection,
}

/// What the server says about one child.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    Started { pid: u32, pidfd: Fd },
    Exited(ExitStatus),
    Failed(String),
}

struct Server {
    conn: Connection,
    process: Pidfd,
}

static SERVER: Mutex<Option<Server>> = Mutex::new(None);

fn running(slot: &mut Option<Server>) -> Result<&Server, StartError> {
    if slot.as_ref().is_some_and(|s| s.process.has_exited())
        && let Some(old) = slot.take()
    {
        let _ = old.process.try_wait(); // reap it
    }
    if slot.is_none() {
        let (ours, theirs) = sock::socketpair()?;
        let pid = proc::spawn_self(theirs.as_fd(), "forkserver")?;
        drop(theirs);
        let conn = Connection::from_fd(ours);
        // The server ends with this program, however it ends (its socket
        // alone could be held open by a forked child of ours).
        conn.send(&Fd(lifeline::read_end()?))
            .map_err(|e| StartError::ForkServer(e.to_string()))?;
        *slot = Some(Server {
            conn,
            process: Pidfd::open(pid)?,
        });
    }
    Ok(slot.as_ref().expect("just set"))
}

/// Starts the fork server if it is not running (Python's
/// `multiprocessing.forkserver.ensure_running`). Starting it early, before the
/// program has threads or much memory, keeps later starts fast.
pub fn ensure_running() -> Result<(), StartError> {
    running(&mut SERVER.lock().unwrap_or_else(|e| e.into_inner())).map(|_| ())
}

/// Asks the server for a child running `header`; returns our end of the
/// child's channel and the child.
pub(crate) fn start(header: &StartHeader) -> Result<(Connection, ChildProc), StartError> {
    let (ours, theirs) = Pipe::duplex()?;
    let (status, status_theirs) = Pipe::duplex()?;
    let request = RequestRef {
        header,
        conn: &theirs,
        status: &status_theirs,
    };
    {
        let mut slot = SERVER.lock().unwrap_or_else(|e| e.into_inner());
        let mut sent = running(&mut slot)?.conn.send(&request);
        if matches!(sent, Err(crate::ipc::SendError::Closed)) {
            // The server died since the last request: start a new one, once.
            slot.take();
            sent = running(&mut slot)?.conn.send(&request);
        }
        sent.map_err(|e| StartError::ForkServer(e.to_string()))?;
    }
    drop((theirs, status_theirs));
    match status.recv::<Reply>() {
        Ok(Reply::Started { pid, pidfd }) => {
            let child = ChildProc::new(
                header.name.clone(),
                Pidfd::from_owned(pid, pidfd.0),
                Reaper::Served(status),
            );
            Ok((ours, child))
        }
        Ok(Reply::Failed(why)) => Err(StartError::ForkServer(why)),
        Ok(Reply::Exited(_)) => Err(StartError::ForkServer("unexpected reply".into())),
        Err(e) => Err(StartError::ForkServer(format!("no reply: {e}"))),
    }
}

struct State {
    parent: Connection,
    /// The parent's lifeline: hangs up when the program ends.
    lifeline: OwnedFd,
    children: Vec<(Pidfd, Connection)>,
}

/// The server's loop; returns when the program that started it ends (its
/// lifeline hangs up) or closes its socket.
pub(crate) fn serve(parent: Connection) -> i32 {
    let Ok(Fd(lifeline)) = parent.recv::<Fd>() else {
        return 1;
    };
    let mut state = Some(State {
        parent,
        lifeline,
        children: Vec::new(),
    });
    loop {
        let ready = {
            let st = state.as_ref().expect("the server keeps its state");
            let mut fds = vec![(st.parent.as_fd(), true), (st.lifeline.as_fd(), true)];
            fds.extend(st.children.iter().map(|(p, _)| (p.as_fd(), true)));
            match sock::wait_fds(&fds, None) {
                Ok(r) => r,
                Err(_) => return 1,
            }
        };
        if ready[1] {
            return 0; // the program has ended
        }
        let st = state.as_mut().expect("the server keeps its state");
        // Reap what ended, newest first so that indices stay valid.
        for i in (0..st.children.len()).rev() {
            if ready[i + 2] {
                let (pidfd, status) = st.children.swap_remove(i);
                if let Ok(Some(exit)) = pidfd.try_wait() {
                    let _ = status.send(&Reply::Exited(exit));
                } else {
                    st.children.push((pidfd, status));
                }
            }
        }
        if !ready[0] {
            continue;
        }
        let Request {
            header,
            conn,
            status,
        } = match st.parent.recv::<Request>() {
            Ok(r) => r,
            Err(RecvError::Codec(_)) => continue,
            Err(_) => return 0, // the parent is gone
        };
        let mut conn = Some(conn);
        let mut status_slot = Some(status);
        let forked = proc::fork_with(|| {
            // In the child: close the server's descriptors (they are never
            // used again here), keep only the channel to the parent.
            drop(state.take());
            drop(status_slot.take());
            match conn.take() {
                Some(conn) => run_child(conn, header, None),
                None => EXIT_FAILED,
            }
        });
        drop(conn);
        let status = status_slot.take().expect("kept by the server");
        let st = state.as_mut().expect("the server keeps its state");
        let started = forked.and_then(|pid| {
            let pidfd = Pidfd::open(pid)?;
            let dup = sock::dup(&pidfd)?;
            Ok((pid, pidfd, dup))
        });
        match started {
            Ok((pid, pidfd, dup)) => {
                let _ = status.send(&Reply::Started {
                    pid,
                    pidfd: Fd(dup),
                });
                st.children.push((pidfd, status));
            }
            Err(e) => {
                let _ = status.send(&Reply::Failed(e.to_string()));
            }
        }
    }
}
