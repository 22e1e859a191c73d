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
//! # Layers
//!
//! | module | what |
//! |---|---|
//! | [`codec`] | serde values to length-prefixed frames, with a size limit; descriptors beside the bytes |
//! | [`ipc`] | [`Pipe`](ipc::Pipe) and [`Connection`](ipc::Connection) |
//! | [`process`] | [`Process`](process::Process), start methods, [`current_process`](process::current_process) |
//!
//! The `os` layer beneath them is private: it is the only code that talks to
//! the kernel, and the only place with `unsafe`.

#![deny(missing_docs, unsafe_op_in_unsafe_fn)]

pub mod codec;
pub mod executor;
pub mod futures;
pub mod ipc;
mod os;
mod panic;
pub mod process;
pub mod queue;
pub mod threading;
