//! The worker agent: serves a Redis-backed pool from another machine (or
//! another process of this one) with a local `ProcessPool` of its slots.
//!
//! Two threads, each with its own connection: the session's loop sends the
//! answers of the tasks that ended and takes tasks for the free slots, in
//! one atomic script call (one round trip) each time, and hands them to the
//! local pool; the *heartbeat* renews the lease and carries out
//! cancellations. Losing Redis or the
//! lease ends the session: the running tasks' processes are killed (the
//! pool has failed them or sent them elsewhere) and the agent registers
//! again under a new name.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::connection::{Con, Target};
use super::envelope::{Ended, Message, Seal, Task};
use super::keys::{self, Keys};
use crate::blocking::lock;
use crate::executor::process_pool::protocol::Value;
use crate::executor::process_pool::state::Sink;
use crate::executor::{ProcessPool, TaskOptions};
use crate::futures::TaskError;
use crate::futures::state::Stopper;
use crate::ipc::AuthKey;

/// How a worker agent serves a pool ([`serve`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServeOptions {
    /// The pool's auth key (required): every message is signed and checked
    /// with it.
    pub auth_key: AuthKey,
    /// Tasks run at once: the size of the agent's local pool. Default: the
    /// CPUs this process may use.
    pub slots: usize,
    /// Tasks taken ahead, beyond the free slots (default 0). With 0 a task
    /// is taken only for a slot that runs it at once, so a lost agent's
    /// tasks that had not started run elsewhere — but each task costs a
    /// round trip to Redis before it starts. Tasks taken ahead wait here
    /// and start the moment a slot frees, with no round trip between short
    /// tasks (several times the rate on tasks of microseconds), at a price:
    /// the pool cannot tell which of a lost agent's tasks had started, so
    /// every task the agent held fails with
    /// [`WorkerLost`](crate::futures::TaskError::WorkerLost) (or runs
    /// again if it asked for [`retries`](crate::executor::TaskOptions::retries)).
    /// No task ever runs twice either way. Like Celery's prefetch, for
    /// many short tasks.
    pub prefetch: usize,
    /// How long the agent's lease lasts unrenewed (renewed four times per
    /// lease): past it, the pool counts the agent lost. Default 5 s.
    pub lease: Duration,
    /// Messages larger than this are dropped unread (default 512 MiB).
    pub max_message: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            auth_key: AuthKey::NONE,
            slots: crate::process::cpu_count(),
            prefetch: 0,
            lease: Duration::from_secs(5),
            max_message: super::DEFAULT_MAX_MESSAGE,
        }
    }
}

impl ServeOptions {
    /// Options with the pool's key, the rest by default.
    pub fn new(auth_key: impl Into<AuthKey>) -> ServeOptions {
        ServeOptions {
            auth_key: auth_key.into(),
            ..ServeOptions::default()
        }
    }

    /// Sets [`slots`](Self::slots) (at least 1).
    pub fn slots(mut self, n: usize) -> ServeOptions {
        self.slots = n.max(1);
        self
    }

    /// Sets [`prefetch`](Self::prefetch).
    pub fn prefetch(mut self, n: usize) -> ServeOptions {
        self.prefetch = n;
        self
    }

    /// Sets [`lease`](Self::lease) (at least 50 ms).
    pub fn lease(mut self, lease: Duration) -> ServeOptions {
        self.lease = lease.max(Duration::from_millis(50));
        self
    }
}

/// Serves the pool `pool` at the Redis `url` as a worker agent, for as long
/// as this process lives. Returns only when it cannot serve that pool at
/// all: no auth key, a wrong one (the pool's announcement does not verify:
/// `PermissionDenied`), or a pool of another build (the pool is told why).
/// Losing Redis or the lease is not an error: the agent waits, then
/// registers again.
///
/// A program can also be made a worker by its environment alone (taken over
/// before `main`, nothing to call): `MULTIPROC_WORKER` (the URL),
/// `MULTIPROC_POOL`, `MULTIPROC_AUTHKEY`, and optionally `MULTIPROC_SLOTS`,
/// `MULTIPROC_PREFETCH` and `MULTIPROC_LEASE_MS`.
pub fn serve(url: &str, pool: &str, options: ServeOptions) -> io::Result<()> {
    let key = options
        .auth_key
        .required("a worker needs the pool's auth key (MULTIPROC_AUTHKEY)")?
        .to_vec();
    let build = crate::os::image::build_digest()?;
    let redis_client =
        Target::new(url).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let ctx = Context {
        keys: Keys::new(pool),
        seal: Seal::new(&key, options.max_message),
        options,
        build,
        redis_client,
    };
    let mut tries = 0u32;
    loop {
        match session(&ctx) {
            Ok(Never::Fatal(e)) => return Err(e),
            Ok(Never::Lost) => {
                tracing::warn!(target: "multiproc::redis", "the agent lost its lease: registering again");
                tries = 0;
            }
            Err(e) => {
                tracing::warn!(target: "multiproc::redis", error = %e, "the agent lost Redis: registering again");
                std::thread::sleep(keys::backoff(tries));
                tries += 1;
            }
        }
    }
}

struct Context {
    keys: Keys,
    seal: Seal,
    options: ServeOptions,
    build: [u8; 32],
    redis_client: Target,
}

/// How a session ended (it never ends well: an agent serves for ever).
enum Never {
    /// The lease was lost: register again.
    Lost,
    /// This pool cannot be served.
    Fatal(io::Error),
}

/// An answer on its way: the task as it sits in the processing list, and
/// the sealed answer.
struct Finished {
    task: Vec<u8>,
    client: u64,
    answer: Vec<u8>,
}

/// A task the agent holds, by (client, id): waiting in the local pool's
/// queue (taken ahead), or started there (and how to stop it).
enum Held {
    Waiting { cancelled: bool },
    Running(Stopper),
}

type Table = Arc<Mutex<HashMap<(u64, u64), Held>>>;

/// What the two threads of a session share.
struct Session {
    worker: String,
    lost: AtomicBool,
    /// Wakes the heartbeat when the session ends.
    wake: Condvar,
    wake_lock: Mutex<()>,
    held: Table,
}

impl Session {
    /// A cancellation from the pool: a running task is stopped (its process
    /// killed), one waiting here will not start.
    fn cancel(&self, key: (u64, u64)) {
        let mut held = lock(&self.held);
        match held.remove(&key) {
            Some(Held::Running(stop)) => {
                drop(held);
                stop();
            }
            Some(Held::Waiting { .. }) => {
                held.insert(key, Held::Waiting { cancelled: true });
            }
            None => {} // answered already
        }
    }
}

/// The end of a task's future in the agent's local pool: the answer goes
/// to the session's loop, the stopper (to cancel it) to the session's
/// table. A task the local pool drops unanswered (cancelled before it
/// started) is answered `Cancelled`, so its place is given back and it
/// leaves the processing list.
struct AgentSink {
    key: (u64, u64),
    attempt: u32,
    worker: String,
    sealed: Vec<u8>,
    seal: Seal,
    held: Table,
    tx: mpsc::Sender<Finished>,
    answered: bool,
}

impl AgentSink {
    fn answer(&mut self, outcome: Result<Value, TaskError>) {
        self.answered = true;
        lock(&self.held).remove(&self.key);
        let outcome = outcome.map(Value::into_encoded);
        let msg = Message::Done {
            client: self.key.0,
            id: self.key.1,
            attempt: self.attempt,
            worker: self.worker.clone(),
            ended: Ended::from_local(outcome),
        };
        let answer = self.seal.seal(&msg).unwrap_or_else(|e| {
            let msg = Message::Done {
                client: self.key.0,
                id: self.key.1,
                attempt: self.attempt,
                worker: self.worker.clone(),
                ended: Ended::Broken(format!("cannot send the result: {e}")),
            };
            self.seal.seal(&msg).expect("a small message encodes")
        });
        let _ = self.tx.send(Finished {
            task: std::mem::take(&mut self.sealed),
            client: self.key.0,
            answer,
        });
    }
}

impl Sink for AgentSink {
    fn start(&self, stopper: Stopper) -> bool {
        let mut held = lock(&self.held);
        if let Some(Held::Waiting { cancelled: true }) = held.get(&self.key) {
            return false;
        }
        held.insert(self.key, Held::Running(stopper));
        true
    }

    fn is_done(&self) -> bool {
        false
    }

    fn complete(&mut self, outcome: Result<Value, TaskError>) {
        self.answer(outcome);
    }
}

impl Drop for AgentSink {
    fn drop(&mut self) {
        if !self.answered {
            self.answer(Err(TaskError::Cancelled));
        }
    }
}

fn session(ctx: &Context) -> redis::RedisResult<Never> {
    let mut con = ctx.redis_client.connect(Duration::from_secs(5))?;
    // The pool's announcement: which build, under which key.
    let announced: Vec<u8> = loop {
        let got: Option<Vec<u8>> = redis::cmd("GET").arg(ctx.keys.pool()).query(&mut con)?;
        match got {
            Some(a) => break a,
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    match ctx.seal.open(&announced) {
        Ok(Message::Pool { build }) if build == ctx.build => {}
        Ok(Message::Pool { .. }) => {
            let why = "runs another build of the program than the pool (rebuild and deploy the same executable)";
            let refusal = ctx
                .seal
                .seal(&Message::Refused {
                    worker: worker_name(),
                    why: why.into(),
                })
                .map_err(|e| io::Error::other(e.to_string()))?;
            redis::pipe()
                .cmd("LPUSH")
                .arg(ctx.keys.events())
                .arg(refusal)
                .ignore()
                .cmd("LTRIM")
                .arg(ctx.keys.events())
                .arg(0)
                .arg(99)
                .ignore()
                .query::<()>(&mut con)?;
            return Ok(Never::Fatal(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("this worker {why}"),
            )));
        }
        Ok(_) | Err(_) => {
            return Ok(Never::Fatal(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the pool's announcement does not verify: wrong auth key",
            )));
        }
    }
    let slots = ctx.options.slots.max(1);
    let lease_ms = ctx.options.lease.as_millis() as u64;
    let s = Arc::new(Session {
        worker: worker_name(),
        lost: AtomicBool::new(false),
        wake: Condvar::new(),
        wake_lock: Mutex::new(()),
        held: Arc::new(Mutex::new(HashMap::new())),
    });
    // One step: the pool never sees a member without a lease.
    redis::pipe()
        .atomic()
        .cmd("SADD")
        .arg(ctx.keys.workers())
        .arg(&s.worker)
        .ignore()
        .cmd("SET")
        .arg(ctx.keys.lease(&s.worker))
        .arg(1)
        .arg("PX")
        .arg(lease_ms)
        .ignore()
        .cmd("HSET")
        .arg(ctx.keys.slots())
        .arg(&s.worker)
        .arg(slots)
        .ignore()
        .query::<()>(&mut con)?;
    let local = match ProcessPool::builder().max_workers(slots).build() {
        Ok(p) => p,
        Err(e) => return Ok(Never::Fatal(e)),
    };
    let (tx, rx) = mpsc::channel::<Finished>();
    let heartbeat = {
        let (s, rc, keys, seal) = (
            s.clone(),
            ctx.redis_client.clone(),
            ctx.keys.clone(),
            ctx.seal.clone(),
        );
        let every = ctx.options.lease / 4;
        std::thread::spawn(move || heartbeat(&s, &rc, &keys, &seal, every, lease_ms))
    };
    let places = slots + ctx.options.prefetch;
    let fetched = fetch(ctx, &s, &mut con, &local, places, &tx, &rx);
    s.lost.store(true, Ordering::SeqCst);
    s.wake.notify_all();
    // The pool fails or re-sends what ran here: stop it all.
    let running: Vec<Stopper> = lock(&s.held)
        .drain()
        .filter_map(|(_, h)| match h {
            Held::Running(stop) => Some(stop),
            Held::Waiting { .. } => None,
        })
        .collect();
    for stop in running {
        stop();
    }
    local.shutdown(true, true);
    drop(tx);
    let _ = heartbeat.join();
    fetched?;
    Ok(Never::Lost)
}

/// The session's loop, until the lease is lost: sends the answers of the
/// tasks that ended and takes tasks for the free places (the slots, and
/// the tasks taken ahead), in one atomic step (one round trip) each time;
/// waits in Redis only when nothing runs here.
fn fetch(
    ctx: &Context,
    s: &Arc<Session>,
    con: &mut Con,
    local: &ProcessPool,
    places: usize,
    tx: &mpsc::Sender<Finished>,
    rx: &mpsc::Receiver<Finished>,
) -> redis::RedisResult<()> {
    let step = redis::Script::new(keys::STEP);
    let (tasks, processing) = (ctx.keys.tasks(), ctx.keys.processing(&s.worker));
    let lease = ctx.keys.lease(&s.worker);
    let mut running = 0usize;
    let mut idle_rounds = 0u32;
    // An answer that came while this loop waited, for the next step.
    let mut carried: Option<Finished> = None;
    while !s.lost.load(Ordering::SeqCst) {
        let mut ended: Vec<Finished> = carried.take().into_iter().collect();
        ended.extend(rx.try_iter().take(256));
        if ended.is_empty() && running >= places {
            // Every place taken: wait for a task to end.
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(f) => ended.push(f),
                Err(_) => continue,
            }
            ended.extend(rx.try_iter().take(255));
        }
        running -= ended.len();
        let free = places - running;
        let mut call = step.prepare_invoke();
        call.key(&tasks).key(&processing).key(&lease).arg(free);
        for f in &ended {
            call.key(ctx.keys.results(f.client))
                .arg(&f.task)
                .arg(&f.answer);
        }
        let got: Option<Vec<Vec<u8>>> = call.invoke(con)?;
        let Some(mut got) = got else {
            return Ok(()); // no lease: fenced
        };
        if got.is_empty() && free > 0 {
            if running > 0 {
                // Tasks run here: look again when one ends, or soon.
                let wait = Duration::from_millis(1 << idle_rounds.min(6));
                idle_rounds += 1;
                carried = rx.recv_timeout(wait).ok();
                continue;
            }
            // Nothing runs here: wait in Redis for a task, which lands in
            // our processing list atomically.
            let one: Option<Vec<u8>> = redis::cmd("BLMOVE")
                .arg(&tasks)
                .arg(&processing)
                .arg("RIGHT")
                .arg("LEFT")
                .arg(0.2)
                .query(con)?;
            let Some(one) = one else { continue };
            let member: bool = redis::cmd("SISMEMBER")
                .arg(ctx.keys.workers())
                .arg(&s.worker)
                .query(con)?;
            if !member {
                // Fenced while waiting: the pool no longer looks at our
                // list, so the task goes back to the front.
                redis::pipe()
                    .cmd("LREM")
                    .arg(&processing)
                    .arg(1)
                    .arg(&one)
                    .ignore()
                    .cmd("RPUSH")
                    .arg(&tasks)
                    .arg(&one)
                    .ignore()
                    .query::<()>(con)?;
                return Ok(());
            }
            got.push(one);
        }
        idle_rounds = 0;
        for sealed in got {
            running += run_task(ctx, s, con, local, tx, sealed)?;
        }
    }
    Ok(())
}

/// One task taken: checked, then handed to the local pool.
fn run_task(
    ctx: &Context,
    s: &Arc<Session>,
    con: &mut Con,
    local: &ProcessPool,
    tx: &mpsc::Sender<Finished>,
    sealed: Vec<u8>,
) -> redis::RedisResult<usize> {
    let task: Task = match ctx.seal.open(&sealed) {
        Ok(Message::Task(t)) => t,
        _ => {
            // Forged, too large or not a task: dropped unread, never run.
            redis::cmd("LREM")
                .arg(ctx.keys.processing(&s.worker))
                .arg(1)
                .arg(&sealed)
                .query::<()>(con)?;
            return Ok(0);
        }
    };
    let sink = Box::new(AgentSink {
        key: (task.client, task.id),
        attempt: task.attempt,
        worker: s.worker.clone(),
        sealed,
        seal: ctx.seal.clone(),
        held: s.held.clone(),
        tx: tx.clone(),
        answered: false,
    });
    lock(&s.held).insert(sink.key, Held::Waiting { cancelled: false });
    if task.build != ctx.build {
        sink.finish(Err(TaskError::Broken(
            "the worker runs another build of the program than the task's".into(),
        )));
        return Ok(1);
    }
    let options = TaskOptions {
        timeout: task.timeout_ms.map(Duration::from_millis),
        ..TaskOptions::default()
    };
    // The entry comes from a message signed under the pool's key and
    // compiled into this very build (checked just above): the local pool
    // may name it to its workers.
    local.enqueue(task.entry, task.arg.into_vec(), Vec::new(), options, sink);
    Ok(1)
}

/// Renews the lease and carries out cancellations, until the lease is lost.
fn heartbeat(
    s: &Session,
    redis_client: &Target,
    keys: &Keys,
    seal: &Seal,
    every: Duration,
    lease_ms: u64,
) {
    let renew = redis::Script::new(keys::RENEW);
    let Ok(mut con) = redis_client.connect(Duration::from_secs(5)) else {
        s.lost.store(true, Ordering::SeqCst);
        return;
    };
    while !s.lost.load(Ordering::SeqCst) {
        let step = (|| -> redis::RedisResult<bool> {
            let held: i64 = renew
                .key(keys.workers())
                .key(keys.lease(&s.worker))
                .arg(&s.worker)
                .arg(lease_ms)
                .invoke(&mut con)?;
            let (cancels,): (Vec<Vec<u8>>,) = redis::pipe()
                .atomic()
                .cmd("LRANGE")
                .arg(keys.cancels(&s.worker))
                .arg(0)
                .arg(-1)
                .cmd("DEL")
                .arg(keys.cancels(&s.worker))
                .ignore()
                .query(&mut con)?;
            for c in cancels {
                if let Ok(Message::Cancel { client, id }) = seal.open(&c) {
                    s.cancel((client, id));
                }
            }
            Ok(held == 1)
        })();
        if !matches!(step, Ok(true)) {
            s.lost.store(true, Ordering::SeqCst);
            break;
        }
        let g = lock(&s.wake_lock);
        let _ = s.wake.wait_timeout(g, every);
    }
    s.wake.notify_all();
}

/// A name for this agent's session: host, pid, and a random part (a new
/// one each time it registers).
fn worker_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    let mut r = [0u8; 4];
    let _ = crate::os::sock::random(&mut r);
    format!(
        "{host}-{}-{:08x}",
        std::process::id(),
        u32::from_le_bytes(r)
    )
}

/// A program started with `MULTIPROC_WORKER` in its environment becomes a
/// worker agent before `main` (and never runs `main`).
// SAFETY (of running before `main`): on Linux, std is usable from an
// `.init_array` constructor; this one reads the environment and returns at
// once unless `MULTIPROC_WORKER` is set (and the process is no re-executed
// child), in which case it serves and exits without returning to `main`.
#[ctor::ctor(unsafe)]
fn agent_bootstrap() {
    let Some((url, rest)) = crate::os::bootstrap::take_settings(
        "MULTIPROC_WORKER",
        &[
            "MULTIPROC_POOL",
            "MULTIPROC_AUTHKEY",
            "MULTIPROC_SLOTS",
            "MULTIPROC_LEASE_MS",
            "MULTIPROC_PREFETCH",
        ],
    ) else {
        return;
    };
    let mut options = ServeOptions::new(AuthKey::from(rest[1].clone().unwrap_or_default()));
    if let Some(n) = rest[2].as_deref().and_then(|n| n.parse().ok()) {
        options = options.slots(n);
    }
    if let Some(ms) = rest[3].as_deref().and_then(|n| n.parse().ok()) {
        options = options.lease(Duration::from_millis(ms));
    }
    if let Some(n) = rest[4].as_deref().and_then(|n| n.parse().ok()) {
        options = options.prefetch(n);
    }
    let pool = rest[0].clone().unwrap_or_else(|| "default".into());
    let code = match serve(&url, &pool, options) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("multiproc worker for pool {pool:?} at {url}: {e}");
            2
        }
    };
    std::process::exit(code)
}

/// Keeps the object file that holds the agent's constructor in every binary
/// that builds a Redis-backed pool (a linker drops unreferenced members).
pub(crate) fn keep_agent() {
    std::hint::black_box(agent_bootstrap as fn());
}
