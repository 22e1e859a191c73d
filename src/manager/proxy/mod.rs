//! Proxies: cheap handles to the objects on a manager's server.
//!
//! Every proxy is a [`Handle`](super::link::Handle) (the server's address
//! and key, the object's number) and a type: `Clone` (the clone is the same
//! object), `Serialize` and `Deserialize` (pass it to a [`Process`], a pool
//! task, over a [`Connection`]; the receiver reaches the same object), and
//! every method is one round trip to the server.
//!
//! [`Process`]: crate::process::Process
//! [`Connection`]: crate::ipc::Connection

mod dict;
mod event;
mod list;
mod lock;
mod namespace;
mod number;
mod object;
mod queue;
mod value;

pub use dict::Dict;
pub use event::Event;
pub use list::List;
pub use lock::{Lock, LockGuard};
pub use namespace::Namespace;
pub use number::Number;
pub use object::Object;
pub use queue::Queue;
pub use value::Value;

/// The parts every proxy type shares: made from a handle, `Clone`,
/// `Debug`, `Serialize`/`Deserialize` as its handle, and `delete`.
macro_rules! proxy {
    ($name:ident $(<$($t:ident),+>)?) => {
        impl$(<$($t),+>)? $name$(<$($t),+>)? {
            pub(crate) fn from_handle(handle: $crate::manager::link::Handle) -> Self {
                $name {
                    handle,
                    $(_types: { let _ = stringify!($($t),+); std::marker::PhantomData },)?
                }
            }

            /// Removes the object from the server. Other proxies of it (in
            /// this or other processes) then fail with
            /// [`ManagerError::NoSuchObject`](crate::manager::ManagerError::NoSuchObject).
            pub fn delete(self) -> Result<(), $crate::manager::ManagerError> {
                self.handle.delete()
            }
        }

        impl$(<$($t),+>)? Clone for $name$(<$($t),+>)? {
            fn clone(&self) -> Self {
                Self::from_handle(self.handle.clone())
            }
        }

        impl$(<$($t),+>)? std::fmt::Debug for $name$(<$($t),+>)? {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.handle)
            }
        }

        impl$(<$($t),+>)? serde::Serialize for $name$(<$($t),+>)? {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                serde::Serialize::serialize(&self.handle, s)
            }
        }

        impl<'de $($(, $t)+)?> serde::Deserialize<'de> for $name$(<$($t),+>)? {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                <$crate::manager::link::Handle as serde::Deserialize>::deserialize(d).map(Self::from_handle)
            }
        }
    };
}
pub(crate) use proxy;
