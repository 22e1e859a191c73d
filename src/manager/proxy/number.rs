//! The numbers a server adds to in place.

use crate::manager::protocol::Num;

/// A number that a manager's server can add to in place
/// ([`Dict::increment`](super::Dict::increment),
/// [`Value::increment`](super::Value::increment),
/// [`Namespace::increment`](super::Namespace::increment)): the integer
/// types (an overflow is an error, nothing is stored) and the floats.
pub trait Number: serde::Serialize + serde::de::DeserializeOwned + sealed::Sealed {}

mod sealed {
    pub trait Sealed {
        fn num(self) -> super::Num;
    }
}

pub(crate) fn num<N: Number>(n: N) -> Num {
    sealed::Sealed::num(n)
}

macro_rules! numbers {
    ($($t:ty => $v:ident as $w:ty),* $(,)?) => {$(
        impl sealed::Sealed for $t {
            fn num(self) -> Num {
                Num::$v(self as $w)
            }
        }
        impl Number for $t {}
    )*};
}

numbers! {
    i8 => I8 as i8, i16 => I16 as i16, i32 => I32 as i32, i64 => I64 as i64, isize => I64 as i64,
    u8 => U8 as u8, u16 => U16 as u16, u32 => U32 as u32, u64 => U64 as u64, usize => U64 as u64,
    f32 => F32 as f32, f64 => F64 as f64,
}
