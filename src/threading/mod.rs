//! The pieces of Python's `threading` that `std` lacks.
//!
//! | Python | here |
//! |---|---|
//! | `Event` | [`Event`] |
//! | `Semaphore`, `BoundedSemaphore` | [`Semaphore`], [`BoundedSemaphore`] (over-release is an error) |
//! | `Barrier` (timeouts, `abort`, `reset`) | [`Barrier`] |
//! | `Timer` | [`Timer`] (with the function's result as a future) |
//!
//! For the rest, `std` already has the right thing and this crate does not
//! wrap it:
//!
//! | Python | Rust |
//! |---|---|
//! | `Thread(target=f).start()`, `join()` | [`std::thread::spawn`], [`JoinHandle::join`](std::thread::JoinHandle::join) |
//! | `Lock`, `with lock:` | [`std::sync::Mutex`] — better: put the data *inside* the mutex |
//! | `Condition` | [`std::sync::Condvar`] |
//! | `threading.local()` | [`thread_local!`] |
//! | a counter shared by threads | `Arc<Mutex<T>>`, or an atomic |
//!
//! The ticket counter of the notes, the Rust way — the shared count lives
//! in the `Mutex`, so it cannot be touched without the lock:
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use std::thread;
//!
//! let tickets = Arc::new(Mutex::new(10));
//! let buyers: Vec<_> = (0..10).map(|_| {
//!     let tickets = tickets.clone();
//!     thread::spawn(move || {
//!         let mut left = tickets.lock().unwrap();
//!         *left -= 1;
//!     })
//! }).collect();
//! buyers.into_iter().for_each(|b| b.join().unwrap());
//! assert_eq!(*tickets.lock().unwrap(), 0);
//! ```

mod barrier;
mod event;
mod semaphore;
mod timer;

pub use barrier::{Barrier, BarrierError};
pub use event::Event;
pub use semaphore::{BoundedSemaphore, OverRelease, Semaphore, SemaphoreGuard};
pub use timer::Timer;
