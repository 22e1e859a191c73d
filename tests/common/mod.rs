//! Helpers shared by the integration tests: serialize the tests of one binary
//! and check that each leaves no zombie and no open descriptor behind.
#![allow(dead_code)]

use std::sync::{Mutex, MutexGuard};

static SERIAL: Mutex<()> = Mutex::new(());

/// Open descriptors of this process.
pub fn open_fds() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok())
        // A descriptor closed between the listing and the look is not open;
        // the listing's own descriptor (whose number depends on what else was
        // open a moment ago) is not counted.
        .filter_map(|e| {
            let target = std::fs::read_link(e.path()).ok()?;
            if target.starts_with("/proc") && target.ends_with("fd") {
                return None;
            }
            Some(format!(
                "{} -> {}",
                e.file_name().to_string_lossy(),
                target.display()
            ))
        })
        .collect();
    v.sort();
    v
}

/// Children of this process that have ended and were not reaped.
pub fn zombies() -> Vec<u32> {
    children()
        .into_iter()
        .filter(|(_, z)| *z)
        .map(|(p, _)| p)
        .collect()
}

/// Children of this process (pid, is a zombie).
pub fn children() -> Vec<(u32, bool)> {
    children_of(std::process::id())
}

/// This process's children and theirs (pid, is a zombie): a fork server's
/// children (pool workers, `ForkServer` processes) are our grandchildren.
pub fn descendants() -> Vec<(u32, bool)> {
    let mine = children();
    let mut out = mine.clone();
    for (pid, _) in mine {
        out.extend(children_of(pid));
    }
    out.sort_unstable();
    out
}

/// Children of process `me` (pid, is a zombie).
pub fn children_of(me: u32) -> Vec<(u32, bool)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let (state, ppid) = (f.next(), f.next().and_then(|p| p.parse::<u32>().ok()));
        if ppid == Some(me) {
            out.push((pid, state == Some("Z")));
        }
    }
    out
}

/// Holds the test binary's lock and a [`watchdog`]; on drop, checks that descriptors and zombies
/// are back to what they were.
pub struct Clean {
    fds: Vec<String>,
    children: Vec<(u32, bool)>,
    _lock: MutexGuard<'static, ()>,
    _watchdog: Watchdog,
}

pub fn clean() -> Clean {
    let lock = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // The fork server lives as long as the program: start it before counting.
    multiproc::process::ensure_fork_server().unwrap();
    Clean {
        fds: open_fds(),
        children: descendants(),
        _lock: lock,
        _watchdog: watchdog("a test"),
    }
}

impl Drop for Clean {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        // Children whose handles were dropped while they ran end on their
        // own and are reaped by `active_children`; wait (bounded) for that.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while descendants() != self.children && std::time::Instant::now() < deadline {
            multiproc::process::active_children();
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(zombies(), Vec::<u32>::new(), "zombie children left behind");
        assert_eq!(descendants(), self.children, "child processes left behind");
        assert_eq!(open_fds(), self.fds, "descriptors leaked");
    }
}

/// How long a test waits for anything before it fails: generous (a slow CI
/// machine passes), finite (a regression fails instead of hanging CI).
pub const DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

/// Waits until `cond` holds, polling; fails the test with `what` past
/// [`DEADLINE`].
pub fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = std::time::Instant::now() + DEADLINE;
    while !cond() {
        assert!(
            std::time::Instant::now() < end,
            "never happened within {DEADLINE:?}: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Aborts the test binary, saying `what` was stuck, unless dropped within
/// three [`DEADLINE`]s: for a test that could stick where no deadline
/// reaches (a drop that waits), so that it fails CI instead of hanging it.
pub struct Watchdog {
    _alive: std::sync::mpsc::Sender<()>,
}

pub fn watchdog(what: &str) -> Watchdog {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let what = what.to_string();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(3 * DEADLINE) {
            eprintln!("{what} was stuck for {:?}: aborting", 3 * DEADLINE);
            std::process::abort();
        }
    });
    Watchdog { _alive: tx }
}

/// A fresh abstract socket name, unique in this machine's run of the tests.
pub fn unique_name(what: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "@multiproc-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// `result()` with [`DEADLINE`]: a future that never completes fails the
/// test with a message instead of hanging it.
pub trait ResultInTime<T> {
    fn result_in_time(&self) -> Result<T, multiproc::futures::TaskError>;
}

impl<T> ResultInTime<T> for multiproc::futures::Future<T> {
    #[track_caller]
    fn result_in_time(&self) -> Result<T, multiproc::futures::TaskError> {
        match self.result_timeout(DEADLINE) {
            Err(multiproc::futures::TaskError::Timeout) => {
                panic!("the future was not done within {DEADLINE:?}")
            }
            other => other,
        }
    }
}

impl<T> ResultInTime<T> for multiproc::threading::Timer<T> {
    #[track_caller]
    fn result_in_time(&self) -> Result<T, multiproc::futures::TaskError> {
        self.future().result_in_time()
    }
}

/// `join()` with [`DEADLINE`], for everything a test joins: processes,
/// threads and queues. Past the deadline the test fails with a message (a
/// process is killed first, so none is left behind).
pub trait JoinInTime {
    type Output;
    fn join_in_time(self) -> Self::Output;
}

impl<R: serde::de::DeserializeOwned> JoinInTime for &mut multiproc::process::Process<R> {
    type Output = Result<R, multiproc::process::ProcessError>;
    #[track_caller]
    fn join_in_time(self) -> Self::Output {
        match self.join_timeout(DEADLINE) {
            Err(multiproc::process::ProcessError::Timeout) => {
                let _ = self.kill();
                let _ = self.join_timeout(DEADLINE);
                panic!("process {} did not end within {DEADLINE:?}", self.pid())
            }
            other => other,
        }
    }
}

impl<T> JoinInTime for std::thread::JoinHandle<T> {
    type Output = std::thread::Result<T>;
    #[track_caller]
    fn join_in_time(self) -> Self::Output {
        until("a thread ends", || self.is_finished());
        self.join()
    }
}

impl<T> JoinInTime for std::thread::ScopedJoinHandle<'_, T> {
    type Output = std::thread::Result<T>;
    #[track_caller]
    fn join_in_time(self) -> Self::Output {
        until("a scoped thread ends", || self.is_finished());
        self.join()
    }
}

macro_rules! join_queue {
    ($($q:ident<T: $($bound:path),*>;)*) => {$(
        impl<T: $($bound +)*> JoinInTime for &$q<T> {
            type Output = ();
            #[track_caller]
            fn join_in_time(self) {
                assert!(
                    self.join_timeout(DEADLINE),
                    "the queue's tasks were not done within {DEADLINE:?}"
                );
            }
        }
    )*};
}
use multiproc::ipc::JoinableQueue;
use multiproc::queue::{LifoQueue, PriorityQueue, Queue};
join_queue! {
    JoinableQueue<T: >;
    Queue<T: Send>;
    LifoQueue<T: Send>;
    PriorityQueue<T: Send, Ord>;
}

/// Whether the thread `tid` of process `pid` is asleep (blocked), from
/// `/proc`: how a test knows a waiter is inside its wait.
pub fn asleep(pid: u32, tid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('S'))
        })
        .unwrap_or(false)
}
