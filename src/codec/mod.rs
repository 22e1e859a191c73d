//! Values to byte frames and back.
//!
//! A frame is a 12-byte header — a magic number, the count of file descriptors
//! that travel beside it, and the payload length — followed by the payload,
//! which is the value encoded by serde.
//!
//! # Format
//!
//! The payload is bincode 1's format with fixed-width integers, little
//! endian — byte for byte, checked against bincode by the tests — encoded
//! by this crate's own serde serializer (module `fixint`), since bincode is no
//! longer maintained (RUSTSEC-2025-0141). The format was chosen by
//! measurement on this project's machine (release build, best of 5 runs of
//! 10⁶; encode into a reused buffer, decode from a slice):
//!
//! | value | bincode 1 enc / dec | postcard 1 enc / dec | bitcode 0.6 (serde) enc / dec |
//! |---|---|---|---|
//! | `ByteBuf` of 64 bytes | 3.6 / 21 ns | 6.3 / 14 ns | 267 / 122 ns |
//! | a struct (`u64`, `String`, 8 × `i64`, `bool`) | 15 / 50 ns | 31 / 54 ns | 659 / 429 ns |
//! | a pool job (`u64`, `i64`, 8 bytes, `Option<u64>`) | 5.7 / 31 ns | 18 / 34 ns | 317 / 276 ns |
//! | `Vec<u64>` of 1,000 | 0.64 / 0.88 µs | 6.1 / 3.0 µs | 1.8 / 1.1 µs |
//! | `ByteBuf` of 1 MiB | 46 / 49 µs | 45 / 47 µs | 787 / 1094 µs |
//!
//! postcard (with a flavor that writes into the frame's buffer) comes
//! close on small values, but its varints cost 10× on integer arrays;
//! bitcode's serde path is slow on everything. Our serializer costs what
//! bincode did, counted with callgrind per encode + decode through
//! [`encode`]/[`decode`]: a pool job 945 instructions (bincode 961), 64
//! bytes 1,294 (1,324), 1,000 `u64` 35,875 (32,907: the decoder counts
//! the items that take no bytes, so that a hostile length of `()`s is
//! refused instead of spinning).
//!
//! # Limits and bad input
//!
//! Every frame has a maximum size ([`DEFAULT_MAX_MESSAGE_SIZE`] unless the
//! channel was told otherwise). An oversize frame, a header without the magic
//! number, a payload that does not decode as the expected type or that has
//! bytes left over, all give a [`CodecError`], never a panic. The decoder never
//! allocates more than the bytes that actually arrived justify.
//!
//! # Handles
//!
//! Values that own a file descriptor (a [`Connection`](crate::ipc::Connection)
//! now; queues, locks and shared memory later) serialize as an index into a
//! table of descriptors that travels beside the bytes — as `SCM_RIGHTS` over a
//! Unix socket. See [`handles`].

mod fixint;
pub mod handles;
pub(crate) mod numbers;

use std::os::fd::OwnedFd;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Size of a frame header in bytes.
pub const HEADER_LEN: usize = 12;

/// The largest payload a channel accepts unless told otherwise: 256 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 256 << 20;

const MAGIC: u16 = 0x4d50; // "MP"

/// Why a value could not be turned into a frame or back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The payload is larger than the channel's maximum message size.
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The payload size.
        size: u64,
        /// The limit it exceeded.
        limit: u64,
    },
    /// The bytes are not a frame: wrong magic number, impossible counts.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// serde could not encode the value.
    #[error("cannot encode the value: {0}")]
    Encode(String),
    /// The payload does not decode as the expected type.
    #[error("cannot decode the message: {0}")]
    Decode(String),
}

/// A header, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Payload length in bytes.
    pub len: u64,
    /// Descriptors carried with the frame.
    pub fds: u16,
}

impl Header {
    /// The 12 header bytes of a frame.
    pub fn to_bytes(self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..2].copy_from_slice(&MAGIC.to_le_bytes());
        b[2..4].copy_from_slice(&self.fds.to_le_bytes());
        b[4..12].copy_from_slice(&self.len.to_le_bytes());
        b
    }

    /// Parses and checks a header against `limit`.
    ///
    /// ```
    /// use multiproc::codec::{CodecError, Header};
    /// let h = Header { len: 5, fds: 0 }.to_bytes();
    /// assert_eq!(Header::parse(&h, 1024), Ok(Header { len: 5, fds: 0 }));
    /// assert!(matches!(Header::parse(&h, 4), Err(CodecError::TooLarge { .. })));
    /// assert!(matches!(Header::parse(&[0xff; 12], 1024), Err(CodecError::Malformed(_))));
    /// ```
    pub fn parse(b: &[u8; HEADER_LEN], limit: usize) -> Result<Header, CodecError> {
        let magic = u16::from_le_bytes([b[0], b[1]]);
        if magic != MAGIC {
            return Err(CodecError::Malformed(format!(
                "bad magic number {magic:#06x} (the peer is not a multiproc channel, or the stream is out of step)"
            )));
        }
        let fds = u16::from_le_bytes([b[2], b[3]]);
        if fds as usize > crate::os::sock::MAX_FDS {
            return Err(CodecError::Malformed(format!(
                "{fds} descriptors in one frame"
            )));
        }
        let len = u64::from_le_bytes(b[4..12].try_into().expect("8 bytes"));
        if len > limit as u64 {
            return Err(CodecError::TooLarge {
                size: len,
                limit: limit as u64,
            });
        }
        Ok(Header { len, fds })
    }
}

/// An encoded frame: header and payload in one buffer, and the descriptors
/// that travel with it.
#[derive(Debug)]
pub struct Frame {
    /// Header followed by payload.
    pub bytes: Vec<u8>,
    /// Descriptors, in the order the payload's indices refer to them.
    pub fds: Vec<OwnedFd>,
}

/// Encodes `value` into a frame whose payload is at most `limit` bytes.
///
/// ```
/// let frame = multiproc::codec::encode(&("hello", 42u32), 1 << 20).unwrap();
/// let back: (String, u32) = multiproc::codec::decode(&frame.bytes[12..], Vec::new()).unwrap();
/// assert_eq!(back, ("hello".to_string(), 42));
/// ```
pub fn encode<T: Serialize + ?Sized>(value: &T, limit: usize) -> Result<Frame, CodecError> {
    let mut bytes = Vec::with_capacity(HEADER_LEN + 64);
    let fds = encode_into(value, limit, &mut bytes)?;
    Ok(Frame { bytes, fds })
}

/// [`encode`] into `bytes` (emptied first; its capacity is reused): the
/// frame's bytes there, its descriptors returned.
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    limit: usize,
    bytes: &mut Vec<u8>,
) -> Result<Vec<OwnedFd>, CodecError> {
    framed(limit, bytes, |bytes| {
        handles::collecting(|| fixint::serialize_into(bytes, value))
    })
}

/// [`encode_into`] for a frame that no descriptor travels with (a
/// shared-memory queue's message): a handle in `value` is an error that
/// says `no_handles`.
pub(crate) fn encode_plain_into<T: Serialize + ?Sized>(
    value: &T,
    limit: usize,
    bytes: &mut Vec<u8>,
    no_handles: &'static str,
) -> Result<(), CodecError> {
    framed(limit, bytes, |bytes| {
        let r = handles::refusing(no_handles, || fixint::serialize_into(bytes, value));
        (r, Vec::new())
    })
    .map(drop)
}

/// Writes a frame into `bytes` (emptied first): room for the header, the
/// payload `encode` writes after it (with the descriptors it returns),
/// then the header.
fn framed(
    limit: usize,
    bytes: &mut Vec<u8>,
    encode: impl FnOnce(&mut Vec<u8>) -> (fixint::Result<()>, Vec<OwnedFd>),
) -> Result<Vec<OwnedFd>, CodecError> {
    bytes.clear();
    bytes.extend_from_slice(&[0u8; HEADER_LEN]);
    let (result, fds) = encode(bytes);
    result.map_err(|e| CodecError::Encode(e.to_string()))?;
    let len = bytes.len() - HEADER_LEN;
    if len > limit {
        return Err(CodecError::TooLarge {
            size: len as u64,
            limit: limit as u64,
        });
    }
    if fds.len() > crate::os::sock::MAX_FDS {
        return Err(CodecError::Encode(format!(
            "{} handles in one message; at most {}",
            fds.len(),
            crate::os::sock::MAX_FDS
        )));
    }
    let header = Header {
        len: len as u64,
        fds: fds.len() as u16,
    };
    bytes[..HEADER_LEN].copy_from_slice(&header.to_bytes());
    Ok(fds)
}

/// Encodes `value` as a bare payload (no header) into `out` (emptied
/// first); the descriptors of the handles in it are returned, to travel
/// beside it.
pub(crate) fn encode_payload<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<Vec<OwnedFd>, CodecError> {
    out.clear();
    let (result, fds) = handles::collecting(|| fixint::serialize_into(out, value));
    result.map_err(|e| CodecError::Encode(e.to_string()))?;
    Ok(fds)
}

/// Encodes `value` as a bare payload (no header) into `out` (emptied
/// first), for a value that is stored rather than sent: a handle inside it
/// (its descriptor would be lost) is an error, which `no_handles` words.
pub(crate) fn to_bytes<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
    no_handles: &'static str,
) -> Result<(), CodecError> {
    out.clear();
    handles::refusing(no_handles, || fixint::serialize_into(out, value))
        .map_err(|e| CodecError::Encode(e.to_string()))
}

/// Decodes a payload (without its header), with the descriptors that came
/// with it. Trailing bytes are an error.
pub fn decode<T: DeserializeOwned>(payload: &[u8], fds: Vec<OwnedFd>) -> Result<T, CodecError> {
    handles::providing(fds, || {
        fixint::deserialize(payload).map_err(|e| CodecError::Decode(e.to_string()))
    })
}

/// [`decode`] for a payload that no descriptor travelled with (a
/// shared-memory queue's message, a stored value): a handle in it is an
/// error that says `no_handles`.
pub(crate) fn decode_plain<T: DeserializeOwned>(
    payload: &[u8],
    no_handles: &'static str,
) -> Result<T, CodecError> {
    handles::refusing(no_handles, || {
        fixint::deserialize(payload).map_err(|e| CodecError::Decode(e.to_string()))
    })
}
