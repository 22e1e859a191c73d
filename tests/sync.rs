//! Process-shared locks: exact counts across processes, a holder killed
//! while it holds the lock, panics, timeouts, handles refused for the
//! wrong type, nothing left behind.
mod common;
use common::JoinInTime;

use std::time::{Duration, Instant};

use multiproc::ipc::Pipe;
use multiproc::process::Process;
use multiproc::sync::{Lock, Mutex, PoisonCause, TryLockError};

#[test]
fn counter_decremented_by_processes_is_exact() {
    let _c = common::clean();
    let counter = Mutex::new(0i64).unwrap();
    let mut ps: Vec<_> = (0..3)
        .map(|_| {
            Process::start(
                |c: Mutex<i64>| {
                    for _ in 0..20_000 {
                        *c.lock().unwrap() -= 1;
                    }
                },
                counter.clone(),
            )
            .unwrap()
        })
        .collect();
    // Threads of this process join in on the same lock.
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..20_000 {
                    *counter.lock().unwrap() -= 1;
                }
            });
        }
    });
    for p in &mut ps {
        p.join_in_time().unwrap();
    }
    assert_eq!(*counter.lock().unwrap(), -100_000);
    assert!(!counter.is_poisoned());
}

#[test]
fn a_holder_killed_inside_the_lock_is_recovered() {
    let _c = common::clean();
    let data = Mutex::new([0u64; 4]).unwrap();
    let (here, there) = Pipe::duplex().unwrap();
    let mut holder = Process::start(
        |(m, conn): (Mutex<[u64; 4]>, multiproc::ipc::Connection)| {
            let mut g = m.lock().unwrap();
            g[0] = 1; // half an update...
            conn.send(&"holding").unwrap();
            std::thread::sleep(Duration::from_secs(60));
            g[1] = 1;
        },
        (data.clone(), there),
    )
    .unwrap();
    assert_eq!(here.recv::<String>().unwrap(), "holding");
    assert!(matches!(data.try_lock(), Err(TryLockError::WouldBlock)));
    // A waiter is already asleep when the holder dies.
    std::thread::scope(|s| {
        let waiter = s.spawn(|| match data.lock() {
            Err(p) => {
                assert_eq!(p.cause(), PoisonCause::OwnerDied);
                *p.into_inner()
            }
            Ok(_) => panic!("the lock of a dead holder came back clean"),
        });
        std::thread::sleep(Duration::from_millis(50));
        holder.kill().unwrap();
        assert_eq!(
            waiter.join_in_time().unwrap(),
            [1, 0, 0, 0],
            "the half update is visible"
        );
    });
    let _ = holder.join_in_time();
    // Poison stays until cleared; the lock itself is free and works.
    assert!(data.is_poisoned());
    assert!(data.lock().is_err());
    data.clear_poison();
    data.lock().unwrap()[1] = 1;
    assert_eq!(*data.lock().unwrap(), [1, 1, 0, 0]);
}

/// The counter's value, whether or not a dead holder poisoned it.
fn read(m: &Mutex<u64>) -> u64 {
    match m.lock() {
        Ok(g) => *g,
        Err(p) => *p.into_inner(),
    }
}

/// Three processes increment a counter under the lock as fast as they can;
/// one of them, picked at random, is SIGKILLed and replaced every round —
/// often while it holds the lock (the holder of the moment is killed with
/// odds of a third). After every kill the others go on (each
/// wait is bounded by the test's deadline, never by a timing threshold),
/// and at the end the lock is whole.
#[test]
fn holders_killed_in_a_tight_loop_never_strand_the_waiters() {
    let _c = common::clean();
    let counter = Mutex::new(0u64).unwrap();
    let start = |m: &Mutex<u64>| {
        Process::start(
            |m: Mutex<u64>| -> () {
                loop {
                    let mut g = match m.lock() {
                        Ok(g) => g,
                        Err(dead_holder) => dead_holder.into_inner(),
                    };
                    // Hold it a while: most kills land inside the lock.
                    *g += std::hint::black_box((0..200u64).sum::<u64>()) / 19_900;
                }
            },
            m.clone(),
        )
        .unwrap()
    };
    let mut lockers: Vec<_> = (0..3).map(|_| start(&counter)).collect();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..40 {
        let before = read(&counter);
        common::until("the lockers go on after a kill", || {
            read(&counter) >= before + 100
        });
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let victim = (seed % lockers.len() as u64) as usize;
        lockers[victim].kill().unwrap();
        let _ = lockers[victim].join_in_time();
        lockers[victim] = start(&counter);
    }
    for mut p in lockers {
        p.kill().unwrap();
        let _ = p.join_in_time();
    }
    let last = read(&counter);
    // A third of the kills strike the holder: 40 without one would take
    // odds of (2/3)^40, about 1 in 10^7.
    assert!(counter.is_poisoned(), "no holder died inside the lock");
    counter.clear_poison();
    *counter.lock().unwrap() += 1;
    assert_eq!(read(&counter), last + 1);
}

#[test]
fn a_dead_holder_found_by_a_later_locker() {
    // Nobody waits while the holder dies: the next try_lock notices.
    let _c = common::clean();
    let lock = Lock::new().unwrap();
    let mut p = Process::start(
        |l: Lock| -> () {
            std::mem::forget(l.lock().unwrap());
            std::process::abort();
        },
        lock.clone(),
    )
    .unwrap();
    assert!(p.join_in_time().is_err());
    match lock.try_lock() {
        Err(TryLockError::Poisoned(p)) => assert_eq!(p.cause(), PoisonCause::OwnerDied),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_panic_poisons_like_std() {
    let _c = common::clean();
    let m = Mutex::new(5u32).unwrap();
    let m2 = m.clone();
    let r = std::thread::spawn(move || {
        let _g = m2.lock().unwrap();
        panic!("inside the lock");
    })
    .join_in_time();
    assert!(r.is_err());
    match m.lock() {
        Err(p) => assert_eq!((p.cause(), *p.into_inner()), (PoisonCause::Panicked, 5)),
        Ok(_) => panic!("not poisoned"),
    }
}

#[test]
fn lock_timeout_waits_at_least_the_timeout() {
    let _c = common::clean();
    let lock = Lock::new().unwrap();
    let _held = lock.lock().unwrap();
    let other = lock.clone();
    std::thread::spawn(move || {
        let t = Instant::now();
        assert!(matches!(
            other.lock_timeout(Duration::from_millis(80)),
            Err(TryLockError::WouldBlock)
        ));
        assert!(t.elapsed() >= Duration::from_millis(80));
    })
    .join_in_time()
    .unwrap();
}

#[test]
fn a_handle_for_another_type_is_refused() {
    let _c = common::clean();
    let small = Mutex::new(1u8).unwrap();
    let frame = multiproc::codec::encode(&small, 1 << 20).unwrap();
    let r = multiproc::codec::decode::<Mutex<[u64; 64]>>(&frame.bytes[12..], frame.fds);
    let e = r.unwrap_err().to_string();
    assert!(e.contains("too small"), "{e}");
}

#[test]
fn nothing_is_left_in_dev_shm() {
    let _c = common::clean();
    let before: Vec<_> = std::fs::read_dir("/dev/shm").unwrap().collect();
    let m = Mutex::new(0u64).unwrap();
    let mut p = Process::start(|m: Mutex<u64>| *m.lock().unwrap() += 1, m.clone()).unwrap();
    p.join_in_time().unwrap();
    assert_eq!(*m.lock().unwrap(), 1);
    let after: Vec<_> = std::fs::read_dir("/dev/shm").unwrap().collect();
    assert_eq!(before.len(), after.len());
}

use multiproc::shared::Atomic;
use multiproc::sync::{Barrier, BarrierError, Condvar, Event, RLock, Semaphore};
use std::sync::atomic::{AtomicU32, Ordering};

#[test]
fn event_wakes_processes() {
    let _c = common::clean();
    let go = Event::new().unwrap();
    let mut ps: Vec<_> = (0..3)
        .map(|_| {
            Process::start(
                |go: Event| go.wait_timeout(Duration::from_secs(30)),
                go.clone(),
            )
            .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    assert!(!go.is_set());
    go.set();
    for p in &mut ps {
        assert!(p.join_in_time().unwrap());
    }
    go.clear();
    let t = Instant::now();
    assert!(!go.wait_timeout(Duration::from_millis(50)));
    assert!(t.elapsed() >= Duration::from_millis(50));
}

#[test]
fn semaphore_bounds_concurrent_processes() {
    let _c = common::clean();
    let slots = Semaphore::new(2).unwrap();
    let inside = Atomic::<AtomicU32>::new(0).unwrap();
    let most = Atomic::<AtomicU32>::new(0).unwrap();
    let mut ps: Vec<_> = (0..5)
        .map(|_| {
            Process::start(
                |(slots, inside, most): (Semaphore, Atomic<AtomicU32>, Atomic<AtomicU32>)| {
                    for _ in 0..20 {
                        let unit = slots.acquire();
                        let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(n, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_micros(200));
                        inside.fetch_sub(1, Ordering::SeqCst);
                        if n % 2 == 0 {
                            drop(unit);
                        } else {
                            unit.forget();
                            slots.release(1).unwrap();
                        }
                    }
                },
                (slots.clone(), inside.clone(), most.clone()),
            )
            .unwrap()
        })
        .collect();
    for p in &mut ps {
        p.join_in_time().unwrap();
    }
    assert!(most.load(Ordering::SeqCst) <= 2);
    assert_eq!(slots.available(), 2);
    let t = Instant::now();
    let held = Semaphore::new(0).unwrap();
    assert!(held.acquire_timeout(Duration::from_millis(50)).is_none());
    assert!(t.elapsed() >= Duration::from_millis(50));
    let bounded = Semaphore::bounded(1).unwrap();
    assert_eq!(bounded.release(1).unwrap_err().limit, 1);
    assert!(Semaphore::new(1usize << 33).is_err());
    assert!(Semaphore::bounded(0).is_err());
}

#[test]
fn condvar_between_processes() {
    let _c = common::clean();
    // A one-slot mailbox: 0 empty, else the value.
    let slot = Mutex::new(0u32).unwrap();
    let changed = Condvar::new().unwrap();
    let mut producer = Process::start(
        |(slot, changed): (Mutex<u32>, Condvar)| {
            for v in 1..=200u32 {
                let mut g = slot.lock().unwrap();
                while *g != 0 {
                    g = changed.wait(g).unwrap();
                }
                *g = v;
                changed.notify_all();
            }
        },
        (slot.clone(), changed.clone()),
    )
    .unwrap();
    let mut sum = 0;
    for _ in 0..200 {
        let mut g = slot.lock().unwrap();
        while *g == 0 {
            g = changed.wait(g).unwrap();
        }
        sum += *g;
        *g = 0;
        changed.notify_all();
    }
    producer.join_in_time().unwrap();
    assert_eq!(sum, 200 * 201 / 2);
    // A timed wait with nobody notifying times out, lock held again.
    let g = slot.lock().unwrap();
    let (g, timed_out) = changed.wait_timeout(g, Duration::from_millis(30)).unwrap();
    assert!(timed_out);
    assert_eq!(*g, 0);
}

#[test]
fn rlock_is_reentrant_and_robust() {
    let _c = common::clean();
    let lock = RLock::new().unwrap();
    let a = lock.lock().unwrap();
    let b = lock.try_lock().unwrap();
    assert_eq!(lock.depth(), 2);
    // Another process cannot take it meanwhile, and holds it 0 times.
    let mut p =
        Process::start(|l: RLock| (l.try_lock().is_err(), l.depth()), lock.clone()).unwrap();
    assert_eq!(p.join_in_time().unwrap(), (true, 0));
    // Nor can another thread of this process.
    std::thread::scope(|s| {
        let other = s.spawn(|| (lock.try_lock().is_err(), lock.depth()));
        assert_eq!(other.join_in_time().unwrap(), (true, 0));
    });
    drop(b);
    drop(a);
    // A holder that dies inside: the next locker is told.
    let (here, there) = Pipe::duplex().unwrap();
    let mut holder = Process::start(
        |(l, c): (RLock, multiproc::ipc::Connection)| {
            let _g = l.lock().unwrap();
            let _h = l.lock().unwrap();
            c.send(&()).unwrap();
            std::thread::sleep(Duration::from_secs(60));
        },
        (lock.clone(), there),
    )
    .unwrap();
    here.recv::<()>().unwrap();
    holder.kill().unwrap();
    let _ = holder.join_in_time();
    match lock.lock() {
        Err(p) => {
            assert_eq!(p.cause(), PoisonCause::OwnerDied);
            let g = p.into_inner();
            assert_eq!(lock.depth(), 1);
            drop(g);
        }
        Ok(_) => panic!("a dead holder's RLock came back clean"),
    }
    // Poisoned until declared consistent.
    assert!(lock.is_poisoned() && lock.lock_timeout(common::DEADLINE).is_err());
    lock.clear_poison();
    assert!(!lock.is_poisoned());
    assert_eq!(
        lock.lock_timeout(common::DEADLINE).map(|_| ()).ok(),
        Some(())
    );
}

#[test]
fn barrier_rounds_and_a_timeout_that_breaks_it() {
    let _c = common::clean();
    let b = Barrier::new(3).unwrap();
    let mut ps: Vec<_> = (0..2)
        .map(|_| {
            Process::start(
                |b: Barrier| {
                    (0..50)
                        .map(|_| b.wait_timeout(Duration::from_secs(30)).unwrap())
                        .collect::<Vec<usize>>()
                },
                b.clone(),
            )
            .unwrap()
        })
        .collect();
    let mine: Vec<usize> = (0..50)
        .map(|_| b.wait_timeout(Duration::from_secs(30)).unwrap())
        .collect();
    let theirs: Vec<Vec<usize>> = ps.iter_mut().map(|p| p.join_in_time().unwrap()).collect();
    // Every round, the three arrival indices are 0, 1 and 2.
    for round in 0..50 {
        let mut idx = [mine[round], theirs[0][round], theirs[1][round]];
        idx.sort();
        assert_eq!(idx, [0, 1, 2], "round {round}");
    }
    // Two of three arrive; the wait times out and breaks the barrier.
    let mut p = Process::start(|b: Barrier| b.wait(), b.clone()).unwrap();
    assert_eq!(
        b.wait_timeout(Duration::from_millis(100)),
        Err(BarrierError::Timeout)
    );
    assert_eq!(p.join_in_time().unwrap(), Err(BarrierError::Broken));
    assert!(b.is_broken());
    assert_eq!(b.wait(), Err(BarrierError::Broken));
    assert!(Barrier::new(0).is_err());
}

#[test]
fn set_then_clear_frees_the_processes_waiting_at_the_set() {
    let _c = common::clean();
    let e = Event::new().unwrap();
    let ready = Event::new().unwrap();
    let mut p = Process::start(
        |(e, ready): (Event, Event)| {
            ready.set();
            e.wait_timeout(Duration::from_secs(120))
        },
        (e.clone(), ready.clone()),
    )
    .unwrap();
    common::until("the waiter sleeps in its wait", || {
        ready.is_set() && common::asleep(p.pid(), p.pid())
    });
    e.set();
    e.clear();
    assert!(p.join_in_time().unwrap(), "the waiter missed the set");
    assert!(!e.is_set());
    assert!(Barrier::new(0).is_err());
}

#[test]
fn units_held_by_killed_processes_come_back() {
    let _c = common::clean();
    let slots = Semaphore::bounded(2).unwrap();
    for round in 0..25 {
        // Two holders take both units and are killed holding them (one
        // through its guard, one after `forget`).
        let (here, there) = Pipe::duplex().unwrap();
        let mut holder = Process::start(
            |(s, c): (Semaphore, multiproc::ipc::Connection)| {
                let _a = s.acquire();
                s.acquire().forget();
                c.send(&()).unwrap();
                std::thread::sleep(Duration::from_secs(60));
            },
            (slots.clone(), there),
        )
        .unwrap();
        here.recv_timeout::<()>(Duration::from_secs(60)).unwrap();
        assert_eq!(slots.available(), 0, "round {round}");
        holder.kill().unwrap();
        let _ = holder.join_in_time();
        // A waiter finds the dead holder's units and gets one.
        let a = slots
            .acquire_timeout(Duration::from_secs(60))
            .unwrap_or_else(|| panic!("round {round}: the units did not come back"));
        let b = slots.try_acquire().expect("the second unit came back too");
        drop((a, b));
        assert_eq!(slots.available(), 2, "round {round}: the count is intact");
    }
    // A unit given back by another process than the one that took it is
    // not returned twice when the taker dies.
    let s = Semaphore::bounded(1).unwrap();
    let mut taker = Process::start(
        |s: Semaphore| {
            s.acquire().forget();
        },
        s.clone(),
    )
    .unwrap();
    taker.join_in_time().unwrap();
    s.release(1).unwrap(); // released here, on the dead taker's behalf
    let held = s
        .acquire_timeout(Duration::from_millis(50))
        .expect("one unit");
    assert!(
        s.acquire_timeout(Duration::from_millis(50)).is_none(),
        "not two"
    );
    drop(held);
    assert_eq!(s.available(), 1);
}
