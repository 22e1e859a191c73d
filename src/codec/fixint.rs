//! The payload format: serde's data model in fixed-width little-endian
//! fields — bincode 1's format with `with_fixint_encoding()`, byte for byte
//! (the test suite checks it against bincode), written here because bincode
//! is no longer maintained (RUSTSEC-2025-0141) and no maintained crate
//! encodes serde values this way (see the measurements in the
//! `codec` module docs).
//!
//! | serde | bytes |
//! |---|---|
//! | `bool` | 1 (0 or 1) |
//! | integers, floats | their width, little endian |
//! | `char` | its UTF-8 bytes |
//! | `str`, bytes, sequences, maps | `u64` length, then the items |
//! | `Option` | 1 (0 or 1), then the value |
//! | enum variant | `u32` index, then its fields |
//! | unit, unit struct | nothing |
//! | tuples, structs | their fields in order |
//!
//! Not self-describing: `deserialize_any` (and so `#[serde(flatten)]` and
//! untagged enums) is refused with an error. A sequence or map of unknown
//! length is encoded too (its length is written once it is known).
//!
//! Decoding reads a borrowed slice and never trusts a length: a string or
//! byte array longer than the bytes left is an error before anything is
//! allocated, a sequence or map reserves room for no more items than
//! bytes are left, and items that take no bytes (`()`) are counted — at
//! most [`EMPTY_ITEMS`] in one message — so a hostile length cannot spin
//! the decoder.

use std::fmt::Display;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use serde::ser::{self, Serialize};

/// Why a value could not be encoded or decoded.
#[derive(Debug)]
pub(crate) struct Error(String);

impl Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

impl de::Error for Error {
    fn custom<T: Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

pub(crate) type Result<T> = std::result::Result<T, Error>;

/// Items that take no bytes (a `Vec<()>`'s), at most, in one message.
pub(crate) const EMPTY_ITEMS: usize = 1 << 24;

/// Appends `value`, encoded, to `out`.
#[inline]
pub(crate) fn serialize_into<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<()> {
    value.serialize(&mut Serializer { out })
}

/// Decodes a whole payload: bytes left over are an error.
#[inline]
pub(crate) fn deserialize<'de, T: de::Deserialize<'de>>(input: &'de [u8]) -> Result<T> {
    let mut d = Deserializer {
        input,
        empty_items: 0,
    };
    let value = T::deserialize(&mut d)?;
    if !d.input.is_empty() {
        return Err(Error(format!(
            "{} bytes left over after the value",
            d.input.len()
        )));
    }
    Ok(value)
}

struct Serializer<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> Serializer<'a> {
    #[inline]
    fn len(&mut self, len: usize) {
        self.out.extend_from_slice(&(len as u64).to_le_bytes());
    }

    #[inline]
    fn variant(&mut self, index: u32) {
        self.out.extend_from_slice(&index.to_le_bytes());
    }

    /// Starts a sequence or map: its length now, or a place for it.
    #[inline]
    fn open<'s>(&'s mut self, len: Option<usize>) -> Compound<'s, 'a> {
        let patch = match len {
            Some(n) => {
                self.len(n);
                None
            }
            None => {
                self.len(0);
                Some((self.out.len() - 8, 0))
            }
        };
        Compound { ser: self, patch }
    }
}

/// A sequence, map, tuple or struct being written; `patch` holds where the
/// length goes and the items counted, when it was not known at the start.
struct Compound<'s, 'a> {
    ser: &'s mut Serializer<'a>,
    patch: Option<(usize, u64)>,
}

impl Compound<'_, '_> {
    #[inline]
    fn item<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        if let Some((_, n)) = &mut self.patch {
            *n += 1;
        }
        value.serialize(&mut *self.ser)
    }

    #[inline]
    fn close(self) -> Result<()> {
        if let Some((at, n)) = self.patch {
            self.ser.out[at..at + 8].copy_from_slice(&n.to_le_bytes());
        }
        Ok(())
    }
}

macro_rules! put_le {
    ($($name:ident: $t:ty),*) => {$(
        #[inline]
        fn $name(self, v: $t) -> Result<()> {
            self.out.extend_from_slice(&v.to_le_bytes());
            Ok(())
        }
    )*};
}

impl<'s, 'a> ser::Serializer for &'s mut Serializer<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'s, 'a>;
    type SerializeTuple = Compound<'s, 'a>;
    type SerializeTupleStruct = Compound<'s, 'a>;
    type SerializeTupleVariant = Compound<'s, 'a>;
    type SerializeMap = Compound<'s, 'a>;
    type SerializeStruct = Compound<'s, 'a>;
    type SerializeStructVariant = Compound<'s, 'a>;

    put_le!(
        serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64,
        serialize_u128: u128, serialize_f32: f32, serialize_f64: f64
    );

    #[inline]
    fn serialize_u8(self, v: u8) -> Result<()> {
        self.out.push(v);
        Ok(())
    }

    #[inline]
    fn serialize_bool(self, v: bool) -> Result<()> {
        self.out.push(v as u8);
        Ok(())
    }

    #[inline]
    fn serialize_char(self, v: char) -> Result<()> {
        self.out
            .extend_from_slice(v.encode_utf8(&mut [0u8; 4]).as_bytes());
        Ok(())
    }

    #[inline]
    fn serialize_str(self, v: &str) -> Result<()> {
        self.serialize_bytes(v.as_bytes())
    }

    #[inline]
    fn serialize_bytes(self, v: &[u8]) -> Result<()> {
        self.len(v.len());
        self.out.extend_from_slice(v);
        Ok(())
    }

    #[inline]
    fn serialize_none(self) -> Result<()> {
        self.out.push(0);
        Ok(())
    }

    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<()> {
        self.out.push(1);
        value.serialize(self)
    }

    #[inline]
    fn serialize_unit(self) -> Result<()> {
        Ok(())
    }

    #[inline]
    fn serialize_unit_struct(self, _: &'static str) -> Result<()> {
        Ok(())
    }

    #[inline]
    fn serialize_unit_variant(self, _: &'static str, index: u32, _: &'static str) -> Result<()> {
        self.variant(index);
        Ok(())
    }

    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<()> {
        value.serialize(self)
    }

    #[inline]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        value: &T,
    ) -> Result<()> {
        self.variant(index);
        value.serialize(self)
    }

    #[inline]
    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'s, 'a>> {
        Ok(self.open(len))
    }

    #[inline]
    fn serialize_tuple(self, _: usize) -> Result<Compound<'s, 'a>> {
        Ok(Compound {
            ser: self,
            patch: None,
        })
    }

    #[inline]
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Compound<'s, 'a>> {
        self.serialize_tuple(len)
    }

    #[inline]
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        len: usize,
    ) -> Result<Compound<'s, 'a>> {
        self.variant(index);
        self.serialize_tuple(len)
    }

    #[inline]
    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'s, 'a>> {
        Ok(self.open(len))
    }

    #[inline]
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Compound<'s, 'a>> {
        self.serialize_tuple(len)
    }

    #[inline]
    fn serialize_struct_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        len: usize,
    ) -> Result<Compound<'s, 'a>> {
        self.variant(index);
        self.serialize_tuple(len)
    }

    #[inline]
    fn is_human_readable(&self) -> bool {
        false
    }
}

/// One `Compound` serves every kind of compound value.
macro_rules! compound {
    ($($trait:ident :: $method:ident ($($name:ident),*)),*) => {$(
        impl ser::$trait for Compound<'_, '_> {
            type Ok = ();
            type Error = Error;

            #[inline]
            fn $method<T: Serialize + ?Sized>(&mut self, $($name: &'static str,)* value: &T) -> Result<()> {
                $(let _ = $name;)*
                self.item(value)
            }

            #[inline]
            fn end(self) -> Result<()> {
                self.close()
            }
        }
    )*};
}

compound!(
    SerializeSeq::serialize_element(),
    SerializeTuple::serialize_element(),
    SerializeTupleStruct::serialize_field(),
    SerializeTupleVariant::serialize_field(),
    SerializeStruct::serialize_field(key),
    SerializeStructVariant::serialize_field(key)
);

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;

    #[inline]
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        self.item(key)
    }

    #[inline]
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        value.serialize(&mut *self.ser)
    }

    #[inline]
    fn end(self) -> Result<()> {
        self.close()
    }
}

struct Deserializer<'de> {
    input: &'de [u8],
    /// Items read so far that took no bytes.
    empty_items: usize,
}

impl<'de> Deserializer<'de> {
    #[inline]
    fn take(&mut self, n: usize) -> Result<&'de [u8]> {
        if n > self.input.len() {
            return Err(Error(format!(
                "the message ends early: {n} bytes wanted, {} left",
                self.input.len()
            )));
        }
        let (head, rest) = self.input.split_at(n);
        self.input = rest;
        Ok(head)
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }

    /// A length prefix (trusted for nothing: see [`Items`]).
    #[inline]
    fn len(&mut self) -> Result<usize> {
        let n = u64::from_le_bytes(self.array()?);
        usize::try_from(n).map_err(|_| Error(format!("a length of {n}")))
    }

    #[inline]
    fn bytes(&mut self) -> Result<&'de [u8]> {
        let n = self.len()?;
        self.take(n)
    }

    /// Reads one item of a sequence, tuple, struct or map, counting those
    /// that take no bytes.
    #[inline]
    fn item<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value> {
        let before = self.input.len();
        let value = seed.deserialize(&mut *self)?;
        if self.input.len() == before {
            self.empty_items += 1;
            if self.empty_items > EMPTY_ITEMS {
                return Err(Error(format!(
                    "more than {EMPTY_ITEMS} items that take no bytes in one message"
                )));
            }
        }
        Ok(value)
    }

    #[inline]
    fn str(&mut self) -> Result<&'de str> {
        std::str::from_utf8(self.bytes()?).map_err(|e| Error(format!("invalid UTF-8: {e}")))
    }

    #[inline]
    fn tag(&mut self, what: &str) -> Result<bool> {
        match self.array::<1>()?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(Error(format!("{b} is not a valid {what}"))),
        }
    }
}

macro_rules! get_le {
    ($($name:ident: $t:ty => $visit:ident),*) => {$(
        #[inline]
        fn $name<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            visitor.$visit(<$t>::from_le_bytes(self.array()?))
        }
    )*};
}

impl<'de> de::Deserializer<'de> for &mut Deserializer<'de> {
    type Error = Error;

    #[inline]
    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value> {
        Err(Error(
            "the format is not self-describing: a type that needs deserialize_any (serde's flatten, untagged enums) cannot be sent"
                .into(),
        ))
    }

    get_le!(
        deserialize_i8: i8 => visit_i8, deserialize_i16: i16 => visit_i16,
        deserialize_i32: i32 => visit_i32, deserialize_i64: i64 => visit_i64,
        deserialize_i128: i128 => visit_i128, deserialize_u8: u8 => visit_u8,
        deserialize_u16: u16 => visit_u16, deserialize_u32: u32 => visit_u32,
        deserialize_u64: u64 => visit_u64, deserialize_u128: u128 => visit_u128,
        deserialize_f32: f32 => visit_f32, deserialize_f64: f64 => visit_f64
    );

    #[inline]
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_bool(self.tag("bool")?)
    }

    #[inline]
    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let first = *self
            .input
            .first()
            .ok_or_else(|| Error("the message ends early".into()))?;
        let width = match first {
            0x00..=0x7f => 1,
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => return Err(Error("invalid char".into())),
        };
        let bytes = self.take(width)?;
        let s = std::str::from_utf8(bytes).map_err(|_| Error("invalid char".into()))?;
        visitor.visit_char(s.chars().next().expect("one char"))
    }

    #[inline]
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_borrowed_str(self.str()?)
    }

    #[inline]
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    #[inline]
    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_borrowed_bytes(self.bytes()?)
    }

    #[inline]
    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_bytes(visitor)
    }

    #[inline]
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        if self.tag("Option tag")? {
            visitor.visit_some(self)
        } else {
            visitor.visit_none()
        }
    }

    #[inline]
    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_unit()
    }

    #[inline]
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_unit()
    }

    #[inline]
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    #[inline]
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let left = self.len()?;
        visitor.visit_seq(Items { de: self, left })
    }

    #[inline]
    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        visitor.visit_seq(Items {
            de: self,
            left: len,
        })
    }

    #[inline]
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_tuple(len, visitor)
    }

    #[inline]
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let left = self.len()?;
        visitor.visit_map(Items { de: self, left })
    }

    #[inline]
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_tuple(fields.len(), visitor)
    }

    #[inline]
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_enum(self)
    }

    #[inline]
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_u32(u32::from_le_bytes(self.array()?))
    }

    #[inline]
    fn deserialize_ignored_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value> {
        Err(Error(
            "the format is not self-describing: unknown fields cannot be skipped".into(),
        ))
    }

    #[inline]
    fn is_human_readable(&self) -> bool {
        false
    }
}

/// The items of a sequence, tuple, struct or map: `left` more to read.
/// Its size hint (what a `Vec` reserves) is never more than the bytes left.
struct Items<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    left: usize,
}

impl<'de> Items<'_, 'de> {
    /// The next item (an element, or a map's key), if any is left.
    #[inline]
    fn next<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        self.de.item(seed).map(Some)
    }

    #[inline]
    fn hint(&self) -> Option<usize> {
        Some(self.left.min(self.de.input.len()))
    }
}

impl<'de> de::SeqAccess<'de> for Items<'_, 'de> {
    type Error = Error;

    #[inline]
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        self.next(seed)
    }

    #[inline]
    fn size_hint(&self) -> Option<usize> {
        self.hint()
    }
}

impl<'de> de::MapAccess<'de> for Items<'_, 'de> {
    type Error = Error;

    #[inline]
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        self.next(seed)
    }

    #[inline]
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        self.de.item(seed)
    }

    #[inline]
    fn size_hint(&self) -> Option<usize> {
        self.hint()
    }
}

impl<'de> de::EnumAccess<'de> for &mut Deserializer<'de> {
    type Error = Error;
    type Variant = Self;

    #[inline]
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self)> {
        let index: de::value::U32Deserializer<Error> =
            u32::from_le_bytes(self.array()?).into_deserializer();
        let value = seed.deserialize(index)?;
        Ok((value, self))
    }
}

impl<'de> de::VariantAccess<'de> for &mut Deserializer<'de> {
    type Error = Error;

    #[inline]
    fn unit_variant(self) -> Result<()> {
        Ok(())
    }

    #[inline]
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        seed.deserialize(self)
    }

    #[inline]
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        de::Deserializer::deserialize_tuple(self, len, visitor)
    }

    #[inline]
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        de::Deserializer::deserialize_tuple(self, fields.len(), visitor)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::collections::BTreeMap;

    use bincode::Options;
    use proptest::prelude::*;
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Unit;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Newtype(i32);

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Pair(u8, String);

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Kind {
        Unit,
        Newtype(u64),
        Tuple(i8, bool),
        Struct { a: Option<u16>, b: Vec<char> },
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct All {
        b: bool,
        i: (i8, i16, i32, i64, i128),
        u: (u8, u16, u32, u64, u128),
        f: (f32, f64),
        c: char,
        s: String,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
        o: Option<Option<u32>>,
        unit: (),
        us: Unit,
        nt: Newtype,
        pair: Pair,
        kinds: Vec<Kind>,
        map: BTreeMap<String, Vec<u64>>,
    }

    fn kind() -> impl Strategy<Value = Kind> {
        prop_oneof![
            Just(Kind::Unit),
            any::<u64>().prop_map(Kind::Newtype),
            (any::<i8>(), any::<bool>()).prop_map(|(a, b)| Kind::Tuple(a, b)),
            (
                any::<Option<u16>>(),
                prop::collection::vec(any::<char>(), 0..4)
            )
                .prop_map(|(a, b)| Kind::Struct { a, b }),
        ]
    }

    prop_compose! {
        fn all()(
            b in any::<bool>(),
            i in any::<(i8, i16, i32, i64, i128)>(),
            u in any::<(u8, u16, u32, u64, u128)>(),
            f in (any::<f32>().prop_filter("NaN != NaN", |x| !x.is_nan()),
                  any::<f64>().prop_filter("NaN != NaN", |x| !x.is_nan())),
            c in any::<char>(),
            s in ".{0,12}",
            bytes in prop::collection::vec(any::<u8>(), 0..40),
            o in any::<Option<Option<u32>>>(),
            n in any::<i32>(),
            p in (any::<u8>(), "[a-z]{0,5}"),
            kinds in prop::collection::vec(kind(), 0..5),
            map in prop::collection::btree_map("[a-z]{0,3}", prop::collection::vec(any::<u64>(), 0..3), 0..3),
        ) -> All {
            All { b, i, u, f, c, s, bytes, o, unit: (), us: Unit, nt: Newtype(n), pair: Pair(p.0, p.1), kinds, map }
        }
    }

    fn bincode() -> impl Options {
        bincode::DefaultOptions::new()
            .with_fixint_encoding()
            .with_little_endian()
    }

    proptest! {
        /// Byte for byte bincode 1's fixint format, and back.
        #[test]
        fn same_bytes_as_bincode_and_round_trips(v in all()) {
            let mut ours = Vec::new();
            serialize_into(&mut ours, &v).unwrap();
            prop_assert_eq!(&ours, &bincode().serialize(&v).unwrap());
            prop_assert_eq!(deserialize::<All>(&ours).unwrap(), v);
        }

        /// Any bytes: a value or an error, never a panic or a hang.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = deserialize::<All>(&bytes);
            let _ = deserialize::<Vec<Kind>>(&bytes);
            let _ = deserialize::<(String, char, Option<bool>)>(&bytes);
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        let mut v = Vec::new();
        serialize_into(&mut v, &(7u32, "text")).unwrap();
        assert!(
            deserialize::<(u32, String)>(&v[..v.len() - 1]).is_err(),
            "short"
        );
        let mut long = v.clone();
        long.push(0);
        let e = deserialize::<(u32, String)>(&long).unwrap_err();
        assert!(e.to_string().contains("left over"), "{e}");
        // A length that claims more than is there is refused before any
        // allocation.
        let huge = u64::MAX.to_le_bytes();
        assert!(deserialize::<Vec<u64>>(&huge).is_err());
        assert!(deserialize::<String>(&huge).is_err());
        assert!(
            deserialize::<Vec<()>>(&huge).is_err(),
            "no spin on unit items"
        );
        assert!(deserialize::<bool>(&[2]).is_err());
        assert!(deserialize::<Option<u8>>(&[9, 0]).is_err());
        assert!(deserialize::<char>(&[0xff]).is_err());
        let bad_utf8 = [2, 0, 0, 0, 0, 0, 0, 0, 0xc3, 0x28];
        assert!(deserialize::<String>(&bad_utf8).is_err());
        assert!(
            deserialize::<Kind>(&9u32.to_le_bytes()).is_err(),
            "no variant 9"
        );
    }

    #[test]
    fn a_sequence_of_unknown_length_is_encoded_with_its_length() {
        struct Unknown(Vec<u16>);
        impl Serialize for Unknown {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                use serde::ser::SerializeSeq;
                let mut seq = s.serialize_seq(None)?;
                for x in &self.0 {
                    seq.serialize_element(x)?;
                }
                seq.end()
            }
        }
        let mut v = Vec::new();
        serialize_into(&mut v, &(1u8, Unknown(vec![5, 6, 7]), 2u8)).unwrap();
        assert_eq!(
            deserialize::<(u8, Vec<u16>, u8)>(&v).unwrap(),
            (1, vec![5, 6, 7], 2)
        );
    }

    #[test]
    fn self_describing_types_are_refused_with_a_reason() {
        #[derive(Serialize, Deserialize)]
        #[serde(untagged)]
        enum Loose {
            A(u8),
        }
        let mut v = Vec::new();
        serialize_into(&mut v, &Loose::A(1)).unwrap();
        let e = deserialize::<Loose>(&v).err().unwrap();
        assert!(e.to_string().contains("not self-describing"), "{e}");
    }
}
