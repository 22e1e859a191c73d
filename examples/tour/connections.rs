//! The tour's story of connections between processes that did not start each
//! other: a server process, two clients and an intruder with the wrong key.

use std::time::Duration;

use multiproc::ipc::{AuthKey, Client, Listener};
use multiproc::process::Process;
use multiproc::sync::Event;

/// The server: says when it listens, then accepts until it has served
/// `clients` authenticated clients (answering each message) and turned one
/// intruder away; reports what it told the intruder.
fn server((address, key, clients, listening): (String, Vec<u8>, usize, Event)) -> Vec<String> {
    let listener = Listener::bind(address.as_str(), key).expect("bind");
    listening.set();
    let mut log = Vec::new();
    let mut served = 0;
    while served < clients || log.is_empty() {
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

/// A client: connects with `key` (the server listens already), says two
/// things, returns the answers.
fn client((address, key, who): (String, Vec<u8>, String)) -> Result<Vec<String>, String> {
    let conn = Client::connect_timeout(address.as_str(), key.as_slice(), Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
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
    let listening = Event::new()?;
    let mut server = Process::start(server, (address.clone(), key.clone(), 2, listening.clone()))?;
    // Every client starts once the server listens: none can arrive early.
    if !listening.wait_timeout(Duration::from_secs(10)) {
        return Err("the server did not start listening".into());
    }
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
