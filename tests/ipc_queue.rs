//! Queues between processes: the notes' write/read story, timeouts, exact
//! `len`, FIFO per producer, no loss and no duplicate with 4 × 4 processes,
//! messages larger than the ring, `close`, `JoinableQueue` across processes,
//! the batch calls, and producers and consumers killed at random inside
//! `put` and `get` (and their batch forms).
mod common;
use common::JoinInTime;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use multiproc::codec::CodecError;
use multiproc::ipc::{
    Connection, GetError, JoinableQueue, Messages, Pipe, PutError, Queue, RecvError, SimpleQueue,
};
use multiproc::process::Process;
use serde_bytes::ByteBuf;

#[test]
fn the_notes_write_read_story() {
    let _c = common::clean();
    let q: Queue<String> = Queue::new(0).unwrap();
    let mut writer = Process::start(
        |q: Queue<String>| {
            for i in 0..5 {
                q.put(&format!("message {i}")).unwrap();
            }
        },
        q.clone(),
    )
    .unwrap();
    let mut reader = Process::start(
        |q: Queue<String>| {
            std::thread::sleep(Duration::from_millis(100));
            let mut got = Vec::new();
            while let Ok(m) = q.get_timeout(Duration::from_secs(2)) {
                got.push(m);
            }
            got
        },
        q.clone(),
    )
    .unwrap();
    writer.join_in_time().unwrap();
    let got = reader.join_in_time().unwrap();
    assert_eq!(
        got,
        (0..5).map(|i| format!("message {i}")).collect::<Vec<_>>()
    );
}

#[test]
fn try_and_timeout_variants() {
    let _c = common::clean();
    let q: Queue<u32> = Queue::new(2).unwrap();
    assert!(matches!(q.try_get(), Err(GetError::Empty)));
    let t = Instant::now();
    assert!(matches!(
        q.get_timeout(Duration::from_millis(60)),
        Err(GetError::Empty)
    ));
    assert!(t.elapsed() >= Duration::from_millis(60));
    q.put(&1).unwrap();
    q.try_put(&2).unwrap();
    assert!(q.is_full());
    assert!(matches!(q.try_put(&3), Err(PutError::Full)));
    let t = Instant::now();
    assert!(matches!(
        q.put_timeout(&3, Duration::from_millis(60)),
        Err(PutError::Full)
    ));
    assert!(t.elapsed() >= Duration::from_millis(60));
    assert_eq!((q.len(), q.try_get().unwrap(), q.get().unwrap()), (2, 1, 2));
    // A blocked get is woken by a put from another process.
    let q2 = q.clone();
    let mut p = Process::start(
        |q: Queue<u32>| {
            std::thread::sleep(Duration::from_millis(50));
            q.put(&9).unwrap();
        },
        q2,
    )
    .unwrap();
    assert_eq!(q.get().unwrap(), 9);
    p.join_in_time().unwrap();
    // Wrong type: a typed error, and the message is consumed.
    let s: Queue<String> = Queue::new(0).unwrap();
    s.put(&"text".to_string()).unwrap();
    let as_u64: Queue<Vec<u64>> = bincode_view(&s);
    assert!(matches!(as_u64.get(), Err(GetError::Codec(_))));
    assert!(s.is_empty());
}

/// Another typed view of the same queue (through a handle round trip).
fn bincode_view<A, B>(q: &Queue<A>) -> Queue<B> {
    let frame = multiproc::codec::encode(q, 1 << 20).unwrap();
    multiproc::codec::decode(&frame.bytes[12..], frame.fds).unwrap()
}

#[test]
fn len_is_exact_under_concurrent_use() {
    let _c = common::clean();
    let q: Queue<u64> = Queue::new(8).unwrap();
    std::thread::scope(|s| {
        for t in 0..2 {
            let q = &q;
            s.spawn(move || {
                for i in 0..50_000 {
                    // Timed, so that a failing consumer cannot hang the test.
                    q.put_timeout(&(t * 10_000 + i), Duration::from_secs(60))
                        .unwrap();
                    let n = q.len();
                    assert!(n <= 8, "len {n} above maxsize");
                }
            });
        }
        for _ in 0..2 {
            let q = &q;
            s.spawn(move || {
                for _ in 0..50_000 {
                    q.get_timeout(Duration::from_secs(60)).unwrap();
                    let n = q.len();
                    assert!(n <= 8, "len {n} above maxsize");
                }
            });
        }
    });
    assert_eq!(q.len(), 0);
    for i in 0..5 {
        q.put(&i).unwrap();
        assert_eq!(q.len(), i as usize + 1);
    }
}

type Msg = (u32, u32, ByteBuf);

fn payload(producer: u32, seq: u32, len: usize) -> ByteBuf {
    let mut x = (producer as u64) << 32 | seq as u64 | 1;
    ByteBuf::from(
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect::<Vec<u8>>(),
    )
}

fn size_of_msg(seq: u32) -> usize {
    // Mostly small, some larger than the test rings (streamed).
    match seq % 17 {
        0 => 9000 + (seq as usize * 131) % 5000,
        _ => (seq as usize * 37) % 300,
    }
}

#[test]
fn four_producers_four_consumers_no_loss_no_duplicate_fifo_per_producer() {
    let _c = common::clean();
    const PER: u32 = 2_000;
    let q: Queue<Msg> = Queue::with_capacity(64, 8192).unwrap();
    let mut producers: Vec<_> = (0..4u32)
        .map(|id| {
            Process::start(
                |(q, id): (Queue<Msg>, u32)| {
                    for seq in 0..PER {
                        q.put(&(id, seq, payload(id, seq, size_of_msg(seq))))
                            .unwrap();
                    }
                },
                (q.clone(), id),
            )
            .unwrap()
        })
        .collect();
    let mut consumers: Vec<_> = (0..4)
        .map(|_| {
            Process::start(
                |q: Queue<Msg>| {
                    let mut got = Vec::new();
                    loop {
                        match q.get() {
                            Ok((p, s, b)) => {
                                assert_eq!(b, payload(p, s, size_of_msg(s)), "payload damaged");
                                got.push((p, s));
                            }
                            Err(GetError::ShutDown) => return got,
                            Err(e) => panic!("{e}"),
                        }
                    }
                },
                q.clone(),
            )
            .unwrap()
        })
        .collect();
    for p in &mut producers {
        p.join_in_time().unwrap();
    }
    q.shutdown();
    let mut all = HashSet::new();
    for c in &mut consumers {
        let got = c.join_in_time().unwrap();
        let mut last: HashMap<u32, u32> = HashMap::new();
        for (p, s) in got {
            if let Some(prev) = last.insert(p, s) {
                assert!(s > prev, "producer {p}: {s} after {prev}");
            }
            assert!(all.insert((p, s)), "duplicate {p}/{s}");
        }
    }
    assert_eq!(all.len(), 4 * PER as usize);
}

#[test]
fn a_message_of_64_mib_streams_through_a_1_mib_ring() {
    let _c = common::clean();
    let q: Queue<()> = Queue::with_capacity(4, 1 << 20).unwrap();
    let mut p = Process::start(
        |q: Queue<()>| {
            let big: Vec<u8> = (0..64u32 << 20).map(|i| (i % 251) as u8).collect();
            q.put_bytes(&big).unwrap();
            q.put_bytes(b"after").unwrap();
        },
        q.clone(),
    )
    .unwrap();
    let got = q.get_bytes().unwrap();
    assert_eq!(got.len(), 64 << 20);
    assert!(got.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
    assert_eq!(q.get_bytes().unwrap(), b"after");
    p.join_in_time().unwrap();
}

#[test]
fn a_streamed_put_that_times_out_is_withdrawn() {
    let _c = common::clean();
    let q: Queue<()> = Queue::with_capacity(0, 4096).unwrap();
    // Nobody reads: the stream cannot finish.
    let r = q.put_bytes_timeout(&vec![1u8; 100_000], Duration::from_millis(50));
    assert!(matches!(r, Err(PutError::Full)), "{r:?}");
    assert_eq!(q.len(), 0);
    q.put_bytes(b"small").unwrap();
    // The consumer drops the withdrawn pieces and gets the next message.
    assert_eq!(q.get_bytes().unwrap(), b"small");
    assert!(matches!(q.try_get_bytes(), Err(GetError::Empty)));
}

#[test]
fn a_producer_killed_mid_stream_does_not_block_the_consumer() {
    let _c = common::clean();
    let q: Queue<()> = Queue::with_capacity(0, 4096).unwrap();
    let (here, there) = Pipe::duplex().unwrap();
    let mut p = Process::start(
        |(q, conn): (Queue<()>, Connection)| {
            conn.send(&()).unwrap();
            // Larger than the ring, and nobody reads yet: blocks mid-stream.
            q.put_bytes(&vec![7u8; 1 << 20]).unwrap();
        },
        (q.clone(), there),
    )
    .unwrap();
    here.recv::<()>().unwrap();
    // The ring fills with the first pieces; the producer waits for room.
    std::thread::sleep(Duration::from_millis(100));
    p.kill().unwrap();
    let _ = p.join_in_time();
    std::thread::scope(|s| {
        // The consumer takes the pieces there are, waits for the rest, finds
        // the producer dead and drops the message.
        let got = s.spawn(|| q.get_bytes());
        std::thread::sleep(Duration::from_millis(100));
        q.put_bytes(b"next").unwrap();
        assert_eq!(got.join_in_time().unwrap().unwrap(), b"next");
    });
}

#[test]
fn close_stops_producers_and_drains_consumers() {
    let _c = common::clean();
    let q: SimpleQueue<u8> = SimpleQueue::new().unwrap();
    q.put(&1).unwrap();
    q.shutdown();
    assert!(matches!(q.put(&2), Err(PutError::ShutDown)));
    assert_eq!(q.get_timeout(common::DEADLINE).unwrap(), 1);
    assert!(matches!(
        q.get_timeout(common::DEADLINE),
        Err(GetError::ShutDown)
    ));
    // A getter blocked in another process is released by shutdown.
    let q: Queue<u8> = Queue::new(1).unwrap();
    let mut p = Process::start(
        |q: Queue<u8>| {
            matches!(
                q.get_timeout(std::time::Duration::from_secs(120)),
                Err(GetError::ShutDown)
            )
        },
        q.clone(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    q.shutdown();
    assert!(p.join_in_time().unwrap());
}

#[test]
fn joinable_queue_across_processes() {
    let _c = common::clean();
    let q: JoinableQueue<u32> = JoinableQueue::new(0).unwrap();
    for i in 0..100 {
        q.put(&i).unwrap();
    }
    assert!(!q.join_timeout(Duration::from_millis(20)));
    let mut workers: Vec<_> = (0..2)
        .map(|_| {
            Process::start(
                |q: JoinableQueue<u32>| {
                    let mut n = 0;
                    while q.get_timeout(Duration::from_millis(200)).is_ok() {
                        q.task_done().unwrap();
                        n += 1;
                    }
                    n
                },
                q.clone(),
            )
            .unwrap()
        })
        .collect();
    q.join_in_time();
    assert_eq!(q.unfinished_tasks(), 0);
    let total: u32 = workers.iter_mut().map(|w| w.join_in_time().unwrap()).sum();
    assert_eq!(total, 100);
    assert!(q.task_done().is_err());
}

#[test]
fn messages_cannot_carry_handles_and_foreign_handles_are_refused() {
    let _c = common::clean();
    let q: Queue<Connection> = Queue::new(0).unwrap();
    let (a, _b) = Pipe::duplex().unwrap();
    let e = q.put(&a).unwrap_err().to_string();
    assert!(
        e.contains("shared-memory queue") && e.contains("Connection"),
        "{e}"
    );
    let e = q.put_many(&[a]).unwrap_err().to_string();
    assert!(e.contains("shared-memory queue"), "{e}");
    // A lock's segment is not a queue.
    let m = multiproc::sync::Mutex::new(0u64).unwrap();
    let frame = multiproc::codec::encode(&m, 1 << 20).unwrap();
    let r = multiproc::codec::decode::<Queue<u8>>(&frame.bytes[12..], frame.fds);
    let e = r.unwrap_err().to_string();
    assert!(e.contains("handle refused"), "{e}");
    // A message that decodes as a handle (bytes put raw) is refused too.
    let fds: Queue<multiproc::codec::handles::Fd> = Queue::new(0).unwrap();
    fds.put_bytes(&0u32.to_le_bytes()).unwrap();
    let e = fds
        .get_timeout(Duration::from_secs(10))
        .unwrap_err()
        .to_string();
    assert!(e.contains("shared-memory queue"), "{e}");
}

/// The acknowledgements of one child: `(producer, seq)` pairs.
fn drain(conn: &Connection, into: &mut Vec<(u32, u32)>) {
    loop {
        match conn.try_recv::<(u32, u32)>() {
            Ok(m) => into.push(m),
            Err(RecvError::Empty) | Err(RecvError::Closed) | Err(RecvError::Truncated { .. }) => {
                return;
            }
            Err(e) => panic!("{e}"),
        }
    }
}

struct Child {
    p: Process<()>,
    conn: Connection,
    producer: bool,
    /// Producer id, or consumer index.
    id: u32,
}

/// A producer or a consumer, one message per call (`batch` 1) or up to
/// `batch` per `put_many`/`get_many`; each reports what it put (after the
/// call) or took.
fn start(q: &Queue<Msg>, producer: bool, id: u32, batch: u32) -> Child {
    let (conn, there) = Pipe::duplex().unwrap();
    let args = (q.clone(), there, id, batch);
    let p = if producer {
        Process::start(
            |(q, conn, id, batch): (Queue<Msg>, Connection, u32, u32)| {
                for first in (0..).step_by(batch as usize) {
                    let msgs: Vec<Msg> = (first..first + batch)
                        .map(|seq| (id, seq, payload(id, seq, size_of_msg(seq))))
                        .collect();
                    if batch == 1 {
                        q.put(&msgs[0]).unwrap();
                    } else {
                        assert_eq!(q.put_many(&msgs).unwrap(), msgs.len());
                    }
                    for seq in first..first + batch {
                        conn.send(&(id, seq)).unwrap();
                    }
                }
            },
            args,
        )
    } else {
        Process::start(
            |(q, conn, _, batch): (Queue<Msg>, Connection, u32, u32)| loop {
                let got = if batch == 1 {
                    vec![q.get().unwrap()]
                } else {
                    q.get_many(batch as usize).unwrap()
                };
                for (p, s, b) in got {
                    assert_eq!(b, payload(p, s, size_of_msg(s)), "damaged message");
                    conn.send(&(p, s)).unwrap();
                }
            },
            args,
        )
    }
    .unwrap();
    Child {
        p,
        conn,
        producer,
        id,
    }
}

#[test]
fn producers_and_consumers_killed_at_random() {
    killed_at_random(1);
}

#[test]
fn batch_producers_and_consumers_killed_at_random() {
    killed_at_random(8);
}

/// Three producers and three consumers, one killed and replaced every few
/// milliseconds, 80 times: nothing damaged, duplicated or out of order per
/// producer; every acknowledged message arrives but for what a killed
/// consumer had taken and not yet reported (at most `batch` each).
fn killed_at_random(batch: u32) {
    let _c = common::clean();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("seed {seed}");
    let mut rng = seed;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    const KILLS: usize = 80;
    let q: Queue<Msg> = Queue::with_capacity(32, 4096).unwrap();
    let mut next_producer = 0u32;
    let mut children = Vec::new();
    for i in 0..6 {
        let producer = i % 2 == 0;
        let id = if producer {
            next_producer += 1;
            next_producer - 1
        } else {
            i
        };
        children.push(start(&q, producer, id, batch));
    }
    let mut acked: Vec<(u32, u32)> = Vec::new();
    let mut received: Vec<Vec<(u32, u32)>> = Vec::new();
    let mut consumer_kills = 0;
    let finish = |c: Child, acked: &mut Vec<(u32, u32)>, received: &mut Vec<Vec<(u32, u32)>>| {
        let mut c = c;
        let _ = c.p.kill();
        let _ = c.p.join_in_time();
        // Everything the child sent before it died is in the socket.
        let mut got = Vec::new();
        drain(&c.conn, &mut got);
        if c.producer {
            acked.extend(got);
        } else {
            received.push(got);
        }
        let _ = c.id;
    };
    for _ in 0..KILLS {
        std::thread::sleep(Duration::from_micros(500 + next(5000)));
        let victim = next(children.len() as u64) as usize;
        let c = children.swap_remove(victim);
        let producer = c.producer;
        if !producer {
            consumer_kills += 1;
        }
        finish(c, &mut acked, &mut received);
        let id = if producer {
            next_producer += 1;
            next_producer - 1
        } else {
            100
        };
        children.push(start(&q, producer, id, batch));
    }
    for c in children.drain(..) {
        if !c.producer {
            consumer_kills += 1;
        }
        finish(c, &mut acked, &mut received);
    }
    // The queue still works for everyone: drain it here.
    let mut drained = Vec::new();
    loop {
        match q.get_timeout(Duration::from_millis(200)) {
            Ok((p, s, b)) => {
                assert_eq!(b, payload(p, s, size_of_msg(s)), "damaged message");
                drained.push((p, s));
            }
            Err(GetError::Empty) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(q.len(), 0);
    q.put(&(0, 0, payload(0, 0, 10))).unwrap();
    assert_eq!(q.get().unwrap().1, 0);

    // FIFO per producer within each consumer; no duplicates.
    let mut seen = HashSet::new();
    for got in received.iter().chain(std::iter::once(&drained)) {
        let mut last: HashMap<u32, u32> = HashMap::new();
        for &(p, s) in got {
            if let Some(prev) = last.insert(p, s) {
                assert!(s > prev, "producer {p}: {s} after {prev} (seed {seed})");
            }
            assert!(seen.insert((p, s)), "duplicate {p}/{s} (seed {seed})");
        }
    }
    // Every acknowledged put was received, except at most one batch per
    // killed consumer (taken by it, not yet reported when it died).
    let lost: Vec<_> = acked.iter().filter(|m| !seen.contains(m)).collect();
    assert!(
        lost.len() <= consumer_kills * batch as usize,
        "{} acknowledged messages lost with {consumer_kills} consumers killed: {lost:?} (seed {seed})",
        lost.len()
    );
    // Received but never acknowledged: only a producer's last put (batch).
    let last_ack: HashMap<u32, u32> = acked.iter().fold(HashMap::new(), |mut m, &(p, s)| {
        let e = m.entry(p).or_insert(s);
        *e = (*e).max(s);
        m
    });
    for &(p, s) in &seen {
        let bound = last_ack.get(&p).map_or(batch - 1, |l| l + batch);
        assert!(
            s <= bound,
            "producer {p} message {s} was never put (last ack {bound:?})"
        );
    }
    eprintln!(
        "{} acknowledged, {} received, {} lost to {consumer_kills} killed consumers",
        acked.len(),
        seen.len(),
        lost.len()
    );
}

#[test]
fn a_queue_travels_over_a_connection() {
    let _c = common::clean();
    let (here, there) = Pipe::duplex().unwrap();
    // The child is running before the queue exists; it gets it in a message.
    let mut p = Process::start(
        |conn: Connection| {
            let q: JoinableQueue<u32> = conn.recv().unwrap();
            for i in 0..10 {
                q.put(&i).unwrap();
            }
            q.join_in_time();
        },
        there,
    )
    .unwrap();
    let q: JoinableQueue<u32> = JoinableQueue::new(4).unwrap();
    here.send(&q).unwrap();
    for i in 0..10 {
        assert_eq!(q.get().unwrap(), i);
        q.task_done().unwrap();
    }
    p.join_in_time().unwrap();
}

#[test]
fn one_buffer_takes_every_message_from_another_process() {
    let _c = common::clean();
    let q: Queue<()> = Queue::new(16).unwrap();
    let mut producer = Process::start(
        |q: Queue<()>| {
            for i in 0..500usize {
                q.put_bytes(&vec![(i % 251) as u8; i * 37 % 5000]).unwrap();
            }
        },
        q.clone(),
    )
    .unwrap();
    let mut buf = Vec::new();
    for i in 0..500usize {
        q.get_bytes_into_timeout(&mut buf, common::DEADLINE)
            .unwrap();
        assert_eq!(buf, vec![(i % 251) as u8; i * 37 % 5000], "message {i}");
    }
    producer.join_in_time().unwrap();
    assert!(matches!(
        q.try_get_bytes_into(&mut buf),
        Err(GetError::Empty)
    ));
    assert!(buf.capacity() >= 4999, "the buffer kept its capacity");
}

/// A producer that finds its queue full spins for room for many messages
/// (so as not to take each slot the moment it is freed), but one freed slot
/// must still let it in: here another process takes exactly one message
/// and never another, while the producer waits in `put_timeout` — bounded
/// by a count (32 messages) or by the ring's bytes (4 KiB, messages of a
/// KiB), in the single and the batch call.
#[test]
fn a_producer_waiting_on_a_full_queue_takes_the_one_slot_freed() {
    let _c = common::clean();
    let long = Duration::from_secs(30);
    for (maxsize, capacity, len) in [(32, 1 << 20, 8), (0, 4096, 1000)] {
        for batch in [false, true] {
            let q: Queue<()> = Queue::with_capacity(maxsize, capacity).unwrap();
            let msg = vec![1u8; len];
            let mut put = 0;
            while q.try_put_bytes(&msg).is_ok() {
                put += 1;
            }
            assert!(put > 1, "the queue holds {put}");
            let mut taker = Process::start(
                |q: Queue<()>| {
                    std::thread::sleep(Duration::from_millis(100));
                    q.get_bytes_timeout(Duration::from_secs(30)).unwrap().len()
                },
                q.clone(),
            )
            .unwrap();
            let last = vec![2u8; len];
            if batch {
                assert_eq!(q.put_many_bytes_timeout(&[&last], long).unwrap(), 1);
            } else {
                q.put_bytes_timeout(&last, long).unwrap();
            }
            assert_eq!(taker.join_in_time().unwrap(), len);
            assert_eq!(q.len(), put, "{maxsize} {capacity} {batch}");
            let mut got = Messages::new();
            assert_eq!(q.try_get_many_bytes_into(&mut got, put + 1).unwrap(), put);
            assert_eq!(got.iter().last().unwrap(), &last[..]);
        }
    }
}

#[test]
fn batch_calls_put_what_fits_and_take_what_is_there() {
    let _c = common::clean();
    let long = Duration::from_secs(60);
    let q: Queue<u32> = Queue::new(3).unwrap();
    assert_eq!(q.try_put_many(&[1, 2, 3, 4, 5]).unwrap(), 3);
    assert!(matches!(q.try_put_many(&[9]), Err(PutError::Full)));
    assert!(matches!(
        q.put_many_timeout(&[9], Duration::from_millis(20)),
        Err(PutError::Full)
    ));
    assert_eq!(q.put_many(&[]).unwrap(), 0);
    assert_eq!(q.try_get_many(2).unwrap(), [1, 2]);
    // Room for two of three: the first two go in when the time is up.
    assert_eq!(
        q.put_many_timeout(&[4, 5, 6], Duration::from_millis(20))
            .unwrap(),
        2
    );
    assert_eq!(q.len(), 3);
    assert_eq!(q.get_many_timeout(10, long).unwrap(), [3, 4, 5]);
    assert!(matches!(q.try_get_many(1), Err(GetError::Empty)));
    assert!(matches!(
        q.get_many_timeout(1, Duration::from_millis(20)),
        Err(GetError::Empty)
    ));
    // Raw bytes into a buffer the caller keeps.
    let raw: Queue<()> = Queue::with_capacity(0, 4096).unwrap();
    let big = vec![7u8; 10_000]; // larger than the ring: streamed, alone
    let msgs: Vec<&[u8]> = vec![b"a", b"", &big, b"bc", b"d"];
    // A streamed message needs its consumer taking it meanwhile.
    let producer = {
        let (raw, msgs) = (
            raw.clone(),
            msgs.iter().map(|m| m.to_vec()).collect::<Vec<_>>(),
        );
        std::thread::spawn(move || raw.put_many_bytes(&msgs).unwrap())
    };
    let mut batch = Messages::new();
    let mut got: Vec<Vec<u8>> = Vec::new();
    while got.len() < msgs.len() {
        let n = raw
            .get_many_bytes_into_timeout(&mut batch, 16, long)
            .unwrap();
        assert_eq!(n, batch.len());
        got.extend(batch.iter().map(<[u8]>::to_vec));
    }
    assert_eq!(got, msgs);
    assert_eq!(producer.join_in_time().unwrap(), 5);
    assert!(matches!(
        raw.try_get_many_bytes_into(&mut batch, 16),
        Err(GetError::Empty)
    ));
    assert!(batch.is_empty(), "emptied first, even when nothing comes");
}

#[test]
fn a_batch_with_a_message_over_the_limit_puts_nothing() {
    let _c = common::clean();
    let mut q: Queue<()> = Queue::new(0).unwrap();
    q.set_max_message_size(16);
    let err = q.put_many_bytes(&[&b"small"[..], &[0u8; 17]]).unwrap_err();
    assert!(matches!(err, PutError::Codec(CodecError::TooLarge { .. })));
    assert_eq!(q.len(), 0);
}

#[test]
fn a_message_that_does_not_decode_ends_the_batch_and_loses_no_other() {
    let _c = common::clean();
    let q: Queue<u32> = Queue::new(0).unwrap();
    q.put_many(&[1, 2]).unwrap();
    q.put_bytes(b"no").unwrap(); // two bytes: no u32
    q.put(&3).unwrap();
    let long = Duration::from_secs(60);
    assert_eq!(q.get_many_timeout(10, long).unwrap(), [1, 2]);
    assert!(matches!(
        q.get_many_timeout(10, long),
        Err(GetError::Codec(_))
    ));
    assert_eq!(q.get_many_timeout(10, long).unwrap(), [3]);
}

#[test]
fn shutdown_ends_a_blocked_batch_put_with_what_went_in() {
    let _c = common::clean();
    let q: Queue<u32> = Queue::new(2).unwrap();
    let producer = {
        let q = q.clone();
        std::thread::spawn(move || q.put_many(&[1, 2, 3, 4, 5]))
    };
    common::until("two are in", || q.len() == 2);
    q.shutdown();
    assert_eq!(producer.join_in_time().unwrap().unwrap(), 2);
    assert!(matches!(q.put_many(&[6]), Err(PutError::ShutDown)));
    let long = Duration::from_secs(60);
    assert_eq!(q.get_many_timeout(10, long).unwrap(), [1, 2]);
    assert!(matches!(
        q.get_many_timeout(10, long),
        Err(GetError::ShutDown)
    ));
}
