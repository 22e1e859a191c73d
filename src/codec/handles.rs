//! File descriptors that travel beside the bytes of a frame.
//!
//! A type that owns a descriptor implements `Serialize` with
//! [`serialize_fd`] and `Deserialize` with [`deserialize_fd`]. While
//! [`encode`](super::encode) runs, `serialize_fd` duplicates the descriptor
//! into the frame's table and writes its index; while
//! [`decode`](super::decode) runs, `deserialize_fd` takes the descriptor at
//! that index. Outside of those two calls (say, `serde_json::to_string` on a
//! `Connection`) they fail with an error that says so, and so they do
//! while the crate encodes or decodes a payload that no descriptor travels
//! with (a shared-memory queue's message, a value stored as bytes), with
//! that path's own words.

use std::cell::{Cell, RefCell};
use std::os::fd::{BorrowedFd, OwnedFd};

use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serializer};

thread_local! {
    static OUTGOING: RefCell<Option<Vec<OwnedFd>>> = const { RefCell::new(None) };
    static INCOMING: RefCell<Option<Vec<Option<OwnedFd>>>> = const { RefCell::new(None) };
    /// Set while a payload that can carry no handle is encoded or decoded
    /// ([`refusing`]): what a handle met there is told. A `Cell` of a plain
    /// value, so reaching it costs a load (the tables above, which own
    /// descriptors, are reached through a check of their destructor's
    /// registration).
    static REFUSING: Cell<Option<&'static str>> = const { Cell::new(None) };
}

/// Puts `REFUSING` back as it was when dropped (also when `f` panics).
struct Restore(Option<&'static str>);

impl Drop for Restore {
    fn drop(&mut self) {
        REFUSING.set(self.0);
    }
}

/// Runs `f` with a fresh outgoing table; returns its result and the table.
pub(crate) fn collecting<R>(f: impl FnOnce() -> R) -> (R, Vec<OwnedFd>) {
    let saved = OUTGOING.with(|t| t.replace(Some(Vec::new())));
    let r = f();
    let fds = OUTGOING.with(|t| t.replace(saved)).unwrap_or_default();
    (r, fds)
}

/// Runs `f` with `fds` as the incoming table. Descriptors that `f` does not
/// take are closed afterwards.
pub(crate) fn providing<R>(fds: Vec<OwnedFd>, f: impl FnOnce() -> R) -> R {
    let table = fds.into_iter().map(Some).collect();
    let saved = INCOMING.with(|t| t.replace(Some(table)));
    let r = f();
    INCOMING.with(|t| t.replace(saved));
    r
}

/// Runs `f`, which encodes or decodes a payload that no descriptor travels
/// with (a shared-memory queue's message, a stored value): a handle met
/// there is an error that says `why` — also inside a [`collecting`] or
/// [`providing`] that `f` would start (a handle sent mid-serialization of
/// a queue's message: refused, never sent astray). It replaces those two
/// on such paths: a queue's `put` + `get` through serde counted 1,224
/// instructions with them, 968 without (callgrind).
pub(crate) fn refusing<R>(why: &'static str, f: impl FnOnce() -> R) -> R {
    let _restore = Restore(REFUSING.replace(Some(why)));
    f()
}

/// Serializes a descriptor as an index into the outgoing table of the frame
/// being encoded (the descriptor is duplicated; the caller keeps its own).
pub fn serialize_fd<S: Serializer>(fd: BorrowedFd<'_>, s: S) -> Result<S::Ok, S::Error> {
    if let Some(why) = REFUSING.get() {
        return Err(S::Error::custom(why));
    }
    let index = OUTGOING.with(|t| -> Result<u32, String> {
        let mut t = t.borrow_mut();
        let table = t
            .as_mut()
            .ok_or("a handle that owns a file descriptor can only be sent through multiproc (a Connection, a process argument or result)")?;
        let dup = crate::os::sock::dup(fd).map_err(|e| format!("cannot duplicate a descriptor: {e}"))?;
        table.push(dup);
        Ok(table.len() as u32 - 1)
    });
    match index {
        Ok(i) => s.serialize_u32(i),
        Err(msg) => Err(S::Error::custom(msg)),
    }
}

/// Takes the descriptor whose index comes next in the payload being decoded.
pub fn deserialize_fd<'de, D: Deserializer<'de>>(d: D) -> Result<OwnedFd, D::Error> {
    let index = u32::deserialize(d)? as usize;
    if let Some(why) = REFUSING.get() {
        return Err(D::Error::custom(why));
    }
    INCOMING.with(|t| {
        let mut t = t.borrow_mut();
        let table = t
            .as_mut()
            .ok_or_else(|| D::Error::custom("a handle can only be received through multiproc"))?;
        table.get_mut(index).and_then(Option::take).ok_or_else(|| {
            D::Error::custom(format!("the message has no descriptor number {index}"))
        })
    })
}

/// A descriptor borrowed for one message: it serializes as a handle (see
/// [`serialize_fd`]) and comes out at the other end as an [`Fd`].
pub(crate) struct FdRef<'a>(pub(crate) BorrowedFd<'a>);

impl serde::Serialize for FdRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_fd(self.0, s)
    }
}

/// Descriptors borrowed for one message: they serialize as a sequence of
/// handles, and come out at the other end as a `Vec<Fd>`.
pub(crate) struct FdsRef<'a>(pub(crate) &'a [OwnedFd]);

impl serde::Serialize for FdsRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use std::os::fd::AsFd;
        s.collect_seq(self.0.iter().map(|fd| FdRef(fd.as_fd())))
    }
}

/// A bare descriptor as a message field, for handles built by other layers.
#[derive(Debug)]
pub struct Fd(pub OwnedFd);

impl serde::Serialize for Fd {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use std::os::fd::AsFd;
        serialize_fd(self.0.as_fd(), s)
    }
}

impl<'de> serde::Deserialize<'de> for Fd {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_fd(d).map(Fd)
    }
}
