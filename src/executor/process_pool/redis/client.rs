//! The pool's side of a Redis-backed pool: takes submitted tasks from the
//! shared queue, pushes them signed to the pool's list, reads the answers
//! from its own list in batches, watches the workers' leases, and survives
//! Redis going away for a while.
//!
//! Two threads, each with its own connection: the *sender* (this module's
//! [`run`]: new tasks, cancellations, leases, Redis restarts, the end) and
//! the *receiver* (answers). The table of outstanding tasks is theirs; each
//! future completes exactly once (a late or duplicate answer — an older
//! attempt, a task already failed — is dropped by id and attempt).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_bytes::ByteBuf;

use super::connection::{Con, Target};
use super::envelope::{Message, Seal, Task};
use super::keys::{self, Keys};
use super::{RedisConfig, RemoteStatus};
use crate::blocking::lock;
use crate::executor::process_pool::protocol::Value;
use crate::executor::process_pool::state::{Pending, Shared, Sink, stopper};
use crate::futures::TaskError;
use crate::ipc::Payload;
use crate::ipc::{self, Connection};

/// A task pushed to Redis and not answered.
struct Outstanding {
    sink: Box<dyn Sink>,
    task: Task,
    /// The task as sealed (what the lists hold), to take it back.
    sealed: Vec<u8>,
    retries_left: u32,
}

impl Outstanding {
    /// The task's next attempt, sealed: what to push again (answers to the
    /// attempts before it are dropped).
    fn next_attempt(&mut self, remote: &Remote) -> redis::RedisResult<Vec<u8>> {
        self.task.attempt += 1;
        self.sealed = remote.sealed(&Message::Task(self.task.clone()))?;
        Ok(self.sealed.clone())
    }
}

/// What the two threads and the pool share.
pub(crate) struct Remote {
    cfg: RedisConfig,
    seal: Seal,
    keys: Keys,
    client: u64,
    build: [u8; 32],
    table: Mutex<HashMap<u64, Outstanding>>,
    /// Messages dropped: bad signature, too large, malformed, not ours.
    dropped: AtomicU64,
    refusals: Mutex<Vec<String>>,
    workers: AtomicUsize,
    slots: AtomicUsize,
    stop: AtomicBool,
    /// `shutdown(cancel_futures)` has taken the waiting tasks out (once).
    unstarted_cancelled: AtomicBool,
}

impl Remote {
    pub(crate) fn status(&self) -> RemoteStatus {
        RemoteStatus {
            workers: self.workers.load(Ordering::Relaxed),
            slots: self.slots.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            refusals: lock(&self.refusals).clone(),
        }
    }

    /// A message sealed, for a command on the way to Redis.
    fn sealed(&self, msg: &Message) -> redis::RedisResult<Vec<u8>> {
        self.seal
            .seal(msg)
            .map_err(|e| redis::RedisError::from(std::io::Error::other(e.to_string())))
    }

    /// The remote slots the workers announced (0 before any).
    pub(crate) fn slots(&self) -> usize {
        self.slots.load(Ordering::Relaxed)
    }
}

fn io_error(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// Starts the backend: checks that Redis answers, announces the pool, and
/// starts the threads. The sender's handle is the pool's manager handle.
pub(crate) fn start(
    shared: Arc<Shared>,
    wake_rx: Connection,
    cfg: RedisConfig,
) -> std::io::Result<(Arc<Remote>, JoinHandle<()>)> {
    let build = crate::os::image::build_digest()?;
    let mut id = [0u8; 8];
    crate::os::sock::random(&mut id)?;
    let redis_client = Target::new(&cfg.url).map_err(io_error)?;
    let mut con = redis_client.connect(Duration::from_secs(5)).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            format!("cannot reach Redis at {}: {e}", cfg.url),
        )
    })?;
    let remote = Arc::new(Remote {
        seal: Seal::new(&cfg.key, cfg.max_message),
        keys: Keys::new(&cfg.pool),
        client: u64::from_le_bytes(id),
        build,
        table: Mutex::new(HashMap::new()),
        dropped: AtomicU64::new(0),
        refusals: Mutex::new(Vec::new()),
        workers: AtomicUsize::new(0),
        slots: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        unstarted_cancelled: AtomicBool::new(false),
        cfg,
    });
    announce(&remote, &mut con).map_err(io_error)?;
    let receiver = {
        let (remote, shared, rc) = (remote.clone(), shared.clone(), redis_client.clone());
        std::thread::Builder::new()
            .name("multiproc-redis-rx".into())
            .spawn(move || receive(&remote, &shared, &rc))?
    };
    let sender = {
        let remote = remote.clone();
        std::thread::Builder::new()
            .name("multiproc-redis-tx".into())
            .spawn(move || run(&remote, &shared, wake_rx, redis_client, con, receiver))?
    };
    Ok((remote, sender))
}

/// Tells workers which build the pool runs, and marks this Redis as the
/// one we started with.
fn announce(remote: &Remote, con: &mut Con) -> redis::RedisResult<()> {
    let pool = remote.sealed(&Message::Pool {
        build: remote.build,
    })?;
    redis::pipe()
        .cmd("SET")
        .arg(remote.keys.pool())
        .arg(pool)
        .ignore()
        .cmd("SET")
        .arg(remote.keys.alive(remote.client))
        .arg(1)
        .ignore()
        .query::<()>(con)
}

/// The sender: pushes new tasks, handles cancellations and lost workers,
/// notices a restarted or vanished Redis; returns when the pool is shut
/// down and every task is answered.
fn run(
    remote: &Arc<Remote>,
    shared: &Arc<Shared>,
    wake_rx: Connection,
    redis_client: Target,
    con: Con,
    receiver: JoinHandle<()>,
) {
    let mut con = Some(con);
    let mut down_since: Option<(Instant, String)> = None;
    let mut tries = 0u32;
    let mut next_watch = Instant::now();
    let tick = remote.cfg.watch_every;
    loop {
        if con.is_none() {
            match redis_client.connect(Duration::from_secs(5)) {
                Ok(c) => {
                    con = Some(c);
                    tries = 0;
                    next_watch = Instant::now();
                }
                Err(e) => {
                    let since = down_since.get_or_insert_with(|| (Instant::now(), e.to_string()));
                    if since.0.elapsed() >= remote.cfg.redis_deadline {
                        let why = format!(
                            "Redis at {} unreachable for {:?}: {}",
                            remote.cfg.url, remote.cfg.redis_deadline, since.1
                        );
                        tracing::error!(target: "multiproc::redis", %why, "giving up on Redis");
                        break_pool(remote, shared, why);
                        break;
                    }
                    std::thread::sleep(keys::backoff(tries));
                    tries += 1;
                    continue;
                }
            }
        }
        let c = con.as_mut().expect("connected");
        let step = (|| -> redis::RedisResult<bool> {
            if Instant::now() >= next_watch {
                watch(remote, c)?;
                next_watch = Instant::now() + tick;
            }
            cancel(remote, shared, c)?;
            push(remote, shared, c)?;
            cancel_unstarted(remote, shared, c)?;
            Ok(finished(remote, shared))
        })();
        match step {
            Ok(true) => break,
            Ok(false) => down_since = None,
            Err(e) => {
                down_since.get_or_insert_with(|| (Instant::now(), e.to_string()));
                con = None;
                continue;
            }
        }
        // Sleep until poked (a task, a cancel, the end) or the next watch.
        {
            let mut st = lock(&shared.state);
            if !st.queue.is_empty() || !st.cancels.is_empty() {
                continue;
            }
            st.asleep = true;
        }
        let wait = next_watch.saturating_duration_since(Instant::now());
        let _ = ipc::wait_timeout(&[&wake_rx], wait);
        lock(&shared.state).asleep = false;
        while wake_rx.try_recv_bytes().is_ok() {}
    }
    remote.stop.store(true, Ordering::SeqCst);
    let _ = receiver.join();
    if let Some(c) = con.as_mut() {
        let _: redis::RedisResult<()> = redis::cmd("DEL")
            .arg(remote.keys.alive(remote.client))
            .arg(remote.keys.results(remote.client))
            .arg(remote.keys.lost(remote.client))
            .query(c);
    }
    let mut st = lock(&shared.state);
    st.running = false;
    let leftover: Vec<Pending> = st.queue.drain(..).collect();
    drop(st);
    drop(leftover); // their futures end with ShutDown
    shared.ended.notify_all();
}

/// Whether the pool is done: shut down (or broken), nothing queued here or
/// outstanding there.
fn finished(remote: &Remote, shared: &Shared) -> bool {
    let st = lock(&shared.state);
    ((st.shutdown && st.queue.is_empty()) || st.broken.is_some()) && lock(&remote.table).is_empty()
}

/// Redis stayed away past the deadline: every task fails, saying why.
fn break_pool(remote: &Remote, shared: &Shared, why: String) {
    crate::executor::process_pool::state::fail_all(shared, why.clone());
    let outstanding: Vec<Outstanding> = lock(&remote.table).drain().map(|(_, o)| o).collect();
    for o in outstanding {
        o.sink.finish(Err(TaskError::Broken(why.clone())));
    }
}

/// Pushes the queued tasks, in one command.
fn push(remote: &Remote, shared: &Arc<Shared>, con: &mut Con) -> redis::RedisResult<()> {
    let queued: Vec<Pending> = lock(&shared.state).queue.drain(..).collect();
    if queued.is_empty() {
        return Ok(());
    }
    let weak = Arc::downgrade(shared);
    let mut sealed_all = Vec::with_capacity(queued.len());
    let mut table = lock(&remote.table);
    for p in queued {
        if !p.fds.is_empty() {
            p.sink.finish(Err(TaskError::Broken(
                "the task's argument holds handles (queues, locks, shared memory of this machine): they cannot reach workers on other machines".into(),
            )));
            continue;
        }
        if !p.sink.start(stopper(&weak, p.id)) {
            continue; // cancelled before it was sent
        }
        let task = Task {
            client: remote.client,
            id: p.id,
            attempt: 0,
            build: remote.build,
            entry: p.entry,
            arg: ByteBuf::from(p.arg),
            timeout_ms: p.timeout.map(|t| t.as_millis() as u64),
        };
        let sealed = match remote.seal.seal(&Message::Task(task.clone())) {
            Ok(s) if s.len() <= remote.cfg.max_message => s,
            Ok(s) => {
                p.sink.finish(Err(TaskError::Broken(format!(
                    "the task is {} bytes, over the pool's message cap of {}",
                    s.len(),
                    remote.cfg.max_message
                ))));
                continue;
            }
            Err(e) => {
                p.sink
                    .finish(Err(TaskError::Broken(format!("cannot send the task: {e}"))));
                continue;
            }
        };
        sealed_all.push(sealed.clone());
        table.insert(
            p.id,
            Outstanding {
                sink: p.sink,
                task,
                sealed,
                retries_left: p.retries,
            },
        );
    }
    drop(table);
    for chunk in sealed_all.chunks(1024) {
        redis::cmd("LPUSH")
            .arg(remote.keys.tasks())
            .arg(chunk)
            .query::<()>(con)?;
    }
    Ok(())
}

/// Cancelled futures: a task still in the pool's list is taken out; one a
/// worker took is cancelled there (its process is killed).
fn cancel(remote: &Remote, shared: &Shared, con: &mut Con) -> redis::RedisResult<()> {
    let ids = std::mem::take(&mut lock(&shared.state).cancels);
    for id in ids {
        let Some(sealed) = lock(&remote.table).get(&id).map(|o| o.sealed.clone()) else {
            continue;
        };
        let removed: usize = redis::cmd("LREM")
            .arg(remote.keys.tasks())
            .arg(1)
            .arg(&sealed)
            .query(con)?;
        if removed == 1 {
            if let Some(o) = lock(&remote.table).remove(&id) {
                o.sink.finish(Err(TaskError::Cancelled));
            }
            continue;
        }
        let msg = remote.sealed(&Message::Cancel {
            client: remote.client,
            id,
        })?;
        let workers: Vec<String> = redis::cmd("SMEMBERS")
            .arg(remote.keys.workers())
            .query(con)?;
        let mut pipe = redis::pipe();
        for w in &workers {
            pipe.cmd("RPUSH")
                .arg(remote.keys.cancels(w))
                .arg(&msg)
                .ignore();
        }
        pipe.query::<()>(con)?;
        // The future is done (cancelled): its answer, if one comes, is not
        // waited for.
        lock(&remote.table).remove(&id);
    }
    Ok(())
}

/// After `shutdown(cancel_futures)`, once: every task of ours still waiting
/// in the pool's list (taken by no worker) is taken out and cancelled;
/// those a worker took run to their end.
fn cancel_unstarted(remote: &Remote, shared: &Shared, con: &mut Con) -> redis::RedisResult<()> {
    if !lock(&shared.state).cancel_unstarted || remote.unstarted_cancelled.load(Ordering::SeqCst) {
        return Ok(());
    }
    let waiting: HashMap<Vec<u8>, u64> = lock(&remote.table)
        .iter()
        .map(|(id, o)| (o.sealed.clone(), *id))
        .collect();
    // One atomic pass over the list, whatever its length (an LREM per task
    // would scan it once per task).
    let taken: Vec<Vec<u8>> = if waiting.is_empty() {
        Vec::new()
    } else {
        let script = redis::Script::new(keys::TAKE_OUT);
        let mut call = script.prepare_invoke();
        call.key(remote.keys.tasks());
        for sealed in waiting.keys() {
            call.arg(sealed.as_slice());
        }
        call.invoke(con)?
    };
    remote.unstarted_cancelled.store(true, Ordering::SeqCst);
    for sealed in taken {
        if let Some(o) = waiting
            .get(&sealed)
            .and_then(|id| lock(&remote.table).remove(id))
        {
            o.sink.finish(Err(TaskError::Cancelled));
        }
    }
    Ok(())
}

/// The periodic look: a restarted Redis (send everything again), lost
/// workers (fence them; their tasks fail or run again), news from workers.
fn watch(remote: &Remote, con: &mut Con) -> redis::RedisResult<()> {
    let alive: bool = redis::cmd("EXISTS")
        .arg(remote.keys.alive(remote.client))
        .query(con)?;
    if !alive {
        // Redis lost its data (a restart without persistence): nothing we
        // sent is there any more. Announce again and send every task again
        // as its next attempt (answers to the old one are dropped).
        announce(remote, con)?;
        let mut resend = Vec::new();
        for o in lock(&remote.table).values_mut() {
            resend.push(o.next_attempt(remote)?);
        }
        for chunk in resend.chunks(1024) {
            redis::cmd("RPUSH")
                .arg(remote.keys.tasks())
                .arg(chunk)
                .query::<()>(con)?;
        }
    }
    let workers: Vec<String> = redis::cmd("SMEMBERS")
        .arg(remote.keys.workers())
        .query(con)?;
    let fence = redis::Script::new(keys::FENCE);
    let mut found: Vec<(String, Vec<u8>)> = Vec::new();
    for w in &workers {
        let lost: Option<Vec<Vec<u8>>> = fence
            .key(remote.keys.workers())
            .key(remote.keys.lease(w))
            .key(remote.keys.processing(w))
            .key(remote.keys.cancels(w))
            .key(remote.keys.slots())
            .arg(w)
            .invoke(con)?;
        if let Some(tasks) = lost {
            tracing::warn!(target: "multiproc::redis", worker = %w, started = tasks.len(), "a worker lost its lease: fenced");
            found.extend(tasks.into_iter().map(|t| (w.clone(), t)));
        }
    }
    // Tasks of ours that another client found on a lost worker.
    let handed: Vec<Vec<u8>> = redis::cmd("LRANGE")
        .arg(remote.keys.lost(remote.client))
        .arg(0)
        .arg(-1)
        .query(con)?;
    if !handed.is_empty() {
        redis::cmd("DEL")
            .arg(remote.keys.lost(remote.client))
            .query::<()>(con)?;
        found.extend(handed.into_iter().map(|t| ("a lost worker".to_string(), t)));
    }
    for (worker, sealed) in found {
        lost_task(remote, con, &worker, sealed)?;
    }
    let slots: HashMap<String, usize> =
        redis::cmd("HGETALL").arg(remote.keys.slots()).query(con)?;
    remote.workers.store(slots.len(), Ordering::Relaxed);
    remote.slots.store(slots.values().sum(), Ordering::Relaxed);
    let events: Vec<Vec<u8>> = redis::cmd("LRANGE")
        .arg(remote.keys.events())
        .arg(0)
        .arg(-1)
        .query(con)?;
    for e in events {
        match remote.seal.open(&e) {
            Ok(Message::Refused { worker, why }) => {
                tracing::warn!(target: "multiproc::redis", %worker, %why, "a worker refused the pool");
                let line = format!("{worker}: {why}");
                let mut r = lock(&remote.refusals);
                if !r.contains(&line) {
                    r.push(line);
                }
            }
            _ => {
                remote.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    Ok(())
}

/// A task found in a lost worker's processing list: it had started, so it
/// fails with `WorkerLost` — or runs again, at the front, if it asked for
/// retries. Another client's task goes to that client.
fn lost_task(
    remote: &Remote,
    con: &mut Con,
    worker: &str,
    sealed: Vec<u8>,
) -> redis::RedisResult<()> {
    let task = match remote.seal.open(&sealed) {
        Ok(Message::Task(t)) => t,
        _ => {
            remote.dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
    };
    if task.client != remote.client {
        return redis::cmd("RPUSH")
            .arg(remote.keys.lost(task.client))
            .arg(sealed)
            .query(con);
    }
    let mut table = lock(&remote.table);
    let Some(o) = table.get_mut(&task.id) else {
        return Ok(()); // answered meanwhile
    };
    if o.task.attempt != task.attempt {
        return Ok(()); // an older attempt
    }
    if o.retries_left == 0 {
        let o = table.remove(&task.id).expect("present");
        drop(table);
        o.sink.finish(Err(TaskError::WorkerLost {
            worker: worker.to_string(),
        }));
        return Ok(());
    }
    o.retries_left -= 1;
    let again = o.next_attempt(remote)?;
    drop(table);
    redis::cmd("RPUSH")
        .arg(remote.keys.tasks())
        .arg(again)
        .query(con)
}

/// The receiver: answers from the client's list, in batches.
fn receive(remote: &Remote, shared: &Shared, redis_client: &Target) {
    let wait = Duration::from_millis(200);
    let mut con: Option<Con> = None;
    let mut tries = 0u32;
    while !remote.stop.load(Ordering::SeqCst) {
        if con.is_none() {
            match redis_client.connect(wait + Duration::from_secs(5)) {
                Ok(c) => {
                    con = Some(c);
                    tries = 0;
                }
                Err(_) => {
                    std::thread::sleep(keys::backoff(tries));
                    tries += 1;
                    continue;
                }
            }
        }
        let c = con.as_mut().expect("connected");
        let got = (|| -> redis::RedisResult<Vec<Vec<u8>>> {
            let key = remote.keys.results(remote.client);
            let first: Option<(String, Vec<u8>)> = redis::cmd("BLPOP")
                .arg(&key)
                .arg(wait.as_secs_f64())
                .query(c)?;
            let Some((_, first)) = first else {
                return Ok(Vec::new());
            };
            let mut all = vec![first];
            let more: Option<Vec<Vec<u8>>> = redis::cmd("LPOP").arg(&key).arg(4096).query(c)?;
            all.extend(more.unwrap_or_default());
            Ok(all)
        })();
        match got {
            Ok(answers) => {
                for a in answers {
                    answer(remote, &a);
                }
                if lock(&remote.table).is_empty() && lock(&shared.state).shutdown {
                    shared.poke();
                }
            }
            Err(_) => con = None,
        }
    }
}

/// One answer: completes its future if it is the current attempt of a task
/// still outstanding; anything else is dropped.
fn answer(remote: &Remote, bytes: &[u8]) {
    let (id, attempt, ended) = match remote.seal.open(bytes) {
        Ok(Message::Done {
            client,
            id,
            attempt,
            ended,
            ..
        }) if client == remote.client => (id, attempt, ended),
        _ => {
            remote.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let mut table = lock(&remote.table);
    if table.get(&id).is_none_or(|o| o.task.attempt != attempt) {
        return; // late, duplicate, or an older attempt
    }
    let o = table.remove(&id).expect("present");
    drop(table);
    o.sink.finish(
        ended
            .into_result()
            .map(|v| Value::Encoded(Payload::from(v))),
    );
}
