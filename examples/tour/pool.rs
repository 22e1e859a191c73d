//! The tour's process pool: `submit` returns at once, a closure runs in a
//! worker, and a batch survives one task that aborts, one that hangs and
//! one that panics.

use std::time::{Duration, Instant};

use multiproc::executor::{ProcessPool, TaskOptions};

pub fn survival() -> Result<(), Box<dyn std::error::Error>> {
    let pool = ProcessPool::new(2);
    let t = Instant::now();
    let futures: Vec<_> = (0..12u64)
        .map(|i| {
            pool.submit_with(
                |i: u64| -> u64 {
                    match i {
                        3 => std::process::abort(),
                        7 => loop {
                            std::thread::sleep(Duration::from_secs(1));
                        },
                        9 => panic!("task {i} gave up"),
                        _ => i * i, // a closure: Python's pools refuse lambdas
                    }
                },
                i,
                TaskOptions::timeout(Duration::from_millis(300)),
            )
        })
        .collect();
    println!(
        "   12 tasks submitted in {:.2} ms (submit does not wait)",
        t.elapsed().as_secs_f64() * 1e3
    );
    println!("   task | outcome");
    for (i, f) in futures.iter().enumerate() {
        let outcome = match f.result() {
            Ok(v) => format!("{v}"),
            Err(e) => e.to_string(),
        };
        println!("   {i:>4} | {outcome}");
    }
    println!("   every other task completed; Python's pool would have broken on task 3");
    Ok(())
}

/// Python's `cancel()` gives up on a task that has started; here the task's
/// worker is killed and replaced.
pub fn cancel_running() -> Result<(), Box<dyn std::error::Error>> {
    let pool = ProcessPool::new(1);
    let before = pool.submit(|()| std::process::id(), ()).result()?;
    let stuck = pool.submit(
        |()| -> u64 {
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        },
        (),
    );
    std::thread::sleep(Duration::from_millis(100)); // it is running now
    let t = Instant::now();
    let cancelled = stuck.cancel();
    let after = pool.submit(|()| std::process::id(), ()).result()?;
    let took = t.elapsed().as_secs_f64() * 1e3;
    if before != after {
        println!(
            "   cancel() of a running task: {cancelled}; its worker {before} was killed, worker {after} took over in {took:.1} ms"
        );
    } else {
        println!("   cancel() of a task that had not started yet: {cancelled}");
    }
    Ok(())
}
