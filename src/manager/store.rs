//! The objects a server holds, and what each operation does to them.
//!
//! Every object is guarded by its own lock, so one operation — a get, an
//! `update_with`, a compare-and-swap — is atomic with respect to every other
//! client. A blocking operation (a queue's `get`, a lock's `acquire`, an
//! event's `wait`) waits on the object's condition variable in slices, and
//! between slices looks whether its client hung up or the server is
//! stopping, so that no server thread waits for a client that is gone.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::blocking::{deadline_after, lock};
use crate::panic::{self, Report};

use super::protocol::{Bytes, Fault, Kind, Num, Op, Reply, Update, WaitMicros};

/// How long a blocking operation waits before it looks whether its client
/// is still there.
const SLICE: Duration = Duration::from_millis(50);

/// What an operation needs to know about who asked.
pub(crate) struct Ctx<'a> {
    /// The connection that asked (a lock remembers it, to be released if
    /// that connection ends).
    pub(crate) conn: u64,
    /// Whether the client hung up or the server is stopping.
    pub(crate) gone: &'a dyn Fn() -> bool,
}

/// What to put back if the reply cannot be delivered, so that nothing is
/// lost with a client that vanished between asking and hearing.
pub(crate) enum Undo {
    Nothing,
    /// Items taken from a queue: back to its front, in order.
    Requeue(Vec<Bytes>),
}

/// A registered object with its type erased: a call's encoding in, the
/// reply's encoding out.
#[allow(missing_docs)] // not reachable: `pub` for `Registry`'s hidden method
pub trait Erased: Send {
    fn invoke(&mut self, call: &[u8]) -> Result<Vec<u8>, Fault>;
}

/// A server-side object.
pub(crate) enum Object {
    /// A dict or a namespace (`kind` says which).
    Map {
        kind: Kind,
        map: Mutex<HashMap<Bytes, Bytes>>,
    },
    List(Mutex<Vec<Bytes>>),
    Queue {
        maxsize: u64,
        state: Mutex<QueueState>,
        changed: Condvar,
    },
    /// `owner`: the connection that holds it.
    Lock {
        owner: Mutex<Option<u64>>,
        freed: Condvar,
    },
    Event {
        set: Mutex<bool>,
        changed: Condvar,
    },
    Value(Mutex<Bytes>),
    Registered {
        kind: Kind,
        object: Mutex<Box<dyn Erased>>,
    },
}

/// A queue's items, and how many put items are not yet marked done
/// (`task_done`), which `join` waits to see at zero.
#[derive(Default)]
pub(crate) struct QueueState {
    items: VecDeque<Bytes>,
    unfinished: u64,
}

/// Why a blocking wait ended without its condition.
enum Stop {
    TimedOut,
    Gone,
}

/// Waits on `cond` until `ready`, at most `wait`, in slices between which
/// it looks whether the client is gone.
fn wait_for<'a, T>(
    cond: &Condvar,
    mut guard: MutexGuard<'a, T>,
    wait: WaitMicros,
    ctx: &Ctx<'_>,
    mut ready: impl FnMut(&mut T) -> bool,
) -> Result<MutexGuard<'a, T>, Stop> {
    let deadline = wait.map(|us| deadline_after(Duration::from_micros(us)));
    loop {
        if ready(&mut guard) {
            return Ok(guard);
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Err(Stop::TimedOut);
        }
        if (ctx.gone)() {
            return Err(Stop::Gone);
        }
        let slice = deadline.map_or(SLICE, |d| (d - now).min(SLICE));
        guard = cond
            .wait_timeout(guard, slice)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

impl Object {
    /// A new object of `kind`; `make` makes a registered type's.
    pub(crate) fn new(
        kind: &Kind,
        init: Bytes,
        make: super::builder::Make,
    ) -> Result<Object, Fault> {
        Ok(match kind {
            Kind::Dict | Kind::Namespace => Object::Map {
                kind: kind.clone(),
                map: Mutex::new(HashMap::new()),
            },
            Kind::List => Object::List(Mutex::new(Vec::new())),
            Kind::Queue { maxsize } => Object::Queue {
                maxsize: *maxsize,
                state: Mutex::new(QueueState::default()),
                changed: Condvar::new(),
            },
            Kind::Lock => Object::Lock {
                owner: Mutex::new(None),
                freed: Condvar::new(),
            },
            Kind::Event => Object::Event {
                set: Mutex::new(false),
                changed: Condvar::new(),
            },
            Kind::Value => Object::Value(Mutex::new(init)),
            Kind::Object(name) => Object::Registered {
                kind: kind.clone(),
                object: Mutex::new(
                    make(name, &init)
                        .ok_or_else(|| Fault::NotRegistered(name.clone()))?
                        .map_err(Fault::Refused)?,
                ),
            },
        })
    }

    /// What this object is.
    pub(crate) fn kind(&self) -> Kind {
        match self {
            Object::Map { kind, .. } | Object::Registered { kind, .. } => kind.clone(),
            Object::List(_) => Kind::List,
            Object::Queue { maxsize, .. } => Kind::Queue { maxsize: *maxsize },
            Object::Lock { .. } => Kind::Lock,
            Object::Event { .. } => Kind::Event,
            Object::Value(_) => Kind::Value,
        }
    }

    /// Whether a name of kind `kind` may be this object (a queue's size
    /// need not match).
    pub(crate) fn is(&self, kind: &Kind) -> bool {
        std::mem::discriminant(&self.kind()) == std::mem::discriminant(kind)
            && match (self, kind) {
                (Object::Registered { kind: mine, .. }, theirs) => mine == theirs,
                _ => true,
            }
    }

    /// Does `op`.
    pub(crate) fn call(&self, op: Op, ctx: &Ctx<'_>) -> (Reply, Undo) {
        match self.run(op, ctx) {
            Ok(done) => done,
            Err(fault) => (Reply::Fault(fault), Undo::Nothing),
        }
    }

    /// Puts back what a reply that was never delivered took.
    pub(crate) fn undo(&self, undo: Undo) {
        if let (Undo::Requeue(taken), Object::Queue { state, changed, .. }) = (undo, self) {
            let mut q = lock(state);
            for item in taken.into_iter().rev() {
                q.items.push_front(item);
            }
            changed.notify_all();
        }
    }

    /// Releases the lock if `conn` holds it (its client is gone).
    pub(crate) fn release_for(&self, conn: u64) {
        if let Object::Lock { owner, freed } = self {
            let mut owner = lock(owner);
            if *owner == Some(conn) {
                *owner = None;
                freed.notify_one();
            }
        }
    }

    fn run(&self, op: Op, ctx: &Ctx<'_>) -> Result<(Reply, Undo), Fault> {
        let done = |reply| Ok((reply, Undo::Nothing));
        match (self, op) {
            (Object::Map { map, .. }, op) => done(map_op(&mut lock(map), op, self)?),
            (Object::List(list), op) => done(list_op(&mut lock(list), op, self)?),
            (
                Object::Queue {
                    maxsize,
                    state,
                    changed,
                },
                op,
            ) => queue_op(*maxsize, state, changed, op, ctx, self),
            (Object::Lock { owner, freed }, op) => done(lock_op(owner, freed, op, ctx, self)?),
            (Object::Event { set, changed }, op) => done(event_op(set, changed, op, ctx, self)?),
            (Object::Value(value), op) => done(value_op(&mut lock(value), op, self)?),
            (Object::Registered { object, .. }, Op::Invoke(call)) => {
                done(Reply::Value(Bytes::from(lock(object).invoke(&call)?)))
            }
            (Object::Registered { .. }, op) => Err(unsupported(&op, self)),
        }
    }
}

fn unsupported(op: &Op, object: &Object) -> Fault {
    /// Keeps the variant's name — what `Debug` writes before a `(`, ` ` or
    /// `{` — and stops the formatting there (an operation may carry
    /// megabytes).
    struct Name(String);
    impl std::fmt::Write for Name {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            match s.find(['(', ' ', '{']) {
                Some(end) => {
                    self.0.push_str(&s[..end]);
                    Err(std::fmt::Error)
                }
                None => {
                    self.0.push_str(s);
                    Ok(())
                }
            }
        }
    }
    let mut name = Name(String::new());
    let _ = std::fmt::write(&mut name, format_args!("{op:?}"));
    Fault::Unsupported {
        op: name.0,
        kind: object.kind().name(),
    }
}

fn map_op(map: &mut HashMap<Bytes, Bytes>, op: Op, object: &Object) -> Result<Reply, Fault> {
    Ok(match op {
        Op::Get(k) => Reply::Maybe(map.get(&k).cloned()),
        Op::GetMany(keys) => Reply::Many(keys.iter().map(|k| map.get(k).cloned()).collect()),
        Op::Insert(k, v) => Reply::Maybe(map.insert(k, v)),
        Op::InsertMany(pairs) => {
            map.extend(pairs);
            Reply::Done
        }
        Op::Remove(k) => Reply::Maybe(map.remove(&k)),
        Op::Contains(k) => Reply::Flag(map.contains_key(&k)),
        Op::Keys => Reply::Items(map.keys().cloned().collect()),
        Op::Values => Reply::Items(map.values().cloned().collect()),
        Op::Items => Reply::Pairs(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        Op::Len => Reply::Count(map.len() as u64),
        Op::Clear => {
            map.clear();
            Reply::Done
        }
        Op::SetDefault(k, v) => Reply::Value(map.entry(k).or_insert(v).clone()),
        Op::UpdateKey(k, update) => {
            let new = Bytes::from(apply(&update, map.get(&k).map(|v| &v[..]))?);
            map.insert(k, new.clone());
            Reply::Value(new)
        }
        Op::SwapKey { key, expected, new } => {
            if map.get(&key) != expected.as_ref() {
                Reply::Conflict(map.get(&key).cloned())
            } else {
                match new {
                    Some(v) => map.insert(key, v),
                    None => map.remove(&key),
                };
                Reply::Done
            }
        }
        op => return Err(unsupported(&op, object)),
    })
}

fn list_op(list: &mut Vec<Bytes>, op: Op, object: &Object) -> Result<Reply, Fault> {
    let len = list.len() as u64;
    let check = |index: u64, limit: u64| {
        if index < limit {
            Ok(index as usize)
        } else {
            Err(Fault::IndexOutOfRange { index, len })
        }
    };
    Ok(match op {
        Op::At(i) => Reply::Value(list[check(i, len)?].clone()),
        Op::SetAt(i, v) => {
            list[check(i, len)?] = v;
            Reply::Done
        }
        Op::Push(v) => {
            list.push(v);
            Reply::Done
        }
        Op::Pop => Reply::Maybe(list.pop()),
        Op::InsertAt(i, v) => {
            list.insert(check(i, len + 1)?, v);
            Reply::Done
        }
        Op::RemoveAt(i) => Reply::Value(list.remove(check(i, len)?)),
        Op::Extend(items) => {
            list.extend(items);
            Reply::Done
        }
        Op::Len => Reply::Count(len),
        Op::Values => Reply::Items(list.clone()),
        Op::Clear => {
            list.clear();
            Reply::Done
        }
        op => return Err(unsupported(&op, object)),
    })
}

fn queue_op(
    maxsize: u64,
    state: &Mutex<QueueState>,
    changed: &Condvar,
    op: Op,
    ctx: &Ctx<'_>,
    object: &Object,
) -> Result<(Reply, Undo), Fault> {
    match op {
        Op::Put { item, wait } => {
            let room = |q: &mut QueueState| maxsize == 0 || (q.items.len() as u64) < maxsize;
            let mut q = wait_for(changed, lock(state), wait, ctx, room).map_err(|s| match s {
                Stop::TimedOut => Fault::Full,
                Stop::Gone => Fault::ShuttingDown,
            })?;
            q.items.push_back(item);
            q.unfinished += 1;
            changed.notify_all();
            Ok((Reply::Done, Undo::Nothing))
        }
        Op::Take { max, wait } => {
            let some = |q: &mut QueueState| !q.items.is_empty();
            let mut q = wait_for(changed, lock(state), wait, ctx, some).map_err(|s| match s {
                Stop::TimedOut => Fault::Empty,
                Stop::Gone => Fault::ShuttingDown,
            })?;
            let n = (max.max(1) as usize).min(q.items.len());
            let taken: Vec<Bytes> = q.items.drain(..n).collect();
            changed.notify_all();
            Ok((Reply::Items(taken.clone()), Undo::Requeue(taken)))
        }
        Op::TaskDone => {
            let mut q = lock(state);
            if q.unfinished == 0 {
                return Err(Fault::TaskDone);
            }
            q.unfinished -= 1;
            if q.unfinished == 0 {
                changed.notify_all();
            }
            Ok((Reply::Done, Undo::Nothing))
        }
        Op::JoinQueue { wait } => {
            let done = |q: &mut QueueState| q.unfinished == 0;
            match wait_for(changed, lock(state), wait, ctx, done) {
                Ok(_) => Ok((Reply::Flag(true), Undo::Nothing)),
                Err(Stop::TimedOut) => Ok((Reply::Flag(false), Undo::Nothing)),
                Err(Stop::Gone) => Err(Fault::ShuttingDown),
            }
        }
        Op::Len => Ok((Reply::Count(lock(state).items.len() as u64), Undo::Nothing)),
        op => Err(unsupported(&op, object)),
    }
}

fn lock_op(
    owner: &Mutex<Option<u64>>,
    freed: &Condvar,
    op: Op,
    ctx: &Ctx<'_>,
    object: &Object,
) -> Result<Reply, Fault> {
    Ok(match op {
        Op::Acquire { wait } => match wait_for(freed, lock(owner), wait, ctx, |o| o.is_none()) {
            Ok(mut o) => {
                *o = Some(ctx.conn);
                Reply::Flag(true)
            }
            Err(Stop::TimedOut) => Reply::Flag(false),
            Err(Stop::Gone) => return Err(Fault::ShuttingDown),
        },
        Op::Release => {
            let mut o = lock(owner);
            if o.take().is_none() {
                return Err(Fault::NotLocked);
            }
            freed.notify_one();
            Reply::Done
        }
        Op::Locked => Reply::Flag(lock(owner).is_some()),
        op => return Err(unsupported(&op, object)),
    })
}

fn event_op(
    set: &Mutex<bool>,
    changed: &Condvar,
    op: Op,
    ctx: &Ctx<'_>,
    object: &Object,
) -> Result<Reply, Fault> {
    Ok(match op {
        Op::Set => {
            *lock(set) = true;
            changed.notify_all();
            Reply::Done
        }
        Op::Unset => {
            *lock(set) = false;
            Reply::Done
        }
        Op::IsSet => Reply::Flag(*lock(set)),
        Op::WaitSet { wait } => match wait_for(changed, lock(set), wait, ctx, |s| *s) {
            Ok(_) => Reply::Flag(true),
            Err(Stop::TimedOut) => Reply::Flag(false),
            Err(Stop::Gone) => return Err(Fault::ShuttingDown),
        },
        op => return Err(unsupported(&op, object)),
    })
}

fn value_op(value: &mut Bytes, op: Op, object: &Object) -> Result<Reply, Fault> {
    Ok(match op {
        Op::Load => Reply::Value(value.clone()),
        Op::Store(v) => {
            *value = v;
            Reply::Done
        }
        Op::Swap(v) => Reply::Value(std::mem::replace(value, v)),
        Op::Exchange { expected, new } => {
            if *value == expected {
                *value = new;
                Reply::Done
            } else {
                Reply::Conflict(Some(value.clone()))
            }
        }
        Op::UpdateValue(update) => {
            *value = Bytes::from(apply(&update, Some(value))?);
            Reply::Value(value.clone())
        }
        op => return Err(unsupported(&op, object)),
    })
}

/// The new encoding of a value after `update` (`old`: `None` when the key
/// is missing, which counts as zero, an empty sequence or string).
fn apply(update: &Update, old: Option<&[u8]>) -> Result<Vec<u8>, Fault> {
    match update {
        Update::Add(n) => add(*n, old).map_err(Fault::Update),
        Update::Push(item) => grow(old, 1, item),
        Update::PushStr(s) => grow(old, s.len() as u64, s),
    }
}

/// A sequence or string (a `u64` count, then its items or bytes) with
/// `count` more and `bytes` appended.
fn grow(old: Option<&[u8]>, count: u64, bytes: &[u8]) -> Result<Vec<u8>, Fault> {
    let old = old.unwrap_or(&[0; 8]);
    let Some((len, rest)) = old.split_first_chunk::<8>() else {
        return Err(Fault::Update(format!(
            "the value is {} bytes: not a sequence or a string",
            old.len()
        )));
    };
    let len = u64::from_le_bytes(*len)
        .checked_add(count)
        .ok_or_else(|| Fault::Update("the length overflows".into()))?;
    let mut out = Vec::with_capacity(old.len() + bytes.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(rest);
    out.extend_from_slice(bytes);
    Ok(out)
}

/// `old + n`, both of `n`'s type; integers refuse to overflow.
fn add(n: Num, old: Option<&[u8]>) -> Result<Vec<u8>, String> {
    macro_rules! sum {
        ($t:ty, $by:expr, $op:expr) => {{
            let current: $t = match old {
                None => <$t>::default(),
                Some(b) => <$t>::from_le_bytes(b.try_into().map_err(|_| {
                    format!("the value is {} bytes, not {}", b.len(), stringify!($t))
                })?),
            };
            let sum: Option<$t> = $op(current, $by);
            sum.ok_or_else(|| format!("{current} + {} overflows {}", $by, stringify!($t)))?
                .to_le_bytes()
                .to_vec()
        }};
    }
    Ok(match n {
        Num::I8(by) => sum!(i8, by, i8::checked_add),
        Num::I16(by) => sum!(i16, by, i16::checked_add),
        Num::I32(by) => sum!(i32, by, i32::checked_add),
        Num::I64(by) => sum!(i64, by, i64::checked_add),
        Num::U8(by) => sum!(u8, by, u8::checked_add),
        Num::U16(by) => sum!(u16, by, u16::checked_add),
        Num::U32(by) => sum!(u32, by, u32::checked_add),
        Num::U64(by) => sum!(u64, by, u64::checked_add),
        Num::F32(by) => sum!(f32, by, |a: f32, b: f32| Some(a + b)),
        Num::F64(by) => sum!(f64, by, |a: f64, b: f64| Some(a + b)),
    })
}

/// A registered type's object on the server.
pub(crate) struct Typed<T: super::Served>(pub(crate) T);

impl<T: super::Served> Erased for Typed<T> {
    fn invoke(&mut self, call: &[u8]) -> Result<Vec<u8>, Fault> {
        let call: T::Call = crate::codec::decode_plain(call, super::link::NO_HANDLES)
            .map_err(|e| Fault::Refused(format!("the call does not decode: {e}")))?;
        let reply =
            panic::capture(Report::Quiet, || self.0.call(call)).map_err(|p| Fault::Panicked {
                message: p.message,
                location: p.location,
            })?;
        let mut out = Vec::new();
        crate::codec::to_bytes(&reply, &mut out, super::link::NO_HANDLES)
            .map_err(|e| Fault::Refused(format!("the reply does not encode: {e}")))?;
        Ok(out)
    }
}
