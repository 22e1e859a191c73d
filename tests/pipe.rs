//! Pipes and connections: between threads and processes, big messages,
//! closed peers, malformed and oversize frames, descriptor passing.
mod common;
use common::JoinInTime;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use multiproc::codec::{CodecError, Header};
use multiproc::ipc::{Connection, Pipe, RecvError, SendError};
use multiproc::process::Process;
use serde_bytes::ByteBuf;

#[test]
fn duplex_between_threads_both_ways() {
    let _c = common::clean();
    let (a, b) = Pipe::duplex().unwrap();
    let t = std::thread::spawn(move || {
        for i in 0..1000u32 {
            let got: u32 = b.recv().unwrap();
            assert_eq!(got, i);
            b.send(&(i * 2)).unwrap();
        }
    });
    for i in 0..1000u32 {
        a.send(&i).unwrap();
        assert_eq!(a.recv::<u32>().unwrap(), i * 2);
    }
    t.join_in_time().unwrap();
}

#[test]
fn simplex_pipe_to_a_process() {
    let _c = common::clean();
    let (rx, tx) = Pipe::simplex().unwrap();
    let mut p = Process::start(
        |tx: multiproc::ipc::Sender| {
            for i in 0..5 {
                tx.send(&format!("message {i}")).unwrap();
            }
        },
        tx,
    )
    .unwrap();
    for i in 0..5 {
        assert_eq!(rx.recv::<String>().unwrap(), format!("message {i}"));
    }
    p.join_in_time().unwrap();
    assert!(matches!(rx.recv::<String>(), Err(RecvError::Closed)));
}

#[test]
fn message_of_64_mib_between_processes() {
    let _c = common::clean();
    let (here, there) = Pipe::duplex().unwrap();
    let mut p = Process::start(
        |conn: Connection| {
            let raw = conn.recv_bytes().unwrap();
            let typed: ByteBuf = conn.recv().unwrap();
            conn.send(&(raw.len(), raw.iter().map(|b| *b as u64).sum::<u64>()))
                .unwrap();
            conn.send(&ByteBuf::from(
                typed.into_vec().into_iter().rev().collect::<Vec<u8>>(),
            ))
            .unwrap();
        },
        there,
    )
    .unwrap();
    let big: Vec<u8> = (0..64 << 20).map(|i| (i % 253) as u8).collect();
    here.send_bytes(&big).unwrap();
    here.send(&ByteBuf::from(big.clone())).unwrap();
    let (len, sum): (usize, u64) = here.recv().unwrap();
    assert_eq!(len, big.len());
    assert_eq!(sum, big.iter().map(|b| *b as u64).sum::<u64>());
    let back: ByteBuf = here.recv().unwrap();
    assert!(back.iter().rev().eq(big.iter()));
    p.join_in_time().unwrap();
}

#[test]
fn closed_peer_is_an_error_not_a_hang() {
    let _c = common::clean();
    let (a, b) = Pipe::duplex().unwrap();
    a.send(&1u8).unwrap();
    drop(a);
    assert_eq!(
        b.recv::<u8>().unwrap(),
        1,
        "what was sent before the close arrives"
    );
    assert!(matches!(b.recv::<u8>(), Err(RecvError::Closed)));
    assert!(matches!(b.try_recv::<u8>(), Err(RecvError::Closed)));
    assert!(
        b.poll(Duration::ZERO).unwrap(),
        "poll reports the end of the stream"
    );
    assert!(matches!(b.send(&2u8), Err(SendError::Closed)));

    // A peer process that dies without sending.
    let (a, b) = Pipe::duplex().unwrap();
    let mut p = Process::start(|_c: Connection| -> () { std::process::abort() }, b).unwrap();
    assert!(matches!(a.recv::<u8>(), Err(RecvError::Closed)));
    assert!(p.join_in_time().is_err());
}

#[test]
fn timeouts_and_try() {
    let _c = common::clean();
    let (a, b) = Pipe::duplex().unwrap();
    assert!(matches!(b.try_recv::<u8>(), Err(RecvError::Empty)));
    assert!(matches!(b.try_recv_bytes(), Err(RecvError::Empty)));
    let t = Instant::now();
    assert!(matches!(
        b.recv_timeout::<u8>(Duration::from_millis(50)),
        Err(RecvError::Timeout)
    ));
    assert!(t.elapsed() >= Duration::from_millis(50));
    assert!(matches!(
        b.recv_bytes_timeout(Duration::from_millis(10)),
        Err(RecvError::Timeout)
    ));
    assert!(!b.poll(Duration::from_millis(10)).unwrap());
    a.send(&7u8).unwrap();
    assert!(b.poll(Duration::from_secs(5)).unwrap());
    assert_eq!(b.recv_timeout::<u8>(Duration::from_secs(5)).unwrap(), 7);
}

#[test]
fn a_timeout_mid_message_loses_nothing() {
    let _c = common::clean();
    let (mut raw, other) = UnixStream::pair().unwrap();
    let conn = Connection::from(other);
    let payload = b"hello world";
    let header = Header {
        len: payload.len() as u64,
        fds: 0,
    }
    .to_bytes();
    raw.write_all(&header).unwrap();
    raw.write_all(&payload[..5]).unwrap();
    assert!(matches!(
        conn.recv_bytes_timeout(Duration::from_millis(20)),
        Err(RecvError::Timeout)
    ));
    raw.write_all(&payload[5..]).unwrap();
    assert_eq!(
        conn.recv_bytes_timeout(Duration::from_secs(5)).unwrap(),
        payload
    );
}

#[test]
fn malformed_frames_are_typed_errors() {
    let _c = common::clean();
    // Garbage bytes: bad magic number; the connection stays in error.
    let (mut raw, other) = UnixStream::pair().unwrap();
    let conn = Connection::from(other);
    raw.write_all(&[0xde; 40]).unwrap();
    assert!(matches!(
        conn.recv_bytes(),
        Err(RecvError::Codec(CodecError::Malformed(_)))
    ));
    assert!(matches!(
        conn.recv_bytes(),
        Err(RecvError::Codec(CodecError::Malformed(_)))
    ));

    // A length prefix of 2^63.
    let (mut raw, other) = UnixStream::pair().unwrap();
    let conn = Connection::from(other);
    raw.write_all(
        &Header {
            len: 1 << 63,
            fds: 0,
        }
        .to_bytes(),
    )
    .unwrap();
    assert!(matches!(
        conn.recv_bytes(),
        Err(RecvError::Codec(CodecError::TooLarge { .. }))
    ));

    // Truncated: the peer vanishes mid-frame.
    let (mut raw, other) = UnixStream::pair().unwrap();
    let conn = Connection::from(other);
    raw.write_all(&Header { len: 100, fds: 0 }.to_bytes())
        .unwrap();
    raw.write_all(&[1; 30]).unwrap();
    assert!(
        !conn.poll(Duration::ZERO).unwrap(),
        "half a frame is not ready"
    );
    drop(raw);
    // Its sender gone, no more can come: ready, and `recv` says why.
    assert!(conn.poll(Duration::from_secs(5)).unwrap());
    assert!(matches!(
        conn.recv_bytes(),
        Err(RecvError::Truncated {
            got: 42,
            expected: 112
        })
    ));

    // A header announcing descriptors that never came.
    let (mut raw, other) = UnixStream::pair().unwrap();
    let conn = Connection::from(other);
    raw.write_all(&Header { len: 4, fds: 2 }.to_bytes())
        .unwrap();
    raw.write_all(&[0; 4]).unwrap();
    assert!(matches!(
        conn.recv::<u32>(),
        Err(RecvError::Codec(CodecError::Malformed(_)))
    ));

    // A well-framed payload of the wrong type: that message fails, the next works.
    let (a, b) = Pipe::duplex().unwrap();
    a.send(&"not a number, and longer than eight bytes")
        .unwrap();
    a.send(&5u64).unwrap();
    assert!(matches!(
        b.recv::<u64>(),
        Err(RecvError::Codec(CodecError::Decode(_)))
    ));
    assert_eq!(b.recv::<u64>().unwrap(), 5);
}

#[test]
fn oversize_messages_are_refused_on_both_sides() {
    let _c = common::clean();
    let (a, b) = Pipe::duplex().unwrap();
    a.set_max_message_size(1000);
    assert_eq!(a.max_message_size(), 1000);
    assert!(matches!(
        a.send_bytes(&[0; 1001]),
        Err(SendError::Codec(CodecError::TooLarge { .. }))
    ));
    assert!(matches!(
        a.send(&vec![0u8; 2000]),
        Err(SendError::Codec(CodecError::TooLarge { .. }))
    ));
    a.send_bytes(&[0; 1000]).unwrap();
    b.set_max_message_size(500);
    assert!(matches!(
        b.recv_bytes(),
        Err(RecvError::Codec(CodecError::TooLarge {
            size: 1000,
            limit: 500
        }))
    ));
}

/// A large frame's payload is read into a buffer of its own as it
/// arrives: in pieces, between small frames, with a timeout or a look in
/// the middle, with descriptors beside it, or cut short.
#[test]
fn large_frames_arrive_in_pieces_between_small_ones() {
    let _c = common::clean();
    const LEN: usize = 3 << 20;
    let big: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
    let frame = |payload: &[u8]| {
        let mut f = Header {
            len: payload.len() as u64,
            fds: 0,
        }
        .to_bytes()
        .to_vec();
        f.extend_from_slice(payload);
        f
    };
    let (mut raw, other) = UnixStream::pair().unwrap();
    let conn = Connection::from(other);
    let writer = std::thread::spawn(move || {
        // A small frame, then the large one in pieces with the next small
        // frame glued to its end.
        raw.write_all(&frame(b"before")).unwrap();
        let f = frame(&big);
        raw.write_all(&f[..1 << 20]).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let mut rest = f[1 << 20..].to_vec();
        rest.extend_from_slice(&frame(b"after"));
        raw.write_all(&rest).unwrap();
        (raw, big)
    });
    assert_eq!(
        conn.recv_bytes_timeout(Duration::from_secs(30)).unwrap(),
        b"before"
    );
    // Half of it there: not ready, and a short wait times out, losing
    // nothing.
    let _ = conn.poll(Duration::from_millis(10));
    let _ = conn.recv_bytes_timeout(Duration::from_millis(1));
    let got = conn.recv_bytes_timeout(Duration::from_secs(30)).unwrap();
    let (mut raw, big) = writer.join_in_time().unwrap();
    assert!(got == big, "the large payload arrived whole and in order");
    assert_eq!(
        conn.recv_bytes_timeout(Duration::from_secs(30)).unwrap(),
        b"after"
    );

    // Descriptors beside a large frame, and beside the small one after it.
    let (a, b) = Pipe::duplex().unwrap();
    let (x, y) = Pipe::duplex().unwrap();
    let (p, q) = Pipe::duplex().unwrap();
    let sender = std::thread::spawn(move || {
        a.send(&(ByteBuf::from(vec![9u8; LEN]), x)).unwrap();
        a.send(&p).unwrap();
    });
    let (bytes, x2): (ByteBuf, Connection) = b.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(bytes.len() == LEN && bytes.iter().all(|&b| b == 9));
    x2.send(&1u8).unwrap();
    assert_eq!(y.recv_timeout::<u8>(Duration::from_secs(30)).unwrap(), 1);
    let p2: Connection = b.recv_timeout(Duration::from_secs(30)).unwrap();
    sender.join_in_time().unwrap();
    p2.send(&2u8).unwrap();
    assert_eq!(q.recv_timeout::<u8>(Duration::from_secs(30)).unwrap(), 2);

    // Cut short: its sender gone, `recv` says how much came.
    let writer = std::thread::spawn(move || {
        let f = frame(&vec![1u8; LEN]);
        raw.write_all(&f[..2 << 20]).unwrap();
    });
    let _ = conn.poll(Duration::from_millis(10));
    assert!(matches!(
        conn.recv_bytes_timeout(Duration::from_secs(30)),
        Err(RecvError::Truncated { got, expected })
            if got == 2 << 20 && expected == (LEN + 12) as u64
    ));
    writer.join_in_time().unwrap();
}

#[test]
fn connections_travel_inside_messages() {
    let _c = common::clean();
    let (a, b) = Pipe::duplex().unwrap();
    let (x, y) = Pipe::duplex().unwrap();
    a.send(&("a connection:", x)).unwrap();
    let (label, x2): (String, Connection) = b.recv().unwrap();
    assert_eq!(label, "a connection:");
    x2.send(&"through the passed end").unwrap();
    assert_eq!(y.recv::<String>().unwrap(), "through the passed end");
    // Handles are only serializable by multiproc.
    let err = bincode::serialize(&y).unwrap_err();
    assert!(
        err.to_string().contains("only be sent through multiproc"),
        "{err}"
    );
}

#[test]
fn many_threads_share_one_connection() {
    let _c = common::clean();
    let (a, b) = Pipe::duplex().unwrap();
    let a = std::sync::Arc::new(a);
    let senders: Vec<_> = (0..4u64)
        .map(|t| {
            let a = a.clone();
            std::thread::spawn(move || {
                for i in 0..500u64 {
                    a.send(&(t, i, vec![t; 100])).unwrap();
                }
            })
        })
        .collect();
    let mut next = [0u64; 4];
    for _ in 0..2000 {
        let (t, i, v): (u64, u64, Vec<u64>) = b.recv().unwrap();
        assert_eq!(i, next[t as usize], "per-sender order");
        assert_eq!(v, vec![t; 100], "no interleaving inside a message");
        next[t as usize] += 1;
    }
    senders.into_iter().for_each(|s| s.join_in_time().unwrap());
}

#[test]
fn poll_takes_nothing_from_a_connection_shared_with_another_process() {
    // CPython's test_boundaries: the receiving end is also held by a child
    // (sending a Connection duplicates it); the parent polls, the child
    // receives every message.
    let _c = common::clean();
    let (a, b) = Pipe::duplex().unwrap();
    a.send_bytes(b"first").unwrap();
    a.send_bytes(b"second").unwrap();
    let big = std::thread::spawn(move || {
        a.send_bytes(&vec![9u8; 300 << 10]).unwrap();
        a
    });
    let (ctl_here, ctl_there) = Pipe::duplex().unwrap();
    for _ in 0..3 {
        assert!(b.poll(Duration::from_secs(5)).unwrap(), "a message waits");
    }
    let mut child = Process::start(
        |ctl: Connection| {
            let b: Connection = ctl.recv_timeout(Duration::from_secs(60)).unwrap();
            let got: Vec<usize> = (0..3)
                .map(|_| b.recv_bytes_timeout(Duration::from_secs(60)).unwrap().len())
                .collect();
            ctl.send(&got).unwrap();
        },
        ctl_there,
    )
    .unwrap();
    // Sending a connection duplicates it: this process keeps `b`.
    ctl_here.send(&b).unwrap();
    let got: Vec<usize> = ctl_here.recv_timeout(Duration::from_secs(120)).unwrap();
    assert_eq!(got, [5, 6, 300 << 10]);
    child.join_in_time().unwrap();
    let _a = big.join_in_time().unwrap();
    assert!(!b.poll(Duration::ZERO).unwrap(), "nothing left here either");
}
