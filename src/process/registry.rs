//! Who this process is, and the children it has started.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use super::child_proc::ChildProc;
use crate::blocking::lock;

/// A process, as [`current_process`](super::current_process),
/// [`parent_process`](super::parent_process) and
/// [`active_children`](super::active_children) describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessInfo {
    /// The process id.
    pub pid: u32,
    /// Its name: `"MainProcess"` for the program itself, `"Process-N"` (or the
    /// name given to the builder) for the children.
    pub name: String,
}

struct Identity {
    name: String,
    parent: ProcessInfo,
}

static IDENTITY: Mutex<Option<Identity>> = Mutex::new(None);
static COUNTER: AtomicU64 = AtomicU64::new(0);
static CHILDREN: Mutex<Vec<Weak<ChildProc>>> = Mutex::new(Vec::new());
static ORPHANS: Mutex<Vec<Arc<ChildProc>>> = Mutex::new(Vec::new());

/// Called first thing in a new child: it has its own name, its parent, and no
/// children (a forked child inherited its parent's lists: they are not its).
pub(crate) fn become_child(name: &str, parent: ProcessInfo) {
    *lock(&IDENTITY) = Some(Identity {
        name: name.to_string(),
        parent,
    });
    COUNTER.store(0, Ordering::Relaxed);
    // Dropping closes this process's copies of the parent's descriptors.
    std::mem::take(&mut *lock(&CHILDREN));
    std::mem::take(&mut *lock(&ORPHANS));
}

pub(crate) fn current() -> ProcessInfo {
    let id = lock(&IDENTITY);
    ProcessInfo {
        pid: crate::os::proc::getpid(),
        name: id
            .as_ref()
            .map_or_else(|| "MainProcess".to_string(), |i| i.name.clone()),
    }
}

pub(crate) fn parent() -> Option<ProcessInfo> {
    lock(&IDENTITY).as_ref().map(|i| i.parent.clone())
}

/// Python's default names: `Process-N` in the main process, `NAME:N` in a
/// child named NAME.
pub(crate) fn next_name() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
    match lock(&IDENTITY).as_ref() {
        Some(i) => format!("{}:{n}", i.name),
        None => format!("Process-{n}"),
    }
}

pub(crate) fn register(child: &Arc<ChildProc>) {
    let mut children = lock(&CHILDREN);
    // The entries of children whose handles are gone go now: a `Weak`
    // keeps its allocation, and a pool that replaces workers for hours
    // starts millions of children (found by the soak run: +1.6 MB/min).
    children.retain(|w| w.strong_count() > 0);
    children.push(Arc::downgrade(child));
}

/// A handle dropped while its process still ran: it is reaped later (like
/// Python's `_children` set) so that it does not stay a zombie.
pub(crate) fn adopt(child: Arc<ChildProc>) {
    lock(&ORPHANS).push(child);
}

/// Reaps orphans that have ended.
pub(crate) fn reap_orphans() {
    lock(&ORPHANS).retain(|c| !matches!(c.try_status(), Ok(Some(_))));
}

pub(crate) fn active() -> Vec<ProcessInfo> {
    reap_orphans();
    let mut children = lock(&CHILDREN);
    children.retain(|w| w.strong_count() > 0);
    children
        .iter()
        .filter_map(Weak::upgrade)
        .filter(|c| !c.has_exited())
        .map(|c| ProcessInfo {
            pid: c.pid(),
            name: c.name().to_string(),
        })
        .collect()
}
