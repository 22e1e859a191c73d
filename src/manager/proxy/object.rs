//! A registered type's object on the server.

use std::marker::PhantomData;

use super::proxy;
use crate::manager::link::{Handle, enc, value};
use crate::manager::protocol::Op;
use crate::manager::{ManagerError, Served};

/// A value of a [`Served`] type held by a manager's server: each
/// [`call`](Object::call) runs `T::call` there. See [`Served`] for an
/// example.
pub struct Object<T> {
    handle: Handle,
    _types: PhantomData<fn() -> T>,
}

proxy!(Object<T>);

impl<T: Served> Object<T> {
    /// Runs `T::call(call)` on the server and returns its reply. A panic
    /// there is [`ManagerError::Panicked`].
    pub fn call(&self, call: &T::Call) -> Result<T::Reply, ManagerError> {
        value(self.handle.call(Op::Invoke(enc(call)?))?)
    }
}
