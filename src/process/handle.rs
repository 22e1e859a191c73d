//! `Process`, its builder and start methods.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::codec::handles::Fd;
use crate::ipc::{Connection, Pipe, RecvError};
use crate::os::image::ImageId;
use crate::os::lifeline;
use crate::os::proc::{self, ExitStatus, Pidfd};
use crate::os::sock;

use super::child::{self, ChildCall, StartHeader};
use super::child_proc::{ChildProc, Reaper};
use super::error::{ProcessError, StartError};
use super::remote::{self, Outcome, RemoteFn};
use super::{forkserver, registry};

/// How a child process is created.
///
/// | method | how | cost here | safe after threads started |
/// |---|---|---|---|
/// | `Spawn` (default) | re-executes this binary through `/proc/self/exe` | about the cost of `std::process::Command` | yes |
/// | `ForkServer` | asks a clean single-threaded server process to fork; the child takes over the caller's environment, working directory and standard streams of the moment | a fraction of a millisecond | yes |
/// | `Fork` | `fork()` of the calling process | fastest | **no** (see below) |
///
/// # `Fork` is unsafe to use after threads were started
///
/// After `fork` only the calling thread exists in the child. If another
/// thread held a lock at that instant — the allocator's, stdout's, a
/// `Mutex` of yours — it stays locked forever in the child, which then hangs
/// the first time it takes that lock. This is CPython's long-standing fork
/// trap. Use `Fork` only in a program that has not started threads (note
/// that `cargo test` runs tests on threads); otherwise use `Spawn` or
/// `ForkServer`, which start from a fresh, single-threaded process. A forked
/// child also inherits every open descriptor of its parent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum StartMethod {
    /// Re-execute the current binary; the child runs nothing but the function
    /// (the program's `main` never runs in it).
    #[default]
    Spawn,
    /// `fork()` the calling process. See the warning above.
    Fork,
    /// Fork from a server process started on first use.
    ForkServer,
}

/// Configures a process before starting it.
///
/// ```
/// use multiproc::process::{Process, StartMethod};
/// let mut p = Process::builder()
///     .name("doubler")
///     .start_method(StartMethod::ForkServer)
///     .start(|x: u64| x * 2, 21)?;
/// assert_eq!(p.name(), "doubler");
/// assert_eq!(p.join()?, 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Builder {
    name: Option<String>,
    method: StartMethod,
    daemon: bool,
}

impl Builder {
    /// A builder with the defaults: a `Process-N` name, [`StartMethod::Spawn`].
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the process (see [`current_process`](super::current_process)).
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Chooses how the process is created.
    pub fn start_method(mut self, method: StartMethod) -> Builder {
        self.method = method;
        self
    }

    /// Makes the process a daemon (default: not), Python's `daemon`: it is
    /// ended (SIGKILL) when the program that started it ends. Unlike
    /// Python's, this holds however the program ends — returning from
    /// `main`, `exit`, a panic that aborts, a crash, a SIGKILL — because
    /// the child watches a pipe that the kernel closes with its parent.
    /// Pool workers are always started this way. A daemon forked by a fork
    /// server its program started leaves the watching to the server, which
    /// dies with the program: the daemon dies with the server (the kernel's
    /// parent-death signal) — also should the server alone be killed.
    ///
    /// A process that is not a daemon keeps running after its program ends
    /// (it is reparented to init); Python would wait for it at a normal
    /// exit — in Rust, [`join`](Process::join) it before `main` returns.
    ///
    /// ```
    /// use multiproc::process::Process;
    /// let mut p = Process::builder().daemon(true).start(|x: u8| x + 1, 1)?;
    /// assert_eq!(p.join_timeout(std::time::Duration::from_secs(60))?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn daemon(mut self, daemon: bool) -> Builder {
        self.daemon = daemon;
        self
    }

    /// Starts a process that runs `f(arg)` and sends back its result.
    ///
    /// `f` is a fn item or a closure that captures nothing (Python's pools
    /// refuse lambdas; this accepts them). A closure that captures is refused
    /// at compile time — pass the data as `arg` instead:
    ///
    /// ```compile_fail
    /// let factor = 3;
    /// // error: a closure run in another process must not capture anything
    /// let p = multiproc::process::Process::start(move |x: u32| x * factor, 2);
    /// ```
    pub fn start<F, A, R>(self, f: F, arg: A) -> Result<Process<R>, StartError>
    where
        F: RemoteFn<A, R>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + 'static,
    {
        let _ = f;
        child::keep_bootstrap();
        registry::reap_orphans();
        let arg = codec::encode(&arg, codec::DEFAULT_MAX_MESSAGE_SIZE)?;
        let me = registry::current();
        let name = self.name.unwrap_or_else(registry::next_name);
        let header = StartHeader {
            image: ImageId::current(),
            entry: remote::entry_for::<F, A, R, ChildCall>().to_wire(),
            name: name.clone(),
            parent_pid: me.pid,
            parent_name: me.name,
            lifeline: if self.daemon {
                Some(Fd(lifeline::read_end()?))
            } else {
                None
            },
        };
        let (conn, child) = match self.method {
            StartMethod::Spawn => {
                let (ours, theirs) = sock::socketpair()?;
                let pid = proc::spawn_self(std::os::fd::AsFd::as_fd(&theirs), "child")?;
                drop(theirs);
                let child = ChildProc::new(name, Pidfd::open(pid)?, Reaper::Direct);
                let ours = Connection::from_fd(ours);
                // A child that died at once shows in `join`.
                let _ = ours.send(&header);
                let _ = ours.send_frame(&arg);
                (ours, child)
            }
            StartMethod::Fork => {
                let (ours, theirs) = Pipe::duplex()?;
                let mut ours = Some(ours);
                let mut arg = Some(arg);
                let pid = proc::fork_with(|| {
                    drop(ours.take());
                    child::run_child(theirs, header, arg.take())
                })?;
                let child = ChildProc::new(name, Pidfd::open(pid)?, Reaper::Direct);
                (ours.take().expect("kept by the parent"), child)
            }
            StartMethod::ForkServer => {
                let (conn, child) = forkserver::start(&header)?;
                let _ = conn.send_frame(&arg);
                (conn, child)
            }
        };
        let child = Arc::new(child);
        registry::register(&child);
        Ok(Process {
            conn,
            child: Some(child),
            outcome: None,
            result_closed: false,
            joined: false,
            _result: PhantomData,
        })
    }
}

/// A child process running a Rust function; Python's
/// `multiprocessing.Process`, with a return value.
///
/// ```
/// use multiproc::process::{Process, ProcessError, ExitStatus};
///
/// fn square(x: i64) -> i64 { x * x }
/// let mut p = Process::start(square, 7)?;
/// assert_eq!(p.join()?, 49);
/// assert_eq!(p.exit_status(), Some(ExitStatus::Code(0)));
///
/// let mut p = Process::start(|()| -> u8 { panic!("no luck") }, ())?;
/// match p.join() {
///     Err(ProcessError::Panicked { message, .. }) => assert_eq!(message, "no luck"),
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Dropping
///
/// Dropping a `Process` neither kills nor waits for it (like dropping a
/// `std::thread::JoinHandle`): it runs on, its result is discarded, and it is
/// reaped — no zombie is left — the next time a process is started or
/// [`active_children`](super::active_children) is called.
pub struct Process<R> {
    conn: Connection,
    child: Option<Arc<ChildProc>>,
    outcome: Option<Result<Outcome<R>, RecvError>>,
    result_closed: bool,
    joined: bool,
    _result: PhantomData<fn() -> R>,
}

impl<R> std::fmt::Debug for Process<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("pid", &self.pid())
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}

impl Process<()> {
    /// A [`Builder`] with the defaults.
    pub fn builder() -> Builder {
        Builder::new()
    }
}

impl<R: Serialize + DeserializeOwned + 'static> Process<R> {
    /// Starts `f(arg)` in a new process with the default [`Builder`].
    pub fn start<F, A>(f: F, arg: A) -> Result<Process<R>, StartError>
    where
        F: RemoteFn<A, R>,
        A: Serialize + DeserializeOwned,
    {
        Builder::new().start(f, arg)
    }
}

impl<R> Process<R> {
    fn child(&self) -> &ChildProc {
        self.child.as_ref().expect("present until drop")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child().pid()
    }

    /// The name given to the builder, or `Process-N`.
    pub fn name(&self) -> &str {
        self.child().name()
    }

    /// `true` until the process has ended.
    pub fn is_alive(&self) -> bool {
        !self.child().has_exited()
    }

    /// How the process ended, or `None` while it runs. Does not block.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.child().try_status().ok().flatten()
    }

    /// Asks the process to stop (SIGTERM). Not an error if it already ended.
    pub fn terminate(&self) -> std::io::Result<()> {
        self.child().signal(libc::SIGTERM)
    }

    /// Kills the process (SIGKILL). Not an error if it already ended.
    pub fn kill(&self) -> std::io::Result<()> {
        self.child().signal(libc::SIGKILL)
    }
}

/// How long `join` keeps looking for the exit of a process that has sent
/// its result before it sleeps until the exit.
const EXIT_SPIN: Duration = Duration::from_micros(200);

impl<R: DeserializeOwned> Process<R> {
    /// Waits for the process to end and returns the value of its function.
    ///
    /// The value is handed out once; a second `join` returns
    /// [`ProcessError::Retrieved`] ([`exit_status`](Self::exit_status)
    /// stays available).
    pub fn join(&mut self) -> Result<R, ProcessError> {
        self.join_until(None)
    }

    /// Like [`join`](Self::join), but waits at most `timeout`
    /// ([`ProcessError::Timeout`] if the process still runs then).
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<R, ProcessError> {
        self.join_until(Some(crate::blocking::deadline_after(timeout)))
    }

    /// Like [`join`](Self::join) without waiting
    /// ([`ProcessError::Timeout`] if the process still runs).
    pub fn try_join(&mut self) -> Result<R, ProcessError> {
        self.join_until(Some(Instant::now()))
    }

    fn drain(&mut self) {
        if self.outcome.is_some() || self.result_closed {
            return;
        }
        match self.conn.try_recv::<Outcome<R>>() {
            Ok(o) => self.outcome = Some(Ok(o)),
            Err(RecvError::Empty) => {}
            Err(RecvError::Closed) | Err(RecvError::Truncated { .. }) => self.result_closed = true,
            Err(e) => self.outcome = Some(Err(e)),
        }
    }

    fn join_until(&mut self, deadline: Option<Instant>) -> Result<R, ProcessError> {
        if self.joined {
            return Err(ProcessError::Retrieved);
        }
        let mut exiting = None;
        let status = loop {
            self.drain();
            if let Some(status) = self.child().try_status()? {
                // Everything it wrote before it ended is in the socket now.
                self.drain();
                break status;
            }
            if self.outcome.is_some() || self.result_closed {
                // It has answered and is exiting: a sleep and a second
                // wake-up would cost more than looking again for a moment.
                let since = *exiting.get_or_insert_with(Instant::now);
                if since.elapsed() < EXIT_SPIN && deadline.is_none_or(|d| Instant::now() < d) {
                    std::thread::yield_now();
                    continue;
                }
            }
            let mut fds = vec![(self.child().exit_fd(), true)];
            if self.outcome.is_none() && !self.result_closed {
                fds.push((std::os::fd::AsFd::as_fd(&self.conn), true));
            }
            let ready = sock::wait_fds(&fds, deadline)?;
            if !ready.iter().any(|r| *r) {
                return Err(ProcessError::Timeout);
            }
        };
        self.joined = true;
        match self.outcome.take() {
            Some(Ok(Outcome::Returned(v))) => Ok(v),
            Some(Ok(Outcome::Panicked { message, location })) => {
                Err(ProcessError::Panicked { message, location })
            }
            Some(Ok(Outcome::Failed(why))) => Err(ProcessError::Failed(why)),
            Some(Err(e)) => Err(ProcessError::Result(e)),
            None => Err(ProcessError::Died { status }),
        }
    }
}

/// Ready for [`ipc::wait`](crate::ipc::wait) once the process has ended:
/// Python's `Process.sentinel`.
impl<R> crate::ipc::Waitable for Process<R> {
    fn wait_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.child().exit_fd()
    }
}

impl<R> Drop for Process<R> {
    fn drop(&mut self) {
        if let Some(child) = self.child.take()
            && !matches!(child.try_status(), Ok(Some(_)))
        {
            registry::adopt(child);
        }
    }
}
