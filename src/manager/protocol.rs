//! The wire between a manager's clients and its server: one [`Request`],
//! one [`Reply`], as codec frames over an authenticated
//! [`Connection`](crate::ipc::Connection).
//!
//! The server never sees a user's types: keys, values and items travel as
//! their codec encoding ([`Bytes`]), and two keys are the same key when
//! their encodings are equal. So one server serves dicts of any types, and
//! a client of another build can use the built-in objects. Only the
//! read-modify-write [`Update`]s look inside a value, and only at the
//! encodings the codec defines for numbers, sequences and strings.

use serde::{Deserialize, Serialize};

/// An encoded key, value or item.
pub(crate) type Bytes = serde_bytes::ByteBuf;

/// How long a blocking operation may wait on the server, in microseconds:
/// `None` for ever, `Some(0)` not at all. Relative, since the two machines'
/// clocks need not agree.
pub(crate) type WaitMicros = Option<u64>;

/// What an object is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Kind {
    Dict,
    List,
    Namespace,
    Queue {
        maxsize: u64,
    },
    Lock,
    Event,
    Value,
    /// A registered type, by its name.
    Object(String),
}

impl Kind {
    /// The name an error uses.
    pub(crate) fn name(&self) -> String {
        match self {
            Kind::Dict => "dict".into(),
            Kind::List => "list".into(),
            Kind::Namespace => "namespace".into(),
            Kind::Queue { .. } => "queue".into(),
            Kind::Lock => "lock".into(),
            Kind::Event => "event".into(),
            Kind::Value => "value".into(),
            Kind::Object(t) => format!("object of type {t}"),
        }
    }
}

/// A request.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    /// Is anybody there? [`Reply::Done`].
    Ping,
    /// From now on, messages go through this mailbox (the first request of
    /// a connection over a Unix socket; answered by the socket).
    Mailbox(crate::ipc::mailbox::Mailbox),
    /// A new object — or, with a name, the object of that name if there is
    /// one (of the same kind). `init`: a value's first value, a registered
    /// object's state. [`Reply::Id`].
    Create {
        kind: Kind,
        name: Option<String>,
        init: Bytes,
    },
    /// An operation on an object.
    Call { id: u64, op: Op },
    /// Forget an object (and its name).
    Delete { id: u64 },
    /// Stop the server once this is answered.
    Shutdown,
}

/// The first [`Request`]s as a client sends them, the mailbox borrowed
/// (the same encoding: variants are numbered in order).
#[derive(Serialize)]
pub(crate) enum Offer<'a> {
    #[allow(dead_code)] // numbers the next variant as `Request` does
    Ping,
    Mailbox(&'a crate::ipc::mailbox::Mailbox),
}

/// An operation on one object; the server refuses one that the object's
/// kind does not have.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Op {
    // Dicts and namespaces.
    Get(Bytes),
    GetMany(Vec<Bytes>),
    Insert(Bytes, Bytes),
    InsertMany(Vec<(Bytes, Bytes)>),
    Remove(Bytes),
    Contains(Bytes),
    Keys,
    Items,
    SetDefault(Bytes, Bytes),
    UpdateKey(Bytes, Update),
    SwapKey {
        key: Bytes,
        expected: Option<Bytes>,
        new: Option<Bytes>,
    },
    // Lists.
    At(u64),
    SetAt(u64, Bytes),
    Push(Bytes),
    Pop,
    InsertAt(u64, Bytes),
    RemoveAt(u64),
    Extend(Vec<Bytes>),
    // Dicts, namespaces, lists and queues.
    Len,
    Values,
    Clear,
    // Queues.
    Put {
        item: Bytes,
        wait: WaitMicros,
    },
    Take {
        max: u64,
        wait: WaitMicros,
    },
    TaskDone,
    JoinQueue {
        wait: WaitMicros,
    },
    // Locks.
    Acquire {
        wait: WaitMicros,
    },
    Release,
    Locked,
    // Events.
    Set,
    Unset,
    IsSet,
    WaitSet {
        wait: WaitMicros,
    },
    // Values.
    Load,
    Store(Bytes),
    Swap(Bytes),
    Exchange {
        expected: Bytes,
        new: Bytes,
    },
    UpdateValue(Update),
    // Registered objects.
    Invoke(Bytes),
}

/// A read-modify-write the server does in one step, under the object's
/// lock.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Update {
    /// Adds to a number (a missing one is 0).
    Add(Num),
    /// Appends one encoded item to a sequence (a missing one is empty).
    Push(Bytes),
    /// Appends bytes to a string (a missing one is empty).
    PushStr(Bytes),
}

/// A number, by type, as [`Update::Add`] adds it.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub enum Num {
    /// An `i8`.
    I8(i8),
    /// An `i16`.
    I16(i16),
    /// An `i32`.
    I32(i32),
    /// An `i64` (or `isize`).
    I64(i64),
    /// A `u8`.
    U8(u8),
    /// A `u16`.
    U16(u16),
    /// A `u32`.
    U32(u32),
    /// A `u64` (or `usize`).
    U64(u64),
    /// An `f32`.
    F32(f32),
    /// An `f64`.
    F64(f64),
}

/// A reply.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    Done,
    Id(u64),
    Value(Bytes),
    Maybe(Option<Bytes>),
    Many(Vec<Option<Bytes>>),
    Items(Vec<Bytes>),
    Pairs(Vec<(Bytes, Bytes)>),
    Count(u64),
    Flag(bool),
    /// A compare-and-swap found this instead of what it expected.
    Conflict(Option<Bytes>),
    Fault(Fault),
}

/// Why the server did not do what was asked.
#[derive(Debug, Serialize, Deserialize)]
#[allow(missing_docs)] // not reachable: `pub` for the object trait of `store`
pub enum Fault {
    NoSuchObject(u64),
    WrongKind {
        is: String,
        wanted: String,
    },
    Unsupported {
        op: String,
        kind: String,
    },
    IndexOutOfRange {
        index: u64,
        len: u64,
    },
    Empty,
    Full,
    NotLocked,
    TaskDone,
    Update(String),
    NotRegistered(String),
    Panicked {
        message: String,
        location: Option<String>,
    },
    Refused(String),
    ShuttingDown,
}
