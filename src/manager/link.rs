//! The client side of the wire: a process's connections to one server, and
//! the handle every proxy is made of.
//!
//! All the proxies of one process that reach one server share a [`Link`]: a
//! pool of authenticated connections, each used by one call at a time, so
//! threads call at once without waiting for each other (a blocking `get`
//! holds its own connection), and a proxy costs no connection of its own.
//! A connection that failed is dropped, not reused. A child started by
//! `fork` does not use its parent's connections (their sockets are shared
//! with the parent): a handle checks the process id and takes its own link.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::blocking::lock;
use crate::codec;
use crate::ipc::mailbox::{Dir, Mailbox};
use crate::ipc::{Address, AuthKey, Client, SendError};
use crate::os::proc::getpid;

use super::ManagerError;
use super::channel::{CLIENT_NAP, Channel, MAILBOX_BYTES};
use super::protocol::{Bytes, Offer, Op, Reply, Request};

/// How long a new connection may take, handshake included.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A process's way to one server.
pub(crate) struct Link {
    pub(crate) address: Address,
    pub(crate) key: AuthKey,
    pid: u32,
    idle: Mutex<Vec<Channel>>,
}

static LINKS: Mutex<Vec<Weak<Link>>> = Mutex::new(Vec::new());

impl Link {
    /// This process's link to the server at `address`, shared.
    pub(crate) fn to(address: &Address, key: &AuthKey) -> Arc<Link> {
        let pid = getpid();
        let mut links = lock(&LINKS);
        links.retain(|l| l.strong_count() > 0);
        if let Some(link) = links
            .iter()
            .filter_map(Weak::upgrade)
            .find(|l| l.pid == pid && l.address == *address && l.key.as_bytes() == key.as_bytes())
        {
            return link;
        }
        let link = Arc::new(Link {
            address: address.clone(),
            key: key.clone(),
            pid,
            idle: Mutex::new(Vec::new()),
        });
        links.push(Arc::downgrade(&link));
        link
    }

    /// Sends `request` and waits for its reply; a [`Reply::Fault`] is
    /// returned as its error.
    pub(crate) fn call(&self, request: &Request) -> Result<Reply, ManagerError> {
        // A pooled connection whose server thread ended (its server went
        // away, and perhaps came back) refuses the request unsent: then a
        // fresh one is tried.
        let mut chan = loop {
            let (chan, fresh) = match lock(&self.idle).pop() {
                Some(chan) if chan.is_closed() => continue,
                Some(chan) => (chan, false),
                None => (self.open()?, true),
            };
            match chan.send(request) {
                Ok(()) => break chan,
                Err(SendError::Closed) if !fresh => continue,
                // Nothing was sent: the connection is as good as before.
                Err(SendError::Codec(e)) => {
                    lock(&self.idle).push(chan);
                    return Err(e.into());
                }
                Err(e) => return Err(e.into()),
            }
        };
        let reply: Reply = chan.recv(CLIENT_NAP, || false)?;
        lock(&self.idle).push(chan);
        match reply {
            Reply::Fault(fault) => Err(fault.into()),
            reply => Ok(reply),
        }
    }

    /// A new connection; on a Unix socket, with a mailbox.
    fn open(&self) -> Result<Channel, ManagerError> {
        let sock = Client::connect_timeout(&self.address, &self.key, CONNECT_TIMEOUT)?;
        let mut chan = Channel::new(Arc::new(sock), Dir::Request);
        if chan.socket().passes_fds() {
            let mailbox = Mailbox::new(MAILBOX_BYTES)?;
            chan.send(&Offer::Mailbox(&mailbox))?;
            match chan.recv(CLIENT_NAP, || false)? {
                Reply::Done => {}
                Reply::Fault(fault) => return Err(fault.into()),
                r => return Err(unexpected(r)),
            }
            chan.attach(mailbox);
        }
        Ok(chan)
    }
}

/// An object on a server: what every proxy holds.
#[derive(Clone)]
pub(crate) struct Handle {
    link: Arc<Link>,
    pub(crate) id: u64,
}

impl Handle {
    pub(crate) fn new(link: Arc<Link>, id: u64) -> Handle {
        Handle { link, id }
    }

    /// This process's link (a forked child does not share its parent's).
    pub(crate) fn link(&self) -> Arc<Link> {
        if self.link.pid == getpid() {
            self.link.clone()
        } else {
            Link::to(&self.link.address, &self.link.key)
        }
    }

    /// Does `op` on the object.
    pub(crate) fn call(&self, op: Op) -> Result<Reply, ManagerError> {
        self.link().call(&Request::Call { id: self.id, op })
    }

    /// Forgets the object on the server.
    pub(crate) fn delete(&self) -> Result<(), ManagerError> {
        self.link().call(&Request::Delete { id: self.id })?;
        Ok(())
    }
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "object {} at {}", self.id, self.link.address)
    }
}

/// A handle on the wire: where the server is, its key, which object.
#[derive(Serialize, Deserialize)]
struct Wire {
    address: Address,
    key: Option<Bytes>,
    id: u64,
}

impl Serialize for Handle {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Wire {
            address: self.link.address.clone(),
            key: self.link.key.as_bytes().map(|k| Bytes::from(k.to_vec())),
            id: self.id,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Handle {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(d)?;
        let key = wire
            .key
            .map_or(AuthKey::NONE, |k| AuthKey::from(k.into_vec()));
        Ok(Handle::new(Link::to(&wire.address, &key), wire.id))
    }
}

/// Why a value holding a handle cannot go to a manager.
pub(crate) const NO_HANDLES: &str =
    "a value holding a handle (a connection, queue, ...) cannot be stored in a manager";

/// Encodes a key, value or item for the server.
pub(crate) fn enc<T: Serialize + ?Sized>(value: &T) -> Result<Bytes, ManagerError> {
    let mut out = Vec::new();
    codec::to_bytes(value, &mut out, NO_HANDLES)?;
    Ok(Bytes::from(out))
}

/// Decodes a key, value or item from the server.
pub(crate) fn dec<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ManagerError> {
    Ok(codec::decode_plain(bytes, NO_HANDLES)?)
}

/// A reply that is not the one the request has.
pub(crate) fn unexpected(reply: Reply) -> ManagerError {
    ManagerError::Protocol(format!("unexpected reply {reply:?}"))
}

/// The reply's one value, decoded.
pub(crate) fn value<T: DeserializeOwned>(reply: Reply) -> Result<T, ManagerError> {
    match reply {
        Reply::Value(v) => dec(&v),
        r => Err(unexpected(r)),
    }
}

/// The reply's optional value, decoded.
pub(crate) fn maybe<T: DeserializeOwned>(reply: Reply) -> Result<Option<T>, ManagerError> {
    match reply {
        Reply::Maybe(v) => v.map(|v| dec(&v)).transpose(),
        r => Err(unexpected(r)),
    }
}

/// The reply's items, decoded.
pub(crate) fn items<T: DeserializeOwned>(reply: Reply) -> Result<Vec<T>, ManagerError> {
    match reply {
        Reply::Items(v) => v.iter().map(|v| dec(v)).collect(),
        r => Err(unexpected(r)),
    }
}

/// The reply's count.
pub(crate) fn count(reply: Reply) -> Result<usize, ManagerError> {
    match reply {
        Reply::Count(n) => Ok(n as usize),
        r => Err(unexpected(r)),
    }
}

/// The reply's flag.
pub(crate) fn flag(reply: Reply) -> Result<bool, ManagerError> {
    match reply {
        Reply::Flag(b) => Ok(b),
        r => Err(unexpected(r)),
    }
}

/// A reply that says only "done".
pub(crate) fn done(reply: Reply) -> Result<(), ManagerError> {
    match reply {
        Reply::Done => Ok(()),
        r => Err(unexpected(r)),
    }
}

/// A wait for the wire.
pub(crate) fn wait_micros(wait: crate::blocking::Wait) -> super::protocol::WaitMicros {
    use crate::blocking::Wait;
    match wait {
        Wait::Forever => None,
        Wait::No => Some(0),
        Wait::Until(deadline) => Some(micros(
            deadline.saturating_duration_since(std::time::Instant::now()),
        )),
    }
}

/// A timeout for the wire: microseconds, rounded up so that a tiny
/// timeout still waits a little rather than not at all.
fn micros(timeout: Duration) -> u64 {
    let us = timeout.as_micros();
    if us == 0 && !timeout.is_zero() {
        1
    } else {
        u64::try_from(us).unwrap_or(u64::MAX)
    }
}
