//! `Listener` and `Client`: connections between processes that did not start
//! each other; Python's `multiprocessing.connection.Listener` and `Client`.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::address::{Address, ToAddress};
use super::auth::{self, AuthError, AuthKey};
use super::connection::Connection;
use crate::blocking::{deadline_after, lock};
use crate::os::sock;

/// How long a peer has to finish the handshake unless told otherwise: 10 s.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections the kernel queues before the listener accepts them (the
/// kernel caps it at `net.core.somaxconn`).
const BACKLOG: i32 = 4096;

/// Why no authenticated connection was made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// `accept_timeout`: no client came in time; `connect_timeout`: the
    /// listener did not take the connection in time.
    #[error("timed out")]
    Timeout,
    /// The handshake failed: a wrong or missing key, a silent or garbled peer.
    /// A listener stays usable after a client's failed handshake.
    #[error("authentication failed: {0}")]
    Auth(#[from] AuthError),
    /// The operating system refused (no such socket, address in use, ...).
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

/// A socket that accepts authenticated [`Connection`]s; Python's
/// `multiprocessing.connection.Listener`.
///
/// Each accepted connection has passed the handshake of
/// [`auth`](super::auth): both ends proved the same key (or both have
/// none). The listener's Unix socket file is created owner-only (`0600`) and
/// removed when the listener is dropped.
///
/// ```
/// use multiproc::ipc::{Client, Listener};
/// let dir = std::env::temp_dir().join(format!("mp-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let listener = Listener::bind(dir.join("server.sock"), "secret")?;
/// let address = listener.local_addr()?;
///
/// let client = std::thread::spawn(move || -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
///     let conn = Client::connect(&address, "secret")?;
///     conn.send("hello")?;
///     Ok(conn.recv::<String>()?)
/// });
/// let conn = listener.accept()?;
/// let greeting: String = conn.recv()?;
/// conn.send(&format!("{greeting} back"))?;
/// assert_eq!(client.join().unwrap().unwrap(), "hello back");
///
/// // A client with another key is refused, on both sides.
/// let address = listener.local_addr()?;
/// let intruder = std::thread::spawn(move || Client::connect(&address, "guess").map(drop));
/// assert!(listener.accept().is_err());
/// assert!(intruder.join().unwrap().is_err());
/// # drop(listener); std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Differences from Python
///
/// - A peer that says nothing fails its `accept` after the handshake timeout
///   ([`DEFAULT_HANDSHAKE_TIMEOUT`], see
///   [`set_handshake_timeout`](Self::set_handshake_timeout)); Python waits
///   forever. Handshakes run one at a time in `accept`, so a silent peer
///   delays the clients behind it by at most that long.
/// - An empty key is refused (`InvalidInput`): use [`AuthKey::NONE`] to mean
///   "no authentication".
/// - A side that has a key refuses a peer that has none, whichever side it
///   is: the client, too, insists that the listener prove the key.
#[derive(Debug)]
pub struct Listener {
    fd: OwnedFd,
    key: AuthKey,
    handshake_timeout: Mutex<Duration>,
    /// The socket file to remove on drop.
    path: Option<PathBuf>,
}

impl Listener {
    /// Listens at `address` (see [`Address`] for the forms), requiring `key`
    /// from every client — or no key, with [`AuthKey::NONE`].
    ///
    /// A Unix socket path that already exists is an error
    /// ([`io::ErrorKind::AddrInUse`]); remove a stale one first.
    pub fn bind(address: impl ToAddress, key: impl Into<AuthKey>) -> io::Result<Listener> {
        let key = key.into();
        key.check()?;
        let address = address.to_address()?;
        let fd = sock::listen(&address.to_sock(), BACKLOG)?;
        Ok(Listener {
            fd,
            key,
            handshake_timeout: Mutex::new(DEFAULT_HANDSHAKE_TIMEOUT),
            path: match address {
                Address::Unix(p) => Some(p),
                _ => None,
            },
        })
    }

    /// The address clients connect to; for TCP port 0, the port chosen.
    pub fn local_addr(&self) -> io::Result<Address> {
        Ok(Address::from_sock(sock::local_addr(self.fd.as_fd())?))
    }

    /// Sets how long a client has to finish the handshake.
    pub fn set_handshake_timeout(&self, timeout: Duration) {
        *lock(&self.handshake_timeout) = timeout;
    }

    /// Waits for a client and runs the handshake with it.
    ///
    /// A client that fails the handshake is an error of this call (and is
    /// disconnected); the listener stays usable, so a server loops:
    ///
    /// ```no_run
    /// # let listener = multiproc::ipc::Listener::bind("@doc", "key")?;
    /// loop {
    ///     match listener.accept() {
    ///         Ok(conn) => { /* serve conn */ }
    ///         Err(e) => eprintln!("turned away a client: {e}"),
    ///     }
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn accept(&self) -> Result<Connection, ConnectError> {
        self.accept_until(None)
    }

    /// Like [`accept`](Self::accept), but waits at most `timeout` for a
    /// client to arrive ([`ConnectError::Timeout`]); the handshake then has
    /// its own timeout. `Duration::ZERO` takes only a client already waiting.
    pub fn accept_timeout(&self, timeout: Duration) -> Result<Connection, ConnectError> {
        self.accept_until(Some(deadline_after(timeout)))
    }

    /// Takes a client only if one is already waiting
    /// ([`ConnectError::Timeout`] otherwise, as `accept_timeout(ZERO)`);
    /// the handshake with it still runs, under its own timeout.
    ///
    /// ```
    /// use multiproc::ipc::{ConnectError, Listener};
    /// let listener = Listener::bind("@multiproc-doc-try-accept", "key")?;
    /// assert!(matches!(listener.try_accept(), Err(ConnectError::Timeout)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_accept(&self) -> Result<Connection, ConnectError> {
        self.accept_until(Some(Instant::now()))
    }

    fn accept_until(&self, deadline: Option<Instant>) -> Result<Connection, ConnectError> {
        let conn = self.accept_unverified(deadline)?;
        self.handshake(&conn)?;
        Ok(conn)
    }

    /// Takes a client without the handshake, for a server that runs each
    /// client's handshake on its own thread (so that a client that never
    /// answers cannot hold up the others): [`handshake`](Self::handshake)
    /// must pass before anything the client sends is read.
    pub(crate) fn accept_unverified(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Connection, ConnectError> {
        let fd = loop {
            if let Some(fd) = sock::accept(self.fd.as_fd())? {
                break fd;
            }
            // Another thread took the client, or none is there yet.
            if !sock::wait_fds(&[(self.fd.as_fd(), true)], deadline)?[0] {
                return Err(ConnectError::Timeout);
            }
        };
        Ok(Connection::from_socket(fd))
    }

    /// Runs the handshake with a client taken by
    /// [`accept_unverified`](Self::accept_unverified).
    pub(crate) fn handshake(&self, conn: &Connection) -> Result<(), ConnectError> {
        let handshake = deadline_after(*lock(&self.handshake_timeout));
        auth::serve(conn, &self.key, handshake)?;
        Ok(())
    }
}

impl AsFd for Listener {
    /// The listening socket: it polls readable while a client waits.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Connects to a [`Listener`]; Python's `multiprocessing.connection.Client`.
///
/// The connection returned has passed the handshake: the listener proved
/// the same key as ours (or both have none). See [`Listener`] for an example.
pub struct Client;

impl Client {
    /// Connects to `address` and proves `key` (or [`AuthKey::NONE`]). Waits
    /// while the listener's queue of clients is full; the handshake must end
    /// within [`DEFAULT_HANDSHAKE_TIMEOUT`].
    pub fn connect(
        address: impl ToAddress,
        key: impl Into<AuthKey>,
    ) -> Result<Connection, ConnectError> {
        Client::connect_until(address, key.into(), None)
    }

    /// Like [`connect`](Self::connect), with `timeout` bounding the whole of
    /// it: connecting and the handshake ([`ConnectError::Timeout`] if the
    /// listener did not take the connection in time, [`AuthError::Timeout`]
    /// if it did not finish the handshake in time).
    pub fn connect_timeout(
        address: impl ToAddress,
        key: impl Into<AuthKey>,
        timeout: Duration,
    ) -> Result<Connection, ConnectError> {
        Client::connect_until(address, key.into(), Some(deadline_after(timeout)))
    }

    fn connect_until(
        address: impl ToAddress,
        key: AuthKey,
        deadline: Option<Instant>,
    ) -> Result<Connection, ConnectError> {
        key.check()?;
        let address = address.to_address()?;
        let fd = sock::connect(&address.to_sock(), deadline)?.ok_or(ConnectError::Timeout)?;
        let conn = Connection::from_socket(fd);
        let handshake = deadline.unwrap_or_else(|| deadline_after(DEFAULT_HANDSHAKE_TIMEOUT));
        auth::join(&conn, &key, handshake)?;
        Ok(conn)
    }
}
