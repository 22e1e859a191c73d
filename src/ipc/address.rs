//! Where a [`Listener`](super::Listener) listens: a Unix socket path, a Linux
//! abstract name or a TCP address.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use crate::os::sock::SockAddr;

/// The address of a [`Listener`](super::Listener).
///
/// Written as a string (see [`ToAddress`] for `&str`):
///
/// | string | address |
/// |---|---|
/// | `"@name"` | [`Address::Abstract`]: a Linux abstract Unix socket, no file |
/// | `"unix:anything"`, or a string with a `/` or without a `:` | [`Address::Unix`]: a socket file at that path |
/// | `"host:port"`, `"tcp:host:port"`, `"[::1]:port"` | [`Address::Tcp`], the host resolved once |
///
/// ```
/// use multiproc::ipc::{Address, ToAddress};
/// assert!(matches!("/tmp/server.sock".to_address()?, Address::Unix(_)));
/// assert!(matches!("@my-server".to_address()?, Address::Abstract(_)));
/// assert!(matches!("127.0.0.1:7000".to_address()?, Address::Tcp(_)));
/// assert_eq!("@my-server".to_address()?.to_string(), "@my-server");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Address {
    /// A Unix socket file. The listener creates it with mode `0600` (its
    /// owner only) and removes it when dropped.
    Unix(PathBuf),
    /// A Linux abstract Unix socket name: no file, gone with the listener.
    /// Any process in the same network namespace can connect; only the auth
    /// key keeps strangers out.
    Abstract(Vec<u8>),
    /// A TCP address. Handles (connections, queues) cannot travel over TCP.
    Tcp(SocketAddr),
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Unix(p) => write!(f, "{}", p.display()),
            Address::Abstract(name) => write!(f, "@{}", String::from_utf8_lossy(name)),
            Address::Tcp(a) => write!(f, "{a}"),
        }
    }
}

impl Address {
    pub(crate) fn to_sock(&self) -> SockAddr {
        match self {
            Address::Unix(p) => SockAddr::Path(p.clone()),
            Address::Abstract(n) => SockAddr::Abstract(n.clone()),
            Address::Tcp(a) => SockAddr::Inet(*a),
        }
    }

    pub(crate) fn from_sock(addr: SockAddr) -> Address {
        match addr {
            SockAddr::Path(p) => Address::Unix(p),
            SockAddr::Abstract(n) => Address::Abstract(n),
            SockAddr::Inet(a) => Address::Tcp(a),
        }
    }
}

/// Something that names an [`Address`]: an `Address`, a string (see the
/// table on [`Address`]), a [`Path`], a [`SocketAddr`].
pub trait ToAddress {
    /// The address, or why there is none (a TCP host that does not resolve,
    /// a port that is not a number).
    fn to_address(&self) -> io::Result<Address>;
}

impl ToAddress for Address {
    fn to_address(&self) -> io::Result<Address> {
        Ok(self.clone())
    }
}

impl ToAddress for str {
    fn to_address(&self) -> io::Result<Address> {
        if let Some(name) = self.strip_prefix('@') {
            return Ok(Address::Abstract(name.as_bytes().to_vec()));
        }
        if let Some(path) = self.strip_prefix("unix:") {
            return Ok(Address::Unix(path.into()));
        }
        let tcp = self.strip_prefix("tcp:");
        if tcp.is_none() && (self.contains('/') || !self.contains(':')) {
            return Ok(Address::Unix(self.into()));
        }
        let spec = tcp.unwrap_or(self);
        spec.to_socket_addrs()?
            .next()
            .map(Address::Tcp)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{spec:?} resolves to no address"),
                )
            })
    }
}

impl ToAddress for String {
    fn to_address(&self) -> io::Result<Address> {
        self.as_str().to_address()
    }
}

impl ToAddress for Path {
    fn to_address(&self) -> io::Result<Address> {
        Ok(Address::Unix(self.to_path_buf()))
    }
}

impl ToAddress for PathBuf {
    fn to_address(&self) -> io::Result<Address> {
        Ok(Address::Unix(self.clone()))
    }
}

impl ToAddress for SocketAddr {
    fn to_address(&self) -> io::Result<Address> {
        Ok(Address::Tcp(*self))
    }
}

impl<T: ToAddress + ?Sized> ToAddress for &T {
    fn to_address(&self) -> io::Result<Address> {
        (**self).to_address()
    }
}
