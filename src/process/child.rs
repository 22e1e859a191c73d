//! The child's side: how a function is named, called, and how its outcome
//! travels back.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::codec::{self, Frame, HEADER_LEN};
use crate::ipc::{Connection, RecvError, SendError};
use crate::os::bootstrap::{self, Mode};
use crate::os::image::{Entry, ImageId, zero_sized_fn};
use crate::panic::{self, PanicReport, Report};

use super::registry::{self, ProcessInfo};

/// What the parent tells a child before its argument.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct StartHeader {
    pub(crate) image: ImageId,
    pub(crate) entry: i64,
    pub(crate) name: String,
    pub(crate) parent_pid: u32,
    pub(crate) parent_name: String,
}

/// What a child sends back. `Outcome<&R>` and `Outcome<R>` have the same
/// encoding.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Outcome<R> {
    Returned(R),
    Panicked {
        message: String,
        location: Option<String>,
    },
    Failed(String),
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

/// The entry for `F` called with an `A`, returning an `R`.
pub(crate) fn entry_for<F, A, R>() -> ChildEntry
where
    F: FnOnce(A) -> R + Copy + 'static,
    A: DeserializeOwned,
    R: Serialize,
{
    Entry::of(trampoline::<F, A, R>)
}

fn trampoline<F, A, R>(call: ChildCall) -> i32
where
    F: FnOnce(A) -> R + Copy + 'static,
    A: DeserializeOwned,
    R: Serialize,
{
    let arg = match call.arg {
        Some(frame) => {
            codec::decode::<A>(&frame.bytes[HEADER_LEN..], frame.fds).map_err(RecvError::from)
        }
        None => call.conn.recv::<A>(),
    };
    let arg = match arg {
        Ok(a) => a,
        Err(e) => return fail(&call.conn, format!("cannot receive the argument: {e}")),
    };
    let f = zero_sized_fn::<F>();
    match panic::capture(Report::Print, move || f(arg)) {
        Ok(value) => match call.conn.send(&Outcome::Returned(&value)) {
            // A parent that dropped its handle does not want the value.
            Ok(()) | Err(SendError::Closed) => 0,
            Err(e) => fail(&call.conn, format!("cannot send the result: {e}")),
        },
        Err(PanicReport { message, location }) => {
            let _ = call
                .conn
                .send(&Outcome::<()>::Panicked { message, location });
            EXIT_PANICKED
        }
    }
}

fn fail(conn: &Connection, why: String) -> i32 {
    let _ = conn.send(&Outcome::<()>::Failed(why));
    EXIT_FAILED
}

/// Runs the function named by `header` in this (new) process; returns the
/// exit code.
pub(crate) fn run_child(conn: Connection, header: StartHeader, arg: Option<Frame>) -> i32 {
    registry::become_child(
        &header.name,
        ProcessInfo {
            pid: header.parent_pid,
            name: header.parent_name.clone(),
        },
    );
    match ChildEntry::from_wire(&header.image, header.entry) {
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

    fn entry_of<F: FnOnce(u8) -> u8 + Copy + 'static>(_: F) -> ChildEntry {
        entry_for::<F, u8, u8>()
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
