//! Configuring and starting a manager's server, and the types it serves
//! beside the built-in ones.

use std::io;
use std::marker::PhantomData;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ipc::{Address, AuthKey, Connection, Pipe, ToAddress};
use crate::os::sock;
use crate::process::Process;

use super::server::Server;
use super::store::{Erased, Typed};
use super::{Manager, ManagerError};

/// How long a new server process may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A type whose values a manager's server holds and calls, for state that
/// the built-in objects do not fit; Python's `BaseManager.register`.
///
/// A value is sent to the server once, by
/// [`Manager::object`](super::Manager::object); every call then runs on
/// the server, under the object's lock, one at a time:
///
/// ```
/// use multiproc::manager::{Manager, Served};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Stats { count: u64, sum: f64 }
///
/// #[derive(Serialize, Deserialize)]
/// enum Call { Record(f64), Mean }
///
/// impl Served for Stats {
///     type Call = Call;
///     type Reply = Option<f64>;
///     fn call(&mut self, call: Call) -> Option<f64> {
///         match call {
///             Call::Record(x) => { self.count += 1; self.sum += x; None }
///             Call::Mean => (self.count > 0).then(|| self.sum / self.count as f64),
///         }
///     }
/// }
///
/// let manager = Manager::builder().register::<Stats>().start()?;
/// let stats = manager.object(&Stats { count: 0, sum: 0.0 })?;
/// stats.call(&Call::Record(1.0))?;
/// stats.call(&Call::Record(2.0))?;
/// assert_eq!(stats.call(&Call::Mean)?, Some(1.5));
/// # Ok::<(), multiproc::manager::ManagerError>(())
/// ```
///
/// # Panic handling
///
/// A panic in `call` is caught on the server and returned to the caller as
/// [`ManagerError::Panicked`]; the object stays, as the panic left it.
pub trait Served: Serialize + DeserializeOwned + Send + 'static {
    /// What a call asks.
    type Call: Serialize + DeserializeOwned;
    /// What a call answers.
    type Reply: Serialize + DeserializeOwned;
    /// Answers one call, on the server.
    fn call(&mut self, call: Self::Call) -> Self::Reply;
}

/// Makes a registered type's object from its name and encoded state:
/// `None` when no type of that name is registered.
pub(crate) type Make = fn(&str, &[u8]) -> Option<Result<Box<dyn Erased>, String>>;

/// The types a server serves beside the built-in ones, as a list built by
/// [`Builder::register`]: `()`, then `(T, ())`, `(U, (T, ()))`…
pub trait Registry: 'static {
    /// Makes the object of the registered type named `name` from its
    /// encoded state.
    #[doc(hidden)]
    fn make(name: &str, init: &[u8]) -> Option<Result<Box<dyn Erased>, String>>;
}

impl Registry for () {
    fn make(_: &str, _: &[u8]) -> Option<Result<Box<dyn Erased>, String>> {
        None
    }
}

impl<T: Served, R: Registry> Registry for (T, R) {
    fn make(name: &str, init: &[u8]) -> Option<Result<Box<dyn Erased>, String>> {
        if name != type_name::<T>() {
            return R::make(name, init);
        }
        Some(
            crate::codec::decode::<T>(init, Vec::new())
                .map(|t| Box::new(Typed(t)) as Box<dyn Erased>)
                .map_err(|e| format!("the object's state does not decode: {e}")),
        )
    }
}

/// The name a registered type goes by on the wire.
pub(crate) fn type_name<T>() -> &'static str {
    std::any::type_name::<T>()
}

/// Configures a manager's server: where it listens, its key, the types it
/// serves. `Manager::builder()` makes one.
///
/// ```
/// use multiproc::manager::Manager;
/// let manager = Manager::builder().key("a shared secret").address("127.0.0.1:0").start()?;
/// assert!(manager.address().to_string().starts_with("127.0.0.1:"));
/// # Ok::<(), multiproc::manager::ManagerError>(())
/// ```
#[must_use = "a builder does nothing until `start` or `serve`"]
pub struct Builder<R = ()> {
    address: Option<io::Result<Address>>,
    key: Option<AuthKey>,
    _types: PhantomData<fn() -> R>,
}

impl Default for Builder<()> {
    fn default() -> Self {
        Builder {
            address: None,
            key: None,
            _types: PhantomData,
        }
    }
}

impl<R: Registry> Builder<R> {
    /// Where the server listens (see [`Address`] for the forms): a Unix
    /// socket path, an abstract name (`"@name"`) or a TCP address
    /// (`"0.0.0.0:50000"`; port 0 picks one). By default, a fresh abstract
    /// name: reachable from this machine only.
    pub fn address(mut self, address: impl ToAddress) -> Builder<R> {
        self.address = Some(address.to_address());
        self
    }

    /// The key every client must prove (the handshake is mutual: a client
    /// with a wrong key never reaches an object). By default, 32 random
    /// bytes: hand [`Manager::key`] to the programs that should connect.
    pub fn key(mut self, key: impl Into<AuthKey>) -> Builder<R> {
        self.key = Some(key.into());
        self
    }

    /// Serves `T` too (see [`Served`]).
    pub fn register<T: Served>(self) -> Builder<(T, R)> {
        Builder {
            address: self.address,
            key: self.key,
            _types: PhantomData,
        }
    }

    fn settings(self) -> Result<(Address, AuthKey), ManagerError> {
        let address = match self.address {
            Some(a) => a?,
            None => {
                let mut tag = [0u8; 8];
                sock::random(&mut tag)?;
                let tag: String = tag.iter().map(|b| format!("{b:02x}")).collect();
                format!("@multiproc-manager-{}-{tag}", std::process::id()).to_address()?
            }
        };
        let key = match self.key {
            Some(k) => k,
            None => AuthKey::random()?,
        };
        Ok((address, key))
    }

    /// Starts the server in a new process (a daemon: it ends with this
    /// program, even one that is killed) and connects to it. The returned
    /// [`Manager`] owns it: dropping it, or [`Manager::shutdown`], stops
    /// the server.
    pub fn start(self) -> Result<Manager, ManagerError> {
        let (address, key) = self.settings()?;
        let (ours, theirs) = Pipe::duplex()?;
        let key_bytes = key.as_bytes().map(<[u8]>::to_vec);
        let mut process = Process::builder()
            .name("Manager")
            .daemon(true)
            .start(run_server::<R>, (theirs, address, key_bytes))?;
        let started = ours.recv_timeout::<Result<Address, String>>(START_TIMEOUT);
        let address = match started {
            Ok(Ok(address)) => address,
            Ok(Err(why)) => {
                let _ = process.join_timeout(START_TIMEOUT);
                return Err(ManagerError::Io(io::Error::other(why)));
            }
            Err(e) => {
                let _ = process.kill();
                let _ = process.join_timeout(START_TIMEOUT);
                return Err(ManagerError::Io(io::Error::other(format!(
                    "the server process did not start: {e}"
                ))));
            }
        };
        Ok(Manager::owning(&address, &key, process))
    }

    /// Runs the server in this process, on threads of its own, until
    /// [`Server::shutdown`] (or the `Server` is dropped): for a program
    /// whose job is to serve.
    pub fn serve(self) -> Result<Server, ManagerError> {
        let (address, key) = self.settings()?;
        Ok(Server::bind(&address, key, R::make)?)
    }
}

/// The server process's body: listens, says where, serves until a client
/// asks it to stop.
fn run_server<R: Registry>(
    (ready, address, key): (Connection, Address, Option<Vec<u8>>),
) -> Result<(), String> {
    let key = key.map_or(AuthKey::NONE, AuthKey::from);
    let server = match Server::bind(&address, key, R::make) {
        Ok(server) => server,
        Err(e) => {
            let why = format!("cannot listen at {address}: {e}");
            let _ = ready.send(&Err::<Address, String>(why.clone()));
            return Err(why);
        }
    };
    ready
        .send(&Ok::<Address, String>(server.address().clone()))
        .map_err(|e| e.to_string())?;
    drop(ready);
    server.wait();
    server.shutdown();
    Ok(())
}
