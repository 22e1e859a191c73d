//! The server against bad input from clients that passed the handshake
//! (and one that did not): every bad request gets a typed refusal or ends
//! only its own connection; the server stays up for everybody else.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::linux::net::SocketAddrExt;
use std::time::Duration;

use super::protocol::{Bytes, Fault, Kind, Num, Op, Reply, Request, Update};
use super::{Builder, Manager};
use crate::ipc::{Client, Connection, RecvError};

const DEADLINE: Duration = Duration::from_secs(120);

fn server() -> super::Server {
    Builder::default().key("test key").serve().unwrap()
}

fn client(server: &super::Server) -> Connection {
    Client::connect_timeout(server.address(), "test key", DEADLINE).unwrap()
}

fn ask(conn: &Connection, request: &Request) -> Reply {
    conn.send(request).unwrap();
    conn.recv_timeout(DEADLINE).unwrap()
}

fn make(conn: &Connection, kind: Kind) -> u64 {
    let request = Request::Create {
        kind,
        name: None,
        init: Bytes::new(),
    };
    match ask(conn, &request) {
        Reply::Id(id) => id,
        r => panic!("{r:?}"),
    }
}

/// A raw stream on the connection's socket, to write what no `send` would.
fn raw(conn: &Connection) -> std::os::unix::net::UnixStream {
    std::os::unix::net::UnixStream::from(conn.as_fd().try_clone_to_owned().unwrap())
}

#[test]
fn an_unreadable_request_is_refused_and_the_connection_goes_on() {
    let server = server();
    let conn = client(&server);
    for garbage in [&b""[..], b"\x01\x02\x03", &[0xff; 64], &99u32.to_le_bytes()] {
        conn.send_bytes(garbage).unwrap();
        match conn.recv_timeout::<Reply>(DEADLINE).unwrap() {
            Reply::Fault(Fault::Refused(why)) => assert!(why.contains("unreadable"), "{why}"),
            r => panic!("{r:?}"),
        }
    }
    assert!(matches!(ask(&conn, &Request::Ping), Reply::Done));
}

#[test]
fn a_wrong_object_or_operation_is_a_typed_fault() {
    let server = server();
    let conn = client(&server);
    let dict = make(&conn, Kind::Dict);
    let missing = Request::Call {
        id: 12345,
        op: Op::Len,
    };
    assert!(matches!(
        ask(&conn, &missing),
        Reply::Fault(Fault::NoSuchObject(12345))
    ));
    let wrong = Request::Call {
        id: dict,
        op: Op::Push(Bytes::new()),
    };
    match ask(&conn, &wrong) {
        Reply::Fault(Fault::Unsupported { op, kind }) => {
            assert_eq!((op.as_str(), kind.as_str()), ("Push", "dict"))
        }
        r => panic!("{r:?}"),
    }
    // A number update on something that is not that number.
    let key = Bytes::from(vec![1]);
    let insert = Request::Call {
        id: dict,
        op: Op::Insert(key.clone(), Bytes::from(vec![1, 2, 3])),
    };
    ask(&conn, &insert);
    let add = Request::Call {
        id: dict,
        op: Op::UpdateKey(key.clone(), Update::Add(Num::U64(1))),
    };
    assert!(matches!(ask(&conn, &add), Reply::Fault(Fault::Update(_))));
    let push = Request::Call {
        id: dict,
        op: Op::UpdateKey(key, Update::Push(Bytes::from(vec![9]))),
    };
    assert!(matches!(ask(&conn, &push), Reply::Fault(Fault::Update(_))));
    let object = Request::Create {
        kind: Kind::Object("not::Registered".into()),
        name: None,
        init: Bytes::new(),
    };
    assert!(matches!(
        ask(&conn, &object),
        Reply::Fault(Fault::NotRegistered(_))
    ));
}

#[test]
fn a_frame_that_breaks_the_stream_ends_only_its_connection() {
    let server = server();
    let bystander = Manager::connect(server.address(), "test key").unwrap();
    let d = bystander.dict::<u8, u8>().unwrap();
    // Bad magic; then an oversize header; then half a frame and a hang-up.
    let bad_magic = b"XXXXXXXXXXXXXXXXXXXXXXXX".to_vec();
    let mut oversize = vec![0x50, 0x4d, 0, 0];
    oversize.extend_from_slice(&(u64::MAX / 2).to_le_bytes());
    for bytes in [bad_magic, oversize] {
        let conn = client(&server);
        raw(&conn).write_all(&bytes).unwrap();
        assert!(matches!(
            conn.recv_timeout::<Reply>(DEADLINE),
            Err(RecvError::Closed)
        ));
        d.insert(&1, &2).unwrap();
    }
    let conn = client(&server);
    raw(&conn).write_all(&[0x50, 0x4d, 0, 0, 100, 0]).unwrap();
    drop(conn);
    assert_eq!(d.get(&1).unwrap(), Some(2));
}

#[test]
fn a_stranger_without_the_handshake_is_turned_away() {
    let server = Builder::default()
        .key("k")
        .address("127.0.0.1:0")
        .serve()
        .unwrap();
    let crate::ipc::Address::Tcp(at) = server.address().clone() else {
        panic!("tcp")
    };
    let mut stranger = std::net::TcpStream::connect(at).unwrap();
    stranger.set_read_timeout(Some(DEADLINE)).unwrap();
    let _ = stranger.write_all(&[
        0x50, 0x4d, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8,
    ]);
    let mut buf = [0u8; 256];
    // The server reads the garbage as a failed handshake and hangs up.
    loop {
        match std::io::Read::read(&mut stranger, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => continue,
        }
    }
    let friend = Manager::connect(server.address(), "k").unwrap();
    assert!(friend.namespace().is_ok());
}

#[test]
fn silent_strangers_hold_up_no_other_client() {
    let server = server();
    // Served one after another, four handshakes that never come would
    // keep the next client waiting 4 × 10 s, past its 30 s to connect.
    let crate::ipc::Address::Abstract(name) = server.address().clone() else {
        panic!("abstract")
    };
    let strangers: Vec<_> = (0..4)
        .map(|_| {
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap();
            std::os::unix::net::UnixStream::connect_addr(&addr).unwrap()
        })
        .collect();
    let friend = Manager::connect(server.address(), "test key").unwrap();
    assert!(friend.event().is_ok());
    drop(strangers);
}

#[test]
fn a_borrowed_mailbox_offer_is_the_request_the_server_reads() {
    let mailbox = crate::ipc::mailbox::Mailbox::new(64).unwrap();
    let offer = crate::codec::encode(&super::protocol::Offer::Mailbox(&mailbox), 1 << 20).unwrap();
    let read: Request = crate::codec::decode(&offer.bytes[12..], offer.fds).unwrap();
    assert!(matches!(read, Request::Mailbox(m) if m.capacity() == 64));
}

#[test]
fn managers_and_proxies_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Manager>();
    send_sync::<super::Server>();
    send_sync::<super::Dict<String, Vec<u8>>>();
    send_sync::<super::List<u8>>();
    send_sync::<super::Queue<String>>();
    send_sync::<super::Namespace>();
    send_sync::<super::Lock>();
    send_sync::<super::Event>();
    send_sync::<super::Value<f64>>();
}
