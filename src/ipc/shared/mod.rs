//! Values shared between processes: Python's `multiprocessing.Value`,
//! `Array` and `shared_memory.SharedMemory`.
//!
//! - [`Value<T>`](Value): one plain-data value with its lock
//!   ([`get_lock`](Value::get_lock)), for `T:` [`Pod`](bytemuck::Pod).
//! - [`Array<T>`](Array): a fixed-length array with its lock.
//! - [`Atomic<A>`](Atomic): the lock-free variant, for the atomic integer
//!   types: no lock, only atomic operations.
//! - [`RawArray<T>`](RawArray): an array without a lock, sealed read-only
//!   once filled, read by everyone as a plain `&[T]`. (There is no writable
//!   unsynchronized variant: plain reads racing with another process's
//!   writes are a data race, undefined behaviour in Rust.)
//! - [`SharedMemory`]: a named segment in `/dev/shm` for processes that were
//!   not started by us.
//!
//! The first three are handles to anonymous memory (`memfd`): clone them for
//! threads, pass them to child processes as arguments or over a
//! [`Connection`](crate::ipc::Connection); the memory goes away with the
//! last handle, whatever happened to the processes.

mod array;
mod atomic;
mod memory;
mod raw_array;
mod value;

pub use array::{Array, ArrayGuard};
pub use atomic::{Atomic, SharedAtomic};
pub use memory::SharedMemory;
pub use raw_array::RawArray;
pub use value::Value;
