//! The child's side of a `Process`: the bootstrap that takes over before
//! `main`, and the transport ([`ChildCall`]) of its one call; how the
//! function is named and called is [`remote`](super::remote)'s.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::codec::handles::Fd;
use crate::codec::{self, Frame, HEADER_LEN};
use crate::ipc::{Connection, RecvError, SendError};
use crate::os::bootstrap::{self, Mode};
use crate::os::image::{Entry, ImageId};
use crate::os::lifeline;
use crate::panic::Report;

use super::registry::{self, ProcessInfo};
use super::remote::{Call, Outcome};

/// What the parent tells a child before its argument.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StartHeader {
    pub(crate) image: ImageId,
    pub(crate) entry: i64,
    pub(crate) name: String,
    pub(crate) parent_pid: u32,
    pub(crate) parent_name: String,
    /// A daemon's: the read end of the parent's lifeline; the child dies
    /// when it hangs up.
    pub(crate) lifeline: Option<Fd>,
}

/// The context every entry receives: the channel to the parent, and the
/// argument when the child already holds it (a forked child has its parent's
/// memory); otherwise it comes as the next message.
pub(crate) struct ChildCall {
    conn: Connection,
    arg: Option<Frame>,
}

pub(crate) type ChildEntry = Entry<ChildCall>;

/// Exit codes of a child: Python's 1 for an exception, 3 when the function
/// could not be called at all.
const EXIT_PANICKED: i32 = 1;
pub(crate) const EXIT_FAILED: i32 = 3;

impl Call for ChildCall {
    const REPORT: Report = Report::Print;

    fn argument<A: DeserializeOwned>(&mut self) -> Result<A, String> {
        match self.arg.take() {
            Some(frame) => codec::decode::<A>(&frame.bytes[HEADER_LEN..], frame.fds)
                .map_err(|e| RecvError::from(e).to_string()),
            None => self.conn.recv::<A>().map_err(|e| e.to_string()),
        }
    }

    fn finish<R: Serialize + 'static>(self, outcome: Outcome<&R>) -> i32 {
        let code = match outcome {
            Outcome::Returned(_) => 0,
            Outcome::Panicked { .. } => EXIT_PANICKED,
            Outcome::Failed(_) => EXIT_FAILED,
        };
        match self.conn.send(&outcome) {
            // A parent that dropped its handle does not want the value.
            Ok(()) | Err(SendError::Closed) => code,
            Err(e) if code == 0 => fail(&self.conn, format!("cannot send the result: {e}")),
            Err(_) => code,
        }
    }
}

fn fail(conn: &Connection, why: String) -> i32 {
    let _ = conn.send(&Outcome::<()>::Failed(why));
    EXIT_FAILED
}

/// Runs the function named by `header` in this (new) process; returns the
/// exit code.
pub(crate) fn run_child(conn: Connection, mut header: StartHeader, arg: Option<Frame>) -> i32 {
    if let Some(Fd(end)) = header.lifeline.take()
        && let Err(e) = lifeline::die_with(end)
    {
        return fail(&conn, format!("cannot watch the parent's life: {e}"));
    }
    crate::os::proc::set_name(&header.name);
    registry::become_child(
        &header.name,
        ProcessInfo {
            pid: header.parent_pid,
            name: header.parent_name.clone(),
        },
    );
    // SAFETY: the header came over the socket that the parent (or the fork
    // server the parent started) created for this child, which no other
    // process can write to; the parent built the offset with
    // `remote::entry_for` for a `ChildCall` entry.
    match unsafe { ChildEntry::from_wire(&header.image, header.entry) } {
        Some(entry) => entry.call(ChildCall { conn, arg }),
        None => fail(
            &conn,
            "the child is not running the same executable as its parent (was the binary rebuilt or replaced?)"
                .to_string(),
        ),
    }
}

/// The bootstrap: runs before `main` in every program that links multiproc.
/// In a process started by the `Spawn` method (or as the fork server) it
/// takes over and exits, so the program's `main` never runs there; anywhere
/// else it returns at once after one `getenv`.
// SAFETY (of running before `main`): the constructor touches no state that
// needs initialising by std's runtime beyond what glibc's `init_array`
// callers already provide — it reads one environment variable and, in a
// child only, talks over an inherited descriptor; in every other process it
// returns at once after that `getenv`, so it cannot disturb the program.
#[ctor::ctor(unsafe)]
fn bootstrap() {
    let Some((fd, mode)) = bootstrap::take_marker() else {
        return;
    };
    let conn = Connection::from_fd(fd);
    let code = match mode {
        Mode::Child => match conn.recv::<StartHeader>() {
            Ok(header) => run_child(conn, header, None),
            Err(_) => EXIT_FAILED,
        },
        Mode::ForkServer => super::forkserver::serve(conn),
    };
    std::process::exit(code)
}

/// Keeps the object file that holds the bootstrap constructor in every binary
/// that starts processes (a linker drops unreferenced archive members).
pub(crate) fn keep_bootstrap() {
    std::hint::black_box(bootstrap as fn());
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::os::proc::{self, ExitStatus, Pidfd};
    use crate::os::sock;

    fn double(x: u8) -> u8 {
        x * 2
    }

    fn entry_of<F: FnOnce(u8) -> u8 + Copy>(_: F) -> ChildEntry {
        super::super::remote::entry_for::<F, u8, u8, ChildCall>()
    }

    /// A child told that its parent runs another build of the program refuses
    /// to call anything: it reports why and exits with `EXIT_FAILED`.
    #[test]
    fn a_child_refuses_another_executable() {
        let (ours, theirs) = sock::socketpair().unwrap();
        let pid = proc::spawn_self(std::os::fd::AsFd::as_fd(&theirs), "child").unwrap();
        drop(theirs);
        let pidfd = Pidfd::open(pid).unwrap();
        let conn = Connection::from_fd(ours);
        let header = StartHeader {
            image: ImageId::other_build(),
            entry: entry_of(double).to_wire(),
            name: "impostor".into(),
            parent_pid: proc::getpid(),
            parent_name: "test".into(),
            lifeline: None,
        };
        conn.send(&header).unwrap();
        conn.send(&7u8).unwrap();
        match conn.recv::<Outcome<u8>>() {
            Ok(Outcome::Failed(why)) => assert!(why.contains("same executable"), "{why}"),
            other => panic!("the child did not refuse: {other:?}"),
        }
        let t = Instant::now();
        let status = loop {
            if let Some(st) = pidfd.try_wait().unwrap() {
                break st;
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "the child did not exit"
            );
            std::thread::sleep(Duration::from_millis(1));
        };
        assert_eq!(status, ExitStatus::Code(EXIT_FAILED));
    }
}
