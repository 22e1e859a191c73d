//! The tour's shared-memory stories: the notes' write/read queue between two
//! processes, line for line, and a counter decremented by several processes
//! under the shared value's lock.

use std::time::{Duration, Instant};

use multiproc::ipc::Queue;
use multiproc::process::Process;
use multiproc::shared::Value;

/// Writes five messages (the notes' `write_task`).
fn write_task(q: Queue<String>) {
    if !q.is_full() {
        for i in 0..5 {
            let message = format!("message {i}");
            q.put(&message).expect("put");
            println!("   written: {message}");
        }
    }
}

/// Sleeps a second, then reads while the queue is not empty, each `get`
/// waiting at most two seconds (the notes' `read_task`).
fn read_task(q: Queue<String>) {
    std::thread::sleep(Duration::from_secs(1));
    while !q.is_empty() {
        match q.get_timeout(Duration::from_secs(2)) {
            Ok(m) => println!("   read: {m}"),
            Err(e) => println!("   read failed: {e}"),
        }
    }
}

pub fn write_read_queue() -> Result<(), Box<dyn std::error::Error>> {
    println!("   ---parent starts---");
    let q = Queue::new(0)?; // the parent makes the queue and hands it to both children
    let mut pw = Process::start(write_task, q.clone())?;
    let mut pr = Process::start(read_task, q.clone())?;
    println!("   ---waiting for children---");
    pw.join()?;
    pr.join()?;
    println!("   ---parent ends---");
    Ok(())
}

pub fn counter_under_the_values_lock() -> Result<(), Box<dyn std::error::Error>> {
    const SELLERS: usize = 4;
    const EACH: i64 = 50_000;
    let tickets = Value::new(SELLERS as i64 * EACH)?;
    let t = Instant::now();
    let mut sellers: Vec<_> = (0..SELLERS)
        .map(|_| {
            Process::start(
                |(tickets, n): (Value<i64>, i64)| {
                    for _ in 0..n {
                        // Read and write under one lock, across processes.
                        *tickets.get_lock().lock().unwrap() -= 1;
                    }
                },
                (tickets.clone(), EACH),
            )
        })
        .collect::<Result<_, _>>()?;
    for s in &mut sellers {
        s.join()?;
    }
    println!(
        "   {SELLERS} processes sold {} tickets in {:.1} ms; {} left (exact)",
        SELLERS as i64 * EACH,
        t.elapsed().as_secs_f64() * 1e3,
        tickets.get()
    );
    Ok(())
}
