//! The thread queues: the semantics of CPython's test_queue (order, full and
//! empty, timeouts, task_done/join, shutdown) and a stress test that counts
//! every item.

mod common;
use common::JoinInTime;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use multiproc::queue::{
    GetError, LifoQueue, PriorityQueue, PutError, Queue, SimpleQueue, TaskDoneError,
};

const SHORT: Duration = Duration::from_millis(30);

#[test]
fn orders() {
    let fifo = Queue::new(0);
    let lifo = LifoQueue::new(0);
    let prio = PriorityQueue::new(0);
    for x in [3, 1, 2] {
        fifo.put(x).unwrap();
        lifo.put(x).unwrap();
        prio.put(x).unwrap();
    }
    let drain = |get: &dyn Fn() -> Result<i32, GetError>| {
        (0..3).map(|_| get().unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(drain(&|| fifo.get()), [3, 1, 2]);
    assert_eq!(drain(&|| lifo.get()), [2, 1, 3]);
    assert_eq!(drain(&|| prio.get()), [1, 2, 3]);
}

#[test]
fn full_and_empty() {
    let q = Queue::new(2);
    assert!(q.is_empty() && !q.is_full());
    assert_eq!(q.try_get(), Err(GetError::Empty));
    q.try_put('a').unwrap();
    q.try_put('b').unwrap();
    assert!(q.is_full());
    assert_eq!(q.len(), 2);
    assert_eq!(q.try_put('c'), Err(PutError::Full('c')));
    assert_eq!(q.len(), 2, "a failed put changes nothing");
    assert_eq!(q.unfinished_tasks(), 2, "a failed put is not counted");
    assert_eq!(q.try_get(), Ok('a'));
    assert_eq!(q.maxsize(), Some(2));
    assert_eq!(Queue::<u8>::unbounded().maxsize(), None);
    // Bounded locked stores refuse too.
    let l = LifoQueue::new(1);
    l.put(1).unwrap();
    assert_eq!(l.try_put(2), Err(PutError::Full(2)));
    let p = PriorityQueue::new(1);
    p.put(1).unwrap();
    assert_eq!(p.put_timeout(2, SHORT), Err(PutError::Full(2)));
}

#[test]
fn timeouts_wait_at_least_as_asked() {
    let q = Queue::<u8>::new(1);
    let t = Instant::now();
    assert_eq!(q.get_timeout(SHORT), Err(GetError::Empty));
    assert!(t.elapsed() >= SHORT);
    q.put(1).unwrap();
    let t = Instant::now();
    assert_eq!(q.put_timeout(2, SHORT), Err(PutError::Full(2)));
    assert!(t.elapsed() >= SHORT);
    assert_eq!(q.unfinished_tasks(), 1);
}

#[test]
fn blocking_get_wakes_on_put_and_put_on_get() {
    let q = Queue::new(1);
    let getter = {
        let q = q.clone();
        thread::spawn(move || q.get_timeout(Duration::from_secs(20)))
    };
    thread::sleep(SHORT);
    q.put(5).unwrap();
    assert_eq!(getter.join_in_time().unwrap(), Ok(5));

    q.put(1).unwrap();
    let putter = {
        let q = q.clone();
        thread::spawn(move || q.put_timeout(2, Duration::from_secs(20)))
    };
    thread::sleep(SHORT);
    assert_eq!(q.get(), Ok(1));
    assert_eq!(putter.join_in_time().unwrap(), Ok(()));
    assert_eq!(q.get(), Ok(2));
}

#[test]
fn task_done_and_join() {
    let q = Queue::new(0);
    for i in 0..10 {
        q.put(i).unwrap();
    }
    assert!(!q.join_timeout(SHORT), "ten items not done");
    let worker = {
        let q = q.clone();
        thread::spawn(move || {
            let mut sum = 0;
            while let Ok(x) = q.get_timeout(Duration::from_millis(200)) {
                sum += x;
                q.task_done().unwrap();
            }
            sum
        })
    };
    q.join_in_time();
    assert_eq!(q.unfinished_tasks(), 0);
    assert_eq!(worker.join_in_time().unwrap(), 45);
    assert_eq!(q.task_done(), Err(TaskDoneError), "one task_done too many");
    assert_eq!(q.unfinished_tasks(), 0);
}

#[test]
fn shutdown_fails_puts_and_drains_gets() {
    let q = Queue::new(1);
    q.put(1).unwrap();
    let blocked_putter = {
        let q = q.clone();
        thread::spawn(move || q.put(2))
    };
    thread::sleep(SHORT);
    q.shutdown(false);
    assert_eq!(
        blocked_putter.join_in_time().unwrap(),
        Err(PutError::ShutDown(2))
    );
    assert!(q.is_shutdown());
    assert_eq!(q.try_put(3), Err(PutError::ShutDown(3)));
    assert_eq!(q.get(), Ok(1), "items left are still handed out");
    assert_eq!(q.get(), Err(GetError::ShutDown));
    assert_eq!(q.try_get(), Err(GetError::ShutDown));
}

#[test]
fn shutdown_wakes_blocked_getters() {
    let q = Queue::<u8>::new(0);
    let getters: Vec<_> = (0..3)
        .map(|_| {
            let q = q.clone();
            thread::spawn(move || q.get())
        })
        .collect();
    thread::sleep(SHORT);
    q.shutdown(false);
    for g in getters {
        assert_eq!(g.join_in_time().unwrap(), Err(GetError::ShutDown));
    }
}

#[test]
fn immediate_shutdown_drops_items_and_releases_join() {
    let q = LifoQueue::new(0);
    for i in 0..5 {
        q.put(i).unwrap();
    }
    let joiner = {
        let q = q.clone();
        thread::spawn(move || q.join_in_time())
    };
    thread::sleep(SHORT);
    q.shutdown(true);
    joiner.join_in_time().unwrap();
    assert!(q.is_empty());
    assert_eq!(q.unfinished_tasks(), 0);
    assert_eq!(q.get(), Err(GetError::ShutDown));
}

#[test]
fn simple_queue() {
    let q = SimpleQueue::new();
    assert_eq!(q.try_get(), Err(GetError::Empty));
    let t = Instant::now();
    assert_eq!(q.get_timeout(SHORT), Err(GetError::Empty));
    assert!(t.elapsed() >= SHORT);
    let producer = {
        let q = q.clone();
        thread::spawn(move || (0..1000).for_each(|i| q.put(i)))
    };
    let got: Vec<i32> = (0..1000).map(|_| q.get()).collect();
    producer.join_in_time().unwrap();
    assert_eq!(got, (0..1000).collect::<Vec<_>>());
    assert!(q.is_empty());
}

#[test]
fn len_is_exact_under_concurrent_use() {
    // Two producers and two consumers; at every quiet point len equals what
    // the counters say, and the bound is never exceeded while they run.
    let q = Queue::new(12_000);
    let put = Arc::new(AtomicUsize::new(0));
    let got = Arc::new(AtomicUsize::new(0));
    let over = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    for _ in 0..2 {
        let (pq, put) = (q.clone(), put.clone());
        threads.push(thread::spawn(move || {
            for i in 0..20_000 {
                pq.put(i).unwrap();
                put.fetch_add(1, Ordering::SeqCst);
            }
        }));
        let (cq, got, over) = (q.clone(), got.clone(), over.clone());
        threads.push(thread::spawn(move || {
            for _ in 0..15_000 {
                if cq.len() > 12_000 {
                    over.fetch_add(1, Ordering::SeqCst);
                }
                cq.get().unwrap();
                got.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    threads.into_iter().for_each(|t| t.join_in_time().unwrap());
    assert_eq!(over.load(Ordering::SeqCst), 0);
    assert_eq!(
        q.len(),
        put.load(Ordering::SeqCst) - got.load(Ordering::SeqCst)
    );
    assert_eq!(q.len(), 10_000);
}

/// 4 producers × 4 consumers over a small queue: every item arrives exactly
/// once, and each producer's items arrive in the order it put them.
fn stress<Q: Clone + Send + 'static>(
    q: Q,
    put: fn(&Q, (usize, usize)),
    get: fn(&Q) -> Option<(usize, usize)>,
    producers_done: fn(&Q),
) {
    const PRODUCERS: usize = 4;
    const PER: usize = 25_000;
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let q = q.clone();
            thread::spawn(move || (0..PER).for_each(|i| put(&q, (p, i))))
        })
        .collect();
    let consumers: Vec<_> = (0..4)
        .map(|_| {
            let q = q.clone();
            thread::spawn(move || {
                let mut seen = Vec::new();
                let mut last = [None::<usize>; PRODUCERS];
                while let Some((p, i)) = get(&q) {
                    assert!(
                        last[p].is_none_or(|l| l < i),
                        "producer {p}: {i} after {:?}",
                        last[p]
                    );
                    last[p] = Some(i);
                    seen.push((p, i));
                }
                seen
            })
        })
        .collect();
    producers
        .into_iter()
        .for_each(|t| t.join_in_time().unwrap());
    producers_done(&q);
    let mut all: Vec<(usize, usize)> = Vec::new();
    for c in consumers {
        all.extend(c.join_in_time().unwrap());
    }
    all.sort();
    let expect: Vec<_> = (0..PRODUCERS)
        .flat_map(|p| (0..PER).map(move |i| (p, i)))
        .collect();
    assert_eq!(all.len(), expect.len(), "lost or doubled items");
    assert_eq!(all, expect);
}

#[test]
fn stress_no_loss_no_duplicate_fifo_per_producer() {
    stress(
        Queue::new(16),
        |q, x| q.put(x).unwrap(),
        // Consumers stop after a quiet spell once the producers are done.
        |q| q.get_timeout(Duration::from_millis(300)).ok(),
        |_| {},
    );
}

#[test]
fn stress_unbounded_and_shutdown_ends_consumers() {
    // Consumers end on ShutDown instead of a quiet spell.
    let q = Queue::new(0);
    stress(
        q.clone(),
        |q, x| q.put(x).unwrap(),
        |q| {
            let x = q.get().ok()?;
            q.task_done().unwrap();
            Some(x)
        },
        |q| q.shutdown(false),
    );
    assert_eq!(q.unfinished_tasks(), 0);
}

#[test]
fn a_huge_bound_allocates_nothing_up_front() {
    // A ring would allocate usize::MAX slots; the queue must just work.
    let q = Queue::new(usize::MAX);
    assert_eq!(q.maxsize(), Some(usize::MAX));
    for i in 0..100_000 {
        q.try_put(i).unwrap();
    }
    assert!(!q.is_full());
    assert_eq!(q.get(), Ok(0));
    assert_eq!(q.len(), 99_999);
    let lifo = LifoQueue::new(usize::MAX);
    lifo.put(1).unwrap();
    assert_eq!(lifo.get(), Ok(1));
}

/// Two threads put in a loop while the queue is shut down with `immediate`:
/// once `shutdown` returns, the queue is empty for good and `join`
/// returns (Python 3.13's contract).
fn racing_puts_do_not_survive_an_immediate_shutdown<Q>(make: impl Fn() -> Q, put: fn(&Q) -> bool)
where
    Q: Clone + Send + 'static,
    Q: QueueLike,
{
    for round in 0..300 {
        let q = make();
        let putters: Vec<_> = (0..2)
            .map(|_| {
                let q = q.clone();
                thread::spawn(move || while put(&q) {})
            })
            .collect();
        common::until("puts are under way", || q.len() > 2);
        q.shutdown_now();
        assert_eq!((q.len(), q.unfinished()), (0, 0), "round {round}");
        for p in putters {
            p.join_in_time().unwrap();
        }
        assert_eq!(
            (q.len(), q.unfinished()),
            (0, 0),
            "round {round}: an item survived"
        );
        q.join_now();
    }
}

/// What the race test needs of each queue kind.
trait QueueLike {
    fn len(&self) -> usize;
    fn unfinished(&self) -> usize;
    fn shutdown_now(&self);
    fn join_now(&self);
}

macro_rules! queue_like {
    ($($q:ident),*) => {$(
        impl QueueLike for $q<u64> {
            fn len(&self) -> usize { $q::len(self) }
            fn unfinished(&self) -> usize { self.unfinished_tasks() }
            fn shutdown_now(&self) { self.shutdown(true) }
            fn join_now(&self) { self.join_in_time() }
        }
    )*};
}
queue_like!(Queue, LifoQueue, PriorityQueue);

#[test]
fn an_immediate_shutdown_racing_puts_leaves_the_queue_empty() {
    racing_puts_do_not_survive_an_immediate_shutdown(|| Queue::new(0), |q| q.put(1).is_ok());
    racing_puts_do_not_survive_an_immediate_shutdown(|| LifoQueue::new(0), |q| q.put(1).is_ok());
    racing_puts_do_not_survive_an_immediate_shutdown(
        || PriorityQueue::new(0),
        |q| q.put(1).is_ok(),
    );
    racing_puts_do_not_survive_an_immediate_shutdown(
        || Queue::new(8),
        |q| {
            !matches!(
                q.put_timeout(1, Duration::from_millis(1)),
                Err(PutError::ShutDown(_))
            )
        },
    );
}
