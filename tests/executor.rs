//! The `Executor` contract: the same steps on the thread pool and on the
//! process pool give the same answers.

mod common;
use common::{ResultInTime, until};

use std::path::Path;

use multiproc::executor::{Executor, MapOptions, ProcessPool, ThreadPool};
use multiproc::futures::TaskError;

/// Says it started (a file), then waits for the test's go (another file).
fn started_then_wait(dir: String) -> u32 {
    std::fs::write(format!("{dir}/started"), b"").unwrap();
    common::until("the test says go", || {
        Path::new(&format!("{dir}/go")).exists()
    });
    7
}

fn square(x: u64) -> u64 {
    x * x
}

fn fresh_dir(what: &str) -> String {
    let dir = std::env::temp_dir().join(common::unique_name(what).trim_start_matches('@'));
    std::fs::create_dir_all(&dir).unwrap();
    dir.display().to_string()
}

/// Python's `shutdown(cancel_futures=True)`: the running task finishes, the
/// others are cancelled — `cancelled()` and `Cancelled` — on either pool.
fn shutdown_cancels_what_has_not_started(pool: &impl Executor, what: &str) {
    let dir = fresh_dir(what);
    let running = pool.submit(started_then_wait, dir.clone());
    until("the first task runs", || {
        Path::new(&format!("{dir}/started")).exists()
    });
    let waiting: Vec<_> = (0..6u64).map(|x| pool.submit(square, x)).collect();
    pool.shutdown(false, true);
    std::fs::write(format!("{dir}/go"), b"").unwrap();
    assert_eq!(running.result_in_time(), Ok(7), "{what}");
    for f in &waiting {
        assert!(f.cancelled(), "{what}");
        assert_eq!(f.result_in_time(), Err(TaskError::Cancelled), "{what}");
    }
    assert_eq!(
        pool.submit(square, 2).result_in_time(),
        Err(TaskError::ShutDown),
        "{what}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shutdown_with_cancel_futures_cancels_on_both_pools() {
    let _c = common::clean();
    shutdown_cancels_what_has_not_started(&ThreadPool::new(1), "threads");
    shutdown_cancels_what_has_not_started(&ProcessPool::new(1), "processes");
}

fn sum_of_squares(pool: &impl Executor) -> u64 {
    pool.map_with(square, 0..100u64, MapOptions::default().chunksize(7))
        .map(Result::unwrap)
        .sum()
}

#[test]
fn code_written_against_the_trait_runs_on_both() {
    let _c = common::clean();
    let expected: u64 = (0..100u64).map(square).sum();
    assert_eq!(sum_of_squares(&ThreadPool::new(2)), expected);
    assert_eq!(sum_of_squares(&ProcessPool::new(2)), expected);
}

/// A pool dropped while its thread unwinds: the running task finishes, the
/// waiting ones are cancelled (not run), on either pool.
fn a_panic_drops_the_pool<P: Executor + Send + 'static>(pool: P, what: &str) {
    let dir = fresh_dir(what);
    let (tx, rx) = std::sync::mpsc::channel();
    let d = dir.clone();
    let unwinding = std::thread::spawn(move || {
        let running = pool.submit(started_then_wait, d.clone());
        until("the first task runs", || {
            Path::new(&format!("{d}/started")).exists()
        });
        let waiting: Vec<_> = (0..4u64).map(|x| pool.submit(square, x)).collect();
        tx.send((running, waiting)).unwrap();
        panic!("the caller fails");
    });
    let (running, waiting) = rx.recv_timeout(common::DEADLINE).unwrap();
    // The drop cancels the waiting ones while the first still runs.
    for f in &waiting {
        assert_eq!(f.result_in_time(), Err(TaskError::Cancelled), "{what}");
    }
    std::fs::write(format!("{dir}/go"), b"").unwrap();
    common::JoinInTime::join_in_time(unwinding).unwrap_err();
    assert_eq!(running.result_in_time(), Ok(7), "{what}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_pool_dropped_in_a_panic_cancels_what_waits_on_both_pools() {
    let _c = common::clean();
    a_panic_drops_the_pool(ThreadPool::new(1), "threads");
    a_panic_drops_the_pool(ProcessPool::new(1), "processes");
}
