//! Process-shared locks: exact counts across processes, a holder killed
//! while it holds the lock, panics, timeouts, handles refused for the
//! wrong type, nothing left behind.
mod common;

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
        p.join().unwrap();
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
            waiter.join().unwrap(),
            [1, 0, 0, 0],
            "the half update is visible"
        );
    });
    let _ = holder.join();
    // Poison stays until cleared; the lock itself is free and works.
    assert!(data.is_poisoned());
    assert!(data.lock().is_err());
    data.clear_poison();
    data.lock().unwrap()[1] = 1;
    assert_eq!(*data.lock().unwrap(), [1, 1, 0, 0]);
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
    assert!(p.join().is_err());
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
    .join();
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
    .join()
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
    p.join().unwrap();
    assert_eq!(*m.lock().unwrap(), 1);
    let after: Vec<_> = std::fs::read_dir("/dev/shm").unwrap().collect();
    assert_eq!(before.len(), after.len());
}
