//! Listener and Client: Unix paths, abstract names and TCP; the handshake
//! with right, wrong and missing keys on either side; silent, garbled and
//! vanishing peers; a thousand clients at once; `wait` on a mix of objects.
mod common;
use common::JoinInTime;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use multiproc::codec::Header;
use multiproc::ipc::{
    self, Address, AuthError, AuthKey, Client, ConnectError, Connection, Listener, Pipe, RecvError,
    SendError, ToAddress, Waitable,
};
use multiproc::process::Process;

/// A fresh abstract name for this test binary.
fn name() -> String {
    common::unique_name("test")
}

/// A fresh directory for socket files.
fn dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("multiproc-{}", name().trim_start_matches('@')));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Accepts once on a thread while `client` runs here; returns both results.
fn handshake(
    listener: &Listener,
    client: impl FnOnce() -> Result<Connection, ConnectError> + Send,
) -> (
    Result<Connection, ConnectError>,
    Result<Connection, ConnectError>,
) {
    std::thread::scope(|s| {
        let server = s.spawn(|| listener.accept_timeout(Duration::from_secs(30)));
        let client = client();
        (server.join_in_time().unwrap(), client)
    })
}

fn auth_error(r: Result<Connection, ConnectError>) -> AuthError {
    match r {
        Err(ConnectError::Auth(e)) => e,
        other => panic!("expected an authentication error, got {other:?}"),
    }
}

/// Ping-pong of a few values between two connected ends.
fn talk(a: &Connection, b: &Connection) {
    for i in 0..100u32 {
        a.send(&(i, format!("n{i}"))).unwrap();
        let (j, s): (u32, String) = b.recv().unwrap();
        assert_eq!((j, s.as_str()), (i, format!("n{i}").as_str()));
        b.send(&(j + 1)).unwrap();
        assert_eq!(a.recv::<u32>().unwrap(), i + 1);
    }
}

#[test]
fn unix_path_owner_only_and_removed_on_drop() {
    let _c = common::clean();
    let d = dir();
    let path = d.join("s.sock");
    let listener = Listener::bind(&path, "key").unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "socket file mode {mode:o}");
    assert_eq!(listener.local_addr().unwrap(), Address::Unix(path.clone()));
    let (server, client) = handshake(&listener, || Client::connect(&path, "key"));
    talk(&server.unwrap(), &client.unwrap());
    // A second listener on the same path is refused, not silently replaced.
    let again = Listener::bind(&path, "key").unwrap_err();
    assert_eq!(again.kind(), std::io::ErrorKind::AddrInUse);
    drop(listener);
    assert!(!path.exists(), "the socket file outlived its listener");
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn abstract_name() {
    let _c = common::clean();
    let n = name();
    let listener = Listener::bind(n.as_str(), "key").unwrap();
    assert_eq!(listener.local_addr().unwrap().to_string(), n);
    let (server, client) = handshake(&listener, || Client::connect(n.as_str(), "key"));
    talk(&server.unwrap(), &client.unwrap());
}

#[test]
fn tcp_loopback_and_handles_refused_over_tcp() {
    let _c = common::clean();
    let listener = Listener::bind("127.0.0.1:0", "key").unwrap();
    let addr = listener.local_addr().unwrap();
    let Address::Tcp(sa) = addr else {
        panic!("{addr:?}")
    };
    assert_ne!(sa.port(), 0);
    let (server, client) = handshake(&listener, || Client::connect(addr.clone(), "key"));
    let (server, client) = (server.unwrap(), client.unwrap());
    talk(&server, &client);
    // Big messages cross too.
    let big = vec![7u8; 3 << 20];
    std::thread::scope(|s| {
        s.spawn(|| client.send_bytes(&big).unwrap());
        assert_eq!(server.recv_bytes().unwrap(), big);
    });
    // A handle needs a Unix socket: over TCP it is a typed error, and the
    // connection stays usable.
    let (pipe_end, _other) = Pipe::duplex().unwrap();
    let err = client.send(&pipe_end).unwrap_err();
    assert!(
        matches!(&err, SendError::Codec(e) if e.to_string().contains("TCP")),
        "{err:?}"
    );
    client.send(&1u8).unwrap();
    assert_eq!(server.recv::<u8>().unwrap(), 1);
    client.send_bytes(&[]).unwrap();
    assert_eq!(server.recv_bytes().unwrap(), b"");
    drop(client);
    assert!(matches!(server.recv::<u8>(), Err(RecvError::Closed)));
}

#[test]
fn wrong_key_is_refused_on_both_sides() {
    let _c = common::clean();
    let n = name();
    let listener = Listener::bind(n.as_str(), "right").unwrap();
    let (server, client) = handshake(&listener, || Client::connect(n.as_str(), "wrong"));
    assert_eq!(auth_error(server), AuthError::WrongKey);
    assert_eq!(auth_error(client), AuthError::Refused);
    // The listener is still good for the next client.
    let (server, client) = handshake(&listener, || Client::connect(n.as_str(), b"right"));
    talk(&server.unwrap(), &client.unwrap());
}

#[test]
fn missing_key_on_either_side() {
    let _c = common::clean();
    let n = name();
    let keyed = Listener::bind(n.as_str(), "key").unwrap();
    let (server, client) = handshake(&keyed, || Client::connect(n.as_str(), AuthKey::NONE));
    assert_eq!(auth_error(server), AuthError::PeerHasNoKey);
    assert_eq!(auth_error(client), AuthError::KeyRequired);

    let m = name();
    let open = Listener::bind(m.as_str(), AuthKey::NONE).unwrap();
    let (server, client) = handshake(&open, || Client::connect(m.as_str(), "key"));
    assert_eq!(auth_error(server), AuthError::KeyRequired);
    assert_eq!(auth_error(client), AuthError::PeerHasNoKey);

    // Both without a key: allowed.
    let (server, client) = handshake(&open, || Client::connect(m.as_str(), AuthKey::NONE));
    talk(&server.unwrap(), &client.unwrap());

    // An empty key is no key at all: refused up front.
    for err in [
        Listener::bind(name().as_str(), "").unwrap_err(),
        match Client::connect(m.as_str(), "") {
            Err(ConnectError::Io(e)) => e,
            other => panic!("{other:?}"),
        },
    ] {
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }
}

/// Writes one frame with `payload` by hand.
fn raw_frame(stream: &mut UnixStream, payload: &[u8]) {
    let header = Header {
        len: payload.len() as u64,
        fds: 0,
    };
    stream.write_all(&header.to_bytes()).unwrap();
    stream.write_all(payload).unwrap();
}

/// Reads one frame by hand.
fn read_frame(stream: &mut UnixStream) -> Vec<u8> {
    let mut h = [0u8; 12];
    stream.read_exact(&mut h).unwrap();
    let header = Header::parse(&h, 1 << 20).unwrap();
    let mut p = vec![0u8; header.len as usize];
    stream.read_exact(&mut p).unwrap();
    p
}

#[test]
fn client_checks_the_listeners_proof() {
    // A fake listener that does not know the key: it sends a challenge,
    // ignores the client's proof and answers with a forged one.
    let _c = common::clean();
    let d = dir();
    let path = d.join("fake.sock");
    let fake = UnixListener::bind(&path).unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = fake.accept().unwrap();
        let mut hello = b"MPAUTH/1\x01".to_vec();
        hello.extend_from_slice(&[9; 32]);
        raw_frame(&mut s, &hello);
        let reply = read_frame(&mut s);
        assert_eq!(reply.len(), 9 + 64, "client sends its challenge and proof");
        let mut forged = b"MPAUTH/1\x01".to_vec();
        forged.extend_from_slice(&[0; 32]);
        raw_frame(&mut s, &forged);
        read_frame(&mut s) // the client's verdict
    });
    let err = auth_error(Client::connect(&path, "key"));
    assert_eq!(err, AuthError::WrongKey);
    assert_eq!(
        server.join_in_time().unwrap(),
        b"MPAUTH/1\x01",
        "client says refused"
    );
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn silent_client_times_out_and_the_listener_goes_on() {
    let _c = common::clean();
    let n = name();
    let listener = Listener::bind(n.as_str(), "key").unwrap();
    listener.set_handshake_timeout(Duration::from_millis(200));
    let silent = UnixStream::connect_addr(&abstract_addr(&n)).unwrap();
    let started = std::time::Instant::now();
    assert_eq!(auth_error(listener.accept()), AuthError::Timeout);
    assert!(started.elapsed() >= Duration::from_millis(200));
    drop(silent);
    let (server, client) = handshake(&listener, || Client::connect(n.as_str(), "key"));
    talk(&server.unwrap(), &client.unwrap());
}

fn abstract_addr(n: &str) -> std::os::unix::net::SocketAddr {
    use std::os::linux::net::SocketAddrExt;
    std::os::unix::net::SocketAddr::from_abstract_name(n.trim_start_matches('@')).unwrap()
}

#[test]
fn silent_listener_times_out_the_client() {
    let _c = common::clean();
    let n = name();
    let fake = UnixListener::bind_addr(&abstract_addr(&n)).unwrap();
    let started = std::time::Instant::now();
    let err = auth_error(Client::connect_timeout(
        n.as_str(),
        "key",
        Duration::from_millis(200),
    ));
    assert_eq!(err, AuthError::Timeout);
    assert!(started.elapsed() >= Duration::from_millis(200));
    drop(fake);
}

#[test]
fn accept_timeout_with_nobody_coming() {
    let _c = common::clean();
    let listener = Listener::bind(name().as_str(), "key").unwrap();
    let started = std::time::Instant::now();
    let r = listener.accept_timeout(Duration::from_millis(100));
    assert!(matches!(r, Err(ConnectError::Timeout)), "{r:?}");
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert!(matches!(
        listener.accept_timeout(Duration::ZERO),
        Err(ConnectError::Timeout)
    ));
}

#[test]
fn connecting_to_nothing_is_an_io_error() {
    let _c = common::clean();
    let r = Client::connect(name().as_str(), "key");
    assert!(
        matches!(&r, Err(ConnectError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused),
        "{r:?}"
    );
    let r = Client::connect(dir().join("nobody.sock"), "key");
    assert!(matches!(&r, Err(ConnectError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound));
    assert!("no-such-host.invalid:80".to_address().is_err());
}

/// A client that sends `bytes` instead of a handshake, then closes.
fn garbage_client(n: &str, bytes: Vec<u8>) -> AuthError {
    let listener = Listener::bind(n, "key").unwrap();
    let mut s = UnixStream::connect_addr(&abstract_addr(n)).unwrap();
    let writer = std::thread::spawn(move || {
        let _ = s.write_all(&bytes);
        let _ = s.shutdown(std::net::Shutdown::Write);
        // Read whatever the listener says until it hangs up.
        let _ = std::io::copy(&mut s, &mut std::io::sink());
    });
    let e = auth_error(listener.accept());
    drop(listener);
    writer.join_in_time().unwrap();
    e
}

#[test]
fn garbled_clients_get_typed_errors() {
    let _c = common::clean();
    // Not a frame at all.
    let e = garbage_client(&name(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec());
    assert!(
        matches!(&e, AuthError::Protocol(m) if m.contains("magic")),
        "{e:?}"
    );
    // A length prefix of 2^63.
    let huge = Header {
        len: 1 << 63,
        fds: 0,
    }
    .to_bytes()
    .to_vec();
    let e = garbage_client(&name(), huge);
    assert!(
        matches!(&e, AuthError::Protocol(m) if m.contains("exceeds")),
        "{e:?}"
    );
    // A frame cut short, then the peer goes.
    let mut cut = Header { len: 41, fds: 0 }.to_bytes().to_vec();
    cut.extend_from_slice(b"MPAUTH/1");
    assert_eq!(garbage_client(&name(), cut), AuthError::Closed);
    // A well-formed frame that is not the handshake.
    let mut other = Header { len: 5, fds: 0 }.to_bytes().to_vec();
    other.extend_from_slice(b"hello");
    let e = garbage_client(&name(), other);
    assert!(
        matches!(&e, AuthError::Protocol(m) if m.contains("tag")),
        "{e:?}"
    );
    // The right tag, an unknown code.
    let mut code = Header { len: 9, fds: 0 }.to_bytes().to_vec();
    code.extend_from_slice(b"MPAUTH/1\x07");
    let e = garbage_client(&name(), code);
    assert!(
        matches!(&e, AuthError::Protocol(m) if m.contains("code 7")),
        "{e:?}"
    );
    // Nothing, then gone.
    assert_eq!(garbage_client(&name(), Vec::new()), AuthError::Closed);
}

#[test]
fn a_thousand_clients_at_once() {
    let _c = common::clean();
    const CLIENTS: usize = 1000;
    let n = name();
    let listener = Listener::bind(n.as_str(), "key").unwrap();
    let go = Arc::new(Barrier::new(CLIENTS + 1));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (n, go) = (n.clone(), go.clone());
            std::thread::Builder::new()
                .stack_size(64 << 10)
                .spawn(move || {
                    go.wait();
                    let conn = Client::connect_timeout(n.as_str(), "key", Duration::from_secs(120))
                        .unwrap();
                    conn.send(&i).unwrap();
                    conn.recv::<usize>().unwrap()
                })
                .unwrap()
        })
        .collect();
    go.wait();
    let mut served = Vec::new();
    for _ in 0..CLIENTS {
        let conn = listener.accept().unwrap();
        let i: usize = conn.recv().unwrap();
        conn.send(&(i * 2)).unwrap();
        served.push(i);
    }
    for (i, c) in clients.into_iter().enumerate() {
        assert_eq!(c.join_in_time().unwrap(), i * 2);
    }
    served.sort();
    assert_eq!(served, (0..CLIENTS).collect::<Vec<_>>());
}

#[test]
fn a_client_process_and_a_server_process() {
    let _c = common::clean();
    let n = name();
    let listener = Listener::bind(n.as_str(), "shared secret").unwrap();
    let mut client = Process::start(
        |n: String| {
            let conn = Client::connect(n.as_str(), "shared secret").unwrap();
            conn.send(&format!("hello from {}", std::process::id()))
                .unwrap();
            conn.recv::<u64>().unwrap()
        },
        n.clone(),
    )
    .unwrap();
    let mut intruder = Process::start(
        |n: String| match Client::connect(n.as_str(), "guess") {
            Err(ConnectError::Auth(e)) => e.to_string(),
            other => format!("unexpected {other:?}"),
        },
        n.clone(),
    )
    .unwrap();
    let mut refused = 0;
    let mut greeted = None;
    while greeted.is_none() || refused == 0 {
        match listener.accept() {
            Ok(conn) => {
                greeted = Some(conn.recv::<String>().unwrap());
                conn.send(&42u64).unwrap();
            }
            Err(ConnectError::Auth(AuthError::WrongKey)) => refused += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(client.join_in_time().unwrap(), 42);
    assert_eq!(greeted.unwrap(), format!("hello from {}", client.pid()));
    assert_eq!(
        intruder.join_in_time().unwrap(),
        AuthError::Refused.to_string()
    );
}

#[test]
fn wait_on_connections_listeners_and_a_dying_process() {
    let _c = common::clean();
    let (quiet, _quiet_peer) = Pipe::duplex().unwrap();
    let (busy, busy_peer) = Pipe::duplex().unwrap();
    let n = name();
    let listener = Listener::bind(n.as_str(), AuthKey::NONE).unwrap();
    let mut dying =
        Process::start(|ms: u64| std::thread::sleep(Duration::from_millis(ms)), 100).unwrap();

    // Nothing is ready: a timed wait returns none.
    let all: [&dyn Waitable; 4] = [&quiet, &busy, &listener, &dying];
    assert!(
        ipc::wait_timeout(&all, Duration::from_millis(20))
            .unwrap()
            .is_empty()
    );

    // The process ends: only it is ready.
    assert_eq!(ipc::wait(&[&quiet, &busy, &listener, &dying]).unwrap(), [3]);

    // A message and a client arrive: those two (and the ended process).
    busy_peer.send(&"news").unwrap();
    let _pending = UnixStream::connect_addr(&abstract_addr(&n)).unwrap();
    let ready = ipc::wait_timeout(&all, Duration::from_secs(30)).unwrap();
    assert_eq!(ready, [1, 2, 3]);
    assert_eq!(busy.recv::<String>().unwrap(), "news");
    // Received: not ready any more.
    assert!(
        ipc::wait_timeout(&[&quiet as &dyn Waitable, &busy], Duration::ZERO)
            .unwrap()
            .is_empty()
    );
    // A closed peer counts as ready: recv will say Closed.
    drop(busy_peer);
    assert_eq!(ipc::wait(&[&quiet as &dyn Waitable, &busy]).unwrap(), [1]);
    assert!(matches!(busy.recv::<u8>(), Err(RecvError::Closed)));
    assert!(ipc::wait(&[]).unwrap().is_empty());
    dying.join_in_time().unwrap();
}

#[test]
fn wait_is_not_fooled_by_half_a_message() {
    let _c = common::clean();
    let (mine, mut theirs) = UnixStream::pair().unwrap();
    let conn = Connection::from(mine);
    let frame = multiproc::codec::encode(&"a whole message".to_string(), 1 << 20).unwrap();
    let (head, tail) = frame.bytes.split_at(10);
    theirs.write_all(head).unwrap();
    // The descriptor is readable, yet no message can be received.
    assert!(
        ipc::wait_timeout(&[&conn], Duration::from_millis(50))
            .unwrap()
            .is_empty()
    );
    theirs.write_all(tail).unwrap();
    assert_eq!(ipc::wait(&[&conn]).unwrap(), [0]);
    assert_eq!(conn.recv::<String>().unwrap(), "a whole message");
}
