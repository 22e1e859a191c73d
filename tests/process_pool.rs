//! The process pool: results, panics, workers that die (abort, exit, a
//! SIGKILL every few milliseconds under load), timeouts, cancellation,
//! recycling, shutdown — and no zombie or descriptor left behind.
mod common;
use common::{JoinInTime, ResultInTime};

use std::collections::HashSet;
use std::time::{Duration, Instant};

use multiproc::executor::{MapOptions, ProcessPool, TaskOptions};
use multiproc::futures::{TaskError, as_completed};
use multiproc::process::{ExitStatus, StartMethod};

fn chunks(n: usize) -> MapOptions {
    MapOptions::default().chunksize(n)
}

fn square(x: u64) -> u64 {
    x * x
}

#[test]
fn results_of_fn_items_and_closures() {
    let _c = common::clean();
    let pool = ProcessPool::new(2);
    let futures: Vec<_> = (0..500u64).map(|x| pool.submit(square, x)).collect();
    let words = pool.submit(
        |w: Vec<String>| w.join(" "),
        vec!["no".into(), "pickle".into()],
    );
    for (x, f) in futures.iter().enumerate() {
        assert_eq!(f.result_in_time(), Ok(x as u64 * x as u64));
    }
    assert_eq!(words.result_in_time(), Ok("no pickle".to_string()));
    // The same futures as the thread pool's: as_completed works.
    let fs: Vec<_> = (0..20u64).map(|x| pool.submit(square, x)).collect();
    let sum: u64 = as_completed(fs).map(|f| f.result_in_time().unwrap()).sum();
    assert_eq!(sum, (0..20u64).map(square).sum::<u64>());
}

#[test]
fn a_panic_fails_its_task_and_the_worker_lives() {
    let _c = common::clean();
    let pool = ProcessPool::new(1);
    let before = pool
        .submit(|()| std::process::id(), ())
        .result_in_time()
        .unwrap();
    let r = pool
        .submit(
            |n: u32| -> u32 {
                assert!(n < 10, "{n} is too many");
                n
            },
            12,
        )
        .result_in_time();
    match r {
        Err(TaskError::Panicked { message, .. }) => assert_eq!(message, "12 is too many"),
        other => panic!("{other:?}"),
    }
    let after = pool
        .submit(|()| std::process::id(), ())
        .result_in_time()
        .unwrap();
    assert_eq!(before, after, "the worker was replaced after a mere panic");
}

#[test]
fn a_dying_worker_fails_only_its_task() {
    let _c = common::clean();
    let pool = ProcessPool::new(2);
    let futures: Vec<_> = (0..200u32)
        .map(|i| {
            pool.submit(
                |i: u32| -> u32 {
                    match i % 50 {
                        7 => std::process::abort(),
                        8 => std::process::exit(3),
                        _ => i,
                    }
                },
                i,
            )
        })
        .collect();
    for (i, f) in futures.iter().enumerate() {
        match (i % 50, f.result_in_time()) {
            (7, Err(TaskError::WorkerDied { status })) => {
                assert_eq!(status, ExitStatus::Signal(6))
            }
            (8, Err(TaskError::WorkerDied { status })) => {
                assert_eq!(status, ExitStatus::Code(3))
            }
            (7 | 8, other) => panic!("task {i}: {other:?}"),
            (_, r) => assert_eq!(r, Ok(i as u32), "innocent task {i}"),
        }
    }
}

/// Aborts the worker that runs it.
fn abort_worker(_: ()) -> u32 {
    std::process::abort()
}

/// A worker's initializer: leaves a file named by its pid in `dir`.
fn note_start(dir: String) {
    std::fs::write(format!("{dir}/{}", std::process::id()), b"").unwrap();
}

/// The pids of the workers that have started (run their initializer).
fn noted(dir: &str) -> HashSet<u32> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn after_a_death_a_spare_started_ahead_takes_the_next_place() {
    let _c = common::clean();
    let dir = marker("spare");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    let pool = ProcessPool::builder()
        .max_workers(2)
        .initializer(note_start, dir.clone())
        .build()
        .unwrap();
    assert_eq!(pool.submit(square, 3).result_in_time(), Ok(9));
    // A pool whose workers never ended keeps no spare.
    common::until("both workers start", || noted(&dir).len() == 2);
    assert_eq!(pool.stats().workers_started, 2);
    assert!(pool.submit(abort_worker, ()).result_in_time().is_err());
    for round in 0..3u64 {
        // After a death: a replacement and a spare; then one start per
        // death, the next spare.
        common::until("the spare has started", || {
            noted(&dir).len() == 4 + round as usize
        });
        let before = noted(&dir);
        let serving: HashSet<u32> = pool.worker_pids().into_iter().collect();
        // Started and not serving: the spare (and the workers that died).
        let spare: Vec<u32> = before.difference(&serving).copied().collect();
        assert!(pool.submit(abort_worker, ()).result_in_time().is_err());
        let workers = || pool.worker_pids().into_iter().collect::<HashSet<u32>>();
        common::until("the dead worker's place is taken", || {
            let now = workers();
            now.len() == 2 && now != serving
        });
        // The dead worker's place went to a process started before the
        // death: the spare.
        let new: Vec<u32> = workers().difference(&serving).copied().collect();
        assert_eq!(new.len(), 1, "one worker replaced");
        assert!(
            spare.contains(&new[0]),
            "the replacement {new:?} is no spare of {spare:?}"
        );
        assert_eq!(
            pool.submit(square, round).result_in_time(),
            Ok(round * round)
        );
    }
    drop(pool);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn workers_killed_at_random_under_load() {
    for method in [StartMethod::ForkServer, StartMethod::Spawn] {
        workers_killed_at_random(method);
    }
}

fn workers_killed_at_random(method: StartMethod) {
    let _c = common::clean();
    // Processes from before the pool (the fork server) are not its workers.
    let before: HashSet<u32> = common::descendants().into_iter().map(|(p, _)| p).collect();
    const TASKS: u64 = 10_000;
    let pool = ProcessPool::builder()
        .max_workers(2)
        .start_method(method)
        .build()
        .unwrap();
    let futures: Vec<_> = (0..TASKS)
        .map(|x| {
            pool.submit(
                |x: u64| {
                    std::thread::sleep(Duration::from_micros(20));
                    (std::process::id(), x * x)
                },
                x,
            )
        })
        .collect();
    let me = std::process::id();
    let mut kills = 0;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(me);
    while !futures.last().unwrap().done() {
        std::thread::sleep(Duration::from_millis(3));
        let workers: Vec<u32> = common::descendants()
            .into_iter()
            .filter(|(pid, zombie)| !zombie && !before.contains(pid))
            .map(|(pid, _)| pid)
            .collect();
        if workers.is_empty() {
            continue;
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let victim = workers[(rng % workers.len() as u64) as usize];
        let pid = rustix::process::Pid::from_raw(victim as i32).unwrap();
        if rustix::process::kill_process(pid, rustix::process::Signal::KILL).is_ok() {
            kills += 1;
        }
    }
    let mut died = 0;
    for (x, f) in futures.iter().enumerate() {
        match f.result_in_time() {
            Ok((pid, v)) => {
                assert_eq!(v, x as u64 * x as u64);
                assert_ne!(pid, me);
            }
            Err(TaskError::WorkerDied { status }) => {
                assert_eq!(status, ExitStatus::Signal(9));
                died += 1;
            }
            Err(e) => panic!("task {x}: {e}"),
        }
    }
    assert!(
        kills > 0,
        "{method:?}: no worker was killed: the test tested nothing"
    );
    assert!(died <= kills, "{died} tasks failed with only {kills} kills");
    eprintln!(
        "{method:?}: {kills} kills, {died} tasks lost with their worker, {} completed",
        TASKS - died
    );
}

#[test]
fn a_task_past_its_timeout_is_killed() {
    let _c = common::clean();
    let pool = ProcessPool::builder()
        .max_workers(2)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let stuck = pool.submit_with(
        |()| -> u32 {
            std::thread::sleep(Duration::from_secs(60));
            0
        },
        (),
        TaskOptions::timeout(Duration::from_millis(100)),
    );
    let quick: Vec<_> = (0..50u64).map(|x| pool.submit(square, x)).collect();
    let t = Instant::now();
    assert_eq!(
        stuck.result_in_time(),
        Err(TaskError::DeadlineExceeded(Duration::from_millis(100)))
    );
    assert!(t.elapsed() >= Duration::from_millis(50));
    for (x, f) in quick.iter().enumerate() {
        assert_eq!(f.result_in_time(), Ok(x as u64 * x as u64));
    }
    assert_eq!(pool.submit(square, 9).result_in_time(), Ok(81));
}

#[test]
fn cancel_of_a_queued_task() {
    let _c = common::clean();
    let pool = ProcessPool::new(1);
    let busy = pool.submit(|ms: u64| std::thread::sleep(Duration::from_millis(ms)), 200);
    let queued = pool.submit(square, 3);
    assert!(queued.cancel());
    assert_eq!(queued.result_in_time(), Err(TaskError::Cancelled));
    assert_eq!(busy.result_in_time(), Ok(()));
    assert_eq!(pool.submit(square, 4).result_in_time(), Ok(16));
}

#[test]
fn workers_are_recycled_after_max_tasks() {
    let _c = common::clean();
    let pool = ProcessPool::builder()
        .max_workers(1)
        .max_tasks_per_child(3)
        .build()
        .unwrap();
    let pids: Vec<u32> = (0..30)
        .map(|_| pool.submit(|()| std::process::id(), ()))
        .collect::<Vec<_>>()
        .iter()
        .map(|f| f.result_in_time().unwrap())
        .collect();
    let distinct: HashSet<_> = pids.iter().collect();
    assert_eq!(distinct.len(), 10, "{pids:?}");
    for chunk in pids.chunks(3) {
        assert!(chunk.iter().all(|p| *p == chunk[0]), "{pids:?}");
    }
}

#[test]
fn shutdown_with_and_without_cancel() {
    let _c = common::clean();
    let pool = ProcessPool::new(1);
    let started = marker("shutdown-started");
    let running = pool.submit(
        |path: String| {
            std::fs::write(path, b"started").unwrap();
            std::thread::sleep(Duration::from_millis(100));
            100u64
        },
        started.clone(),
    );
    let queued: Vec<_> = (0..5u64).map(|x| pool.submit(square, x)).collect();
    wait_for(&started);
    pool.shutdown(true, true);
    assert_eq!(running.result_in_time(), Ok(100), "a running task finishes");
    for f in &queued {
        // Queued, or handed to the worker and not started: cancelled.
        assert_eq!(f.result_in_time(), Err(TaskError::Cancelled));
        assert!(f.cancelled());
    }
    assert_eq!(
        pool.submit(square, 2).result_in_time(),
        Err(TaskError::ShutDown)
    );

    // Without cancel, the queue drains before the workers exit.
    let pool = ProcessPool::new(2);
    let fs: Vec<_> = (0..40u64).map(|x| pool.submit(square, x)).collect();
    drop(pool);
    for (x, f) in fs.iter().enumerate() {
        assert_eq!(f.result_in_time(), Ok(x as u64 * x as u64));
    }
}

#[test]
fn map_in_chunks_is_ordered_lazy_and_fails_per_chunk() {
    let _c = common::clean();
    let pool = ProcessPool::new(2);
    let squares: Vec<u64> = pool
        .map_with(square, 0..10_000u64, chunks(97))
        .map(Result::unwrap)
        .collect();
    assert_eq!(squares, (0..10_000u64).map(square).collect::<Vec<_>>());
    // An endless iterator: only what is consumed (and a few chunks ahead) runs.
    let first: Vec<u64> = pool
        .map_with(square, 0u64.., chunks(10))
        .take(25)
        .map(Result::unwrap)
        .collect();
    assert_eq!(first, (0..25u64).map(square).collect::<Vec<_>>());
    // A chunk that panics: its items get the error, the others their values.
    let results: Vec<_> = pool
        .map_with(
            |x: u32| -> u32 {
                assert!(x != 13, "unlucky");
                x
            },
            0..30u32,
            chunks(5),
        )
        .collect();
    for (x, r) in results.iter().enumerate() {
        if (10..15).contains(&x) {
            assert!(matches!(r, Err(TaskError::Panicked { .. })), "{x}: {r:?}");
        } else {
            assert_eq!(r, &Ok(x as u32));
        }
    }
    assert_eq!(
        pool.map_with(square, Vec::<u64>::new(), chunks(4)).count(),
        0
    );
}

static CONFIG: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[test]
fn an_initializer_runs_in_every_worker() {
    let _c = common::clean();
    let pool = ProcessPool::builder()
        .max_workers(2)
        .max_tasks_per_child(5)
        .initializer(
            |v: u64| CONFIG.store(v, std::sync::atomic::Ordering::SeqCst),
            42,
        )
        .build()
        .unwrap();
    // Recycled workers run it too.
    let seen: Vec<u64> = (0..30)
        .map(|_| pool.submit(|()| CONFIG.load(std::sync::atomic::Ordering::SeqCst), ()))
        .collect::<Vec<_>>()
        .iter()
        .map(|f| f.result_in_time().unwrap())
        .collect();
    assert!(seen.iter().all(|v| *v == 42), "{seen:?}");
    assert_eq!(
        CONFIG.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "ran here"
    );
}

#[test]
fn an_initializer_that_always_fails_breaks_the_pool_and_says_why() {
    let _c = common::clean();
    let pool = ProcessPool::builder()
        .max_workers(1)
        .initializer(|()| panic!("no database"), ())
        .build()
        .unwrap();
    let f = pool.submit(square, 3);
    match f.result_in_time() {
        Err(TaskError::Broken(why)) => assert!(why.contains("no database"), "{why}"),
        other => panic!("{other:?}"),
    }
    match pool.submit(square, 4).result_in_time() {
        Err(TaskError::Broken(why)) => assert!(why.contains("no database"), "{why}"),
        other => panic!("{other:?}"),
    }
}

/// A file that tasks create to say they got somewhere (a task's argument
/// cannot hold a handle such as an `Event`).
fn marker(name: &str) -> String {
    let path = std::env::temp_dir().join(format!("multiproc-pool-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path.to_str().unwrap().to_string()
}

/// Waits (boundedly) for a marker to appear.
fn wait_for(path: &str) {
    common::until(path, || std::path::Path::new(path).exists());
}

/// Creates the marker, then sleeps until killed.
fn start_and_hang(path: String) -> u32 {
    std::fs::write(&path, b"started").unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Runs until the marker exists.
fn wait_for_marker(path: String) -> u32 {
    while !std::path::Path::new(&path).exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::process::id()
}

#[test]
fn cancel_of_a_running_task_kills_its_worker() {
    let _c = common::clean();
    let pool = ProcessPool::new(1);
    let first = pool
        .submit(|()| std::process::id(), ())
        .result_in_time()
        .unwrap();
    let started = marker("cancel-running");
    let hung = pool.submit(start_and_hang, started.clone());
    let behind: Vec<_> = (0..5u64).map(|x| pool.submit(square, x)).collect();
    wait_for(&started);
    assert!(hung.running());
    assert!(hung.cancel(), "Python cannot do this");
    assert_eq!(hung.result_in_time(), Err(TaskError::Cancelled));
    assert!(hung.cancelled());
    // The tasks queued behind it run on the worker that replaced it.
    for (x, f) in behind.iter().enumerate() {
        assert_eq!(f.result_in_time(), Ok(x as u64 * x as u64));
    }
    let second = pool
        .submit(|()| std::process::id(), ())
        .result_in_time()
        .unwrap();
    assert_ne!(first, second, "the hung worker was not killed");
    std::fs::remove_file(&started).unwrap();
}

#[test]
fn cancel_of_a_task_handed_to_a_worker_but_not_started() {
    let _c = common::clean();
    let pool = ProcessPool::new(1);
    let release = marker("release");
    let ran = marker("ran");
    let busy = pool.submit(wait_for_marker, release.clone());
    // Handed to the same worker in the same batch, behind the busy task.
    let waiting = pool.submit(
        |path: String| std::fs::write(path, b"it ran").is_ok(),
        ran.clone(),
    );
    let after = pool.submit(|()| std::process::id(), ());
    assert!(waiting.cancel());
    std::fs::write(&release, b"go").unwrap();
    let worker = busy.result_in_time().unwrap();
    assert_eq!(waiting.result_in_time(), Err(TaskError::Cancelled));
    // Same worker, not killed; and the cancelled task never ran before the
    // one behind it.
    assert_eq!(after.result_in_time(), Ok(worker));
    assert!(!std::path::Path::new(&ran).exists(), "a cancelled task ran");
    std::fs::remove_file(&release).unwrap();
}

#[test]
fn short_tasks_do_not_wait_behind_a_long_one() {
    let _c = common::clean();
    let pool = ProcessPool::new(2);
    let release = marker("long");
    // The long task and the short ones are handed out together; the short
    // ones handed to the long task's worker move to the other one. Were
    // any stuck behind it, this would wait for ever (the guard fails it).
    let long = pool.submit(wait_for_marker, release.clone());
    let short: Vec<_> = (0..40u64).map(|x| pool.submit(square, x)).collect();
    for (x, f) in short.iter().enumerate() {
        assert_eq!(
            f.result_timeout(Duration::from_secs(30)),
            Ok(x as u64 * x as u64)
        );
    }
    assert!(!long.done());
    std::fs::write(&release, b"go").unwrap();
    assert!(long.result_in_time().is_ok());
    std::fs::remove_file(&release).unwrap();
}

#[test]
fn a_worker_over_its_memory_cap_is_recycled_after_its_task() {
    let _c = common::clean();
    const MIB: usize = 1 << 20;
    let pool = ProcessPool::builder()
        .max_workers(1)
        .max_memory(64 * MIB as u64)
        .build()
        .unwrap();
    let grow = |mib: usize| -> u32 {
        // A leak: 128 MiB touched and never freed.
        let block = vec![1u8; mib * MIB];
        std::hint::black_box(&block);
        std::mem::forget(block);
        std::process::id()
    };
    let small = pool.submit(grow, 1).result_in_time().unwrap();
    let again = pool.submit(grow, 1).result_in_time().unwrap();
    assert_eq!(small, again, "a worker under its cap was replaced");
    let big = pool.submit(grow, 128);
    let next = pool.submit(|()| std::process::id(), ());
    let big = big.result_in_time().unwrap();
    assert_eq!(big, small, "the task itself is not interrupted");
    assert_ne!(
        next.result_in_time().unwrap(),
        big,
        "the bloated worker lives on"
    );
}

#[test]
fn timed_and_untimed_tasks_mixed_under_load() {
    let _c = common::clean();
    let pool = ProcessPool::new(2);
    let futures: Vec<_> = (0..600u64)
        .map(|x| {
            let options = if x % 7 == 0 {
                TaskOptions::timeout(Duration::from_secs(60))
            } else {
                TaskOptions::default()
            };
            pool.submit_with(square, x, options)
        })
        .collect();
    for (x, f) in futures.iter().enumerate() {
        assert_eq!(f.result_in_time(), Ok(x as u64 * x as u64));
    }
}

#[test]
fn map_unordered_does_not_wait_for_a_slow_chunk() {
    let _c = common::clean();
    let pool = ProcessPool::new(2);
    let release = marker("unordered");
    // A guard: were the map ordered, it would wait for ever; the marker
    // appears after 30 s anyway and the assertion below fails instead.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let guard = {
        let (release, done) = (release.clone(), done.clone());
        std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(30);
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if Instant::now() > end {
                    let _ = std::fs::write(release, b"guard");
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let items = (0..40u64).map(|x| (x, release.clone()));
    let slow_first = |(x, path): (u64, String)| -> u64 {
        if x == 0 {
            wait_for_marker(path);
        }
        assert_ne!(x, 13, "unlucky");
        x * 2
    };
    let mut results = pool.map_unordered_with(slow_first, items, chunks(4));
    let mut got: Vec<Result<u64, TaskError>> = results.by_ref().take(36).collect();
    assert!(
        !std::path::Path::new(&release).exists(),
        "36 results came only after the first chunk ended"
    );
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    guard.join_in_time().unwrap();
    std::fs::write(&release, b"go").unwrap();
    got.extend(results);
    assert_eq!(got.len(), 40);
    let failed = got.iter().filter(|r| r.is_err()).count();
    assert_eq!(
        failed, 4,
        "the chunk holding item 13 fails for each of its items"
    );
    let mut ok: Vec<u64> = got.into_iter().filter_map(Result::ok).collect();
    ok.sort();
    let expected: Vec<u64> = (0..40)
        .filter(|x| !(12..16).contains(x))
        .map(|x| x * 2)
        .collect();
    assert_eq!(ok, expected);
    std::fs::remove_file(&release).unwrap();
}

#[cfg(feature = "progress")]
#[test]
fn a_progress_bar_follows_a_map() {
    use multiproc::executor::indicatif::ProgressBar;
    let _c = common::clean();
    let pool = ProcessPool::new(2);
    let mut squares = pool.map_with(square, 0..100u64, chunks(7)).progress();
    assert_eq!(squares.bar().length(), Some(100));
    assert_eq!(squares.next(), Some(Ok(0)));
    assert_eq!(squares.bar().position(), 1);
    let sum: u64 = squares.by_ref().map(Result::unwrap).sum();
    assert_eq!(sum, (1..100u64).map(square).sum::<u64>());
    assert_eq!(squares.bar().position(), 100);
    assert!(squares.bar().is_finished());
    // An iterator that does not know its length: a counter.
    let evens = (0..50u64).filter(|x| x % 2 == 0);
    let mut counted = pool.map_unordered_with(square, evens, chunks(5)).progress();
    assert_eq!(counted.bar().length(), None);
    assert_eq!(counted.by_ref().count(), 25);
    assert_eq!(counted.bar().position(), 25);
    // A bar of one's own.
    let bar = ProgressBar::hidden();
    let n = pool
        .map_with(square, 0..10u64, chunks(3))
        .progress_with(bar.clone())
        .count();
    assert_eq!((n, bar.position()), (10, 10));
}

#[test]
fn large_arguments_and_results_do_not_jam_the_pipes() {
    let _c = common::clean();
    // Big messages both ways: the pool must never block writing to a
    // worker that is itself blocked writing an answer.
    let pool = ProcessPool::new(1);
    let futures: Vec<_> = (0..24u8)
        .map(|i| {
            pool.submit(
                |v: Vec<u8>| v.iter().rev().copied().collect::<Vec<u8>>(),
                vec![i; 300 << 10],
            )
        })
        .collect();
    for (i, f) in futures.iter().enumerate() {
        let v = f.result_timeout(Duration::from_secs(60)).unwrap();
        assert_eq!((v.len(), v[0]), (300 << 10, i as u8));
    }
    // Medium ones, many in flight.
    let futures: Vec<_> = (0..200u32)
        .map(|i| pool.submit(|v: Vec<u32>| v.len() as u32 + v[0], vec![i; 3000]))
        .collect();
    for (i, f) in futures.iter().enumerate() {
        assert_eq!(
            f.result_timeout(Duration::from_secs(60)),
            Ok(3000 + i as u32)
        );
    }
}

/// `Vec<u8>` results of every size come back whole — the large ones as a
/// block of their own, received into a buffer of their exact size, or (1 MiB
/// and more) copied from the worker's memory — and a worker killed in the
/// middle of handing one over fails that task only.
#[test]
fn large_byte_results_arrive_whole_and_a_death_mid_send_fails_one_task() {
    let _c = common::clean();
    let pool = ProcessPool::new(2);
    fn pattern(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i % 253) as u8 ^ (len % 7) as u8)
            .collect()
    }
    let sizes = [
        0,
        1,
        (64 << 10) - 1,
        64 << 10,
        (1 << 20) - 1,
        1 << 20,
        (1 << 20) + 3,
        20 << 20,
        (40 << 20) + 1,
    ];
    let futures: Vec<_> = sizes
        .iter()
        .flat_map(|&len| {
            [
                pool.submit(pattern, len),
                pool.submit(|x: u64| vec![x as u8], 5),
            ]
        })
        .collect();
    for (f, len) in futures.chunks(2).zip(sizes) {
        let v = f[0].result_timeout(Duration::from_secs(60)).unwrap();
        assert!(v == pattern(len), "{len} bytes came back changed");
        assert_eq!(f[1].result_timeout(Duration::from_secs(60)), Ok(vec![5]));
    }
    // The worker aborts while the block is on its way.
    let dies = |len: usize| -> Vec<u8> {
        let v = vec![3u8; len];
        std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(2));
            std::process::abort()
        });
        v
    };
    let f = pool.submit(dies, 256 << 20);
    match f.result_timeout(Duration::from_secs(60)) {
        Err(TaskError::WorkerDied { .. }) => {}
        // All of it went before the abort (a fast machine): whole, then.
        Ok(v) => assert!(v.len() == 256 << 20 && v.iter().all(|&b| b == 3)),
        other => panic!("{:?}", other.map(|v| v.len())),
    }
    let after = pool.submit(pattern, 3 << 20);
    assert!(after.result_timeout(Duration::from_secs(60)).unwrap() == pattern(3 << 20));
}

/// Writes its pid under `dir`, then waits (bounded) until `n` tasks have:
/// a rendezvous that only ends if `n` workers run these tasks at once.
fn rendezvous((dir, n): (String, usize)) -> u32 {
    let me = std::process::id();
    std::fs::write(format!("{dir}/{me}"), b"").unwrap();
    common::until("every task of the rendezvous runs", || {
        std::fs::read_dir(&dir).unwrap().count() >= n
    });
    me
}

/// Issue 15: on a fresh pool, a worker that is ready first must not take a
/// second task while another worker is still starting — N tasks that wait
/// for each other on N workers all meet, each on its own worker.
#[test]
fn a_fresh_pool_runs_n_waiting_tasks_on_n_workers() {
    let _c = common::clean();
    for (n, method) in [2usize, 4, 6]
        .into_iter()
        .flat_map(|n| [(n, StartMethod::ForkServer), (n, StartMethod::Spawn)])
    {
        for round in 0..3 {
            let pool = ProcessPool::builder()
                .max_workers(n)
                .start_method(method)
                .build()
                .unwrap();
            let dir = marker(&format!("rendezvous-{n}-{method:?}-{round}"));
            std::fs::create_dir_all(&dir).unwrap();
            let futures: Vec<_> = (0..n)
                .map(|_| pool.submit(rendezvous, (dir.clone(), n)))
                .collect();
            let pids: HashSet<u32> = futures
                .iter()
                .map(|f| f.result_in_time().unwrap())
                .collect();
            assert_eq!(pids.len(), n, "{method:?}: each task on its own worker");
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

#[test]
fn workers_show_their_names_to_ps() {
    let _c = common::clean();
    let pool = ProcessPool::new(1);
    let comm = pool
        .submit(|()| std::fs::read_to_string("/proc/self/comm").unwrap(), ())
        .result_in_time()
        .unwrap();
    assert!(comm.starts_with("ProcessPoolWo-"), "{comm:?}");
}

#[test]
fn values_that_take_no_bytes_travel_too() {
    let _c = common::clean();
    let pool = ProcessPool::new(2);
    let n: usize = pool
        .map_with(|()| 1usize, vec![(); 100], chunks(10))
        .map(Result::unwrap)
        .sum();
    assert_eq!(n, 100);
    let units = pool.submit(|n: usize| vec![(); n], 5).result_in_time();
    assert_eq!(units, Ok(vec![(); 5]));
}

mod handles {
    //! Handles (queues, locks, shared memory) in a task's or an
    //! initializer's argument reach the worker, as they reach a `Process`:
    //! Python's `Pool(initializer=init, initargs=(array,))`.
    use super::*;
    use multiproc::ipc::Queue;
    use multiproc::shared::{Array, Value};
    use std::sync::OnceLock;

    static TABLE: OnceLock<Array<u64>> = OnceLock::new();

    fn keep_table(table: Array<u64>) {
        let _ = TABLE.set(table);
    }

    fn lookup(i: usize) -> u64 {
        TABLE.get().expect("the initializer ran").get(i).unwrap()
    }

    #[test]
    fn an_initializer_gets_a_shared_array_and_tasks_read_it() {
        let _c = common::clean();
        let table = Array::new(&[10u64, 20, 30, 40]).unwrap();
        let pool = ProcessPool::builder()
            .max_workers(2)
            .initializer(keep_table, table.clone())
            .build()
            .unwrap();
        let got: Vec<u64> = pool.map(lookup, 0..4).map(Result::unwrap).collect();
        assert_eq!(got, [10, 20, 30, 40]);
        // It is the same memory: a change here is seen there.
        table.set(2, 99);
        let seen: HashSet<u64> = (0..8)
            .map(|_| pool.submit(lookup, 2).result_in_time().unwrap())
            .collect();
        assert_eq!(seen, HashSet::from([99]));
    }

    #[test]
    fn tasks_get_queues_and_shared_values() {
        let _c = common::clean();
        let pool = ProcessPool::new(2);
        let q = Queue::<u64>::new(64).unwrap();
        let count = Value::new(0u64).unwrap();
        let futures: Vec<_> = (0..20u64)
            .map(|x| {
                pool.submit(
                    |(x, q, count): (u64, Queue<u64>, Value<u64>)| {
                        q.put(&(x * x)).unwrap();
                        *count.get_lock().lock_timeout(common::DEADLINE).unwrap() += 1;
                    },
                    (x, q.clone(), count.clone()),
                )
            })
            .collect();
        for f in &futures {
            assert_eq!(f.result_in_time(), Ok(()));
        }
        let mut got: Vec<u64> = (0..20)
            .map(|_| q.get_timeout(common::DEADLINE).unwrap())
            .collect();
        got.sort();
        assert_eq!(got, (0..20u64).map(|x| x * x).collect::<Vec<_>>());
        assert_eq!(
            *count.get_lock().lock_timeout(common::DEADLINE).unwrap(),
            20
        );
        // A result cannot hold one: it says so.
        let back = pool.submit(|q: Queue<u64>| q, q.clone());
        match back.result_in_time() {
            Err(TaskError::Broken(why)) | Err(TaskError::Panicked { message: why, .. }) => {
                assert!(why.contains("cannot hold handles"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }
}

/// Counts its runs in `dir` (one file each); dies (abort) on the first
/// `deaths` runs, then returns how many runs it took.
fn dies_then_lives((dir, deaths): (String, usize)) -> usize {
    let runs = std::fs::read_dir(&dir).unwrap().count() + 1;
    std::fs::write(format!("{dir}/{runs}"), b"").unwrap();
    if runs <= deaths {
        std::process::abort();
    }
    runs
}

#[test]
fn a_task_asking_for_retries_runs_again_after_its_worker_dies() {
    let _c = common::clean();
    let pool = ProcessPool::new(2);
    let run = |name: &str, deaths: usize, retries: u32| {
        let dir = marker(name);
        std::fs::create_dir_all(&dir).unwrap();
        let f = pool.submit_with(
            dies_then_lives,
            (dir.clone(), deaths),
            TaskOptions::default().retries(retries),
        );
        let got = f.result_in_time();
        let runs = std::fs::read_dir(&dir).unwrap().count();
        let _ = std::fs::remove_dir_all(&dir);
        (got, runs)
    };
    // Dies twice, two retries: the third run returns.
    assert_eq!(run("retry-ok", 2, 2), (Ok(3), 3));
    // Dies three times, two retries: it fails as its last worker died.
    let (got, runs) = run("retry-out", 3, 2);
    assert!(matches!(got, Err(TaskError::WorkerDied { .. })), "{got:?}");
    assert_eq!(runs, 3);
    // No retries (the default): one run.
    let (got, runs) = run("retry-none", 1, 0);
    assert!(matches!(got, Err(TaskError::WorkerDied { .. })), "{got:?}");
    assert_eq!(runs, 1);
    // A deadline is not a death to retry.
    let slow = pool.submit_with(
        |()| std::thread::sleep(Duration::from_secs(60)),
        (),
        TaskOptions::timeout(Duration::from_millis(100)).retries(3),
    );
    assert!(matches!(
        slow.result_in_time(),
        Err(TaskError::DeadlineExceeded(_))
    ));
}

#[test]
fn stats_count_what_the_pool_did() {
    let _c = common::clean();
    let pool = ProcessPool::new(1);
    let ok: Vec<_> = (0..5u64).map(|x| pool.submit(square, x)).collect();
    for f in &ok {
        f.result_in_time().unwrap();
    }
    let dies = pool.submit(|()| -> u8 { std::process::abort() }, ());
    assert!(dies.result_in_time().is_err());
    // A task queued behind a long one, cancelled before it runs.
    let dir = marker("stats");
    let long = pool.submit(start_and_hang, dir.clone());
    wait_for(&dir);
    let waiting = pool.submit(square, 7);
    assert!(waiting.cancel());
    common::until("the pool counts it", || {
        let s = pool.stats();
        (s.succeeded, s.failed, s.running) == (5, 1, 1)
    });
    assert!(long.cancel());
    assert_eq!(long.result_in_time(), Err(TaskError::Cancelled));
    common::until("every task is counted", || {
        let s = pool.stats();
        (s.queued, s.running, s.cancelled) == (0, 0, 2) && s.workers_started >= 3
    });
    let s = pool.stats();
    assert_eq!((s.succeeded, s.failed), (5, 1));
    assert_eq!(s.workers, pool.worker_pids());
    let _ = std::fs::remove_file(&dir);
}
