//! The soak run: a process pool, a shared-memory queue and a process-shared
//! lock under random SIGKILLs — of pool workers, of the queue's producers
//! (inside `put` or not) and of lock holders (inside the lock or not) — for
//! N minutes:
//!
//! ```sh
//! cargo run --release --example soak -- --minutes 15
//! ```
//!
//! Every minute it prints the tasks done, the kills, the failures (each
//! must be explained by a kill), the messages through the queue and those
//! lost (at most one per killed producer), the lock's rounds and poison
//! recoveries, and this process's RSS, open descriptors, children and
//! `/dev/shm` entries. At the end it fails (exit code 1) if anything was
//! lost beyond what the kills explain, or if descriptors, children or
//! `/dev/shm` entries grew, or RSS doubled.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use multiproc::executor::ProcessPool;
use multiproc::futures::TaskError;
use multiproc::ipc::Queue;
use multiproc::process::Process;
use multiproc::shared::Atomic;
use multiproc::sync::Mutex;

/// A small xorshift: the kills' randomness, seeded by the clock.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn kill(pid: u32) {
    // SAFETY: kill(2) of a process of ours.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
}

/// Counts of what happened, shared by the load threads.
#[derive(Default)]
struct Stats {
    tasks: AtomicU64,
    task_failures: AtomicU64,
    worker_kills: AtomicU64,
    messages: AtomicU64,
    messages_lost: AtomicU64,
    producer_kills: AtomicU64,
    lock_rounds: AtomicU64,
    lock_recoveries: AtomicU64,
    holder_kills: AtomicU64,
    anomalies: StdMutex<Vec<String>>,
}

impl Stats {
    fn anomaly(&self, what: String) {
        eprintln!("ANOMALY: {what}");
        self.anomalies.lock().unwrap().push(what);
    }
}

/// The pool under load; a worker killed now and then.
fn pool_load(stats: &Stats, stop: &AtomicBool, rng: &mut Rng) {
    let pool = ProcessPool::new(2);
    while !stop.load(Ordering::Relaxed) {
        let futures: Vec<_> = (0..200u64)
            .map(|x| pool.submit(|x: u64| (x * x, std::process::id()), x))
            .collect();
        // One kill in about every other batch, of a worker that ran a task.
        let victim = rng.below(2) == 0;
        let mut killed = false;
        let mut failures = 0;
        for (x, f) in futures.iter().enumerate() {
            match f.result_timeout(Duration::from_secs(60)) {
                Ok((v, pid)) => {
                    if v != (x as u64) * (x as u64) {
                        stats.anomaly(format!("task {x} returned {v}"));
                    }
                    if victim && !killed && x == 50 {
                        kill(pid);
                        killed = true;
                        stats.worker_kills.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(TaskError::WorkerDied { .. }) => failures += 1,
                Err(e) => stats.anomaly(format!("task {x}: {e}")),
            }
        }
        // A kill fails at most the one task its worker was running.
        if failures > killed as u64 {
            stats.anomaly(format!(
                "{failures} tasks failed with {} kill",
                killed as u8
            ));
        }
        stats.task_failures.fetch_add(failures, Ordering::Relaxed);
        stats.tasks.fetch_add(200 - failures, Ordering::Relaxed);
    }
}

/// A producer process: puts the next numbers of the shared counter.
fn produce((q, next): (Queue<u64>, Atomic<AtomicU64>)) {
    loop {
        let n = next.fetch_add(1, Ordering::SeqCst);
        if q.put(&n).is_err() {
            return;
        }
    }
}

/// A queue fed by a producer process that is killed and replaced; this
/// thread consumes and checks: no duplicate, no corruption, gaps at most
/// one per kill.
fn queue_load(stats: &Stats, stop: &AtomicBool, rng: &mut Rng) {
    let q: Queue<u64> = Queue::new(1024).unwrap();
    let next = Atomic::<AtomicU64>::new(0).unwrap();
    let mut producer = Process::start(produce, (q.clone(), next.clone())).unwrap();
    let mut seen = HashSet::new();
    let mut kill_at = Instant::now() + Duration::from_millis(500 + rng.below(1500));
    let mut kills = 0u64;
    while !stop.load(Ordering::Relaxed) {
        match q.get_timeout(Duration::from_millis(100)) {
            Ok(n) => {
                if !seen.insert(n) {
                    stats.anomaly(format!("message {n} twice"));
                }
                stats.messages.fetch_add(1, Ordering::Relaxed);
            }
            Err(multiproc::ipc::GetError::Empty) => {}
            Err(e) => stats.anomaly(format!("queue get: {e}")),
        }
        if Instant::now() >= kill_at {
            kill(producer.pid());
            let _ = producer.join_timeout(Duration::from_secs(10));
            kills += 1;
            stats.producer_kills.fetch_add(1, Ordering::Relaxed);
            producer = Process::start(produce, (q.clone(), next.clone())).unwrap();
            kill_at = Instant::now() + Duration::from_millis(500 + rng.below(1500));
        }
        // Keep the set small: what is far behind can no longer repeat.
        if seen.len() > 200_000 {
            let top = *seen.iter().max().unwrap();
            seen.retain(|n| *n + 100_000 > top);
        }
    }
    let _ = producer.kill();
    let _ = producer.join_timeout(Duration::from_secs(10));
    // Drain, then count the gaps.
    while let Ok(n) = q.try_get() {
        seen.insert(n);
        stats.messages.fetch_add(1, Ordering::Relaxed);
    }
    let issued = next.load(Ordering::SeqCst);
    let received = stats.messages.load(Ordering::Relaxed);
    let lost = issued.saturating_sub(received);
    stats.messages_lost.store(lost, Ordering::Relaxed);
    // A producer killed between taking a number and putting it loses it;
    // one killed after taking the next also ends its run: at most 1 each.
    if lost > kills + 1 {
        stats.anomaly(format!("{lost} messages lost with {kills} producer kills"));
    }
}

/// A lock holder process: takes the lock, bumps the counter, lets go.
fn hold(m: Mutex<u64>) {
    loop {
        let mut g = match m.lock() {
            Ok(g) => g,
            Err(p) => {
                m.clear_poison();
                p.into_inner()
            }
        };
        *g += 1;
        drop(g);
    }
}

/// Two holder processes; one killed now and then, inside the lock or not;
/// this thread checks that the lock keeps moving.
fn lock_load(stats: &Stats, stop: &AtomicBool, rng: &mut Rng) {
    let m = Mutex::new(0u64).unwrap();
    let mut holders: Vec<_> = (0..2)
        .map(|_| Process::start(hold, m.clone()).unwrap())
        .collect();
    let mut last = 0u64;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(300 + rng.below(1200)));
        let i = rng.below(2) as usize;
        kill(holders[i].pid());
        let _ = holders[i].join_timeout(Duration::from_secs(10));
        stats.holder_kills.fetch_add(1, Ordering::Relaxed);
        holders[i] = Process::start(hold, m.clone()).unwrap();
        let now = match m.lock_timeout(Duration::from_secs(10)) {
            Ok(g) => *g,
            Err(multiproc::sync::TryLockError::Poisoned(p)) => {
                stats.lock_recoveries.fetch_add(1, Ordering::Relaxed);
                m.clear_poison();
                *p.into_inner()
            }
            Err(e) => {
                stats.anomaly(format!("the lock is stuck: {e}"));
                continue;
            }
        };
        if now <= last {
            stats.anomaly(format!("the counter did not move: {now}"));
        }
        stats
            .lock_rounds
            .fetch_add(now - last.min(now), Ordering::Relaxed);
        last = now;
    }
    for mut h in holders {
        let _ = h.kill();
        let _ = h.join_timeout(Duration::from_secs(10));
    }
}

/// What this process holds now: RSS (KiB), open descriptors, children,
/// `/dev/shm` entries.
fn resources() -> (u64, usize, usize, usize) {
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4);
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
    let me = std::process::id().to_string();
    let children = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
                .filter(|s| {
                    s.rsplit_once(')')
                        .and_then(|(_, r)| r.split_whitespace().nth(1).map(|p| p == me))
                        .unwrap_or(false)
                })
                .count()
        })
        .unwrap_or(0);
    let shm = std::fs::read_dir("/dev/shm").map_or(0, |d| d.count());
    (rss, fds, children, shm)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let minutes: u64 = args
        .iter()
        .position(|a| a == "--minutes")
        .and_then(|i| args.get(i + 1))
        .and_then(|m| m.parse().ok())
        .unwrap_or(1);
    let seed = Instant::now().elapsed().as_nanos() as u64
        ^ std::process::id() as u64
        ^ 0x9e37_79b9_7f4a_7c15;
    let stats = Arc::new(Stats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let loads: Vec<_> = [
        pool_load as fn(&Stats, &AtomicBool, &mut Rng),
        queue_load,
        lock_load,
    ]
    .into_iter()
    .enumerate()
    .map(|(i, load)| {
        let (stats, stop) = (stats.clone(), stop.clone());
        std::thread::spawn(move || {
            load(
                &stats,
                &stop,
                &mut Rng(seed.wrapping_add(i as u64 * 7919) | 1),
            )
        })
    })
    .collect();
    println!(
        "{:>6} {:>10} {:>8} {:>8} {:>11} {:>6} {:>7} {:>10} {:>6} {:>7} {:>9} {:>4} {:>9} {:>4}",
        "minute",
        "tasks",
        "w.kills",
        "t.fails",
        "messages",
        "p.kill",
        "lost",
        "lock rnds",
        "h.kill",
        "recover",
        "rss KiB",
        "fds",
        "children",
        "shm"
    );
    let mut first: Option<(u64, usize, usize, usize)> = None;
    let mut last = (0, 0, 0, 0);
    for minute in 1..=minutes {
        std::thread::sleep(Duration::from_secs(60));
        let r = resources();
        first.get_or_insert(r);
        last = r;
        let s = &stats;
        println!(
            "{:>6} {:>10} {:>8} {:>8} {:>11} {:>6} {:>7} {:>10} {:>6} {:>7} {:>9} {:>4} {:>9} {:>4}",
            minute,
            s.tasks.load(Ordering::Relaxed),
            s.worker_kills.load(Ordering::Relaxed),
            s.task_failures.load(Ordering::Relaxed),
            s.messages.load(Ordering::Relaxed),
            s.producer_kills.load(Ordering::Relaxed),
            "-",
            s.lock_rounds.load(Ordering::Relaxed),
            s.holder_kills.load(Ordering::Relaxed),
            s.lock_recoveries.load(Ordering::Relaxed),
            r.0,
            r.1,
            r.2,
            r.3
        );
    }
    stop.store(true, Ordering::Relaxed);
    for l in loads {
        let _ = l.join();
    }
    let lost = stats.messages_lost.load(Ordering::Relaxed);
    let kills = stats.producer_kills.load(Ordering::Relaxed);
    println!("queue: {lost} messages lost with {kills} producer kills (at most one each)");
    let mut failed = stats.anomalies.lock().unwrap().clone();
    let first = first.unwrap_or(last);
    if last.1 > first.1 {
        failed.push(format!("descriptors grew: {} -> {}", first.1, last.1));
    }
    if last.2 > first.2 {
        failed.push(format!("children grew: {} -> {}", first.2, last.2));
    }
    if last.3 > first.3 {
        failed.push(format!("/dev/shm entries grew: {} -> {}", first.3, last.3));
    }
    if last.0 > 2 * first.0 {
        failed.push(format!("RSS doubled: {} -> {} KiB", first.0, last.0));
    }
    if failed.is_empty() {
        println!("soak: OK");
    } else {
        for f in &failed {
            println!("soak: FAILED: {f}");
        }
        std::process::exit(1);
    }
}
