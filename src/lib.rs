//! Python's concurrency toolkit — `multiprocessing` first — rebuilt in Rust,
//! without the traps Python users know.
//!
//! # A tour
//!
//! A process runs a Rust function with an argument and returns its result.
//! Fn items *and closures that capture nothing* work (Python's pools refuse
//! lambdas); nothing needs to be called from `main`:
//!
//! ```
//! use multiproc::process::{Process, ProcessError, StartMethod};
//!
//! let mut p = Process::start(|words: Vec<String>| words.join(" "), vec!["hi".into(), "there".into()])?;
//! assert_eq!(p.join()?, "hi there");
//!
//! // A panic is that process's error, with its message; the parent lives on.
//! let mut p = Process::start(|n: u32| -> u32 { assert!(n < 10, "n is too big: {n}"); n }, 12)?;
//! assert!(matches!(p.join(), Err(ProcessError::Panicked { message, .. }) if message == "n is too big: 12"));
//!
//! // Three ways to start a child: re-exec (default), a fork server, fork.
//! let mut p = Process::builder().start_method(StartMethod::ForkServer).start(|x: i32| x + 1, 1)?;
//! assert_eq!(p.join()?, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Processes talk through pipes; a pipe end is itself something you can send
//! to a child:
//!
//! ```
//! use multiproc::ipc::{Connection, Pipe};
//! use multiproc::process::Process;
//!
//! let (here, there) = Pipe::duplex()?;
//! let mut echo = Process::start(|conn: Connection| {
//!     while let Ok(msg) = conn.recv::<String>() {
//!         conn.send(&msg.to_uppercase()).unwrap();
//!     }
//! }, there)?;
//! here.send("ping")?;
//! assert_eq!(here.recv::<String>()?, "PING");
//! drop(here); // the child sees the pipe close and returns
//! echo.join()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Or through shared memory: a queue that any number of processes put into
//! and get from (Python's `multiprocessing.Queue`, with an exact `len`, and
//! safe against a process killed inside `put` or `get`), and shared values
//! under robust locks:
//!
//! ```
//! use std::time::Duration;
//! use multiproc::ipc::Queue;
//! use multiproc::process::Process;
//! use multiproc::shared::Value;
//!
//! let q: Queue<String> = Queue::new(8)?;
//! let left = Value::new(10i64)?;
//! let mut writer = Process::start(|(q, left): (Queue<String>, Value<i64>)| {
//!     for i in 0..3 {
//!         q.put(&format!("message {i}")).unwrap();
//!         *left.get_lock().lock().unwrap() -= 1;
//!     }
//! }, (q.clone(), left.clone()))?;
//! for i in 0..3 {
//!     assert_eq!(q.get_timeout(Duration::from_secs(10))?, format!("message {i}"));
//! }
//! writer.join()?;
//! assert_eq!((q.len(), left.get()), (0, 7));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Threads get what Python's `concurrent.futures` gives and Rust's pools do
//! not: a future per task, with a timeout, cancellation, callbacks and
//! `as_completed`; a panic fails that task alone:
//!
//! ```
//! use std::time::Duration;
//! use multiproc::executor::ThreadPool;
//! use multiproc::futures::{as_completed, TaskError};
//!
//! let pool = ThreadPool::new(4);
//! let slow = pool.submit(|| { std::thread::sleep(Duration::from_millis(200)); "slow" });
//! assert_eq!(slow.result_timeout(Duration::from_millis(1)), Err(TaskError::Timeout));
//! let futures = vec![pool.submit(|| "fast"), pool.submit(|| panic!("alone"))];
//! let firsts: Vec<_> = as_completed(futures).map(|f| f.result()).collect();
//! assert!(firsts.contains(&Ok("fast")));
//! assert_eq!(slow.result(), Ok("slow"));
//! ```
//!
//! A process pool gives the same futures, with what threads cannot give: a
//! worker that dies (a segfault, an `abort`, the OOM killer) fails only the
//! task it ran and is replaced; a task past its deadline is killed;
//! `cancel()` stops a running task; closures that capture nothing are
//! welcome (Python's pools refuse lambdas):
//!
//! ```
//! use std::time::Duration;
//! use multiproc::executor::{MapOptions, ProcessPool, TaskOptions};
//! use multiproc::futures::TaskError;
//!
//! let pool = ProcessPool::new(2);
//! let crash = pool.submit(|()| -> u64 { std::process::abort() }, ());
//! let hang = pool.submit_with(|()| -> u64 { loop { std::thread::sleep(Duration::from_secs(1)) } }, (),
//!                             TaskOptions::timeout(Duration::from_millis(100)));
//! let fine = pool.submit(|x: u64| x * x, 7);
//! assert!(matches!(crash.result(), Err(TaskError::WorkerDied { .. })));
//! assert!(matches!(hang.result(), Err(TaskError::DeadlineExceeded(_))));
//! assert_eq!(fine.result(), Ok(49));
//! let total: u64 = pool.map_with(|x: u64| x + 1, 0..1000, MapOptions::default().chunksize(100))
//!     .map(Result::unwrap).sum();
//! assert_eq!(total, 500_500);
//! ```
//!
//! And the `queue` module, with exact lengths, `task_done`/`join` and
//! `shutdown`:
//!
//! ```
//! use multiproc::queue::{Queue, PutError};
//!
//! let q = Queue::new(1);
//! q.put("a")?;
//! assert_eq!(q.try_put("b"), Err(PutError::Full("b")));
//! assert_eq!((q.len(), q.get()?), (1, "a"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Names
//!
//! The same idea has the same word everywhere, threads and processes alike:
//!
//! - **Families.** A call that may block comes in three: `x` waits as long
//!   as it takes, `try_x` never waits, `x_timeout(d)` waits at most `d` —
//!   `get`/`try_get`/`get_timeout`, likewise `put`, `lock`, `acquire`,
//!   `wait`, `join`, `accept`, `result`.
//! - **Not now.** `try_x()` answers exactly as `x_timeout(Duration::ZERO)`
//!   would: same type, same error. Queues say [`Empty`](queue::GetError::Empty)
//!   or [`Full`](queue::PutError::Full) for both (as Python's `queue.Empty`
//!   and `queue.Full`); futures and processes say `Timeout`
//!   ([`TaskError::Timeout`](futures::TaskError::Timeout),
//!   [`ProcessError::Timeout`](process::ProcessError::Timeout)); locks
//!   `WouldBlock`; semaphores `None`. Never an `Option` for one and an
//!   error for its sibling.
//! - **Deadlines.** Internally every family is one function taking a
//!   deadline, named `x_until`.
//! - **Errors say what happened**, one word each: `ShutDown` (a queue or
//!   an executor was shut down; `shutdown()` is the call that does it),
//!   `Timeout` (*you* stopped waiting; the work goes on),
//!   `DeadlineExceeded` (the *task* ran past its own timeout and was
//!   killed), `Died { status }`/`WorkerDied { status }` (a process ended
//!   without answering), `Panicked { message, location }`, `Cancelled`,
//!   `Retrieved` (the value was already taken), `OverRelease { limit }`.
//! - **Counts are `usize`**: semaphores, barriers, queue sizes, workers.
//!   An argument that can never be right (a barrier of 0 parties) is
//!   refused: `InvalidInput` where the constructor returns `io::Result`
//!   anyway, a panic (documented under `# Panics`) where it cannot fail
//!   otherwise.
//! - **Pools** are configured alike (`builder().max_workers(n).build()`,
//!   which returns `io::Result`; `new(n)`, which panics only where
//!   `std::thread::spawn` would), map alike
//!   (`map`, `map_with(f, items, MapOptions)`), and both implement
//!   [`Executor`](executor::Executor).
//! - **A `sync` type and its `threading` twin** (`Semaphore`, `Barrier`,
//!   `Event`) have the same methods and errors; the `sync` one also works
//!   between processes and is created with `io::Result` (it maps shared
//!   memory).
//!
//! # Layers
//!
//! | module | what |
//! |---|---|
//! | [`codec`] | serde values to length-prefixed frames, with a size limit; descriptors beside the bytes |
//! | [`sync`] | locks and friends in shared memory, for threads and processes: [`Mutex`](sync::Mutex), [`Lock`](sync::Lock), [`RLock`](sync::RLock), [`Condvar`](sync::Condvar), [`Semaphore`](sync::Semaphore), [`Event`](sync::Event), [`Barrier`](sync::Barrier); robust against a holder's death |
//! | [`ipc`] | [`Pipe`](ipc::Pipe), [`Connection`](ipc::Connection), [`Queue`](ipc::Queue)/[`JoinableQueue`](ipc::JoinableQueue)/[`SimpleQueue`](ipc::SimpleQueue) in shared memory, [`Listener`](ipc::Listener)/[`Client`](ipc::Client) with an auth key, [`wait`](ipc::wait) |
//! | [`shared`] | [`Value`](shared::Value), [`Array`](shared::Array), [`Atomic`](shared::Atomic), [`RawArray`](shared::RawArray), named [`SharedMemory`](shared::SharedMemory) |
//! | [`process`] | [`Process`](process::Process), start methods, [`current_process`](process::current_process) |
//! | [`manager`] | [`Manager`](manager::Manager): dicts, lists, namespaces, queues, locks, events, values and registered types served by one process to processes on this machine or others, through proxies |
//! | [`futures`] | [`Future`](futures::Future), [`wait`](futures::wait), [`as_completed`](futures::as_completed) |
//! | [`executor`] | [`ThreadPool`](executor::ThreadPool), [`ProcessPool`](executor::ProcessPool) (a dead worker fails only its task) |
//! | [`queue`] | [`Queue`](queue::Queue), [`LifoQueue`](queue::LifoQueue), [`PriorityQueue`](queue::PriorityQueue), [`SimpleQueue`](queue::SimpleQueue) |
//! | [`threading`] | [`Event`](threading::Event), [`Semaphore`](threading::Semaphore), [`Barrier`](threading::Barrier), [`Timer`](threading::Timer) — and where `std` already has the right type |
//!
//! The `os` layer beneath them is private: it is the only code that talks to
//! the kernel. `unsafe` lives there and in `sync` and `ipc` (shared memory),
//! each block with its `SAFETY` argument.
//!
//! `Send` is checked at compile time: a thread pool refuses a task that
//! holds something that cannot cross threads.
//!
//! ```compile_fail
//! use std::rc::Rc;
//! let pool = multiproc::executor::ThreadPool::new(1);
//! let not_send = Rc::new(1);
//! pool.submit(move || *not_send + 1); // error: `Rc<i32>` cannot be sent between threads
//! ```

#![deny(missing_docs, unsafe_op_in_unsafe_fn)]

#[cfg(not(target_os = "linux"))]
compile_error!(
    "multiproc runs on Linux only: it needs memfd_create, futexes on shared memory, pidfds, \
     SCM_RIGHTS and /proc (Linux 5.4 or newer, glibc or musl)"
);

mod blocking;
pub mod codec;
pub mod executor;
pub mod futures;
pub mod ipc;
pub mod manager;
mod os;
mod panic;
pub mod process;
pub mod queue;
pub mod sync;

pub use ipc::shared;
pub mod threading;
