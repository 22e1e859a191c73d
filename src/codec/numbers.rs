//! Vectors of fixed-width numbers (`Vec<u64>`, `Vec<f64>`, …) as one
//! block of little-endian bytes, instead of one serde call per element:
//! what a process pool's `map` moves by the million.
//!
//! [`Block`] wraps a `Vec<T>` for the wire: for a number type it is written
//! as a byte string (`serialize_bytes`: its length, then the bytes, one
//! copy) and read back the same way; for any other `T` it is the vector's
//! own serde form. Both sides decide by `T` alone, so they always agree.

use std::any::{Any, TypeId};
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A fixed-width number and its little-endian bytes.
trait Number: Copy + 'static {
    const WIDTH: usize;
    fn put(self, out: &mut [u8]);
    fn get(bytes: &[u8]) -> Self;
}

macro_rules! numbers {
    ($($t:ty),*) => {
        $(impl Number for $t {
            const WIDTH: usize = std::mem::size_of::<$t>();
            #[inline]
            fn put(self, out: &mut [u8]) {
                out.copy_from_slice(&self.to_le_bytes());
            }
            #[inline]
            fn get(bytes: &[u8]) -> Self {
                <$t>::from_le_bytes(bytes.try_into().expect("WIDTH bytes"))
            }
        })*

        /// The bytes of `v` if it is a vector of numbers.
        // A `Vec`, not a slice: it is the `Vec` whose type is checked.
        #[allow(clippy::ptr_arg)]
        fn to_bytes<T: 'static>(v: &Vec<T>) -> Option<Vec<u8>> {
            let any = v as &dyn Any;
            $(if let Some(v) = any.downcast_ref::<Vec<$t>>() {
                return Some(put_all(v));
            })*
            None
        }

        /// The vector of `T`s in `bytes`, if `T` is a number type: `None`
        /// for another type, `Some(None)` for a length that is no whole
        /// count of numbers.
        fn from_bytes<T: 'static>(bytes: &[u8]) -> Option<Option<Vec<T>>> {
            $(if TypeId::of::<T>() == TypeId::of::<$t>() {
                let v = get_all::<$t>(bytes).map(|v| Box::new(v) as Box<dyn Any>);
                return Some(v.map(|v| *v.downcast::<Vec<T>>().expect("the type was checked")));
            })*
            None
        }

        /// Whether `T` is a number type.
        fn is_number<T: 'static>() -> bool {
            [$(TypeId::of::<$t>()),*].contains(&TypeId::of::<T>())
        }
    };
}

numbers!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128, f32, f64);

fn put_all<N: Number>(v: &[N]) -> Vec<u8> {
    let mut out = vec![0u8; v.len() * N::WIDTH];
    for (dst, x) in out.chunks_exact_mut(N::WIDTH).zip(v) {
        x.put(dst);
    }
    out
}

fn get_all<N: Number>(bytes: &[u8]) -> Option<Vec<N>> {
    bytes
        .len()
        .is_multiple_of(N::WIDTH)
        .then(|| bytes.chunks_exact(N::WIDTH).map(N::get).collect())
}

/// A vector on the wire: one block of bytes for numbers, serde's own form
/// otherwise (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Block<T>(pub(crate) Vec<T>);

impl<T: Serialize + 'static> Serialize for Block<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match to_bytes(&self.0) {
            Some(bytes) => serializer.serialize_bytes(&bytes),
            None => self.0.serialize(serializer),
        }
    }
}

impl<'de, T: Deserialize<'de> + 'static> Deserialize<'de> for Block<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if !is_number::<T>() {
            return Vec::<T>::deserialize(deserializer).map(Block);
        }
        struct Bytes<T>(PhantomData<T>);
        impl<T: 'static> Visitor<'_> for Bytes<T> {
            type Value = Block<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a block of numbers")
            }
            fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Block<T>, E> {
                match from_bytes::<T>(bytes) {
                    Some(Some(v)) => Ok(Block(v)),
                    _ => Err(E::invalid_length(bytes.len(), &self)),
                }
            }
        }
        deserializer.deserialize_bytes(Bytes(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{self, CodecError};

    fn round_trip<T>(v: Vec<T>) -> Vec<T>
    where
        T: Serialize + for<'de> Deserialize<'de> + 'static,
    {
        let mut out = Vec::new();
        codec::to_bytes(&Block(v), &mut out, "").unwrap();
        codec::decode::<Block<T>>(&out, Vec::new()).unwrap().0
    }

    #[test]
    fn numbers_travel_as_one_block_and_come_back_equal() {
        let v: Vec<u64> = (0..1000).map(|i| i * 0x0101_0101_0101).collect();
        let mut out = Vec::new();
        codec::to_bytes(&Block(v.clone()), &mut out, "").unwrap();
        assert_eq!(out.len(), 8 + 8 * 1000, "a length and the bytes");
        assert_eq!(out[16..24], v[1].to_le_bytes(), "little-endian, in order");
        assert_eq!(round_trip(v.clone()), v);
        assert_eq!(
            round_trip(vec![-1.5f64, f64::MAX, 0.0]),
            [-1.5, f64::MAX, 0.0]
        );
        assert_eq!(round_trip(vec![i8::MIN, 0, i8::MAX]), [i8::MIN, 0, i8::MAX]);
        assert_eq!(round_trip(vec![u128::MAX]), [u128::MAX]);
        assert_eq!(round_trip(Vec::<u32>::new()), Vec::<u32>::new());
        // Anything else is serde's own form.
        assert_eq!(round_trip(vec!["a".to_string(), "b".into()]), ["a", "b"]);
        assert_eq!(round_trip(vec![(1u8, 2u16)]), [(1, 2)]);
    }

    #[test]
    fn a_block_that_is_no_whole_count_of_numbers_is_an_error() {
        let mut out = Vec::new();
        codec::to_bytes(&serde_bytes::Bytes::new(&[1, 2, 3]), &mut out, "").unwrap();
        assert!(matches!(
            codec::decode::<Block<u16>>(&out, Vec::new()),
            Err(CodecError::Decode(_))
        ));
        assert_eq!(
            codec::decode::<Block<u8>>(&out, Vec::new()).unwrap().0,
            [1, 2, 3]
        );
    }
}
