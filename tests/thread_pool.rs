//! ThreadPool: CPython's executor tests (map order and laziness, shutdown
//! with and without cancel, initializer failure) plus what Python cannot do.

mod common;
use common::{JoinInTime, ResultInTime};

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use multiproc::executor::{MapOptions, ThreadPool};
use multiproc::futures::{Future, ReturnWhen, TaskError, wait};
use multiproc::threading::{Barrier, Event, Timer};

use common::until;

#[test]
fn submit_returns_before_the_task_runs() {
    let pool = ThreadPool::new(1);
    let gate = Arc::new(Event::new());
    let g = gate.clone();
    let f = pool.submit(move || {
        g.wait();
        "ran"
    });
    assert!(!f.done(), "submit did not wait for the task");
    gate.set();
    assert_eq!(f.result_in_time(), Ok("ran"));
}

#[test]
fn a_panic_fails_its_future_only_and_the_thread_lives_on() {
    let pool = ThreadPool::new(1);
    let before = pool
        .submit(|| thread::current().id())
        .result_in_time()
        .unwrap();
    let bad = pool.submit(|| -> u8 { panic!("task {} failed", 7) });
    let after = pool
        .submit(|| thread::current().id())
        .result_in_time()
        .unwrap();
    assert!(
        matches!(bad.result_in_time(), Err(TaskError::Panicked { message, .. }) if message == "task 7 failed")
    );
    assert_eq!(before, after, "the same worker thread ran both");
    assert_eq!(pool.threads(), 1);
}

#[test]
fn threads_are_reused_and_bounded() {
    let pool = ThreadPool::new(3);
    let ids = Arc::new(Mutex::new(HashSet::new()));
    let futures: Vec<_> = (0..300)
        .map(|_| {
            let ids = ids.clone();
            pool.submit(move || {
                ids.lock().unwrap().insert(thread::current().id());
            })
        })
        .collect();
    futures.iter().for_each(|f| f.result_in_time().unwrap());
    let n = ids.lock().unwrap().len();
    assert!((1..=3).contains(&n), "{n} threads ran 300 tasks");
    assert!(pool.threads() <= 3);
}

#[test]
fn every_worker_is_used_when_tasks_block() {
    // Four tasks that wait for each other need four threads at once: the
    // pool must start them even though each submit finds a worker searching.
    let pool = ThreadPool::new(4);
    let barrier = Arc::new(Barrier::new(4));
    let futures: Vec<_> = (0..4)
        .map(|_| {
            let b = barrier.clone();
            pool.submit(move || b.wait_timeout(Duration::from_secs(20)).is_ok())
        })
        .collect();
    assert!(futures.iter().all(|f| f.result_in_time() == Ok(true)));
}

#[test]
fn default_size_is_pythons() {
    let pool = ThreadPool::builder().build().unwrap();
    let expect = (multiproc::process::cpu_count() + 4).min(32);
    assert_eq!(pool.max_workers(), expect);
    assert_eq!(pool.threads(), 0, "threads start on demand");
}

#[test]
fn map_keeps_order() {
    let pool = ThreadPool::new(4);
    let out: Vec<u64> = pool
        .map(
            |x: u64| {
                // Later items finish first.
                thread::sleep(Duration::from_micros(50 * (20 - x % 20)));
                x * 2
            },
            0..100,
        )
        .map(Result::unwrap)
        .collect();
    assert_eq!(out, (0..100).map(|x| x * 2).collect::<Vec<_>>());
}

#[test]
fn map_is_lazy_and_bounded() {
    let pool = ThreadPool::new(2);
    let pulled = Arc::new(AtomicUsize::new(0));
    let p = pulled.clone();
    let endless = (0u64..).inspect(move |_| {
        p.fetch_add(1, Ordering::SeqCst);
    });
    let mut results = pool.map_with(|x| x + 1, endless, MapOptions::default().buffersize(3));
    assert_eq!(pulled.load(Ordering::SeqCst), 3, "three in flight, no more");
    assert_eq!(results.next(), Some(Ok(1)));
    assert_eq!(
        pulled.load(Ordering::SeqCst),
        4,
        "one taken, one more submitted"
    );
    let first: Vec<_> = results.by_ref().take(10).map(Result::unwrap).collect();
    assert_eq!(first, (2..12).collect::<Vec<_>>());
    assert_eq!(pulled.load(Ordering::SeqCst), 14);
}

#[test]
fn map_reports_failures_in_place() {
    let pool = ThreadPool::new(2);
    let out: Vec<_> = pool
        .map(|x: u32| if x == 2 { panic!("two") } else { x }, 0..4)
        .collect();
    assert_eq!(out[..2], [Ok(0), Ok(1)]);
    assert!(matches!(&out[2], Err(TaskError::Panicked { message, .. }) if message == "two"));
    assert_eq!(out[3], Ok(3));
}

#[test]
fn dropping_a_map_cancels_what_has_not_started() {
    let pool = ThreadPool::new(1);
    let started = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Event::new());
    let (s, r, g) = (started.clone(), ran.clone(), gate.clone());
    let results = pool.map_with(
        move |_: u32| {
            s.fetch_add(1, Ordering::SeqCst);
            g.wait();
            r.fetch_add(1, Ordering::SeqCst);
        },
        0..10,
        MapOptions::default().buffersize(5),
    );
    until("the first task runs", || {
        started.load(Ordering::SeqCst) == 1
    });
    drop(results);
    gate.set();
    pool.shutdown(true, false);
    assert_eq!(ran.load(Ordering::SeqCst), 1, "only the running task ran");
}

#[test]
fn shutdown_with_cancel_futures() {
    let pool = ThreadPool::new(1);
    let gate = Arc::new(Event::new());
    let g = gate.clone();
    let running = pool.submit(move || {
        g.wait();
        1
    });
    let queued: Vec<Future<i32>> = (0..5).map(|i| pool.submit(move || i)).collect();
    until("the first task runs", || running.running());
    let opener = {
        let gate = gate.clone();
        Timer::start(Duration::from_millis(20), move || gate.set())
    };
    pool.shutdown(true, true);
    opener.result_in_time().unwrap();
    assert_eq!(running.result_in_time(), Ok(1), "a running task finishes");
    for f in &queued {
        assert!(f.cancelled());
        assert_eq!(f.result_in_time(), Err(TaskError::Cancelled));
    }
    assert_eq!(pool.threads(), 0, "shutdown(wait) waited for the threads");
    assert_eq!(pool.submit(|| 0).result_in_time(), Err(TaskError::ShutDown));
}

#[test]
fn shutdown_without_cancel_runs_the_queue() {
    let pool = ThreadPool::new(2);
    let count = Arc::new(AtomicUsize::new(0));
    let futures: Vec<_> = (0..50)
        .map(|_| {
            let c = count.clone();
            pool.submit(move || {
                thread::sleep(Duration::from_micros(200));
                c.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    pool.shutdown(true, false);
    assert_eq!(count.load(Ordering::SeqCst), 50);
    assert!(futures.iter().all(|f| f.done()));
}

#[test]
fn shutdown_without_wait_returns_at_once_and_drop_waits() {
    let gate = Arc::new(Event::new());
    let finished = Arc::new(AtomicUsize::new(0));
    let pool = ThreadPool::new(1);
    let (g, fin) = (gate.clone(), finished.clone());
    let f = pool.submit(move || {
        g.wait();
        fin.fetch_add(1, Ordering::SeqCst);
    });
    until("the task runs", || f.running());
    pool.shutdown(false, false); // must not block on the gated task
    assert_eq!(finished.load(Ordering::SeqCst), 0);
    let opener = {
        let gate = gate.clone();
        Timer::start(Duration::from_millis(20), move || gate.set())
    };
    drop(pool); // waits
    assert_eq!(finished.load(Ordering::SeqCst), 1);
    opener.result_in_time().unwrap();
}

#[test]
fn a_task_may_shut_its_own_pool_down() {
    let pool = Arc::new(ThreadPool::new(2));
    let p = pool.clone();
    let f = pool.submit(move || p.shutdown(true, false));
    assert_eq!(f.result_timeout(Duration::from_secs(20)), Ok(()));
}

#[test]
fn a_panicking_initializer_breaks_the_pool() {
    let pool = ThreadPool::builder()
        .max_workers(2)
        .initializer(|| panic!("no database"))
        .build()
        .unwrap();
    let f = pool.submit(|| 1);
    match f.result_in_time() {
        Err(TaskError::Broken(why)) => assert!(why.contains("no database"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        pool.submit(|| 2).result_in_time(),
        Err(TaskError::Broken(_))
    ));
}

#[test]
fn the_initializer_runs_once_per_thread() {
    let inits = Arc::new(AtomicUsize::new(0));
    let i = inits.clone();
    let pool = ThreadPool::builder()
        .max_workers(2)
        .thread_name_prefix("worker")
        .initializer(move || {
            i.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    let names: Vec<_> = (0..100)
        .map(|_| pool.submit(|| thread::current().name().unwrap().to_string()))
        .collect();
    let names: HashSet<String> = names.iter().map(|n| n.result_in_time().unwrap()).collect();
    assert!(
        names.iter().all(|n| n == "worker_0" || n == "worker_1"),
        "{names:?}"
    );
    let started = pool.threads();
    pool.shutdown(true, false);
    assert_eq!(inits.load(Ordering::SeqCst), started, "once per thread");
}

#[test]
fn stress_many_submitters() {
    let pool = Arc::new(ThreadPool::new(4));
    let submitters: Vec<_> = (0..4u64)
        .map(|s| {
            let pool = pool.clone();
            thread::spawn(move || {
                let fs: Vec<_> = (0..5_000u64)
                    .map(|i| pool.submit(move || s * 1_000_000 + i))
                    .collect();
                let w = wait(&fs, ReturnWhen::AllCompleted, None);
                assert!(w.not_done.is_empty());
                fs.iter().map(|f| f.result_in_time().unwrap()).sum::<u64>()
            })
        })
        .collect();
    let total: u64 = submitters
        .into_iter()
        .map(|t| t.join_in_time().unwrap())
        .sum();
    let expect: u64 = (0..4u64)
        .map(|s| (0..5_000u64).map(|i| s * 1_000_000 + i).sum::<u64>())
        .sum();
    assert_eq!(total, expect);
}

#[test]
fn an_idle_pool_sleeps() {
    // After the work is done every worker ends up asleep, not spinning: the
    // kernel reports its threads as sleeping.
    let pool = ThreadPool::builder()
        .max_workers(2)
        .thread_name_prefix("idle")
        .build()
        .unwrap();
    let fs: Vec<_> = (0..100).map(|i| pool.submit(move || i)).collect();
    fs.iter().for_each(|f| drop(f.result_in_time()));
    until("every worker sleeps", || {
        let tasks = std::fs::read_dir("/proc/self/task").unwrap();
        let mut workers = 0;
        let mut sleeping = 0;
        for t in tasks.flatten() {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            if comm.starts_with("idle_") {
                workers += 1;
                let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
                // The state follows the ")" that closes the name.
                let state = stat
                    .rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .chars()
                    .next();
                if state == Some('S') {
                    sleeping += 1;
                }
            }
        }
        workers > 0 && workers == sleeping
    });
}
