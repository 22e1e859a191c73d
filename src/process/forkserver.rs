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
//!
//! The server's environment, working directory and standard streams are
//! the parent's of when it started. A request carries how the parent's
//! differ now (variables set or removed, the directory and streams as
//! descriptors, only those that changed); the child takes them over before
//! it runs, so that it starts where a re-executed (`Spawn`) child would —
//! not with a stale environment, CPython's forkserver trap. Other process
//! attributes — resource limits, umask, user and groups, signal
//! dispositions — are the server's: the program's when the server started
//! (on first use, or at [`ensure_running`]).
//!
//! The server dies with the program that started it (it watches the
//! program's lifeline). A daemon child handed that same lifeline does not
//! start a thread to watch it: the kernel kills it when the server dies
//! (its parent-death signal), which saves ~0.1 ms of each start of a pool
//! worker (0.36 → 0.25 ms for a daemon here).

use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_bytes::{ByteBuf, Bytes};

use crate::codec::handles::{Fd, FdRef};
use crate::ipc::{Connection, Pipe, RecvError};
use crate::os::lifeline;
use crate::os::proc::{self, ExitStatus, Pidfd};
use crate::os::sock;
use crate::os::surroundings::{Changes, Surroundings};

use super::child::{EXIT_FAILED, StartHeader, run_child};
use super::child_proc::{ChildProc, Reaper};
use super::error::StartError;

#[derive(Serialize)]
struct RequestRef<'a> {
    header: &'a StartHeader,
    conn: &'a Connection,
    status: &'a Connection,
    env: Vec<(&'a Bytes, Option<&'a Bytes>)>,
    cwd: Option<FdRef<'a>>,
    stdio: [Option<FdRef<'a>>; 3],
}

/// A request: the child's header and channels, and how the asker's
/// surroundings (environment, working directory, standard streams) differ
/// from the server's, which are the asker's of when the server started: the
/// child takes the differences over before it runs, so that it starts as a
/// re-executed child would.
#[derive(Deserialize)]
struct Request {
    header: StartHeader,
    conn: Connection,
    status: Connection,
    env: Vec<(ByteBuf, Option<ByteBuf>)>,
    cwd: Option<Fd>,
    stdio: [Option<Fd>; 3],
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
    /// Ours when it started: its own, and so its children's.
    surroundings: Surroundings,
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
        let surroundings = Surroundings::here();
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
            surroundings,
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

/// Sends `server` the request for a child running `header` on `conn`, its
/// status on `status`.
fn ask(
    server: &Server,
    header: &StartHeader,
    conn: &Connection,
    status: &Connection,
) -> Result<(), crate::ipc::SendError> {
    let changes = server.surroundings.changes()?;
    fn bytes(s: &OsString) -> &Bytes {
        Bytes::new(s.as_bytes())
    }
    fn fd(fd: &Option<OwnedFd>) -> Option<FdRef<'_>> {
        fd.as_ref().map(|fd| FdRef(fd.as_fd()))
    }
    server.conn.send(&RequestRef {
        header,
        conn,
        status,
        env: (changes.env.iter())
            .map(|(k, v)| (bytes(k), v.as_ref().map(bytes)))
            .collect(),
        cwd: fd(&changes.cwd),
        stdio: [
            fd(&changes.stdio[0]),
            fd(&changes.stdio[1]),
            fd(&changes.stdio[2]),
        ],
    })
}

/// Asks the server for a child running `header`; returns our end of the
/// child's channel and the child.
pub(crate) fn start(header: &StartHeader) -> Result<(Connection, ChildProc), StartError> {
    let (ours, theirs) = Pipe::duplex()?;
    let (status, status_theirs) = Pipe::duplex()?;
    {
        let mut slot = SERVER.lock().unwrap_or_else(|e| e.into_inner());
        let mut sent = ask(running(&mut slot)?, header, &theirs, &status_theirs);
        if matches!(sent, Err(crate::ipc::SendError::Closed)) {
            // The server died since the last request: start a new one, once.
            slot.take();
            sent = ask(running(&mut slot)?, header, &theirs, &status_theirs);
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
    // A daemon child handed this very lifeline dies with the server instead
    // of watching the pipe on a thread of its own: the server dies with the
    // program (below), and the kernel kills the child then (its parent-death
    // signal). That saves a thread per pool worker: ~0.1 ms of a start.
    let (me, own_lifeline) = (proc::getpid(), proc::file_id(lifeline.as_fd()));
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
            env,
            cwd,
            stdio,
        } = match st.parent.recv::<Request>() {
            Ok(r) => r,
            Err(RecvError::Codec(_)) => continue,
            Err(_) => return 0, // the parent is gone
        };
        let mut conn = Some(conn);
        let mut status_slot = Some(status);
        let os = |b: ByteBuf| OsString::from_vec(b.into_vec());
        let adopt = Changes {
            env: env.into_iter().map(|(k, v)| (os(k), v.map(os))).collect(),
            cwd: cwd.map(|Fd(fd)| fd),
            stdio: stdio.map(|fd| fd.map(|Fd(fd)| fd)),
        };
        let forked = proc::fork_adopting(Some(adopt), || {
            // In the child: close the server's descriptors (they are never
            // used again here), keep only the channel to the parent.
            drop(state.take());
            drop(status_slot.take());
            let mut header = header;
            if let Some(Fd(end)) = &header.lifeline
                && own_lifeline.is_some()
                && proc::file_id(end.as_fd()) == own_lifeline
                && proc::die_with_parent(me)
            {
                header.lifeline = None;
            }
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
