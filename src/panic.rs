//! Turning a panic into someone's error: its message and `file:line:col`.
//!
//! The location of a panic is only known to the panic hook, so the crate
//! installs one hook, once, in front of whatever hook was there. On a thread
//! that is running [`capture`], the hook records the message and location for
//! the caller; with [`Report::Quiet`] it prints nothing (the panic becomes a
//! future's error, as an exception does in Python's executors), with
//! [`Report::Print`] it also calls the previous hook (a child process prints
//! its panic like any program). Everywhere else it only calls the previous
//! hook.
//!
//! A program that later replaces the hook with `std::panic::set_hook` keeps
//! everything working except the locations, which become `None`.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

/// A panic turned into data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PanicReport {
    pub(crate) message: String,
    pub(crate) location: Option<String>,
}

/// Whether a captured panic is also printed by the previous hook.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Report {
    Quiet,
    Print,
}

thread_local! {
    static CAPTURING: Cell<Option<Report>> = const { Cell::new(None) };
    static LAST: RefCell<Option<PanicReport>> = const { RefCell::new(None) };
}

fn install_hook() {
    /// What `PanicHookInfo::payload_as_str` gives (Rust 1.91), for older
    /// compilers too.
    fn payload_text(payload: &(dyn std::any::Any + Send)) -> &str {
        payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("Box<dyn Any>")
    }

    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let Some(mode) = CAPTURING.with(Cell::get) else {
                return previous(info);
            };
            let report = PanicReport {
                message: payload_text(info.payload()).to_string(),
                location: info
                    .location()
                    .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column())),
            };
            LAST.with(|last| *last.borrow_mut() = Some(report));
            if mode == Report::Print {
                previous(info);
            }
        }));
    });
}

/// Runs `f`, turning a panic into a [`PanicReport`].
pub(crate) fn capture<R>(mode: Report, f: impl FnOnce() -> R) -> Result<R, PanicReport> {
    install_hook();
    LAST.with(|last| last.borrow_mut().take());
    let outer = CAPTURING.with(|c| c.replace(Some(mode)));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CAPTURING.with(|c| c.set(outer));
    result.map_err(|payload| {
        LAST.with(|last| last.borrow_mut().take())
            .unwrap_or_else(|| from_payload(payload.as_ref()))
    })
}

/// The message of a panic payload, for panics the hook did not see.
fn from_payload(payload: &(dyn Any + Send)) -> PanicReport {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "Box<dyn Any>".to_string());
    PanicReport {
        message,
        location: None,
    }
}

/// The words every error uses for a panic: `panicked at file:line:col: message`
/// (`panicked: message` when the location is unknown).
pub(crate) fn text(message: &str, location: Option<&str>) -> String {
    match location {
        Some(l) => format!("panicked at {l}: {message}"),
        None => format!("panicked: {message}"),
    }
}
