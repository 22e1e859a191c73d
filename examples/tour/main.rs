//! The main demo: the stories of the notes that multiproc can tell so far —
//! processes first, then threads (`threads.rs`).
//!
//! ```text
//! cargo run --release --example tour
//! ```
mod connections;
mod managers;
mod pool;
mod shared;
mod threads;

use std::time::{Duration, Instant};

use multiproc::ipc::{Connection, Pipe};
use multiproc::process::{self, Process, ProcessError, StartMethod};

fn square(x: u64) -> u64 {
    x * x
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("== 1. A process runs a Rust function, in its own address space");
    let mut p = Process::start(square, 12)?;
    let (pid, name) = (p.pid(), p.name().to_string());
    println!("   child pid {pid} ({name}) returned {}", p.join()?);

    println!("\n== 2. Lambdas are welcome (Python's pools refuse them)");
    let mut p = Process::start(
        |words: Vec<String>| words.join(" ").to_uppercase(),
        vec!["no".into(), "pickling".into(), "trap".into()],
    )?;
    println!("   a closure in another process said: {:?}", p.join()?);

    println!("\n== 3. A pipe between parent and child (multiprocessing.connection)");
    let (here, there) = Pipe::duplex()?;
    let mut echo = Process::start(
        |conn: Connection| {
            let mut n = 0;
            while let Ok(msg) = conn.recv::<String>() {
                n += 1;
                conn.send(&format!(
                    "child {} heard {msg:?}",
                    process::current_process().pid
                ))
                .unwrap();
            }
            n
        },
        there,
    )?;
    for word in ["hello", "你好"] {
        here.send(word)?;
        println!("   {}", here.recv::<String>()?);
    }
    drop(here);
    println!(
        "   the child saw the pipe close after {} messages",
        echo.join()?
    );

    println!("\n== 4. A crash is one process's error, not the program's");
    let mut p = Process::start(
        |n: u32| -> u32 {
            assert!(n < 10, "{n} is too many");
            n
        },
        12,
    )?;
    match p.join() {
        Err(ProcessError::Panicked { message, location }) => {
            println!(
                "   panicked: {message:?} at {}",
                location.unwrap_or_default()
            )
        }
        other => println!("   unexpected: {other:?}"),
    }
    let mut p = Process::start(|()| -> () { std::process::abort() }, ())?;
    println!("   aborted: {}", p.join().unwrap_err());

    println!("\n== 5. A running process can be timed out and killed");
    let mut p = Process::start(|s: u64| std::thread::sleep(Duration::from_secs(s)), 60)?;
    match p.join_timeout(Duration::from_millis(200)) {
        Err(ProcessError::Timeout) => {
            println!("   still running after 200 ms: alive = {}", p.is_alive())
        }
        other => println!("   unexpected: {other:?}"),
    }
    p.kill()?;
    println!(
        "   killed: {}; Python's exitcode would be {}",
        p.join().unwrap_err(),
        p.exit_status().unwrap().python_exitcode()
    );

    println!("\n== 6. Three start methods (50 empty processes each)");
    process::ensure_fork_server()?;
    for method in [
        StartMethod::Spawn,
        StartMethod::ForkServer,
        StartMethod::Fork,
    ] {
        let t = Instant::now();
        for _ in 0..50 {
            Process::builder()
                .start_method(method)
                .start(|()| {}, ())?
                .join()?;
        }
        println!(
            "   {method:?}: {:.2} ms per start and join",
            t.elapsed().as_secs_f64() * 1e3 / 50.0
        );
    }
    println!("   (Fork is only safe in a program that has not started threads; see StartMethod)");

    println!(
        "\n== 7. Processes that did not start each other: Listener and Client with an auth key"
    );
    connections::listener_and_clients()?;

    println!("\n== 8. A queue between two processes: the notes' writer and reader");
    shared::write_read_queue()?;

    println!("\n== 9. Shared variables: a counter decremented by 4 processes under its lock");
    shared::counter_under_the_values_lock()?;

    println!("\n== 10. A manager: a dict served by one process to others (Python's Manager())");
    managers::shared_dict()?;

    println!("\n== 11. A process pool survives its workers");
    pool::survival()?;
    pool::cancel_running()?;

    println!("\n== 12. Threads share memory: the ticket counter under one lock");
    threads::ticket_counter();
    println!("\n== 13. Producer and consumer over a bounded queue");
    threads::producer_consumer();
    println!("\n== 14. A thread pool: submit does not block, results as completed");
    threads::thread_pool();
    println!("\n== 15. The notes' remarks, measured");
    threads::remarks();
    Ok(())
}
