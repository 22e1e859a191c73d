//! Running a Rust function in another process: the one place that names a
//! function for the wire, calls it on the other side, catches its panic
//! and says how it ended.
//!
//! A [`Process`](super::Process) and a pool worker differ only in the
//! transport — where the argument comes from and where the outcome goes —
//! which each gives as a [`Call`]. Everything else is here:
//!
//! - [`entry_for`] names `F` called with an `A`, returning an `R`, as an
//!   [`Entry`] that travels as an offset; the other side's [`trampoline`]
//!   produces `F` (a zero-sized fn item or closure, checked at compile time
//!   by [`zero_sized_fn`]: a closure that captures is refused there, with
//!   the message the user sees), decodes the argument, calls it under
//!   [`panic::capture`] and hands the [`Outcome`] to the transport.
//! - [`Outcome`] is how a call ended, the same type on both transports.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::os::image::{Entry, zero_sized_fn};
use crate::panic::{self, PanicReport, Report};

/// How a call in another process ended. `Outcome<&R>` and `Outcome<R>` have
/// the same encoding, so a value is sent borrowed and received owned.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Outcome<R> {
    /// The function returned this.
    Returned(R),
    /// The function panicked; [`panic::text`] says it to a user.
    Panicked {
        message: String,
        location: Option<String>,
    },
    /// The function could not be called, or its value not sent.
    Failed(String),
}

impl<R> From<PanicReport> for Outcome<R> {
    fn from(p: PanicReport) -> Self {
        Outcome::Panicked {
            message: p.message,
            location: p.location,
        }
    }
}

/// A function that can run in another process: a fn item, or a closure
/// that captures nothing, taking an `A` and returning an `R` (Python's
/// pools refuse lambdas; these are welcome). Implemented for every such
/// type; a closure that captures something is refused at compile time with
/// a message that says what to do.
///
/// The three ways to capture, each refused with that message (the
/// error codes are checked here; the messages read "cannot run in another
/// process … pass the data it needs as the argument instead" and "a closure
/// run in another process must not capture anything; pass the data it needs
/// as the argument instead"):
///
/// ```compile_fail,E0277
/// // A `String` captured: not `Copy`, so not a `RemoteFn`.
/// let greeting = String::from("hello");
/// multiproc::process::Process::start(move |n: u32| format!("{greeting} {n}"), 1);
/// ```
///
/// ```compile_fail,E0080
/// // A `u32` captured: `Copy`, but it would have to travel: refused too.
/// let factor = 3u32;
/// multiproc::process::Process::start(move |x: u32| x * factor, 2);
/// ```
///
/// ```compile_fail,E0080
/// // A borrow captured: refused (a reference cannot cross a process).
/// let words = vec!["a", "b"];
/// let pool = multiproc::executor::ProcessPool::new(1);
/// pool.submit(|i: usize| words[i].len(), 0);
/// ```
///
/// What to write instead: pass the data as the argument.
///
/// ```
/// let greeting = String::from("hello");
/// let mut p = multiproc::process::Process::start(
///     |(greeting, n): (String, u32)| format!("{greeting} {n}"),
///     (greeting, 1),
/// )?;
/// assert_eq!(p.join()?, "hello 1");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot run in another process with an argument of type `{A}`: it captures something, or does not take `{A}`",
    label = "a closure sent to another process must capture nothing",
    note = "pass the data it needs as the argument instead: `|(x, data): (u32, Vec<u8>)| ...` with `(x, data)` as the argument"
)]
pub trait RemoteFn<A, R>: FnOnce(A) -> R + Copy + Send {}

// The error names `RemoteFn` (and says what to do), not the `Copy` of some
// captured type that the compiler would otherwise dig out of this impl.
#[diagnostic::do_not_recommend]
impl<F: FnOnce(A) -> R + Copy + Send, A, R> RemoteFn<A, R> for F {}

/// A transport: where a call's argument comes from and where its outcome
/// goes.
pub(crate) trait Call: Sized + 'static {
    /// Whether a panic is also printed (a child process prints its panic
    /// like any program; a pool's task is quiet, its future reports it).
    const REPORT: Report;

    /// Receives and decodes the argument.
    fn argument<A: DeserializeOwned>(&mut self) -> Result<A, String>;

    /// Sends the outcome; returns the code the process would exit with.
    fn finish<R: Serialize + 'static>(self, outcome: Outcome<&R>) -> i32;
}

/// The entry for `F` called with an `A`, returning an `R`, over the
/// transport `C`. Naming a capturing closure here is a compile error.
pub(crate) fn entry_for<F, A, R, C>() -> Entry<C>
where
    F: FnOnce(A) -> R + Copy,
    A: DeserializeOwned,
    R: Serialize + 'static,
    C: Call,
{
    Entry::of(trampoline::<F, A, R, C>)
}

/// The other side of [`entry_for`]: decodes, calls, catches, reports.
fn trampoline<F, A, R, C>(mut call: C) -> i32
where
    F: FnOnce(A) -> R + Copy,
    A: DeserializeOwned,
    R: Serialize + 'static,
    C: Call,
{
    let f = zero_sized_fn::<F>();
    let arg = match call.argument::<A>() {
        Ok(a) => a,
        Err(why) => {
            return call.finish::<()>(Outcome::Failed(format!(
                "cannot receive the argument: {why}"
            )));
        }
    };
    match panic::capture(C::REPORT, move || f(arg)) {
        Ok(value) => call.finish(Outcome::Returned(&value)),
        Err(report) => call.finish::<()>(report.into()),
    }
}
