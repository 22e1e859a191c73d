//! The only layer that talks to the kernel.
//!
//! Everything above this module is safe code: each `unsafe` block of the crate
//! lives here (or, in later layers, in `sync` and `ipc`) with a `// SAFETY:`
//! comment. The pieces:
//!
//! - [`image`]: the executable image — how a function is named across two
//!   processes running the same binary, and how a child checks that it is that
//!   binary.
//! - [`proc`]: process creation (re-exec through `/proc/self/exe` with
//!   `posix_spawn`, `fork`), pidfds, signals, exit statuses.
//! - [`sock`]: Unix socket pairs, `sendmsg`/`recvmsg` with descriptors passed as
//!   `SCM_RIGHTS`, and waiting on several descriptors with a deadline.
//! - [`bootstrap`]: the marker a re-executed child finds in its environment.
//! - [`lifeline`]: a pipe that hangs up when the program ends, so that
//!   daemon children and pool workers die with it.
//! - [`pages`]: faulting in a large receive buffer's pages in one call.
//! - [`peer_memory`]: copying a large value out of another process's memory.
//! - [`surroundings`]: the environment, directory and standard streams a
//!   fork server's child takes over from the program that asked for it.

pub(crate) mod bootstrap;
pub(crate) mod image;
pub(crate) mod lifeline;
pub(crate) mod pages;
pub(crate) mod peer_memory;
pub(crate) mod proc;
pub(crate) mod shm;
pub(crate) mod sock;
pub(crate) mod surroundings;
