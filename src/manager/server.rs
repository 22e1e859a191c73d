//! The server: a listener, a thread per client connection, a table of
//! objects.
//!
//! A connection's thread reads a request, does it and answers, in order; a
//! request it cannot read (a frame that does not decode) is answered with
//! a refusal and the connection goes on; a frame that breaks the stream
//! (bad header, oversize) ends the connection, never the server. When a
//! connection ends — its client closed it, or died — every manager lock
//! it held is released.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::blocking::{deadline_after, lock, wait_while};
use crate::codec::CodecError;
use crate::ipc::{Address, AuthKey, ConnectError, Connection, Listener, RecvError, SendError};
use crate::os::sock;

use super::Manager;
use super::builder::Make;
use super::channel::{Channel, SERVER_NAP};
use super::protocol::{Bytes, Fault, Kind, Op, Reply, Request};
use super::store::{Ctx, Object, Undo};
use crate::ipc::mailbox::Dir;

/// How often the accepting thread looks whether the server is stopping.
const ACCEPT_SLICE: Duration = Duration::from_millis(50);

#[derive(Default)]
struct Table {
    objects: HashMap<u64, Arc<Object>>,
    names: HashMap<String, u64>,
    next: u64,
}

/// A live connection and the thread that serves it.
type Live = (Arc<Connection>, JoinHandle<()>);

struct State {
    table: RwLock<Table>,
    make: Make,
    stopping: AtomicBool,
    /// A client asked the server to stop.
    asked: Mutex<bool>,
    asked_cond: Condvar,
    /// The live connections and their threads, by connection number.
    conns: Mutex<HashMap<u64, Live>>,
}

/// A manager's server running in this process (see
/// [`Builder::serve`](super::Builder::serve)); it stops when dropped.
///
/// ```
/// use multiproc::manager::Manager;
/// let server = Manager::builder().key("k").serve()?;
/// let manager = server.manager();
/// let d = manager.dict::<String, u32>()?;
/// d.insert(&"a".into(), &1)?;
/// assert_eq!(d.get(&"a".into())?, Some(1));
/// server.shutdown();
/// assert!(d.get(&"a".into()).is_err());
/// # Ok::<(), multiproc::manager::ManagerError>(())
/// ```
pub struct Server {
    state: Arc<State>,
    address: Address,
    key: AuthKey,
    acceptor: Option<JoinHandle<()>>,
}

impl Server {
    pub(crate) fn bind(address: &Address, key: AuthKey, make: Make) -> std::io::Result<Server> {
        let listener = Listener::bind(address, &key)?;
        let address = listener.local_addr()?;
        let state = Arc::new(State {
            table: RwLock::new(Table::default()),
            make,
            stopping: AtomicBool::new(false),
            asked: Mutex::new(false),
            asked_cond: Condvar::new(),
            conns: Mutex::new(HashMap::new()),
        });
        let acceptor = {
            let state = state.clone();
            std::thread::Builder::new()
                .name("manager-accept".into())
                .spawn(move || accept_loop(&state, listener))?
        };
        Ok(Server {
            state,
            address,
            key,
            acceptor: Some(acceptor),
        })
    }

    /// Where clients connect.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The key clients prove.
    pub fn key(&self) -> &AuthKey {
        &self.key
    }

    /// A client of this server (it does not own it: dropping it leaves the
    /// server running).
    pub fn manager(&self) -> Manager {
        Manager::client(&self.address, &self.key)
    }

    /// Waits until a client asks the server to stop
    /// ([`Manager::shutdown`]); then the server still serves until it is
    /// shut down or dropped.
    pub fn wait(&self) {
        let asked = lock(&self.state.asked);
        drop(wait_while(&self.state.asked_cond, asked, None, |a| !*a));
    }

    /// Like [`wait`](Self::wait), at most `timeout`: `true` if a client
    /// asked.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let asked = lock(&self.state.asked);
        !wait_while(
            &self.state.asked_cond,
            asked,
            Some(deadline_after(timeout)),
            |a| !*a,
        )
        .1
    }

    /// Stops: no new client, every connection closed, every thread joined.
    /// A client's call in progress fails with
    /// [`ManagerError::ServerGone`](super::ManagerError::ServerGone) or
    /// [`ManagerError::ShuttingDown`](super::ManagerError::ShuttingDown).
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.state.stopping.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let conns: Vec<_> = lock(&self.state.conns).drain().collect();
        for (_, (conn, _)) in &conns {
            let _ = sock::shutdown(conn.as_fd(), true);
        }
        for (_, (_, thread)) in conns {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

fn accept_loop(state: &Arc<State>, listener: Listener) {
    let listener = Arc::new(listener);
    let mut next = 0u64;
    while !state.stopping.load(Ordering::SeqCst) {
        let conn = match listener.accept_unverified(Some(deadline_after(ACCEPT_SLICE))) {
            Ok(conn) => Arc::new(conn),
            Err(ConnectError::Timeout) => continue,
            Err(e) => {
                // (Out of descriptors, say: let the moment pass rather than
                // spin on it.)
                tracing::debug!(target: "multiproc::manager", "cannot take a client: {e}");
                std::thread::sleep(ACCEPT_SLICE / 5);
                continue;
            }
        };
        next += 1;
        let id = next;
        // The thread removes itself when done: registered before it can.
        let mut conns = lock(&state.conns);
        let thread = {
            let (state, conn, listener) = (state.clone(), conn.clone(), listener.clone());
            std::thread::Builder::new()
                .name(format!("manager-conn-{id}"))
                .spawn(move || {
                    // Each client's handshake on its own thread: one that
                    // never answers holds up nobody else.
                    match listener.handshake(&conn) {
                        Ok(()) => serve(&state, &conn, id),
                        Err(e) => tracing::debug!(
                            target: "multiproc::manager",
                            "turned away a client: {e}"
                        ),
                    }
                    drop(conn);
                    lock(&state.conns).remove(&id);
                })
        };
        match thread {
            Ok(thread) => {
                conns.insert(id, (conn, thread));
            }
            Err(e) => {
                tracing::warn!(target: "multiproc::manager", "no thread for a client: {e}");
            }
        }
    }
}

/// Serves one connection until it ends; then releases the locks it held.
fn serve(state: &State, conn: &Arc<Connection>, id: u64) {
    let stopping = || state.stopping.load(Ordering::Relaxed);
    let gone = || stopping() || sock::peer_closed(conn.as_fd());
    let ctx = Ctx {
        conn: id,
        gone: &gone,
    };
    let mut chan = Channel::new(conn.clone(), Dir::Reply);
    let mut held: HashMap<u64, Arc<Object>> = HashMap::new();
    loop {
        let request = match chan.recv::<Request>(SERVER_NAP, stopping) {
            Ok(request) => request,
            Err(RecvError::Codec(CodecError::Decode(why))) => {
                let refused = Reply::Fault(Fault::Refused(format!("unreadable request: {why}")));
                if chan.send(&refused).is_err() {
                    break;
                }
                continue;
            }
            Err(_) => break,
        };
        let reply = match request {
            Request::Ping => Reply::Done,
            Request::Mailbox(mailbox) => {
                // Answered by the socket; then through the mailbox.
                if chan.send(&Reply::Done).is_err() {
                    break;
                }
                chan.attach(mailbox);
                continue;
            }
            Request::Create { kind, name, init } => state.create(kind, name, init),
            Request::Delete { id } => state.delete(id),
            Request::Shutdown => {
                let _ = chan.send(&Reply::Done);
                *lock(&state.asked) = true;
                state.asked_cond.notify_all();
                continue;
            }
            Request::Call { id: object_id, op } => {
                let Some(object) = state.get(object_id) else {
                    if chan
                        .send(&Reply::Fault(Fault::NoSuchObject(object_id)))
                        .is_err()
                    {
                        break;
                    }
                    continue;
                };
                let acquiring = matches!(op, Op::Acquire { .. });
                let (reply, undo) = object.call(op, &ctx);
                if acquiring && matches!(reply, Reply::Flag(true)) {
                    held.insert(object_id, object.clone());
                }
                // Items taken for a client that is gone go back; a mailbox
                // cannot tell, so look at the socket first.
                if matches!(undo, Undo::Requeue(_)) && sock::peer_closed(conn.as_fd()) {
                    object.undo(undo);
                    break;
                }
                if answer(&chan, &reply, || object.undo(undo)).is_err() {
                    break;
                }
                continue;
            }
        };
        if answer(&chan, &reply, || {}).is_err() {
            break;
        }
    }
    drop(chan); // closes the mailbox: the client's next call opens another
    for object in held.values() {
        object.release_for(id);
    }
}

/// Sends a reply; `unsent` puts back what it took if it is not delivered.
/// One that cannot be encoded (a snapshot larger than the message size
/// limit) is answered with why, and the connection goes on.
fn answer(chan: &Channel, reply: &Reply, unsent: impl FnOnce()) -> Result<(), SendError> {
    match chan.send(reply) {
        Ok(()) => Ok(()),
        Err(SendError::Codec(e)) => {
            unsent();
            chan.send(&Reply::Fault(Fault::Refused(format!(
                "cannot send the answer: {e}"
            ))))
        }
        Err(e) => {
            unsent();
            Err(e)
        }
    }
}

impl State {
    fn get(&self, id: u64) -> Option<Arc<Object>> {
        self.table
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .objects
            .get(&id)
            .cloned()
    }

    fn create(&self, kind: Kind, name: Option<String>, init: Bytes) -> Reply {
        let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
        if let Some(name) = &name
            && let Some(&id) = table.names.get(name)
        {
            let object = &table.objects[&id];
            return if object.is(&kind) {
                Reply::Id(id)
            } else {
                Reply::Fault(Fault::WrongKind {
                    is: object.kind().name(),
                    wanted: kind.name(),
                })
            };
        }
        let object = match Object::new(&kind, init, self.make) {
            Ok(object) => object,
            Err(fault) => return Reply::Fault(fault),
        };
        table.next += 1;
        let id = table.next;
        table.objects.insert(id, Arc::new(object));
        if let Some(name) = name {
            table.names.insert(name, id);
        }
        Reply::Id(id)
    }

    fn delete(&self, id: u64) -> Reply {
        let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
        if table.objects.remove(&id).is_none() {
            return Reply::Fault(Fault::NoSuchObject(id));
        }
        table.names.retain(|_, v| *v != id);
        Reply::Done
    }
}
