//! Managers: dicts, lists, namespaces, queues, locks, events and values
//! served by one process to processes on this machine or others; Python's
//! `multiprocessing.Manager()` and `BaseManager`.
//!
//! [`shared`](crate::shared) holds plain data in one machine's memory; a
//! manager holds structured data — any serde type — in a server process,
//! reached over an authenticated [`Listener`](crate::ipc::Listener) (a Unix
//! socket, or TCP across machines). Proxies are cheap handles: pass them
//! to a [`Process`], a pool task or over a
//! [`Connection`](crate::ipc::Connection), and the receiver reaches the
//! same object.
//!
//! ```
//! use std::time::Duration;
//! use multiproc::manager::Manager;
//! use multiproc::process::Process;
//!
//! let manager = Manager::start()?; // a server process, ended with `manager`
//! let results = manager.dict::<u32, u64>()?;
//! let log = manager.list::<String>()?;
//!
//! fn work((n, results, log): (u32, multiproc::manager::Dict<u32, u64>, multiproc::manager::List<String>)) {
//!     results.insert(&n, &(n as u64 * n as u64)).unwrap();
//!     log.push(&format!("{n} done")).unwrap();
//! }
//! let mut ps: Vec<_> = (1..=3)
//!     .map(|n| Process::start(work, (n, results.clone(), log.clone())))
//!     .collect::<Result<_, _>>()?;
//! for p in &mut ps {
//!     p.join_timeout(Duration::from_secs(60))?;
//! }
//! assert_eq!(results.get(&3)?, Some(9));
//! assert_eq!(log.len()?, 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The objects
//!
//! | make | proxy | Python |
//! |---|---|---|
//! | [`Manager::dict`] | [`Dict<K, V>`](Dict) | `Manager().dict()` |
//! | [`Manager::list`] | [`List<T>`](List) | `Manager().list()` |
//! | [`Manager::namespace`] | [`Namespace`] | `Manager().Namespace()` |
//! | [`Manager::queue`] | [`Queue<T>`](Queue) | `Manager().Queue(maxsize)` |
//! | [`Manager::lock`] | [`Lock`] | `Manager().Lock()` |
//! | [`Manager::event`] | [`Event`] | `Manager().Event()` |
//! | [`Manager::value`] | [`Value<T>`](Value) | `Manager().Value(typecode, v)` |
//! | [`Manager::object`] | [`Object<T>`](Object) of a [`Served`] type | `BaseManager.register` |
//!
//! [`Manager::named`] makes or finds an object by name — how a program
//! that connected on its own (with [`Manager::connect`]) finds the objects
//! the others use.
//!
//! # Across machines
//!
//! ```
//! use multiproc::manager::Manager;
//! // On the serving machine (port 0 here: any free port):
//! let server = Manager::builder().address("127.0.0.1:0").key("secret").serve()?;
//! // On another one, with the address and the key:
//! let remote = Manager::connect(server.address(), "secret")?;
//! let jobs = remote.named("jobs").queue::<String>(0)?;
//! jobs.put(&"render frame 7".into())?;
//! assert_eq!(server.manager().named("jobs").queue::<String>(0)?.len()?, 1);
//! // A wrong key never reaches an object:
//! assert!(Manager::connect(server.address(), "guess").is_err());
//! # Ok::<(), multiproc::manager::ManagerError>(())
//! ```
//!
//! # How a call travels
//!
//! Every proxy method is one round trip. The proxies of a process share a
//! pool of connections to the server (a thread's blocking `get` holds one;
//! the others use others), and the server serves each connection on a
//! thread of its own. On one machine, a connection's requests and replies
//! go through a shared-memory mailbox — no system call while both sides are
//! awake — and messages over 64 KiB by its Unix socket; across machines,
//! everything goes by TCP. For hot loops, the batch calls
//! ([`Dict::get_many`], [`Dict::insert_many`], [`List::extend`],
//! [`Queue::get_many`]) move many items in one round trip.
//!
//! # Differences from Python
//!
//! - **No lost updates from the obvious call.** `d[k] = d[k] + 1` from many
//!   processes loses updates in Python; here [`Dict::increment`],
//!   [`Dict::push`], [`Dict::push_str`] and [`Dict::get_or_insert`] are one
//!   step on the server, and [`Dict::update`] applies any closure
//!   atomically (by compare-and-swap).
//! - **A dead server is an error, never a hang**: every call in progress
//!   fails with [`ManagerError::ServerGone`] when the server's connection
//!   closes.
//! - **A dead client's lock is released**: a [`Lock`] held by a process that
//!   died is freed when its connection ends.
//! - **Objects are not reference-counted**: an object lives until its
//!   proxy's `delete`, or until the server stops — a proxy can be copied
//!   into processes the server never hears of, so the server cannot know
//!   when the last one is gone.
//! - **Values are stored encoded**: the server never runs code of the
//!   types it holds (but for [`Served`] types, registered when the server
//!   is built). A proxy carries the server's address and key: pass it only
//!   to processes you would give the key.

mod builder;
mod channel;
mod error;
mod link;
mod protocol;
mod proxy;
mod server;
mod store;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

pub use builder::{Builder, Registry, Served};
pub use error::ManagerError;
pub use proxy::{Dict, Event, List, Lock, LockGuard, Namespace, Number, Object, Queue, Value};
pub use server::Server;

use crate::blocking::lock;
use crate::ipc::{Address, AuthKey, ToAddress};
use crate::process::Process;
use link::{Handle, Link, enc};
use protocol::{Bytes, Kind, Reply, Request};

/// How long a stopping server process may take before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A client of a manager's server — and, when made by
/// [`start`](Manager::start), its owner: the server process stops when this
/// is dropped.
///
/// `Manager` is `Sync`: threads make objects and call them at once (each
/// call takes a connection of its own from the process's pool).
pub struct Manager {
    link: Arc<Link>,
    process: Option<Mutex<Process<Result<(), String>>>>,
}

impl Manager {
    /// Starts a server process with the default settings (a fresh abstract
    /// socket name and a random key) and connects to it; Python's
    /// `Manager()`. See [`builder`](Manager::builder) for more.
    pub fn start() -> Result<Manager, ManagerError> {
        Builder::default().start()
    }

    /// Settings for a server: address, key, registered types.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Connects to a server that runs elsewhere (started by another
    /// program's [`start`](Builder::start) or [`serve`](Builder::serve)),
    /// proving `key`; the first round trip is made here, so a wrong address
    /// or key is this call's error.
    pub fn connect(
        address: impl ToAddress,
        key: impl Into<AuthKey>,
    ) -> Result<Manager, ManagerError> {
        let manager = Manager::client(&address.to_address()?, &key.into());
        manager.link.call(&Request::Ping)?;
        Ok(manager)
    }

    pub(crate) fn client(address: &Address, key: &AuthKey) -> Manager {
        Manager {
            link: Link::to(address, key),
            process: None,
        }
    }

    pub(crate) fn owning(
        address: &Address,
        key: &AuthKey,
        process: Process<Result<(), String>>,
    ) -> Manager {
        Manager {
            link: Link::to(address, key),
            process: Some(Mutex::new(process)),
        }
    }

    /// Where the server listens: what [`connect`](Manager::connect) takes.
    pub fn address(&self) -> &Address {
        &self.link.address
    }

    /// The key the server requires.
    pub fn key(&self) -> &AuthKey {
        &self.link.key
    }

    /// The server process's id, if this manager started it.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(|p| lock(p).pid())
    }

    /// Makes objects by name: the first call with a name makes the object,
    /// later ones (from any client) return it. A name taken by an object of
    /// another kind is [`ManagerError::WrongKind`].
    ///
    /// ```
    /// # let manager = multiproc::manager::Manager::start()?;
    /// let a = manager.named("scores").dict::<String, u32>()?;
    /// a.insert(&"ann".into(), &3)?;
    /// let b = manager.named("scores").dict::<String, u32>()?;
    /// assert_eq!(b.get(&"ann".into())?, Some(3));
    /// assert!(manager.named("scores").list::<u32>().is_err());
    /// # Ok::<(), multiproc::manager::ManagerError>(())
    /// ```
    pub fn named(&self, name: &str) -> Named<'_> {
        Named {
            manager: self,
            name: Some(name.to_string()),
        }
    }

    fn anonymous(&self) -> Named<'_> {
        Named {
            manager: self,
            name: None,
        }
    }

    /// A new, empty [`Dict`].
    pub fn dict<K, V>(&self) -> Result<Dict<K, V>, ManagerError> {
        self.anonymous().dict()
    }

    /// A new, empty [`List`].
    pub fn list<T>(&self) -> Result<List<T>, ManagerError> {
        self.anonymous().list()
    }

    /// A new, empty [`Namespace`].
    pub fn namespace(&self) -> Result<Namespace, ManagerError> {
        self.anonymous().namespace()
    }

    /// A new [`Queue`] of at most `maxsize` items (0: unbounded).
    pub fn queue<T>(&self, maxsize: usize) -> Result<Queue<T>, ManagerError> {
        self.anonymous().queue(maxsize)
    }

    /// A new, free [`Lock`].
    pub fn lock(&self) -> Result<Lock, ManagerError> {
        self.anonymous().lock()
    }

    /// A new, clear [`Event`].
    pub fn event(&self) -> Result<Event, ManagerError> {
        self.anonymous().event()
    }

    /// A new [`Value`] holding `init`.
    pub fn value<T: Serialize>(&self, init: &T) -> Result<Value<T>, ManagerError> {
        self.anonymous().value(init)
    }

    /// A new [`Object`] holding `init`, of a type registered with the
    /// server ([`ManagerError::NotRegistered`] if not).
    pub fn object<T: Served>(&self, init: &T) -> Result<Object<T>, ManagerError> {
        self.anonymous().object(init)
    }

    /// Asks the server to stop. For a server this manager started, waits
    /// for its process to end (and kills it after 10 s). Every proxy of it
    /// then fails with [`ManagerError::ServerGone`] or
    /// [`ManagerError::Connect`].
    pub fn shutdown(mut self) -> Result<(), ManagerError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), ManagerError> {
        let asked = self.link.call(&Request::Shutdown).map(drop);
        let Some(process) = self.process.take() else {
            return asked;
        };
        let mut process = process.into_inner().unwrap_or_else(|e| e.into_inner());
        if process.join_timeout(STOP_TIMEOUT).is_err() {
            process.kill()?;
            let _ = process.join_timeout(STOP_TIMEOUT);
        }
        Ok(())
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        if self.process.is_some() {
            let _ = self.stop();
        }
    }
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("address", &self.link.address)
            .field("owns_server", &self.process.is_some())
            .finish()
    }
}

/// Makes or finds objects by name: see [`Manager::named`].
#[derive(Debug)]
pub struct Named<'a> {
    manager: &'a Manager,
    name: Option<String>,
}

impl Named<'_> {
    fn make(&self, kind: Kind, init: Bytes) -> Result<Handle, ManagerError> {
        let request = Request::Create {
            kind,
            name: self.name.clone(),
            init,
        };
        match self.manager.link.call(&request)? {
            Reply::Id(id) => Ok(Handle::new(self.manager.link.clone(), id)),
            r => Err(link::unexpected(r)),
        }
    }

    /// The [`Dict`] of this name.
    pub fn dict<K, V>(&self) -> Result<Dict<K, V>, ManagerError> {
        Ok(Dict::from_handle(self.make(Kind::Dict, Bytes::new())?))
    }

    /// The [`List`] of this name.
    pub fn list<T>(&self) -> Result<List<T>, ManagerError> {
        Ok(List::from_handle(self.make(Kind::List, Bytes::new())?))
    }

    /// The [`Namespace`] of this name.
    pub fn namespace(&self) -> Result<Namespace, ManagerError> {
        Ok(Namespace::from_handle(
            self.make(Kind::Namespace, Bytes::new())?,
        ))
    }

    /// The [`Queue`] of this name (made with at most `maxsize` items, 0:
    /// unbounded, if it is new).
    pub fn queue<T>(&self, maxsize: usize) -> Result<Queue<T>, ManagerError> {
        let kind = Kind::Queue {
            maxsize: maxsize as u64,
        };
        Ok(Queue::from_handle(self.make(kind, Bytes::new())?))
    }

    /// The [`Lock`] of this name.
    pub fn lock(&self) -> Result<Lock, ManagerError> {
        Ok(Lock::from_handle(self.make(Kind::Lock, Bytes::new())?))
    }

    /// The [`Event`] of this name.
    pub fn event(&self) -> Result<Event, ManagerError> {
        Ok(Event::from_handle(self.make(Kind::Event, Bytes::new())?))
    }

    /// The [`Value`] of this name (made holding `init` if it is new).
    pub fn value<T: Serialize>(&self, init: &T) -> Result<Value<T>, ManagerError> {
        Ok(Value::from_handle(self.make(Kind::Value, enc(init)?)?))
    }

    /// The [`Object`] of this name (made holding `init` if it is new).
    pub fn object<T: Served>(&self, init: &T) -> Result<Object<T>, ManagerError> {
        let kind = Kind::Object(builder::type_name::<T>().to_string());
        Ok(Object::from_handle(self.make(kind, enc(init)?)?))
    }
}

#[cfg(test)]
mod tests;
