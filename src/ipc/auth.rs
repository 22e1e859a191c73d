//! The auth key and the handshake that proves it, both ways.
//!
//! # Protocol
//!
//! Every message is one frame whose payload starts with `MPAUTH/1` and a code
//! byte. With a key `k`, challenges `cs` (the listener's) and `cc` (the
//! client's), 32 bytes each from the kernel's random source:
//!
//! 1. listener → client: hello, `cs`;
//! 2. client → listener: `cc`, `HMAC-SHA256(k, "multiproc-auth/1 client" ‖ cs ‖ cc)`;
//! 3. listener → client: `HMAC-SHA256(k, "multiproc-auth/1 server" ‖ cs ‖ cc)`,
//!    or "refused" if the client's proof was wrong;
//! 4. client → listener: "accepted", or "refused" if the listener's proof was
//!    wrong.
//!
//! Each side proves the key without sending it; the labels make a proof of
//! one direction useless in the other (no reflection), and fresh challenges
//! on both sides make recorded proofs useless (no replay). Proofs are
//! compared in constant time (`hmac`'s `verify_slice`). Without a key the
//! hello and the reply still flow, so that a side that requires a key learns
//! that the other has none, and a stranger that does not speak the protocol
//! is turned away.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Instant;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::connection::{Connection, RecvError, SendError};
use super::listener::ConnectError;
use crate::os::sock;

/// A shared secret that both ends of a connection must prove they hold.
///
/// Made from bytes or a string; [`AuthKey::NONE`] for no authentication.
/// `Debug` never shows the key.
///
/// ```
/// use multiproc::ipc::AuthKey;
/// let key = AuthKey::from("correct horse battery staple");
/// assert!(key.is_some());
/// assert_eq!(format!("{key:?}"), "AuthKey(28 bytes)");
/// assert!(!AuthKey::NONE.is_some());
/// let fresh = AuthKey::random()?; // 32 bytes from the kernel
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct AuthKey(Option<Arc<[u8]>>);

impl AuthKey {
    /// No key: the connection is not authenticated.
    pub const NONE: AuthKey = AuthKey(None);

    /// A fresh key of 32 random bytes from the kernel (`getrandom(2)`).
    pub fn random() -> io::Result<AuthKey> {
        let mut bytes = [0u8; 32];
        sock::random(&mut bytes)?;
        Ok(AuthKey(Some(Arc::from(&bytes[..]))))
    }

    /// `true` unless this is [`AuthKey::NONE`].
    pub fn is_some(&self) -> bool {
        self.0.is_some()
    }

    /// The key itself, to hand to another program (say, through an
    /// environment variable); `None` for [`AuthKey::NONE`].
    pub fn as_bytes(&self) -> Option<&[u8]> {
        self.0.as_deref()
    }

    /// The key's bytes where a key is required: `InvalidInput`, saying
    /// `missing`, for [`AuthKey::NONE`] or an empty key.
    #[cfg(feature = "redis")]
    pub(crate) fn required(&self, missing: &str) -> io::Result<&[u8]> {
        self.as_bytes()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, missing.to_string()))
    }

    /// An empty key would make every proof easy to forge: refuse it.
    pub(crate) fn check(&self) -> io::Result<()> {
        match &self.0 {
            Some(k) if k.is_empty() => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the auth key is empty; use AuthKey::NONE for no authentication",
            )),
            _ => Ok(()),
        }
    }
}

impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("AuthKey::NONE"),
            Some(k) => write!(f, "AuthKey({} bytes)", k.len()),
        }
    }
}

impl From<&[u8]> for AuthKey {
    fn from(key: &[u8]) -> AuthKey {
        AuthKey(Some(Arc::from(key)))
    }
}

impl<const N: usize> From<&[u8; N]> for AuthKey {
    fn from(key: &[u8; N]) -> AuthKey {
        AuthKey::from(&key[..])
    }
}

impl From<Vec<u8>> for AuthKey {
    fn from(key: Vec<u8>) -> AuthKey {
        AuthKey(Some(Arc::from(key)))
    }
}

impl From<&str> for AuthKey {
    fn from(key: &str) -> AuthKey {
        AuthKey::from(key.as_bytes())
    }
}

impl From<String> for AuthKey {
    fn from(key: String) -> AuthKey {
        AuthKey::from(key.into_bytes())
    }
}

impl From<&AuthKey> for AuthKey {
    fn from(key: &AuthKey) -> AuthKey {
        key.clone()
    }
}

/// Why a handshake failed. The side that reports it names the fault from its
/// own point of view.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The peer's proof does not match our key: it holds another key.
    #[error("the peer holds a different auth key")]
    WrongKey,
    /// The peer says our proof does not match its key.
    #[error("the peer refused our auth key")]
    Refused,
    /// The peer requires an auth key and we have none.
    #[error("the peer requires an auth key and none was given")]
    KeyRequired,
    /// We require an auth key and the peer has none.
    #[error("an auth key is required and the peer has none")]
    PeerHasNoKey,
    /// The peer did not finish the handshake before the deadline.
    #[error("the peer did not finish the handshake in time")]
    Timeout,
    /// The peer closed the connection during the handshake.
    #[error("the peer closed the connection during the handshake")]
    Closed,
    /// The peer does not speak this handshake (garbage, another program,
    /// another version).
    #[error("the peer does not speak multiproc's handshake: {0}")]
    Protocol(String),
}

const TAG: &[u8; 8] = b"MPAUTH/1";
const NONCE: usize = 32;
const MAC_LEN: usize = 32;
/// No handshake message is longer than this (tag, code, nonce, proof).
const MAX_MESSAGE: usize = TAG.len() + 1 + NONCE + MAC_LEN;

// Codes of each message.
const HELLO_OPEN: u8 = 0;
const HELLO_CHALLENGE: u8 = 1;
const REPLY_NO_KEY: u8 = 0;
const REPLY_PROOF: u8 = 1;
const REPLY_NEED_KEY: u8 = 2;
const VERDICT_PROOF: u8 = 1;
const VERDICT_WRONG_KEY: u8 = 2;
const VERDICT_NEED_KEY: u8 = 3;
const FINAL_ACCEPTED: u8 = 0;
const FINAL_REFUSED: u8 = 1;

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8], label: &[u8], cs: &[u8], cc: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(key)
        .expect("HMAC takes keys of any length")
        .chain_update(label)
        .chain_update(cs)
        .chain_update(cc)
}

const CLIENT_LABEL: &[u8] = b"multiproc-auth/1 client";
const SERVER_LABEL: &[u8] = b"multiproc-auth/1 server";

fn nonce() -> io::Result<[u8; NONCE]> {
    let mut n = [0u8; NONCE];
    sock::random(&mut n)?;
    Ok(n)
}

/// One handshake on one connection, with its deadline.
struct Talk<'a> {
    conn: &'a Connection,
    deadline: Instant,
}

impl Talk<'_> {
    fn send(&self, code: u8, body: &[&[u8]]) -> Result<(), ConnectError> {
        let mut msg = Vec::with_capacity(MAX_MESSAGE);
        msg.extend_from_slice(TAG);
        msg.push(code);
        for part in body {
            msg.extend_from_slice(part);
        }
        self.conn.send_bytes(&msg).map_err(|e| match e {
            SendError::Closed => ConnectError::Auth(AuthError::Closed),
            SendError::Io(e) => ConnectError::Io(e),
            SendError::Codec(e) => ConnectError::Auth(AuthError::Protocol(e.to_string())),
        })
    }

    /// Sends a refusal on the way out; the peer may be gone already.
    fn refuse(&self, code: u8, why: AuthError) -> Result<(), ConnectError> {
        let _ = self.send(code, &[]);
        Err(why.into())
    }

    /// The next message: its code and body, the body checked against the
    /// lengths that code allows.
    fn recv(&self, what: &str, lengths: &[(u8, usize)]) -> Result<(u8, Vec<u8>), ConnectError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        let msg = self.conn.recv_bytes_timeout(left).map_err(|e| match e {
            RecvError::Timeout => ConnectError::Auth(AuthError::Timeout),
            RecvError::Closed | RecvError::Truncated { .. } => {
                ConnectError::Auth(AuthError::Closed)
            }
            RecvError::Io(e) => ConnectError::Io(e),
            other => ConnectError::Auth(AuthError::Protocol(format!("{what}: {other}"))),
        })?;
        let Some(rest) = msg.strip_prefix(TAG.as_slice()) else {
            return Err(protocol(format!("{what}: no MPAUTH/1 tag")));
        };
        let Some((&code, body)) = rest.split_first() else {
            return Err(protocol(format!("{what}: no code")));
        };
        match lengths.iter().find(|(c, _)| *c == code) {
            Some(&(_, len)) if body.len() == len => Ok((code, body.to_vec())),
            Some(&(_, len)) => Err(protocol(format!(
                "{what} {code}: {} bytes where {len} belong",
                body.len()
            ))),
            None => Err(protocol(format!("{what}: unknown code {code}"))),
        }
    }
}

fn protocol(why: String) -> ConnectError {
    ConnectError::Auth(AuthError::Protocol(why))
}

/// Runs `f` with the connection's message limit lowered to the handshake's:
/// a peer that announces a huge frame is refused before anything is read.
fn limited<R>(conn: &Connection, f: impl FnOnce() -> R) -> R {
    let saved = conn.max_message_size();
    conn.set_max_message_size(MAX_MESSAGE);
    let r = f();
    conn.set_max_message_size(saved);
    r
}

/// The listener's side of the handshake.
pub(crate) fn serve(
    conn: &Connection,
    key: &AuthKey,
    deadline: Instant,
) -> Result<(), ConnectError> {
    limited(conn, || {
        let talk = Talk { conn, deadline };
        let Some(key) = key.as_bytes() else {
            talk.send(HELLO_OPEN, &[])?;
            let (code, _) = talk.recv("reply", &[(REPLY_NO_KEY, 0), (REPLY_NEED_KEY, 0)])?;
            return match code {
                REPLY_NO_KEY => Ok(()),
                _ => Err(AuthError::KeyRequired.into()),
            };
        };
        let cs = nonce()?;
        talk.send(HELLO_CHALLENGE, &[&cs])?;
        let (code, body) = talk.recv(
            "reply",
            &[(REPLY_NO_KEY, 0), (REPLY_PROOF, NONCE + MAC_LEN)],
        )?;
        if code == REPLY_NO_KEY {
            return talk.refuse(VERDICT_NEED_KEY, AuthError::PeerHasNoKey);
        }
        let (cc, proof) = body.split_at(NONCE);
        if mac(key, CLIENT_LABEL, &cs, cc).verify_slice(proof).is_err() {
            return talk.refuse(VERDICT_WRONG_KEY, AuthError::WrongKey);
        }
        let ours = mac(key, SERVER_LABEL, &cs, cc).finalize().into_bytes();
        talk.send(VERDICT_PROOF, &[&ours])?;
        let (code, _) = talk.recv("final", &[(FINAL_ACCEPTED, 0), (FINAL_REFUSED, 0)])?;
        match code {
            FINAL_ACCEPTED => Ok(()),
            _ => Err(AuthError::Refused.into()),
        }
    })
}

/// The client's side of the handshake.
pub(crate) fn join(
    conn: &Connection,
    key: &AuthKey,
    deadline: Instant,
) -> Result<(), ConnectError> {
    limited(conn, || {
        let talk = Talk { conn, deadline };
        let (code, cs) = talk.recv("hello", &[(HELLO_OPEN, 0), (HELLO_CHALLENGE, NONCE)])?;
        let key = match (code, key.as_bytes()) {
            (HELLO_OPEN, None) => return talk.send(REPLY_NO_KEY, &[]),
            (HELLO_OPEN, Some(_)) => return talk.refuse(REPLY_NEED_KEY, AuthError::PeerHasNoKey),
            (_, None) => return talk.refuse(REPLY_NO_KEY, AuthError::KeyRequired),
            (_, Some(key)) => key,
        };
        let cc = nonce()?;
        let proof = mac(key, CLIENT_LABEL, &cs, &cc).finalize().into_bytes();
        talk.send(REPLY_PROOF, &[&cc, &proof])?;
        let (code, theirs) = talk.recv(
            "verdict",
            &[
                (VERDICT_PROOF, MAC_LEN),
                (VERDICT_WRONG_KEY, 0),
                (VERDICT_NEED_KEY, 0),
            ],
        )?;
        match code {
            VERDICT_WRONG_KEY => return Err(AuthError::Refused.into()),
            VERDICT_NEED_KEY => return Err(AuthError::KeyRequired.into()),
            _ => {}
        }
        if mac(key, SERVER_LABEL, &cs, &cc)
            .verify_slice(&theirs)
            .is_err()
        {
            return talk.refuse(FINAL_REFUSED, AuthError::WrongKey);
        }
        talk.send(FINAL_ACCEPTED, &[])
    })
}
