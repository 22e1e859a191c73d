//! The semantics of CPython's test_concurrent_futures (wait, as_completed,
//! cancel, callbacks, result with a timeout) on multiproc's futures.

mod common;
use common::{JoinInTime, ResultInTime};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use multiproc::executor::ThreadPool;
use multiproc::futures::{Future, ReturnWhen, TaskError, as_completed, as_completed_timeout, wait};
use multiproc::threading::{Event, Timer};

/// A task that runs until `gate` is set.
fn gated(pool: &ThreadPool, gate: &Arc<Event>, value: u32) -> Future<u32> {
    let gate = gate.clone();
    pool.submit(move || {
        gate.wait();
        value
    })
}

fn failing(pool: &ThreadPool) -> Future<u32> {
    pool.submit(|| panic!("failed on purpose"))
}

/// Waits (boundedly) until `f` is running.
fn until_running<T>(f: &Future<T>) {
    common::until("the task runs", || f.running());
}

#[test]
fn result_and_errors() {
    let pool = ThreadPool::new(2);
    assert_eq!(pool.submit(|| 5).result_in_time(), Ok(5));
    match failing(&pool).result_in_time() {
        Err(TaskError::Panicked { message, location }) => {
            assert_eq!(message, "failed on purpose");
            assert!(location.unwrap().contains("futures.rs"));
        }
        other => panic!("{other:?}"),
    }
    // Errors can be read many times; a value once.
    let f = failing(&pool);
    assert!(f.result_in_time().is_err());
    assert!(matches!(f.try_result(), Err(TaskError::Panicked { .. })));
    let f = pool.submit(|| String::from("once"));
    assert_eq!(f.result_in_time().unwrap(), "once");
    assert_eq!(f.result_in_time(), Err(TaskError::Retrieved));
}

#[test]
fn result_timeout_leaves_the_future_usable() {
    let pool = ThreadPool::new(1);
    let gate = Arc::new(Event::new());
    let f = gated(&pool, &gate, 7);
    let t = Instant::now();
    assert_eq!(
        f.result_timeout(Duration::from_millis(50)),
        Err(TaskError::Timeout)
    );
    assert!(t.elapsed() >= Duration::from_millis(50));
    assert_eq!(f.try_result(), Err(TaskError::Timeout));
    gate.set();
    assert_eq!(f.result_timeout(Duration::from_secs(30)), Ok(7));
}

#[test]
fn cancel_pending_running_and_done() {
    let pool = ThreadPool::new(1);
    let gate = Arc::new(Event::new());
    let running = gated(&pool, &gate, 1);
    let pending = pool.submit(|| 2);
    until_running(&running);
    assert!(pending.cancel());
    assert!(pending.cancel(), "cancelling twice still says cancelled");
    assert!(pending.cancelled() && pending.done() && !pending.running());
    assert!(
        !running.cancel(),
        "a running thread task cannot be cancelled"
    );
    assert!(!running.cancelled());
    gate.set();
    assert_eq!(running.result_in_time(), Ok(1));
    assert!(!running.cancel(), "a finished task cannot be cancelled");
    assert_eq!(pending.result_in_time(), Err(TaskError::Cancelled));
}

#[test]
fn callbacks_before_and_after_completion() {
    let pool = ThreadPool::new(1);
    let gate = Arc::new(Event::new());
    let f = gated(&pool, &gate, 3);
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    f.add_done_callback(move |r| tx.send(("before", r.copied().ok())).unwrap());
    assert!(rx.try_recv().is_err(), "not run before the task is done");
    gate.set();
    assert_eq!(rx.recv().unwrap(), ("before", Some(3)));
    wait([&f], ReturnWhen::AllCompleted, None);
    // Already done: runs at once, in this thread.
    let me = thread::current().id();
    let ran_here = Arc::new(Mutex::new(None));
    let r2 = ran_here.clone();
    f.add_done_callback(move |r| {
        *r2.lock().unwrap() = Some(thread::current().id());
        tx2.send(("after", r.copied().ok())).unwrap()
    });
    assert_eq!(rx.try_recv().unwrap(), ("after", Some(3)));
    assert_eq!(*ran_here.lock().unwrap(), Some(me));
    assert_eq!(f.result_in_time(), Ok(3));
}

#[test]
fn cancelling_runs_the_callbacks() {
    let pool = ThreadPool::new(1);
    let gate = Arc::new(Event::new());
    let _busy = gated(&pool, &gate, 0);
    let f = pool.submit(|| 1);
    let (tx, rx) = mpsc::channel();
    f.add_done_callback(move |r| tx.send(r.err().cloned()).unwrap());
    assert!(f.cancel());
    assert_eq!(rx.recv().unwrap(), Some(TaskError::Cancelled));
    gate.set();
}

#[test]
fn a_panicking_callback_is_contained() {
    let pool = ThreadPool::new(1);
    let f = pool.submit(|| 1);
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    f.add_done_callback(|_| panic!("callback failure (expected in this test)"));
    f.add_done_callback(move |_| {
        r.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(f.result_in_time(), Ok(1));
    assert_eq!(ran.load(Ordering::SeqCst), 1, "later callbacks still run");
    // The worker survived.
    assert_eq!(pool.submit(|| 2).result_in_time(), Ok(2));
}

#[test]
fn wait_first_completed() {
    let pool = ThreadPool::new(4);
    let gate = Arc::new(Event::new());
    let slow = gated(&pool, &gate, 1);
    let fast = pool.submit(|| 2);
    let w = wait([&slow, &fast], ReturnWhen::FirstCompleted, None);
    assert_eq!(w.done.len(), 1);
    assert!(std::ptr::eq(w.done[0], &fast));
    assert!(std::ptr::eq(w.not_done[0], &slow));
    gate.set();
}

#[test]
fn wait_first_exception() {
    let pool = ThreadPool::new(4);
    let gate = Arc::new(Event::new());
    let slow = gated(&pool, &gate, 1);
    let ok = pool.submit(|| 2);
    let bad = failing(&pool);
    let w = wait([&slow, &ok, &bad], ReturnWhen::FirstException, None);
    assert!(w.done.iter().any(|f| std::ptr::eq(*f, &bad)));
    assert!(w.not_done.iter().any(|f| std::ptr::eq(*f, &slow)));
    gate.set();
    // With no failure it is ALL_COMPLETED; a cancellation is not a failure.
    let gate = Arc::new(Event::new());
    let a = gated(&pool, &gate, 1);
    let b = pool.submit(|| 2);
    let c = cancelled(&pool, &gate);
    let opener = {
        let gate = gate.clone();
        Timer::start(Duration::from_millis(20), move || gate.set())
    };
    let w = wait([&a, &b, &c], ReturnWhen::FirstException, None);
    assert_eq!((w.done.len(), w.not_done.len()), (3, 0));
    opener.result_in_time().unwrap();
}

/// A cancelled future: a task queued behind gated ones, cancelled.
fn cancelled(pool: &ThreadPool, gate: &Arc<Event>) -> Future<u32> {
    let _blockers: Vec<_> = (0..pool.max_workers())
        .map(|_| gated(pool, gate, 0))
        .collect();
    let f = pool.submit(|| 9);
    assert!(f.cancel());
    f
}

#[test]
fn wait_all_completed_with_timeout_and_duplicates() {
    let pool = ThreadPool::new(2);
    let gate = Arc::new(Event::new());
    let slow = gated(&pool, &gate, 1);
    let fast = pool.submit(|| 2);
    fast.result_timeout(Duration::from_secs(30)).unwrap();
    let t = Instant::now();
    let w = wait(
        [&slow, &fast, &fast],
        ReturnWhen::AllCompleted,
        Some(Duration::from_millis(50)),
    );
    assert!(t.elapsed() >= Duration::from_millis(50));
    assert_eq!(
        (w.done.len(), w.not_done.len()),
        (1, 1),
        "duplicates removed"
    );
    gate.set();
    let w = wait(vec![slow, fast], ReturnWhen::AllCompleted, None);
    assert_eq!(w.done.len(), 2);
}

#[test]
fn wait_on_nothing_returns_at_once() {
    let w = wait(Vec::<Future<u8>>::new(), ReturnWhen::AllCompleted, None);
    assert!(w.done.is_empty() && w.not_done.is_empty());
}

#[test]
fn as_completed_yields_done_first_then_in_completion_order() {
    let pool = ThreadPool::new(4);
    let gates: Vec<_> = (0..3).map(|_| Arc::new(Event::new())).collect();
    let done = pool.submit(|| 100);
    done.result_timeout(Duration::from_secs(30)).ok();
    // `done` had its value taken; it is still done.
    let futures: Vec<_> = gates
        .iter()
        .enumerate()
        .map(|(i, g)| gated(&pool, g, i as u32))
        .collect();
    let mut it = as_completed([&futures[0], &futures[1], &done, &futures[2], &done]);
    assert!(
        std::ptr::eq(it.next().unwrap(), &done),
        "already done comes first"
    );
    for i in [2, 0, 1] {
        gates[i].set();
        let f = it.next().unwrap();
        assert!(std::ptr::eq(f, &futures[i]));
        assert_eq!(f.result_in_time(), Ok(i as u32));
    }
    assert!(it.next().is_none(), "the duplicate was removed");
}

#[test]
fn as_completed_timeout_stops_at_the_deadline() {
    let pool = ThreadPool::new(2);
    let gate = Arc::new(Event::new());
    let slow = gated(&pool, &gate, 1);
    let fast = pool.submit(|| 2);
    let t = Instant::now();
    let mut it = as_completed_timeout(vec![slow, fast], Duration::from_millis(50));
    assert_eq!(it.next().unwrap().unwrap().result_in_time(), Ok(2));
    assert_eq!(it.next().unwrap().unwrap_err(), TaskError::Timeout);
    assert!(t.elapsed() >= Duration::from_millis(50));
    assert!(it.next().is_none());
    let rest = it.into_remaining();
    assert_eq!(rest.len(), 1);
    gate.set();
    assert_eq!(rest[0].result_in_time(), Ok(1));
}

#[test]
fn wait_and_as_completed_from_many_threads() {
    // Many waiters on the same futures; every one returns, none hangs.
    let pool = Arc::new(ThreadPool::new(2));
    let futures: Arc<Vec<Future<usize>>> = Arc::new(
        (0..200)
            .map(|i| {
                pool.submit(move || {
                    thread::yield_now();
                    i
                })
            })
            .collect(),
    );
    let waiters: Vec<_> = (0..4)
        .map(|k| {
            let futures = futures.clone();
            thread::spawn(move || {
                if k % 2 == 0 {
                    wait(futures.iter(), ReturnWhen::AllCompleted, None)
                        .done
                        .len()
                } else {
                    as_completed(futures.iter()).count()
                }
            })
        })
        .collect();
    for w in waiters {
        assert_eq!(w.join_in_time().unwrap(), 200);
    }
}

struct Unpark(thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// A minimal executor for `.await`: polls on this thread, parks in between.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        thread::park();
    }
}

#[test]
fn await_works_without_a_runtime() {
    let pool = ThreadPool::new(2);
    let gate = Arc::new(Event::new());
    let f = gated(&pool, &gate, 11);
    let g = pool.submit(|| 31);
    let opener = {
        let gate = gate.clone();
        Timer::start(Duration::from_millis(20), move || gate.set())
    };
    let sum = block_on(async { f.await.unwrap() + g.await.unwrap() });
    assert_eq!(sum, 42);
    opener.result_in_time().unwrap();
}

#[test]
fn stress_cancel_races_with_start() {
    // A task runs if and only if cancel() said false; never both, never
    // neither.
    let pool = ThreadPool::new(2);
    let ran: Arc<Vec<AtomicUsize>> = Arc::new((0..20_000).map(|_| AtomicUsize::new(0)).collect());
    let futures: Vec<_> = (0..20_000)
        .map(|i| {
            let ran = ran.clone();
            pool.submit(move || {
                ran[i].fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    let cancelled: Vec<bool> = futures.iter().map(|f| f.cancel()).collect();
    pool.shutdown(true, false);
    for (i, f) in futures.iter().enumerate() {
        let runs = ran[i].load(Ordering::SeqCst);
        if cancelled[i] {
            assert_eq!(runs, 0, "task {i} was cancelled yet ran");
            assert_eq!(f.result_in_time(), Err(TaskError::Cancelled));
        } else {
            assert_eq!(runs, 1, "task {i} was not cancelled yet did not run once");
            assert_eq!(f.result_in_time(), Ok(()));
        }
    }
}

#[test]
fn stress_callbacks_race_with_completion() {
    // Callbacks added while the task completes each run exactly once.
    let pool = ThreadPool::new(2);
    let calls = Arc::new(AtomicUsize::new(0));
    let futures: Vec<_> = (0..5_000).map(|i| pool.submit(move || i)).collect();
    for f in &futures {
        for _ in 0..2 {
            let calls = calls.clone();
            f.add_done_callback(move |r| {
                assert!(r.is_ok());
                calls.fetch_add(1, Ordering::SeqCst);
            });
        }
    }
    let w = wait(&futures, ReturnWhen::AllCompleted, None);
    assert!(w.not_done.is_empty());
    // Every callback ran before its future was marked done.
    assert_eq!(calls.load(Ordering::SeqCst), 10_000);
}

#[test]
fn waiting_while_a_late_callback_has_the_value() {
    // A callback added to a done future runs in the adding thread; a wait
    // and an .await that begin meanwhile still return once it is over.
    let pool = ThreadPool::new(1);
    let f = Arc::new(pool.submit(|| 5));
    wait([&*f], ReturnWhen::AllCompleted, None);
    let inside = Arc::new(Event::new());
    let adder = {
        let (f, inside) = (f.clone(), inside.clone());
        thread::spawn(move || {
            f.add_done_callback(move |r| {
                assert_eq!(r, Ok(&5));
                inside.set();
                thread::sleep(Duration::from_millis(50));
            })
        })
    };
    inside.wait();
    let w = wait(
        [&*f],
        ReturnWhen::AllCompleted,
        Some(Duration::from_secs(20)),
    );
    assert_eq!(
        w.done.len(),
        1,
        "the wait was told when the value came back"
    );
    adder.join_in_time().unwrap();
    assert_eq!(f.result_in_time(), Ok(5));
}

#[test]
fn first_exception_ignores_a_cancellation_during_the_wait() {
    let pool = ThreadPool::new(1);
    let gate = Arc::new(Event::new());
    let a = Arc::new(gated(&pool, &gate, 1));
    let c = Arc::new(pool.submit(|| 2));
    let waiter = {
        let (a, c) = (a.clone(), c.clone());
        thread::spawn(move || {
            let w = wait([&*a, &*c], ReturnWhen::FirstException, None);
            (w.done.len(), a.done())
        })
    };
    thread::sleep(Duration::from_millis(20));
    assert!(c.cancel());
    thread::sleep(Duration::from_millis(20));
    gate.set();
    assert_eq!(
        waiter.join_in_time().unwrap(),
        (2, true),
        "returned only when all were done"
    );
}
