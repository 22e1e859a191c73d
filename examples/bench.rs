//! The benchmark command of ../shared/BENCHMARKS.md:
//!
//! ```text
//! cargo run --release --example bench -- [--quick] [--only NAME,NAME]
//! (with `--features redis`, the `dist_*` workloads too: needs `redis-server`)
//! ```
//!
//! One JSON object per line on stdout, nothing else there. Workloads the
//! project cannot run yet are left out. Beside multiproc's figures
//! (`"impl": "multiproc"`) it prints the raw baseline of the same work measured
//! in the same run (`"impl": "raw"`).
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use multiproc::executor::{MapOptions, ProcessPool, ThreadPool};
use multiproc::futures::Future;
use multiproc::ipc::{Connection, Messages, Pipe, Queue as IpcQueue};
use multiproc::process::{Process, StartMethod};
use multiproc::queue::Queue;
use multiproc::shared::{Atomic, RawArray, Value};
use serde_bytes::ByteBuf;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};

const RAW_CHILD: &str = "MULTIPROC_BENCH_RAW_CHILD";

/// The median of some measurements.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn emit(name: &str, value: f64, unit: &str, imp: &str, extra: &[(&str, String)]) {
    // Three decimals, or four significant digits below 0.1 (µs per item).
    let digits = if value != 0.0 && value.abs() < 0.1 {
        (2 - value.abs().log10().floor() as i32) as usize
    } else {
        3
    };
    let mut s = format!(
        r#"{{"name": "{name}", "value": {value:.digits$}, "unit": "{unit}", "impl": "{imp}""#
    );
    for (k, v) in extra {
        s += &format!(r#", "{k}": {v}"#);
    }
    println!("{s}}}");
}

/// Runs `f` `n` times; returns (mean, p50, p99) of one call, in ms.
fn per_call(n: usize, mut f: impl FnMut()) -> (f64, f64, f64) {
    let mut times: Vec<Duration> = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f();
        times.push(t.elapsed());
    }
    let mean = times.iter().sum::<Duration>().as_secs_f64() * 1e3 / n as f64;
    times.sort();
    let at = |q: f64| times[((n as f64 * q) as usize).min(n - 1)].as_secs_f64() * 1e3;
    (mean, at(0.5), at(0.99))
}

fn quoted(s: &str) -> String {
    format!("\"{s}\"")
}

fn spawn_join(n: usize) {
    multiproc::process::ensure_fork_server().expect("fork server");
    for (method, label) in [
        (StartMethod::Spawn, "spawn"),
        (StartMethod::Fork, "fork"),
        (StartMethod::ForkServer, "forkserver"),
    ] {
        let builder = Process::builder().start_method(method);
        let (mean, p50, p99) = per_call(n, || {
            builder.clone().start(|()| {}, ()).unwrap().join().unwrap();
        });
        let extra = [
            ("method", quoted(label)),
            ("p50_ms", format!("{p50:.3}")),
            ("p99_ms", format!("{p99:.3}")),
        ];
        emit("spawn_join", mean, "ms", "multiproc", &extra);
        let raw = match method {
            StartMethod::Spawn => Some(per_call(n, || {
                let st = std::process::Command::new("/proc/self/exe")
                    .env(RAW_CHILD, "exit")
                    .status()
                    .unwrap();
                assert!(st.success());
            })),
            StartMethod::Fork => Some(per_call(n, || wait_raw(fork_raw(|| {})))),
            StartMethod::ForkServer => None,
        };
        if let Some((mean, p50, p99)) = raw {
            let extra = [
                ("method", quoted(label)),
                ("p50_ms", format!("{p50:.3}")),
                ("p99_ms", format!("{p99:.3}")),
            ];
            emit("spawn_join", mean, "ms", "raw", &extra);
        }
    }
}

/// fork(2) for the raw baseline; the child runs `f` and `_exit`s.
fn fork_raw(f: impl FnOnce()) -> libc::pid_t {
    // SAFETY: the bench is single-threaded when it forks; the child runs `f`
    // and leaves through `_exit` without returning into the parent's frames.
    match unsafe { libc::fork() } {
        -1 => panic!("fork: {}", std::io::Error::last_os_error()),
        0 => {
            f();
            // SAFETY: `_exit` is always safe to call.
            unsafe { libc::_exit(0) }
        }
        pid => pid,
    }
}

fn wait_raw(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: `pid` is our child, `status` a valid out-pointer.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid);
    assert_eq!(status, 0);
}

/// 100 warm-up round trips, then `n` timed ones; us per round trip.
fn ping(n: usize, mut round_trip: impl FnMut(&[u8])) -> f64 {
    let msg = [b'x'; 64];
    (0..100).for_each(|_| round_trip(&msg));
    let t = Instant::now();
    (0..n).for_each(|_| round_trip(&msg));
    t.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn pipe_rtt(n: usize) {
    let (here, there) = Pipe::duplex().unwrap();
    let mut echo = Process::start(
        |conn: Connection| {
            while let Ok(m) = conn.recv_bytes() {
                conn.send_bytes(&m).unwrap();
            }
        },
        there,
    )
    .unwrap();
    let us = ping(n, |m| {
        here.send_bytes(m).unwrap();
        assert_eq!(here.recv_bytes().unwrap().len(), 64);
    });
    drop(here);
    echo.join().unwrap();
    emit("pipe_rtt", us, "us", "multiproc", &[("size", "64".into())]);

    // Raw: a bare socketpair, 64-byte writes and reads, a forked echo child.
    let (a, b) = UnixStream::pair().unwrap();
    let mut a = Some(a);
    let pid = fork_raw(|| {
        drop(a.take()); // the child's copy of the parent's end
        let mut b = b;
        let mut buf = [0u8; 64];
        while b.read_exact(&mut buf).is_ok() {
            b.write_all(&buf).unwrap();
        }
    });
    let mut a = a.expect("kept by the parent");
    let mut buf = [0u8; 64];
    let us = ping(n, |m| {
        a.write_all(m).unwrap();
        a.read_exact(&mut buf).unwrap();
    });
    drop(a);
    wait_raw(pid);
    emit("pipe_rtt", us, "us", "raw", &[("size", "64".into())]);
}

/// Submits `x * x` for x in 0..n through `submit`, after 100 warm-up tasks
/// (the workers are started), then waits for every future and sums; returns
/// microseconds per task.
fn pool_task_us(n: usize, submit: impl Fn(u64) -> Future<u64>) -> f64 {
    let run = |m: u64| -> u64 {
        let futures: Vec<_> = (0..m).map(&submit).collect();
        futures.iter().map(|f| f.result().unwrap()).sum()
    };
    run(100);
    let t = Instant::now();
    let sum = run(n as u64);
    let us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    assert_eq!(sum, (0..n as u64).map(|x| x * x).sum());
    us
}

/// A thread pool of 2 workers: a trivial task per future.
fn thread_pool_task(n: usize) {
    let pool = ThreadPool::new(2);
    let us = pool_task_us(n, |x| pool.submit(move || x * x));
    let extra = [("workers", "2".to_string())];
    emit("thread_pool_task", us, "us/task", "multiproc", &extra);
}

/// One producer thread puts 0..n into a queue bounded at 1024; the main
/// thread gets them all.
fn thread_queue(n: usize) {
    let q = Queue::new(1024);
    let t = Instant::now();
    let producer = {
        let q = q.clone();
        std::thread::spawn(move || (0..n as u64).for_each(|i| q.put(i).unwrap()))
    };
    let sum: u64 = (0..n).map(|_| q.get().unwrap()).sum();
    let rate = n as f64 / t.elapsed().as_secs_f64();
    producer.join().unwrap();
    assert_eq!(sum, (0..n as u64).sum());
    emit("thread_queue", rate, "msg/s", "multiproc", &[]);
}

/// Four threads each decrement a shared counter `per` times under one lock:
/// the ticket counter. Threads use `std::sync::Mutex`, as the `threading`
/// module's docs recommend.
fn lock_counter_threads(per: usize) {
    const THREADS: usize = 4;
    let tickets = std::sync::Arc::new(std::sync::Mutex::new((THREADS * per) as i64));
    let t = Instant::now();
    let buyers: Vec<_> = (0..THREADS)
        .map(|_| {
            let tickets = tickets.clone();
            std::thread::spawn(move || (0..per).for_each(|_| *tickets.lock().unwrap() -= 1))
        })
        .collect();
    buyers.into_iter().for_each(|b| b.join().unwrap());
    let rate = (THREADS * per) as f64 / t.elapsed().as_secs_f64();
    assert_eq!(*tickets.lock().unwrap(), 0);
    let extra = [
        ("threads", THREADS.to_string()),
        ("lock", quoted("std::sync::Mutex")),
    ];
    emit("lock_counter_threads", rate, "ops/s", "multiproc", &extra);
}

/// One producer process puts `n` messages of `size` bytes into a queue
/// bounded at 1024; this process gets them all. Returns messages per second.
/// `typed`: `Queue<ByteBuf>` through serde instead of `put_bytes`.
/// How a queue benchmark's consumer takes its messages.
#[derive(Clone, Copy, serde::Serialize, serde::Deserialize)]
enum Api {
    /// `put_bytes` / `get_bytes` (a new vector per message).
    Bytes,
    /// `put_bytes` / `get_bytes_into` one reused buffer.
    BytesInto,
    /// `put` / `get` of a `ByteBuf` through serde.
    Serde,
    /// `put_many_bytes` / `get_many_bytes_into` of up to [`BATCH`] messages.
    Batch,
}

/// Messages per batch call in `queue_small_batch`.
const BATCH: usize = 64;

fn queue_run(n: usize, size: usize, api: Api) -> f64 {
    let q: IpcQueue<ByteBuf> = IpcQueue::new(1024).unwrap();
    let t = Instant::now();
    let mut producer = Process::builder()
        .start_method(StartMethod::Fork)
        .start(
            |(q, n, size, api): (IpcQueue<ByteBuf>, usize, usize, Api)| {
                let payload = ByteBuf::from(vec![b'x'; size]);
                if let Api::Batch = api {
                    let batch = vec![&payload[..]; BATCH];
                    for first in (0..n).step_by(BATCH) {
                        let msgs = &batch[..BATCH.min(n - first)];
                        assert_eq!(q.put_many_bytes(msgs).unwrap(), msgs.len());
                    }
                    return;
                }
                for _ in 0..n {
                    match api {
                        Api::Serde => q.put(&payload).unwrap(),
                        Api::Bytes | Api::BytesInto => q.put_bytes(&payload).unwrap(),
                        Api::Batch => unreachable!("put above"),
                    }
                }
            },
            (q.clone(), n, size, api),
        )
        .unwrap();
    let mut bytes = 0;
    let mut buf = Vec::new();
    let mut batch = Messages::new();
    let mut taken = 0;
    while taken < n {
        taken += 1;
        bytes += match api {
            Api::Serde => q.get().unwrap().len(),
            Api::Bytes => q.get_bytes().unwrap().len(),
            Api::BytesInto => {
                q.get_bytes_into(&mut buf).unwrap();
                buf.len()
            }
            Api::Batch => {
                taken += q.get_many_bytes_into(&mut batch, BATCH).unwrap() - 1;
                batch.iter().map(<[u8]>::len).sum()
            }
        };
    }
    let rate = n as f64 / t.elapsed().as_secs_f64();
    producer.join().unwrap();
    assert_eq!(bytes, n * size);
    rate
}

fn socket_stream(n: usize, size: usize) -> f64 {
    let (a, b) = UnixStream::pair().unwrap();
    let mut a = Some(a);
    let t = Instant::now();
    let pid = fork_raw(|| {
        drop(a.take());
        let mut b = b;
        let msg = vec![b'x'; size];
        for _ in 0..n {
            b.write_all(&msg).unwrap();
        }
    });
    let mut a = a.expect("kept by the parent");
    let mut buf = vec![0u8; size];
    for _ in 0..n {
        a.read_exact(&mut buf).unwrap();
    }
    let rate = n as f64 / t.elapsed().as_secs_f64();
    wait_raw(pid);
    rate
}

fn queue_small(n: usize) {
    let extra = |api: &str| [("size", "64".to_string()), ("api", quoted(api))];
    for (api, name) in [
        (Api::Bytes, "bytes"),
        (Api::BytesInto, "bytes_into"),
        (Api::Serde, "serde"),
    ] {
        let rate = queue_run(n, 64, api);
        emit("queue_small", rate, "msg/s", "multiproc", &extra(name));
    }
    let rate = queue_run(n, 64, Api::Batch);
    let extra = [("size", "64".to_string()), ("batch", BATCH.to_string())];
    emit("queue_small_batch", rate, "msg/s", "multiproc", &extra);
    emit(
        "queue_small",
        socket_stream(n, 64),
        "msg/s",
        "raw",
        &[("size", "64".into())],
    );
}

fn queue_large(n: usize) {
    const MIB: usize = 1 << 20;
    let gbs = |rate: f64| rate * MIB as f64 / 1e9;
    let extra = |api: &str| [("size", MIB.to_string()), ("api", quoted(api))];
    emit(
        "queue_large",
        gbs(queue_run(n, MIB, Api::Bytes)),
        "GB/s",
        "multiproc",
        &extra("bytes"),
    );
    emit(
        "queue_large",
        gbs(queue_run(n, MIB, Api::Serde)),
        "GB/s",
        "multiproc",
        &extra("serde"),
    );
    emit(
        "queue_large",
        gbs(socket_stream(n, MIB)),
        "GB/s",
        "raw",
        &[("size", MIB.to_string())],
    );
}

/// Two processes each decrement a shared integer `per` times under its
/// process-shared lock.
fn shared_value_processes(per: usize) {
    const PROCS: usize = 2;
    let v = Value::new((PROCS * per) as i64).unwrap();
    let ready = Atomic::<AtomicU32>::new(0).unwrap();
    let mut ps: Vec<_> = (0..PROCS)
        .map(|_| {
            Process::builder()
                .start_method(StartMethod::Fork)
                .start(
                    |(v, per, ready): (Value<i64>, usize, Atomic<AtomicU32>)| {
                        start_together(&ready, PROCS);
                        for _ in 0..per {
                            *v.get_lock().lock().unwrap() -= 1;
                        }
                    },
                    (v.clone(), per, ready.clone()),
                )
                .unwrap()
        })
        .collect();
    let t = all_ready(&ready, PROCS);
    ps.iter_mut().for_each(|p| p.join().unwrap());
    let rate = (PROCS * per) as f64 / t.elapsed().as_secs_f64();
    assert_eq!(v.get(), 0);
    emit(
        "shared_value_processes",
        rate,
        "ops/s",
        "multiproc",
        &[("processes", PROCS.to_string())],
    );

    // Raw: the same decrements under a bare futex lock (Drepper's three-state
    // mutex: no owner, no robustness, no poisoning) in shared memory.
    let word = Atomic::<AtomicU32>::new(0).unwrap();
    let counter = Atomic::<AtomicI64>::new((PROCS * per) as i64).unwrap();
    let ready = Atomic::<AtomicU32>::new(0).unwrap();
    let pids: Vec<_> = (0..PROCS)
        .map(|_| {
            fork_raw(|| {
                start_together(&ready, PROCS);
                for _ in 0..per {
                    futex_lock(&word);
                    let v = counter.load(Ordering::Relaxed);
                    counter.store(v - 1, Ordering::Relaxed);
                    futex_unlock(&word);
                }
            })
        })
        .collect();
    let t = all_ready(&ready, PROCS);
    pids.into_iter().for_each(wait_raw);
    let rate = (PROCS * per) as f64 / t.elapsed().as_secs_f64();
    assert_eq!(counter.load(Ordering::Relaxed), 0);
    let extra = [
        ("processes", PROCS.to_string()),
        ("lock", quoted("bare futex")),
    ];
    emit("shared_value_processes", rate, "ops/s", "raw", &extra);
}

/// A process of a contended workload says it is ready, then waits for the
/// others: the figure is then the rate of processes that really contend,
/// not how far apart they happened to start (with 100,000 operations each,
/// the first was often done before the second began).
fn start_together(ready: &AtomicU32, n: usize) {
    ready.fetch_add(1, Ordering::SeqCst);
    while (ready.load(Ordering::Acquire) as usize) < n {
        std::hint::spin_loop();
    }
}

/// The parent's side of [`start_together`]: the time the last one got ready.
fn all_ready(ready: &AtomicU32, n: usize) -> Instant {
    while (ready.load(Ordering::Acquire) as usize) < n {
        std::thread::yield_now();
    }
    Instant::now()
}

/// 1, 4, 16 and 32 producer processes each put `per` 64-byte messages
/// (`put_bytes`) into one queue bounded at 1024; the parent gets them all.
fn queue_fan_in(per: usize) {
    for producers in [1usize, 4, 16, 32] {
        let q: IpcQueue<ByteBuf> = IpcQueue::new(1024).unwrap();
        let t = Instant::now();
        let mut ps: Vec<_> = (0..producers)
            .map(|_| {
                Process::builder()
                    .start_method(StartMethod::Fork)
                    .start(
                        |(q, per): (IpcQueue<ByteBuf>, usize)| {
                            let payload = [b'x'; 64];
                            for _ in 0..per {
                                q.put_bytes(&payload).unwrap();
                            }
                        },
                        (q.clone(), per),
                    )
                    .unwrap()
            })
            .collect();
        let mut bytes = 0;
        for _ in 0..producers * per {
            bytes += q.get_bytes().unwrap().len();
        }
        let rate = (producers * per) as f64 / t.elapsed().as_secs_f64();
        ps.iter_mut().for_each(|p| p.join().unwrap());
        assert_eq!(bytes, producers * per * 64);
        emit(
            "queue_fan_in",
            rate,
            "msg/s",
            "multiproc",
            &[("producers", producers.to_string())],
        );
    }
}

/// A pool of one worker returns `Vec<u8>`s of 1, 16 and 128 MiB (20, 5 and
/// 2 of them); bytes in the caller's hands per second.
fn pool_large_result() {
    let pool = ProcessPool::new(1);
    pool.submit(|n: usize| vec![1u8; n], 1).result().unwrap();
    for (size, count) in [(1usize << 20, 20), (16 << 20, 5), (128 << 20, 2)] {
        let t = Instant::now();
        for _ in 0..count {
            let v = pool.submit(|n: usize| vec![1u8; n], size).result().unwrap();
            assert_eq!(v.len(), size);
        }
        let gbs = (size * count) as f64 / t.elapsed().as_secs_f64() / 1e9;
        emit(
            "pool_large_result",
            gbs,
            "GB/s",
            "multiproc",
            &[("size", size.to_string())],
        );
    }
}

/// Two processes each do `d[k] = d.get(k) + 1` `steps` times on one dict
/// served by a manager process, keys cycling over 1,024 per process (a get
/// and an insert per step); with `batch`, the same steps `batch` keys at a
/// time (`get_many`, then `insert_many`).
fn manager_dict_ops(steps: usize, batch: Option<usize>) {
    use multiproc::manager::{Dict, Manager};
    const PROCS: u64 = 2;
    let manager = Manager::start().unwrap();
    let d = manager.dict::<u64, u64>().unwrap();
    fn one_by_one((d, steps, base): (Dict<u64, u64>, usize, u64)) {
        for i in 0..steps as u64 {
            let k = base + (i & 1023);
            d.insert(&k, &(d.get(&k).unwrap().unwrap_or(0) + 1))
                .unwrap();
        }
    }
    fn batched((d, steps, base, batch): (Dict<u64, u64>, usize, u64, usize)) {
        let mut i = 0u64;
        while i < steps as u64 {
            let n = batch.min(steps - i as usize) as u64;
            let keys: Vec<u64> = (i..i + n).map(|i| base + (i & 1023)).collect();
            let old = d.get_many(&keys).unwrap();
            let new: Vec<u64> = old.iter().map(|v| v.unwrap_or(0) + 1).collect();
            d.insert_many(keys.iter().zip(&new)).unwrap();
            i += n;
        }
    }
    let t = Instant::now();
    let mut ps: Vec<_> = (0..PROCS)
        .map(|p| {
            let b = Process::builder().start_method(StartMethod::Fork);
            match batch {
                None => b.start(one_by_one, (d.clone(), steps, p * 1024)),
                Some(batch) => b.start(batched, (d.clone(), steps, p * 1024, batch)),
            }
            .unwrap()
        })
        .collect();
    ps.iter_mut().for_each(|p| p.join().unwrap());
    let rate = (PROCS as usize * steps * 2) as f64 / t.elapsed().as_secs_f64();
    assert_eq!(
        d.values().unwrap().iter().sum::<u64>(),
        PROCS * steps as u64
    );
    let mut extra = vec![("processes", PROCS.to_string())];
    if let Some(batch) = batch {
        extra.push(("batch", batch.to_string()));
    }
    emit("manager_dict_ops", rate, "ops/s", "multiproc", &extra);
}

/// 0 free, 1 locked, 2 locked with waiters.
fn futex_lock(w: &AtomicU32) {
    use rustix::thread::futex;
    if w.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
    {
        return;
    }
    while w.swap(2, Ordering::Acquire) != 0 {
        let _ = futex::wait(w, futex::Flags::empty(), 2, None);
    }
}

fn futex_unlock(w: &AtomicU32) {
    use rustix::thread::futex;
    if w.swap(0, Ordering::Release) == 2 {
        let _ = futex::wake(w, futex::Flags::empty(), 1);
    }
}

/// The same on a process pool of 2 workers.
fn process_pool_task(n: usize) {
    let pool = ProcessPool::new(2);
    let us = pool_task_us(n, |x| pool.submit(|x: u64| x * x, x));
    let extra = [("workers", "2".to_string())];
    emit("process_pool_task", us, "us/task", "multiproc", &extra);
}

/// A process pool `map` of `x * x` over `0..n` in chunks of 1,000, results
/// summed in order.
fn process_pool_map(n: usize) {
    let pool = ProcessPool::new(2);
    pool.submit(|()| (), ()).result().unwrap(); // the workers are started
    pool_map(
        &pool,
        n,
        "process_pool_map",
        &[("workers", "2".to_string())],
    );
}

/// Times the map of `process_pool_map` on `pool`; prints it as `name`.
fn pool_map(pool: &ProcessPool, n: usize, name: &str, extra: &[(&str, String)]) {
    let t = Instant::now();
    let sum: u64 = pool
        .map_with(
            |x: u64| x * x,
            0..n as u64,
            MapOptions::default().chunksize(1_000),
        )
        .map(Result::unwrap)
        .sum();
    let us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    assert_eq!(sum, (0..n as u64).map(|x| x * x).sum());
    let mut extra = extra.to_vec();
    extra.push(("chunksize", "1000".to_string()));
    emit(name, us, "us/item", "multiproc", &extra);
}

/// A pool of 2 workers runs 1,000 tasks; every 100th aborts its worker:
/// the default pool (workers from the fork server), then one whose workers
/// are re-executed (`Spawn`); the `method` key says which.
fn pool_crash_recovery(n: usize) {
    for (method, key) in [
        (StartMethod::ForkServer, "forkserver"),
        (StartMethod::Spawn, "spawn"),
    ] {
        let pool = ProcessPool::builder()
            .max_workers(2)
            .start_method(method)
            .build()
            .unwrap();
        pool.submit(|()| (), ()).result().unwrap(); // the workers are started
        crash_recovery(&pool, n, "pool_crash_recovery", &[("method", quoted(key))]);
    }
}

/// Times the workload of `pool_crash_recovery` on `pool`; prints it as
/// `name`, with the `extra` keys.
fn crash_recovery(pool: &ProcessPool, n: usize, name: &str, extra: &[(&str, String)]) {
    let t = Instant::now();
    let futures: Vec<_> = (0..n as u64)
        .map(|i| {
            pool.submit(
                |i: u64| {
                    if i % 100 == 99 {
                        std::process::abort();
                    }
                    i * i
                },
                i,
            )
        })
        .collect();
    let (mut completed, mut innocent_lost) = (0, 0);
    for (i, f) in futures.iter().enumerate() {
        match f.result() {
            Ok(_) => completed += 1,
            Err(_) if i % 100 == 99 => {}
            Err(_) => innocent_lost += 1,
        }
    }
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let mut extra = extra.to_vec();
    extra.push(("completed", completed.to_string()));
    extra.push(("innocent_lost", innocent_lost.to_string()));
    emit(name, ms, "ms", "multiproc", &extra);
}

/// The pool's workloads on a pool whose 2 workers (agents of one slot)
/// are reached through a local `redis-server`, and the raw baseline: the
/// same count of `RPUSH`/`BLPOP` round trips through the same Redis.
#[cfg(feature = "redis")]
#[path = "common/redis_server.rs"]
mod redis_server;

#[cfg(feature = "redis")]
mod dist {
    use std::process::{Child, Command};
    use std::time::{Duration, Instant};

    use multiproc::executor::ProcessPool;

    use super::{crash_recovery, emit, median, pool_map, pool_task_us};

    const KEY: &str = "bench";

    use super::redis_server;

    pub(super) struct Cluster {
        agents: Vec<Child>,
        /// Tasks each agent takes ahead of its slot.
        prefetch: usize,
        // Dropped after the agents.
        _redis: redis_server::RedisServer,
        pub(super) url: String,
    }

    impl Cluster {
        pub(super) fn start(prefetch: usize) -> Option<Cluster> {
            let redis = redis_server::RedisServer::start("bench")
                .map_err(|e| eprintln!("dist_*: {e}: left out"))
                .ok()?;
            let url = redis.url();
            let agents = (0..2)
                .map(|_| {
                    Command::new(std::env::current_exe().unwrap())
                        .env("MULTIPROC_WORKER", &url)
                        .env("MULTIPROC_POOL", "bench")
                        .env("MULTIPROC_AUTHKEY", KEY)
                        .env("MULTIPROC_SLOTS", "1")
                        .env("MULTIPROC_PREFETCH", prefetch.to_string())
                        .spawn()
                        .unwrap()
                })
                .collect();
            Some(Cluster {
                agents,
                prefetch,
                _redis: redis,
                url,
            })
        }

        pub(super) fn pool(&self) -> ProcessPool {
            let pool = ProcessPool::builder()
                .max_workers(2)
                .redis(self.url.as_str(), "bench")
                .auth_key(KEY)
                .build()
                .unwrap();
            while pool.remote_status().unwrap().workers < 2 {
                std::thread::sleep(Duration::from_millis(5));
            }
            pool.submit(|()| (), ()).result().unwrap();
            pool
        }
    }

    impl Drop for Cluster {
        fn drop(&mut self) {
            for a in &mut self.agents {
                let _ = a.kill();
                let _ = a.wait();
            }
        }
    }

    fn extra() -> Vec<(&'static str, String)> {
        vec![("workers", "2".into()), ("engine", "\"redis\"".into())]
    }

    /// The pool and the raw round trip measured in alternating passes of
    /// the same run (this VM's wake-up latency swings by several times
    /// from minute to minute: both sides see the same swings), medians.
    pub(super) fn dist_pool_task(c: &Cluster, n: usize) {
        const PASSES: usize = 5;
        let pool = c.pool();
        // The raw baseline: RPUSH then BLPOP of a 64-byte message, n times.
        let client = redis::Client::open(c.url.as_str()).unwrap();
        let mut con = client.get_connection().unwrap();
        let msg = [7u8; 64];
        let mut raw = || {
            let t = Instant::now();
            for _ in 0..n {
                redis::cmd("RPUSH")
                    .arg("raw")
                    .arg(&msg[..])
                    .query::<()>(&mut con)
                    .unwrap();
                let _: (String, Vec<u8>) = redis::cmd("BLPOP")
                    .arg("raw")
                    .arg(1)
                    .query(&mut con)
                    .unwrap();
            }
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        };
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..PASSES {
            ours.push(pool_task_us(n, |x| pool.submit(|x: u64| x * x, x)));
            theirs.push(raw());
        }
        let (ours, theirs) = (median(ours), median(theirs));
        let mut extra = extra();
        extra.push(("prefetch", c.prefetch.to_string()));
        extra.push(("passes", PASSES.to_string()));
        extra.push(("ratio_to_raw", format!("{:.2}", ours / theirs)));
        emit("dist_pool_task", ours, "us/task", "multiproc", &extra);
        emit(
            "dist_pool_task",
            theirs,
            "us/task",
            "raw",
            &[
                ("what", "\"RPUSH+BLPOP round trip\"".into()),
                ("passes", PASSES.to_string()),
            ],
        );
    }

    pub(super) fn dist_pool_map(c: &Cluster, n: usize) {
        pool_map(&c.pool(), n, "dist_pool_map", &extra());
    }

    pub(super) fn dist_crash_recovery(c: &Cluster, n: usize) {
        crash_recovery(&c.pool(), n, "dist_crash_recovery", &[]);
    }
}

/// The array the pool's workers keep (given once, by the initializer).
static SHARED_ARRAY: std::sync::OnceLock<RawArray<f64>> = std::sync::OnceLock::new();

fn keep_array(a: RawArray<f64>) {
    let _ = SHARED_ARRAY.set(a);
}

fn sum_part((part, parts): (usize, usize)) -> f64 {
    let a = SHARED_ARRAY.get().expect("the initializer ran");
    let per = a.len().div_ceil(parts);
    a[(part * per).min(a.len())..((part + 1) * per).min(a.len())]
        .iter()
        .sum()
}

/// 100 MB of f64 in a `RawArray`, summed by 4 pool workers (a quarter
/// each, no copy: the workers map it once, through the initializer) and by
/// one thread; medians of `reps` after a first, untimed run of each.
fn shared_array_sum(items: usize, reps: usize) {
    let data = RawArray::from_fn(items, |xs: &mut [f64]| {
        for (i, x) in xs.iter_mut().enumerate() {
            *x = (i % 1000) as f64;
        }
    })
    .expect("a RawArray");
    let pool = ProcessPool::builder()
        .max_workers(4)
        .initializer(keep_array, data.clone())
        .build()
        .expect("a pool");
    let parts = |pool: &ProcessPool| -> f64 {
        let futures: Vec<_> = (0..4).map(|p| pool.submit(sum_part, (p, 4))).collect();
        futures.iter().map(|f| f.result().expect("a sum")).sum()
    };
    let expected: f64 = data.iter().sum();
    assert_eq!(parts(&pool), expected);
    let mut four = Vec::new();
    let mut single = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        std::hint::black_box(parts(&pool));
        four.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        std::hint::black_box(data.iter().sum::<f64>());
        single.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (four, single) = (median(four), median(single));
    emit(
        "shared_array_sum",
        four,
        "ms",
        "multiproc",
        &[
            ("single_ms", format!("{single:.3}")),
            ("ratio", format!("{:.3}", four / single)),
            ("workers", "4".into()),
        ],
    );
}

fn main() {
    if std::env::var_os(RAW_CHILD).is_some() {
        return; // the raw re-exec baseline's child: start, then exit
    }
    let args: Vec<String> = std::env::args().collect();
    let k = if args.iter().any(|a| a == "--quick") {
        10
    } else {
        1
    };
    let only: Option<Vec<String>> = args.iter().position(|a| a == "--only").map(|i| {
        args.get(i + 1)
            .map(|s| s.split(',').map(String::from).collect())
            .unwrap_or_default()
    });
    let want = |name: &str| only.as_ref().is_none_or(|o| o.iter().any(|n| n == name));
    if want("pipe_rtt") {
        pipe_rtt(20_000 / k);
    }
    if want("thread_pool_task") {
        thread_pool_task(100_000 / k);
    }
    if want("process_pool_task") {
        process_pool_task(20_000 / k);
    }
    if want("process_pool_map") {
        process_pool_map(1_000_000 / k);
    }
    if want("pool_crash_recovery") {
        pool_crash_recovery(1_000);
    }
    if want("thread_queue") {
        thread_queue(500_000 / k);
    }
    if want("lock_counter_threads") {
        lock_counter_threads(250_000 / k);
    }
    if want("queue_small") {
        queue_small(200_000 / k);
    }
    if want("queue_large") {
        queue_large(2_000 / k);
    }
    if want("shared_value_processes") {
        shared_value_processes(500_000 / k);
    }
    if want("spawn_join") {
        spawn_join(200 / k);
    }
    if want("queue_fan_in") {
        queue_fan_in(20_000 / k);
    }
    if want("pool_large_result") {
        pool_large_result();
    }
    if want("manager_dict_ops") {
        manager_dict_ops(20_000 / k, None);
        manager_dict_ops(1_000_000 / k, Some(1024));
    }
    if want("shared_array_sum") {
        shared_array_sum(12_500_000 / k, 11);
    }
    #[cfg(feature = "redis")]
    if (want("dist_pool_task") || want("dist_pool_map") || want("dist_crash_recovery"))
        && let Some(cluster) = dist::Cluster::start(0)
    {
        if want("dist_pool_task") {
            dist::dist_pool_task(&cluster, 2_000 / k);
            // The same with agents that take 8 tasks ahead of their slot.
            if let Some(ahead) = dist::Cluster::start(8) {
                dist::dist_pool_task(&ahead, 2_000 / k);
            }
        }
        if want("dist_pool_map") {
            dist::dist_pool_map(&cluster, 1_000_000 / k);
        }
        if want("dist_crash_recovery") {
            dist::dist_crash_recovery(&cluster, 1_000);
        }
    }
}
