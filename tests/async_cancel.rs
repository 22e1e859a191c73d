//! Futures in an async runtime (tokio, current-thread): a future given up
//! on under `timeout` or `select!` stops its task when it was made to
//! `cancel_on_drop`, and leaves it running otherwise.

mod common;
use common::{DEADLINE, ResultInTime, until};

use std::sync::mpsc;
use std::time::Duration;

use multiproc::executor::ProcessPool;
use multiproc::futures::TaskError;

fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// Whether `pid` has ended (gone, or a zombie not reaped yet).
fn ended(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
        s.rsplit_once(')').is_some_and(|(_, s)| s.starts_with(" Z"))
    })
}

#[test]
fn a_running_task_given_up_under_timeout_is_stopped() {
    let _c = common::clean();
    let pool = ProcessPool::new(1);
    until("the worker starts", || pool.worker_pids().len() == 1);
    let worker = pool.worker_pids()[0];
    let f = pool.submit(nap, 600_000).cancel_on_drop();
    let (tx, rx) = mpsc::channel();
    f.add_done_callback(move |o| {
        let _ = tx.send(o.err().cloned());
    });
    until("the task runs", || f.running());
    let waited =
        runtime().block_on(async { tokio::time::timeout(Duration::from_millis(100), f).await });
    assert!(waited.is_err(), "the task cannot be done in 100 ms");
    assert_eq!(
        rx.recv_timeout(DEADLINE).unwrap(),
        Some(TaskError::Cancelled)
    );
    until("the worker that ran it is killed", || ended(worker));
    assert_eq!(pool.submit(nap, 1).result_in_time(), Ok(1));
}

#[test]
fn select_cancels_the_losing_task_and_keeps_the_winner() {
    let _c = common::clean();
    let pool = ProcessPool::new(2);
    let (tx, rx) = mpsc::channel();
    let winner = runtime().block_on(async {
        let slow = pool.submit(nap, 600_000).cancel_on_drop();
        slow.add_done_callback(move |o| {
            let _ = tx.send(o.err().cloned());
        });
        let fast = pool.submit(nap, 10).cancel_on_drop();
        tokio::select! {
            r = slow => r,
            r = fast => r,
        }
    });
    assert_eq!(winner, Ok(10));
    assert_eq!(
        rx.recv_timeout(DEADLINE).unwrap(),
        Some(TaskError::Cancelled)
    );
}

#[test]
fn a_plain_future_dropped_leaves_its_task_running_and_detach_disarms() {
    let _c = common::clean();
    let pool = ProcessPool::new(1);
    let (tx, rx) = mpsc::channel();
    let f = pool.submit(nap, 200);
    f.add_done_callback(move |o| {
        let _ = tx.send(o.ok().copied());
    });
    let r = runtime().block_on(async { tokio::time::timeout(Duration::from_millis(1), f).await });
    assert!(r.is_err());
    assert_eq!(
        rx.recv_timeout(DEADLINE).unwrap(),
        Some(200),
        "it ran to its end"
    );
    let (tx, rx) = mpsc::channel();
    let f = pool.submit(nap, 50).cancel_on_drop();
    f.add_done_callback(move |o| {
        let _ = tx.send(o.ok().copied());
    });
    drop(f.detach());
    assert_eq!(rx.recv_timeout(DEADLINE).unwrap(), Some(50));
}
