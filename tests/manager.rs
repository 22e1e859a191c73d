//! Managers: objects served by a process to other processes — counters
//! that lose nothing, proxies through pools and forks, a TCP manager with
//! a wrong and a right key, a server killed mid-call, a client killed
//! holding a lock or waiting on a queue, a thousand proxies at once.
mod common;
use common::{DEADLINE, JoinInTime, ResultInTime};

use std::time::Duration;

use multiproc::executor::ProcessPool;
use multiproc::ipc::{AuthError, ConnectError};
use multiproc::manager::{Dict, Event, Lock, Manager, ManagerError, Queue, Served};
use multiproc::process::{Process, StartMethod};
use serde::{Deserialize, Serialize};

#[test]
fn four_processes_incrementing_one_dict_lose_nothing() {
    let _c = common::clean();
    let manager = Manager::start().unwrap();
    let counts = manager.dict::<u32, u64>().unwrap();
    let tallies = manager.dict::<u32, Vec<u32>>().unwrap();
    fn work((me, counts, tallies): (u32, Dict<u32, u64>, Dict<u32, Vec<u32>>)) {
        for i in 0..320u32 {
            counts.increment(&(i % 8), 1).unwrap();
            if i % 10 == 0 {
                // Any closure, applied atomically by compare-and-swap.
                counts.update(&100, |v| v.unwrap_or(0) + 2).unwrap();
                tallies.push(&(i % 3), &me).unwrap();
            }
        }
    }
    let mut ps: Vec<_> = (0..4)
        .map(|me| Process::start(work, (me, counts.clone(), tallies.clone())).unwrap())
        .collect();
    for p in &mut ps {
        p.join_in_time().unwrap();
    }
    for k in 0..8 {
        assert_eq!(counts.get(&k).unwrap(), Some(4 * 40), "key {k}");
    }
    assert_eq!(counts.get(&100).unwrap(), Some(4 * 32 * 2));
    let pushed: usize = tallies.values().unwrap().iter().map(Vec::len).sum();
    assert_eq!(pushed, 4 * 32);
    assert_eq!(counts.len().unwrap(), 9);
}

#[test]
fn every_object_kind_behaves_like_its_python_counterpart() {
    let _c = common::clean();
    let manager = Manager::start().unwrap();

    let d = manager.dict::<String, i32>().unwrap();
    assert_eq!(d.insert(&"a".into(), &1).unwrap(), None);
    assert_eq!(d.insert(&"a".into(), &2).unwrap(), Some(1));
    d.insert_many([(&"b".to_string(), &3), (&"c".to_string(), &4)])
        .unwrap();
    assert_eq!(
        d.get_many([&"a".to_string(), &"zz".to_string(), &"c".to_string()])
            .unwrap(),
        [Some(2), None, Some(4)]
    );
    assert!(d.contains_key(&"b".into()).unwrap());
    assert_eq!(d.remove(&"b".into()).unwrap(), Some(3));
    assert_eq!(d.get_or_insert(&"a".into(), &9).unwrap(), 2);
    assert_eq!(d.get_or_insert(&"n".into(), &9).unwrap(), 9);
    assert_eq!(
        d.compare_and_swap(&"a".into(), Some(&5), Some(&6)).unwrap(),
        Err(Some(2))
    );
    assert_eq!(
        d.compare_and_swap(&"a".into(), Some(&2), None).unwrap(),
        Ok(())
    );
    let mut keys = d.keys().unwrap();
    keys.sort();
    assert_eq!(keys, ["c", "n"]);
    let mut items = d.items().unwrap();
    items.sort();
    assert_eq!(items, [("c".to_string(), 4), ("n".to_string(), 9)]);
    d.clear().unwrap();
    assert!(d.is_empty().unwrap());

    let words = manager.dict::<u8, String>().unwrap();
    assert_eq!(words.push_str(&1, "ab").unwrap(), 2);
    assert_eq!(words.push_str(&1, "cd").unwrap(), 4);
    assert_eq!(words.get(&1).unwrap().as_deref(), Some("abcd"));

    let small = manager.dict::<u8, u8>().unwrap();
    small.insert(&0, &250).unwrap();
    assert!(matches!(
        small.increment(&0, 10),
        Err(ManagerError::Update(_))
    ));
    assert_eq!(small.get(&0).unwrap(), Some(250), "nothing stored");

    let l = manager.list::<u32>().unwrap();
    l.extend(&[1, 2, 3]).unwrap();
    l.set(1, &20).unwrap();
    assert_eq!(l.remove(0).unwrap(), 1);
    assert_eq!(l.to_vec().unwrap(), [20, 3]);
    assert!(matches!(
        l.insert(3, &0),
        Err(ManagerError::IndexOutOfRange { index: 3, len: 2 })
    ));
    l.clear().unwrap();
    assert_eq!(l.pop().unwrap(), None);

    let v = manager.value(&1.5f64).unwrap();
    assert_eq!(v.increment(1.0).unwrap(), 2.5);
    assert_eq!(v.compare_and_swap(&0.0, &1.0).unwrap(), Err(2.5));
    assert_eq!(v.compare_and_swap(&2.5, &1.0).unwrap(), Ok(()));
    assert_eq!(v.get().unwrap(), 1.0);

    let e = manager.event().unwrap();
    assert!(!e.wait_timeout(Duration::ZERO).unwrap());
    e.set().unwrap();
    assert!(e.wait_timeout(DEADLINE).unwrap());
    e.clear().unwrap();
    assert!(!e.is_set().unwrap());

    // Objects are found by name, by kind; another kind of the same name
    // is refused.
    let q = manager.named("jobs").queue::<u32>(0).unwrap();
    q.put(&7).unwrap();
    let same = manager.named("jobs").queue::<u32>(0).unwrap();
    assert_eq!(same.get_timeout(DEADLINE).unwrap(), 7);
    assert!(matches!(
        manager.named("jobs").dict::<u32, u32>(),
        Err(ManagerError::WrongKind { .. })
    ));

    // A deleted object is gone for every proxy.
    let gone = q.clone();
    q.delete().unwrap();
    assert!(matches!(gone.len(), Err(ManagerError::NoSuchObject(_))));
}

#[test]
fn a_proxy_travels_through_a_pool_task_and_a_fork() {
    let _c = common::clean();
    let manager = Manager::start().unwrap();
    let seen = manager.dict::<u64, u64>().unwrap();
    let pool = ProcessPool::new(2);
    let futures: Vec<_> = (0..20u64)
        .map(|i| {
            pool.submit(
                |(i, seen): (u64, Dict<u64, u64>)| {
                    seen.insert(&i, &(i * i)).unwrap();
                    seen.len().unwrap()
                },
                (i, seen.clone()),
            )
        })
        .collect();
    for f in &futures {
        assert!(f.result_in_time().unwrap() >= 1);
    }
    pool.shutdown(true, false);
    assert_eq!(seen.len().unwrap(), 20);
    assert_eq!(seen.get(&7).unwrap(), Some(49));

    // A forked child shares no connection with its parent: both use the
    // manager at once.
    seen.clear().unwrap();
    let mut child = Process::builder()
        .start_method(StartMethod::Fork)
        .start(
            |seen: Dict<u64, u64>| {
                for i in 0..200 {
                    seen.increment(&0, 1).unwrap();
                    seen.insert(&(i + 1), &i).unwrap();
                }
            },
            seen.clone(),
        )
        .unwrap();
    for _ in 0..200 {
        seen.increment(&0, 1).unwrap();
    }
    child.join_in_time().unwrap();
    assert_eq!(seen.get(&0).unwrap(), Some(400));
}

#[test]
fn a_tcp_manager_refuses_a_wrong_key_and_serves_the_right_one() {
    let _c = common::clean();
    let owner = Manager::builder()
        .address("127.0.0.1:0")
        .key("the right key")
        .start()
        .unwrap();
    let address = owner.address().clone();
    assert!(address.to_string().starts_with("127.0.0.1:"));
    match Manager::connect(&address, "a wrong key") {
        Err(ManagerError::Connect(ConnectError::Auth(
            AuthError::WrongKey | AuthError::Refused,
        ))) => {}
        other => panic!("a wrong key must be refused, got {other:?}"),
    }
    assert!(matches!(
        Manager::connect(&address, multiproc::ipc::AuthKey::NONE),
        Err(ManagerError::Connect(ConnectError::Auth(_)))
    ));
    let client = Manager::connect(&address, "the right key").unwrap();
    let scores = client.named("scores").dict::<String, u32>().unwrap();
    scores.insert(&"ann".into(), &3).unwrap();
    // The owner sees the client's object by name.
    let mine = owner.named("scores").dict::<String, u32>().unwrap();
    assert_eq!(mine.get(&"ann".into()).unwrap(), Some(3));
    // A handle with a descriptor cannot be stored (it would be lost).
    let (a, _b) = multiproc::ipc::Pipe::duplex().unwrap();
    let conns = client.list::<multiproc::ipc::Connection>().unwrap();
    assert!(matches!(conns.push(&a), Err(ManagerError::Codec(_))));
    owner.shutdown().unwrap();
    assert!(scores.get(&"ann".into()).is_err());
}

#[test]
fn a_server_killed_mid_call_fails_every_call_instead_of_hanging() {
    let _c = common::clean();
    let manager = Manager::start().unwrap();
    let q = manager.queue::<u32>(0).unwrap();
    let lock = manager.lock().unwrap();
    lock.acquire_timeout(DEADLINE).unwrap();
    let (tids, tid) = std::sync::mpsc::channel();
    let waiting_get = {
        let (q, tids) = (q.clone(), tids.clone());
        std::thread::spawn(move || {
            tids.send(rustix::thread::gettid()).unwrap();
            q.get_timeout(DEADLINE)
        })
    };
    let waiting_lock = {
        let lock = lock.clone();
        std::thread::spawn(move || {
            tids.send(rustix::thread::gettid()).unwrap();
            lock.acquire_timeout(DEADLINE)
        })
    };
    // Both calls wait on the server — each client thread asleep, the server
    // with a thread for each connection (main, lifeline, acceptor, 2) — so
    // kill it mid-call.
    let pid = manager.pid().unwrap();
    for _ in 0..2 {
        let tid = tid.recv_timeout(DEADLINE).unwrap().as_raw_nonzero().get() as u32;
        common::until("a call waits", || common::asleep(std::process::id(), tid));
    }
    common::until("the server serves both calls", || {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|d| d.count() >= 5)
            .unwrap_or(false)
    });
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    // `Empty`/`false` would only come after DEADLINE: `ServerGone` says the
    // calls ended because the server did.
    // (A call that was still opening its connection fails to connect.)
    for ended in [
        waiting_get.join_in_time().unwrap().map(drop),
        waiting_lock.join_in_time().unwrap().map(drop),
    ] {
        assert!(
            matches!(
                ended,
                Err(ManagerError::ServerGone | ManagerError::Connect(_))
            ),
            "{ended:?}"
        );
    }
    assert!(matches!(q.len(), Err(ManagerError::Connect(_))));
    drop(manager); // reaps the killed server
}

#[test]
fn a_client_killed_holding_a_lock_releases_it() {
    let _c = common::clean();
    let manager = Manager::start().unwrap();
    let lock = manager.lock().unwrap();
    let holding = manager.event().unwrap();
    let mut holder = Process::start(
        |(lock, holding): (Lock, Event)| {
            lock.acquire_timeout(Duration::from_secs(120)).unwrap();
            holding.set().unwrap();
            std::thread::sleep(Duration::from_secs(600));
        },
        (lock.clone(), holding.clone()),
    )
    .unwrap();
    assert!(holding.wait_timeout(DEADLINE).unwrap());
    assert!(!lock.try_acquire().unwrap(), "the holder has it");
    holder.kill().unwrap();
    let _ = holder.join_in_time();
    assert!(
        lock.acquire_timeout(DEADLINE).unwrap(),
        "released when its holder died"
    );
    lock.release().unwrap();
}

#[test]
fn an_item_taken_for_a_client_that_died_waiting_is_not_lost() {
    let _c = common::clean();
    let manager = Manager::start().unwrap();
    let q = manager.queue::<String>(0).unwrap();
    let waiting = manager.event().unwrap();
    for round in 0..5 {
        waiting.clear().unwrap();
        let mut taker = Process::start(
            |(q, waiting): (Queue<String>, Event)| {
                waiting.set().unwrap();
                q.get_timeout(Duration::from_secs(600)).ok()
            },
            (q.clone(), waiting.clone()),
        )
        .unwrap();
        assert!(waiting.wait_timeout(DEADLINE).unwrap());
        taker.kill().unwrap();
        let _ = taker.join_in_time();
        q.put(&format!("item {round}")).unwrap();
        assert_eq!(q.get_timeout(DEADLINE).unwrap(), format!("item {round}"));
    }
}

#[test]
fn a_thousand_proxies_used_at_once_by_threads_and_processes() {
    let _c = common::clean();
    let manager = Manager::start().unwrap();
    let dicts: Vec<Dict<u32, u32>> = (0..1000).map(|_| manager.dict().unwrap()).collect();
    let threads: Vec<_> = (0..8u32)
        .map(|t| {
            let dicts = dicts.clone();
            std::thread::spawn(move || {
                for (i, d) in dicts.iter().enumerate() {
                    d.insert(&t, &(i as u32)).unwrap();
                    d.increment(&99, 1).unwrap();
                }
            })
        })
        .collect();
    let mut ps: Vec<_> = (0..2u32)
        .map(|p| {
            Process::start(
                |(p, dicts): (u32, Vec<Dict<u32, u32>>)| {
                    for d in &dicts {
                        d.increment(&99, 1).unwrap();
                        d.insert(&(100 + p), &p).unwrap();
                    }
                },
                (p, dicts.clone()),
            )
            .unwrap()
        })
        .collect();
    for t in threads {
        t.join_in_time().unwrap();
    }
    for p in &mut ps {
        p.join_in_time().unwrap();
    }
    for (i, d) in dicts.iter().enumerate() {
        assert_eq!(d.get(&99).unwrap(), Some(10), "dict {i}");
        assert_eq!(d.len().unwrap(), 8 + 2 + 1, "dict {i}");
        assert_eq!(d.get(&3).unwrap(), Some(i as u32));
    }
}

#[derive(Serialize, Deserialize)]
struct Account {
    balance: i64,
}

#[derive(Serialize, Deserialize)]
enum Op {
    Deposit(i64),
    Withdraw(i64),
    Explode,
}

impl Served for Account {
    type Call = Op;
    type Reply = Result<i64, String>;
    fn call(&mut self, op: Op) -> Result<i64, String> {
        match op {
            Op::Deposit(n) => self.balance += n,
            Op::Withdraw(n) if n > self.balance => return Err("insufficient funds".into()),
            Op::Withdraw(n) => self.balance -= n,
            Op::Explode => panic!("the account exploded"),
        }
        Ok(self.balance)
    }
}

#[test]
fn a_registered_type_is_served_with_its_own_methods() {
    let _c = common::clean();
    let manager = Manager::builder().register::<Account>().start().unwrap();
    let account = manager.object(&Account { balance: 10 }).unwrap();
    let mut ps: Vec<_> = (0..3)
        .map(|_| {
            Process::start(
                |a: multiproc::manager::Object<Account>| {
                    for _ in 0..50 {
                        a.call(&Op::Deposit(2)).unwrap().unwrap();
                    }
                },
                account.clone(),
            )
            .unwrap()
        })
        .collect();
    for p in &mut ps {
        p.join_in_time().unwrap();
    }
    assert_eq!(account.call(&Op::Withdraw(0)).unwrap(), Ok(310));
    assert_eq!(
        account.call(&Op::Withdraw(1000)).unwrap(),
        Err("insufficient funds".to_string())
    );
    match account.call(&Op::Explode) {
        Err(ManagerError::Panicked { message, .. }) => {
            assert_eq!(message, "the account exploded")
        }
        other => panic!("{other:?}"),
    }
    // The server and the object are still there.
    assert_eq!(account.call(&Op::Deposit(1)).unwrap(), Ok(311));

    // A server that did not register the type refuses it.
    let plain = Manager::start().unwrap();
    assert!(matches!(
        plain.object(&Account { balance: 0 }),
        Err(ManagerError::NotRegistered(_))
    ));
}

#[test]
fn a_manager_served_in_this_process_stops_cleanly() {
    let _c = common::clean();
    let server = Manager::builder()
        .address(common::unique_name("manager"))
        .serve()
        .unwrap();
    let client = Manager::connect(server.address(), server.key()).unwrap();
    let q = client.queue::<u8>(1).unwrap();
    q.put(&1).unwrap();
    assert!(matches!(
        q.put_timeout(&2, Duration::from_millis(20)),
        Err(ManagerError::Full)
    ));
    let blocked = {
        let q = q.clone();
        std::thread::spawn(move || q.put_timeout(&3, DEADLINE))
    };
    assert!(!server.wait_timeout(Duration::ZERO));
    client.shutdown().unwrap();
    assert!(server.wait_timeout(DEADLINE), "a client asked it to stop");
    server.shutdown();
    assert!(matches!(
        blocked.join_in_time().unwrap(),
        Err(ManagerError::ServerGone | ManagerError::ShuttingDown)
    ));
    assert!(matches!(q.len(), Err(ManagerError::Connect(_))));
}

#[test]
fn values_larger_than_the_mailbox_travel_by_the_socket_in_order() {
    let _c = common::clean();
    let manager = Manager::start().unwrap();
    let d = manager.dict::<u32, Vec<u8>>().unwrap();
    for round in 0..4u32 {
        // 64 KiB each way go through shared memory; these do not.
        let big = vec![round as u8; (1 << 20) + round as usize];
        assert_eq!(d.insert(&round, &big).unwrap(), None);
        d.insert(&1000, &vec![round as u8]).unwrap();
        assert_eq!(d.get(&round).unwrap().as_deref(), Some(&big[..]));
        assert_eq!(d.get(&1000).unwrap(), Some(vec![round as u8]));
    }
    let all = d.items().unwrap();
    assert_eq!(all.len(), 5);
}

#[test]
fn join_waits_for_a_consumer_process_to_mark_every_item_done() {
    let _c = common::clean();
    let manager = Manager::start().unwrap();
    let jobs = manager.queue::<u32>(4).unwrap();
    let seen = manager.list::<u32>().unwrap();
    let mut consumer = Process::start(
        |(jobs, seen): (Queue<u32>, multiproc::manager::List<u32>)| {
            while let Ok(job) = jobs.get_timeout(Duration::from_secs(120)) {
                seen.push(&job).unwrap();
                jobs.task_done().unwrap();
                if job == 99 {
                    break;
                }
            }
        },
        (jobs.clone(), seen.clone()),
    )
    .unwrap();
    for job in 0..100 {
        jobs.put_timeout(&job, DEADLINE).unwrap();
    }
    assert!(
        jobs.join_timeout(DEADLINE).unwrap(),
        "every job marked done"
    );
    assert_eq!(seen.to_vec().unwrap(), (0..100).collect::<Vec<_>>());
    consumer.join_in_time().unwrap();
    assert!(matches!(jobs.task_done(), Err(ManagerError::TaskDone(_))));
}
