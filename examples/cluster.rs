//! One pool, workers in other processes as if on other machines, through
//! Redis: `cargo run --release --features redis --example cluster`.
//!
//! Starts its own `redis-server` (on a Unix socket in a temporary
//! directory), two worker agents — this same program, made workers by their
//! environment — runs a `map` across them, kills one agent in the middle,
//! and shows that the pool finished without it.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use multiproc::executor::{MapOptions, ProcessPool};

#[path = "common/redis_server.rs"]
mod redis_server;

const KEY: &str = "cluster demo key";

fn agent(url: &str) -> std::io::Result<Child> {
    // On another machine: the same executable, started with these variables.
    Command::new(std::env::current_exe()?)
        .env("MULTIPROC_WORKER", url)
        .env("MULTIPROC_POOL", "demo")
        .env("MULTIPROC_AUTHKEY", KEY)
        .env("MULTIPROC_SLOTS", "1")
        .env("MULTIPROC_LEASE_MS", "500")
        .spawn()
}

/// The work: a slow-ish function of one number.
fn collatz_steps(mut n: u64) -> u64 {
    let mut steps = 0;
    while n > 1 {
        n = if n.is_multiple_of(2) {
            n / 2
        } else {
            3 * n + 1
        };
        steps += 1;
    }
    std::thread::sleep(Duration::from_micros(200));
    steps
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let redis = redis_server::RedisServer::start("cluster")?;
    let url = redis.url();
    println!("redis-server on {url}");

    let pool = ProcessPool::builder()
        .redis(url.as_str(), "demo")
        .auth_key(KEY)
        .build()?;
    let mut agents = vec![agent(&url)?, agent(&url)?];
    while pool.remote_status().map_or(0, |s| s.workers) < 2 {
        std::thread::sleep(Duration::from_millis(10));
    }
    println!(
        "2 worker agents registered: pids {} and {}",
        agents[0].id(),
        agents[1].id()
    );

    let n = 4_000u64;
    let t = Instant::now();
    let mut results = pool.map_with(collatz_steps, 1..=n, MapOptions::default().chunksize(50));
    let mut total = 0u64;
    let mut lost = 0;
    for i in 0..n {
        if i == n / 3 {
            agents[0].kill()?;
            agents[0].wait()?;
            println!("killed agent {} after {i} results", agents[0].id());
        }
        match results.next().expect("one result per item") {
            Ok(steps) => total += steps,
            Err(e) => {
                lost += 1;
                if lost == 1 {
                    println!("a chunk that was running on it: {e}");
                }
            }
        }
    }
    println!(
        "map of {n} items: {} ok, {lost} lost with the killed agent, total steps {total}, in {:.2?}",
        n - lost,
        t.elapsed()
    );
    drop(results);
    let status = pool.remote_status().expect("a remote pool");
    println!(
        "the pool finished on {} agent: {} slot(s), {} messages dropped",
        status.workers, status.slots, status.dropped
    );
    drop(pool);
    for mut a in agents {
        let _ = a.kill();
        let _ = a.wait();
    }
    drop(redis);
    Ok(())
}
