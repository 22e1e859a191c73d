//! Event, Semaphore, BoundedSemaphore, Barrier and Timer.

mod common;
use common::{JoinInTime, ResultInTime};

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use multiproc::futures::TaskError;
use multiproc::threading::{
    Barrier, BarrierError, BoundedSemaphore, Event, OverRelease, Semaphore, Timer,
};

const SHORT: Duration = Duration::from_millis(30);

static STATIC_EVENT: Event = Event::new();
static STATIC_SEMAPHORE: Semaphore = Semaphore::new(1);

#[test]
fn event_wakes_every_waiter_and_clears() {
    let e = Arc::new(Event::new());
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let e = e.clone();
            thread::spawn(move || e.wait_timeout(Duration::from_secs(20)))
        })
        .collect();
    thread::sleep(SHORT);
    e.set();
    assert!(waiters.into_iter().all(|w| w.join_in_time().unwrap()));
    e.clear();
    assert!(!e.is_set());
    let t = Instant::now();
    assert!(!e.wait_timeout(SHORT));
    assert!(t.elapsed() >= SHORT);
    STATIC_EVENT.set();
    STATIC_EVENT.wait();
}

#[test]
fn semaphore_bounds_concurrency() {
    let sem = Arc::new(Semaphore::new(3));
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..12)
        .map(|_| {
            let (sem, inside, most) = (sem.clone(), inside.clone(), most.clone());
            thread::spawn(move || {
                for _ in 0..200 {
                    let _permit = sem.acquire();
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    thread::yield_now();
                    inside.fetch_sub(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join_in_time().unwrap());
    assert!(most.load(Ordering::SeqCst) <= 3);
    assert_eq!(sem.available(), 3);
}

#[test]
fn semaphore_try_timeout_and_manual_release() {
    let sem = Semaphore::new(1);
    let held = sem.try_acquire().unwrap();
    assert!(sem.try_acquire().is_none());
    let t = Instant::now();
    assert!(sem.acquire_timeout(SHORT).is_none());
    assert!(t.elapsed() >= SHORT);
    held.forget();
    assert_eq!(sem.available(), 0);
    sem.release(2); // a plain semaphore may grow
    assert_eq!(sem.available(), 2);
    let _a = STATIC_SEMAPHORE.acquire();
}

#[test]
fn bounded_semaphore_refuses_over_release() {
    let sem = BoundedSemaphore::new(2);
    assert_eq!(sem.release(1), Err(OverRelease { limit: 2 }));
    sem.acquire().forget();
    sem.acquire().forget();
    assert_eq!(sem.release(3), Err(OverRelease { limit: 2 }));
    assert_eq!(sem.available(), 0, "a refused release changes nothing");
    assert_eq!(sem.release(2), Ok(()));
    assert_eq!(sem.release(usize::MAX), Err(OverRelease { limit: 2 }));
    // A guard releases what it took, never more.
    drop(sem.acquire());
    assert_eq!(sem.available(), 2);
}

#[test]
fn barrier_rounds_and_action() {
    let rounds = Arc::new(AtomicUsize::new(0));
    let r = rounds.clone();
    let b = Arc::new(Barrier::with_action(3, move || {
        r.fetch_add(1, Ordering::SeqCst);
    }));
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let b = b.clone();
            thread::spawn(move || (0..50).map(|_| b.wait().unwrap()).collect::<Vec<_>>())
        })
        .collect();
    let indices: Vec<Vec<usize>> = threads
        .into_iter()
        .map(|t| t.join_in_time().unwrap())
        .collect();
    assert_eq!(rounds.load(Ordering::SeqCst), 50);
    for round in 0..50 {
        let mut idx: Vec<usize> = indices.iter().map(|v| v[round]).collect();
        idx.sort();
        assert_eq!(idx, [0, 1, 2]);
    }
    assert_eq!(b.n_waiting(), 0);
    assert_eq!(b.parties(), 3);
}

#[test]
fn barrier_timeout_breaks_it_for_everyone() {
    let b = Arc::new(Barrier::new(3));
    let other = {
        let b = b.clone();
        thread::spawn(move || b.wait())
    };
    thread::sleep(SHORT);
    assert_eq!(b.wait_timeout(SHORT), Err(BarrierError::Timeout));
    assert_eq!(other.join_in_time().unwrap(), Err(BarrierError::Broken));
    assert!(b.is_broken());
    assert_eq!(b.wait(), Err(BarrierError::Broken));
}

#[test]
fn barrier_abort_and_reset() {
    let b = Arc::new(Barrier::new(2));
    let waiter = {
        let b = b.clone();
        thread::spawn(move || b.wait())
    };
    while b.n_waiting() == 0 {
        thread::yield_now();
    }
    b.abort();
    assert_eq!(waiter.join_in_time().unwrap(), Err(BarrierError::Broken));
    b.reset();
    assert!(!b.is_broken());
    // Reset with a waiter: it is told the round is broken; the barrier works on.
    let waiter = {
        let b = b.clone();
        thread::spawn(move || b.wait())
    };
    while b.n_waiting() == 0 {
        thread::yield_now();
    }
    b.reset();
    assert_eq!(waiter.join_in_time().unwrap(), Err(BarrierError::Broken));
    let pair = {
        let b = b.clone();
        thread::spawn(move || b.wait())
    };
    assert!(b.wait().is_ok());
    assert!(pair.join_in_time().unwrap().is_ok());
}

#[test]
fn barrier_action_panic_breaks_it() {
    let b = Arc::new(Barrier::with_action(2, || {
        panic!("action failed (expected in this test)")
    }));
    let other = {
        let b = b.clone();
        thread::spawn(move || b.wait())
    };
    let mine = b.wait();
    let theirs = other.join_in_time().unwrap();
    assert_eq!(
        [mine, theirs],
        [Err(BarrierError::Broken), Err(BarrierError::Broken)]
    );
    assert!(b.is_broken());
}

#[test]
fn timer_runs_after_the_interval() {
    let t = Instant::now();
    let timer = Timer::start(SHORT, move || t.elapsed());
    let waited = timer.result_in_time().unwrap();
    assert!(waited >= SHORT);
    assert!(timer.is_finished());
    assert!(!timer.cancel(), "too late to cancel");
}

#[test]
fn timer_cancel_and_panic() {
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let timer = Timer::start(Duration::from_secs(60), move || {
        r.fetch_add(1, Ordering::SeqCst);
    });
    assert!(timer.cancel());
    assert_eq!(timer.result_in_time(), Err(TaskError::Cancelled));
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    let bad = Timer::start(Duration::ZERO, || -> u8 { panic!("timer task failed") });
    assert!(
        matches!(bad.result_in_time(), Err(TaskError::Panicked { message, .. }) if message == "timer task failed")
    );
}

#[test]
fn set_then_clear_frees_the_threads_waiting_at_the_set() {
    // Python's contract (gh-57711): whoever waits when `set` is called
    // returns true, even if the flag is cleared before it looks.
    let e = Arc::new(Event::new());
    let tid = Arc::new(std::sync::atomic::AtomicI32::new(0));
    let waiter = {
        let (e, tid) = (e.clone(), tid.clone());
        thread::spawn(move || {
            // SAFETY: gettid has no preconditions.
            tid.store(unsafe { libc::gettid() }, Ordering::SeqCst);
            e.wait_timeout(common::DEADLINE)
        })
    };
    common::until("the waiter sleeps in its wait", || {
        let t = tid.load(Ordering::SeqCst);
        t != 0 && common::asleep(std::process::id(), t as u32)
    });
    e.set();
    e.clear();
    assert!(waiter.join_in_time().unwrap(), "the waiter missed the set");
}

#[test]
#[should_panic(expected = "at least one party")]
fn a_barrier_of_no_parties_is_refused() {
    let _ = Barrier::new(0);
}
