//! The thread half of the notes: the ticket counter, producer/consumer, a
//! thread pool, and the notes' two remarks, with figures.

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use multiproc::executor::ThreadPool;
use multiproc::futures::{TaskError, as_completed};
use multiproc::queue::Queue;

/// A short pseudo-random pause (a few to a few tens of milliseconds).
fn short_random_sleep(seed: &mut u64) {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    thread::sleep(Duration::from_millis(5 + *seed % 40));
}

fn seed() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (now.subsec_nanos() as u64) << 1 | 1
}

/// "n = 100 tickets": 10 threads each take the lock, read, pause, write n - 1.
pub fn ticket_counter() {
    let tickets = Arc::new(Mutex::new(100));
    let buyers: Vec<_> = (0..10)
        .map(|_| {
            let tickets = tickets.clone();
            thread::spawn(move || {
                let mut n = tickets.lock().unwrap(); // the lock: n cannot be reached without it
                let temp = *n;
                thread::sleep(Duration::from_millis(20));
                *n = temp - 1;
                println!("   bought a ticket, {} left", *n);
            })
        })
        .collect();
    buyers.into_iter().for_each(|b| b.join().unwrap());
    println!(
        "   final count: {} (exact: the read and the write were under one lock)",
        tickets.lock().unwrap()
    );
}

/// A producer and a consumer thread over a bounded queue, five items each.
pub fn producer_consumer() {
    println!("   ---main thread starts---");
    let queue = Queue::new(2);
    let producer = {
        let queue = queue.clone();
        thread::Builder::new()
            .name("Producer".into())
            .spawn(move || {
                let me = thread::current().name().unwrap().to_string();
                let mut s = seed();
                for i in 0..5 {
                    println!("   producer {me} puts item {i} in the queue");
                    queue.put(i).unwrap();
                    short_random_sleep(&mut s);
                }
                println!("   producer {me} is done");
            })
    };
    let consumer = {
        let queue = queue.clone();
        thread::Builder::new()
            .name("Consumer".into())
            .spawn(move || {
                let me = thread::current().name().unwrap().to_string();
                let mut s = seed().rotate_left(17);
                for _ in 0..5 {
                    let val = queue.get().unwrap();
                    println!("   consumer {me} takes item {val} from the queue");
                    short_random_sleep(&mut s);
                }
                println!("   consumer {me} is done");
            })
    };
    producer.unwrap().join().unwrap();
    consumer.unwrap().join().unwrap();
    println!("   ---main thread ends---");
}

/// `submit` does not block; results come back as they complete; a panic
/// fails its own task only.
pub fn thread_pool() {
    let pool = ThreadPool::new(4);
    let t = Instant::now();
    let futures: Vec<_> = [300u64, 100, 200, 0]
        .into_iter()
        .map(|ms| {
            pool.submit(move || {
                thread::sleep(Duration::from_millis(ms));
                assert!(ms > 0, "a task that fails on purpose");
                ms
            })
        })
        .collect();
    println!(
        "   4 tasks submitted in {:?}: submit does not wait",
        t.elapsed()
    );
    for f in as_completed(futures) {
        match f.result() {
            Ok(ms) => println!("   done after {ms} ms"),
            Err(TaskError::Panicked { message, .. }) => println!("   failed alone: {message:?}"),
            Err(e) => println!("   {e}"),
        }
    }
    println!(
        "   the pool still works: 6 * 7 = {}",
        pool.submit(|| 6 * 7).result().unwrap()
    );
}

/// The notes' remarks: a pool saves the cost of making threads; a thread
/// function's locals are its own, shared state needs an Arc and a lock.
pub fn remarks() {
    const TASKS: u64 = 2_000;
    let t = Instant::now();
    let sum: u64 = (0..TASKS)
        .map(|x| thread::spawn(move || x * x).join().unwrap())
        .sum();
    let per_thread = t.elapsed();
    let pool = ThreadPool::new(4);
    let t = Instant::now();
    let futures: Vec<_> = (0..TASKS).map(|x| pool.submit(move || x * x)).collect();
    let pooled: u64 = futures.iter().map(|f| f.result().unwrap()).sum();
    let with_pool = t.elapsed();
    assert_eq!(sum, pooled);
    println!(
        "   {TASKS} small tasks: a new thread each {:.1} ms, a pool of 4 reused threads {:.1} ms ({:.0}× less)",
        per_thread.as_secs_f64() * 1e3,
        with_pool.as_secs_f64() * 1e3,
        per_thread.as_secs_f64() / with_pool.as_secs_f64()
    );

    let shared = Arc::new(Mutex::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let shared = shared.clone();
            thread::spawn(move || {
                let mut local = 0; // one per call, like any local
                for _ in 0..1000 {
                    local += 1;
                    *shared.lock().unwrap() += 1;
                }
                local
            })
        })
        .collect();
    let locals: Vec<i32> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    println!(
        "   4 threads, 1000 increments each: their locals {locals:?}, the shared Arc<Mutex> {}",
        shared.lock().unwrap()
    );
}
