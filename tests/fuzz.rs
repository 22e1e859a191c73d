//! Property-based fuzzing of everything that reads bytes from a peer: the
//! frame header, the payload decoder, a connection fed a random byte stream,
//! and both sides of the handshake fed random messages. Each must give a
//! value or a typed error — never a panic, a hang or an allocation the bytes
//! do not justify. Case counts are bounded so that `cargo test` stays fast;
//! `PROPTEST_CASES=100000 cargo test --release --test fuzz` digs deeper.

mod common;
use common::JoinInTime;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use multiproc::codec::{self, CodecError, HEADER_LEN, Header};
use multiproc::ipc::{AuthKey, Client, ConnectError, Connection, Listener, RecvError};
use proptest::prelude::*;

/// 512 cases a property, or `PROPTEST_CASES`.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// Bytes that are mostly frames, with random damage: a valid header of a
/// random length followed by random bytes, or plain random bytes.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    let framed = (
        any::<u16>(),
        0u64..200,
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(fds, len, body)| {
            let mut v = Header { len, fds: fds % 3 }.to_bytes().to_vec();
            v.extend(body);
            v
        });
    let raw = proptest::collection::vec(any::<u8>(), 0..600);
    prop_oneof![framed, raw]
}

/// One to four frames that look like handshake messages: the right tag, a
/// code near the real ones, a body of a random length — deep into the
/// handshake's parsing, where random bytes rarely get.
fn handshake_messages() -> impl Strategy<Value = Vec<u8>> {
    let message =
        (0u8..5, proptest::collection::vec(any::<u8>(), 0..70)).prop_map(|(code, body)| {
            let mut payload = b"MPAUTH/1".to_vec();
            payload.push(code);
            payload.extend(body);
            let mut v = Header {
                len: payload.len() as u64,
                fds: 0,
            }
            .to_bytes()
            .to_vec();
            v.extend(payload);
            v
        });
    proptest::collection::vec(message, 1..4).prop_map(|m| m.concat())
}

/// A fresh abstract socket name.
fn name() -> String {
    common::unique_name("fuzz")
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn header_parse_never_panics(bytes in any::<[u8; HEADER_LEN]>(), limit in any::<usize>()) {
        match Header::parse(&bytes, limit) {
            Ok(h) => {
                prop_assert!(h.len <= limit as u64);
                prop_assert_eq!(h.to_bytes(), bytes);
            }
            Err(CodecError::TooLarge { size, .. }) => prop_assert!(size > limit as u64),
            Err(CodecError::Malformed(_)) => {}
            Err(e) => prop_assert!(false, "unexpected {:?}", e),
        }
    }

    #[test]
    fn decode_of_random_payloads_is_a_value_or_an_error(payload in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = codec::decode::<String>(&payload, Vec::new());
        let _ = codec::decode::<Vec<u64>>(&payload, Vec::new());
        let _ = codec::decode::<(u8, String, Option<Vec<i32>>)>(&payload, Vec::new());
        // A handle whose descriptor is missing is an error, not a panic.
        let r = codec::decode::<Connection>(&payload, Vec::new());
        prop_assert!(r.is_err());
    }

    #[test]
    fn encode_decode_round_trip(value in any::<(u32, String, Vec<i64>, Option<bool>)>()) {
        let frame = codec::encode(&value, 1 << 20).unwrap();
        let h = Header::parse(frame.bytes[..HEADER_LEN].try_into().unwrap(), 1 << 20).unwrap();
        prop_assert_eq!(h.len as usize, frame.bytes.len() - HEADER_LEN);
        let back: (u32, String, Vec<i64>, Option<bool>) =
            codec::decode(&frame.bytes[HEADER_LEN..], frame.fds).unwrap();
        prop_assert_eq!(back, value);
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_connection_fed_random_bytes_ends_in_a_typed_error(bytes in stream()) {
        let (mine, mut theirs) = UnixStream::pair().unwrap();
        let conn = Connection::from(mine);
        conn.set_max_message_size(256);
        theirs.write_all(&bytes).unwrap();
        drop(theirs);
        // Every receive ends: with a message, or an error; the stream ends
        // with Closed, Truncated or a framing error that then sticks.
        let mut outcomes = 0;
        loop {
            outcomes += 1;
            prop_assert!(outcomes < 1000, "receiving never ended");
            match conn.recv::<Vec<u8>>() {
                Ok(_) | Err(RecvError::Codec(CodecError::Decode(_))) => continue,
                Err(RecvError::Closed) | Err(RecvError::Truncated { .. }) => break,
                Err(RecvError::Codec(e)) => {
                    // Out of step: every later call says so too.
                    prop_assert!(matches!(conn.try_recv::<u8>(), Err(RecvError::Codec(f)) if f == e));
                    break;
                }
                Err(e) => prop_assert!(false, "unexpected {:?}", e),
            }
        }
    }

    #[test]
    fn a_listener_fed_random_bytes_refuses_the_peer(bytes in prop_oneof![stream(), handshake_messages()], keyed in any::<bool>()) {
        let n = name();
        let key = if keyed { AuthKey::from("key") } else { AuthKey::NONE };
        let listener = Listener::bind(n.as_str(), key).unwrap();
        listener.set_handshake_timeout(Duration::from_secs(20));
        let addr = {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(&n[1..]).unwrap()
        };
        let mut peer = UnixStream::connect_addr(&addr).unwrap();
        let _ = peer.write_all(&bytes);
        let _ = peer.shutdown(std::net::Shutdown::Write);
        // Random bytes never prove a key (nor, without a key, say the reply
        // that completes the handshake, unless they happen to be exactly it).
        match listener.accept() {
            Err(ConnectError::Auth(_)) => {}
            Ok(_) => prop_assert!(!keyed, "random bytes passed a keyed handshake"),
            Err(e) => prop_assert!(false, "unexpected {:?}", e),
        }
    }

    #[test]
    fn a_client_fed_random_bytes_refuses_the_listener(bytes in prop_oneof![stream(), handshake_messages()], keyed in any::<bool>()) {
        let n = name();
        let fake = {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(&n[1..]).unwrap();
            std::os::unix::net::UnixListener::bind_addr(&addr).unwrap()
        };
        let server = std::thread::spawn(move || {
            let (mut s, _) = fake.accept().unwrap();
            let _ = s.write_all(&bytes);
            let _ = s.shutdown(std::net::Shutdown::Write);
            let _ = std::io::copy(&mut s, &mut std::io::sink());
        });
        let key = if keyed { AuthKey::from("key") } else { AuthKey::NONE };
        match Client::connect_timeout(n.as_str(), key, Duration::from_secs(20)) {
            Err(ConnectError::Auth(_)) => {}
            Ok(conn) => {
                prop_assert!(!keyed, "random bytes passed a keyed handshake");
                drop(conn);
            }
            Err(e) => prop_assert!(false, "unexpected {:?}", e),
        }
        server.join_in_time().unwrap();
    }
}
