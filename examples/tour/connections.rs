//! The tour's story of connections between processes that did not start each
//! other: a server process, two clients and an intruder with the wrong key.

use std::io;
use std::time::{Duration, Instant};

use multiproc::ipc::{AuthKey, Client, ConnectError, Listener};
use multiproc::process::Process;

/// The server: accepts until it has served `clients` authenticated clients,
/// answering each message; reports whom it turned away.
fn server((address, key, clients): (String, Vec<u8>, usize)) -> Vec<String> {
    let listener = Listener::bind(address.as_str(), key).expect("bind");
    let mut log = Vec::new();
    let mut served = 0;
    while served < clients {
        match listener.accept() {
            Ok(conn) => {
                while let Ok(msg) = conn.recv::<String>() {
                    conn.send(&format!("server {} got {msg:?}", std::process::id()))
                        .expect("reply");
                }
                served += 1;
            }
            Err(e) => log.push(format!("turned away a client: {e}")),
        }
    }
    log
}

/// A client: connects with `key` (retrying while the server is not yet
/// listening), says two things, returns the answers.
fn client((address, key, who): (String, Vec<u8>, String)) -> Result<Vec<String>, String> {
    let give_up = Instant::now() + Duration::from_secs(10);
    let conn = loop {
        match Client::connect(address.as_str(), key.as_slice()) {
            Err(ConnectError::Io(e))
                if e.kind() == io::ErrorKind::ConnectionRefused && Instant::now() < give_up =>
            {
                std::thread::sleep(Duration::from_millis(5))
            }
            other => break other.map_err(|e| e.to_string())?,
        }
    };
    let mut heard = Vec::new();
    for word in ["hello", "goodbye"] {
        conn.send(&format!("{who} says {word}"))
            .map_err(|e| e.to_string())?;
        heard.push(conn.recv::<String>().map_err(|e| e.to_string())?);
    }
    Ok(heard)
}

pub fn listener_and_clients() -> Result<(), Box<dyn std::error::Error>> {
    let address = format!("@multiproc-tour-{}", std::process::id());
    let key = AuthKey::random()?
        .as_bytes()
        .expect("a random key")
        .to_vec();
    let mut server = Process::start(server, (address.clone(), key.clone(), 2))?;
    let start_client =
        |who: &str, key: Vec<u8>| Process::start(client, (address.clone(), key, who.to_string()));
    let mut intruder = start_client("intruder", b"a guess".to_vec())?;
    let mut alice = start_client("alice", key.clone())?;
    let mut bob = start_client("bob", key)?;
    match intruder.join()? {
        Err(e) => println!("   intruder (wrong key): {e}"),
        Ok(heard) => println!("   intruder got in?! {heard:?}"),
    }
    for (name, p) in [("alice", &mut alice), ("bob", &mut bob)] {
        for line in p.join()?? {
            println!("   {name} heard: {line}");
        }
    }
    for line in server.join()? {
        println!("   server: {line}");
    }
    Ok(())
}
