//! The process pool with workers reached through Redis: a real
//! `redis-server` on a Unix socket, worker agents started as separate
//! processes (this test binary, taken over before `main` by its
//! environment), killed, frozen and refused.
//!
//! `cargo test --features redis --test redis_pool`; needs `redis-server`
//! (Debian package `redis-server`). A missing server fails these tests.

mod common;
use common::{DEADLINE, JoinInTime, ResultInTime, Watchdog, until, watchdog};

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use multiproc::executor::{MapOptions, ProcessPool, TaskOptions};
use multiproc::futures::TaskError;

const KEY: &str = "the pool's key";

#[path = "../examples/common/redis_server.rs"]
mod redis_server;

/// A `redis-server` of our own (see `redis_server`), and connections to it.
/// Every test starts one first, so its watchdog goes last: a test stuck
/// where no deadline reaches aborts the binary instead of hanging CI.
struct Redis {
    server: redis_server::RedisServer,
    _watchdog: Watchdog,
}

impl Redis {
    fn start() -> Redis {
        Redis {
            server: redis_server::RedisServer::start("redis").unwrap(),
            _watchdog: watchdog("a Redis pool test"),
        }
    }

    fn url(&self) -> String {
        self.server.url()
    }

    fn restart(&mut self) {
        self.server.restart().unwrap();
    }

    fn kill(&mut self) {
        self.server.kill();
    }

    fn con(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// Tasks waiting in the list of the pool `pool`.
    fn waiting(&self, pool: &str) -> usize {
        redis::cmd("LLEN")
            .arg(format!("{{mp:{pool}}}:tasks"))
            .query(&mut self.con())
            .unwrap()
    }

    /// Tasks that workers of the pool `pool` took and have not answered.
    fn taken(&self, pool: &str) -> usize {
        let mut con = self.con();
        let lists: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{{mp:{pool}}}:proc:*"))
            .query(&mut con)
            .unwrap();
        lists
            .iter()
            .map(|l| redis::cmd("LLEN").arg(l).query::<usize>(&mut con).unwrap())
            .sum()
    }
}

/// A worker agent: this very executable, made a worker by its environment.
struct Agent(Child);

impl Agent {
    fn start(redis: &Redis, pool: &str, key: &str, slots: usize) -> Agent {
        Agent::start_exe(
            &std::env::current_exe().unwrap(),
            &redis.url(),
            pool,
            key,
            slots,
        )
    }

    fn start_exe(exe: &Path, url: &str, pool: &str, key: &str, slots: usize) -> Agent {
        Agent::start_ahead(exe, url, pool, key, slots, 0)
    }

    /// An agent that takes `prefetch` tasks ahead of its free slots.
    fn start_ahead(
        exe: &Path,
        url: &str,
        pool: &str,
        key: &str,
        slots: usize,
        prefetch: usize,
    ) -> Agent {
        let child = Command::new(exe)
            .env("MULTIPROC_PREFETCH", prefetch.to_string())
            .env("MULTIPROC_WORKER", url)
            .env("MULTIPROC_POOL", pool)
            .env("MULTIPROC_AUTHKEY", key)
            .env("MULTIPROC_SLOTS", slots.to_string())
            .env("MULTIPROC_LEASE_MS", "400")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Agent(child)
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.0.id() as i32, sig) };
    }

    /// Waits for the agent to exit by itself; its code and what it said.
    fn exited(mut self) -> (Option<i32>, String) {
        until("the agent exits", || self.0.try_wait().unwrap().is_some());
        let status = self.0.wait().unwrap();
        let mut err = String::new();
        use std::io::Read;
        self.0
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        (status.code(), err)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pool(redis: &Redis, name: &str) -> ProcessPool {
    ProcessPool::builder()
        .max_workers(2)
        .redis(redis.url(), name)
        .auth_key(KEY)
        .build()
        .unwrap()
}

fn square(x: u64) -> u64 {
    x * x
}

fn wait_workers(pool: &ProcessPool, n: usize) {
    until("the workers register", || {
        pool.remote_status().unwrap().workers == n
    });
}

#[test]
fn tasks_and_maps_run_on_remote_workers() {
    let redis = Redis::start();
    let _a = Agent::start(&redis, "basic", KEY, 2);
    let _b = Agent::start(&redis, "basic", KEY, 2);
    let pool = pool(&redis, "basic");
    let futures: Vec<_> = (0..200u64).map(|x| pool.submit(square, x)).collect();
    for (x, f) in futures.iter().enumerate() {
        assert_eq!(f.result_in_time(), Ok(square(x as u64)));
    }
    let sum: u64 = pool
        .map_with(square, 0..10_000u64, MapOptions::default().chunksize(500))
        .map(Result::unwrap)
        .sum();
    assert_eq!(sum, (0..10_000u64).map(square).sum());
    // Failures travel as they do locally: a panic, a dead process, a deadline.
    let panics = pool.submit(|()| -> u8 { panic!("remote boom") }, ());
    match panics.result_in_time() {
        Err(TaskError::Panicked { message, .. }) => assert_eq!(message, "remote boom"),
        other => panic!("{other:?}"),
    }
    let aborts = pool.submit(|()| -> u8 { std::process::abort() }, ());
    assert!(matches!(
        aborts.result_in_time(),
        Err(TaskError::WorkerDied { .. })
    ));
    let hangs = pool.submit_with(
        |()| std::thread::sleep(Duration::from_secs(60)),
        (),
        TaskOptions::timeout(Duration::from_millis(200)),
    );
    assert!(matches!(
        hangs.result_in_time(),
        Err(TaskError::DeadlineExceeded(_))
    ));
    wait_workers(&pool, 2);
    let status = pool.remote_status().unwrap();
    assert_eq!((status.slots, status.dropped), (4, 0));
}

/// Sleeps `ms`, then returns its pid (which worker ran it).
fn nap(ms: u64) -> u32 {
    std::thread::sleep(Duration::from_millis(ms));
    std::process::id()
}

#[test]
fn a_killed_agent_fails_only_its_started_tasks() {
    let redis = Redis::start();
    let a = Agent::start(&redis, "kill", KEY, 1);
    let pool = pool(&redis, "kill");
    wait_workers(&pool, 1);
    // Two tasks: the first starts on `a`; the second waits in Redis.
    let started = pool.submit(nap, 5_000);
    let retried = pool.submit_with(nap, 300, TaskOptions::default().retries(1));
    until("the first task runs", || {
        redis.taken("kill") == 1 && redis.waiting("kill") == 1
    });
    a.signal(libc::SIGKILL);
    drop(a);
    let _b = Agent::start(&redis, "kill", KEY, 1);
    match started.result_in_time() {
        Err(TaskError::WorkerLost { worker }) => assert!(!worker.is_empty()),
        other => panic!("{other:?}"),
    }
    // The task that had not started runs on the new agent.
    assert!(retried.result_in_time().is_ok());
    assert_eq!(pool.submit(square, 9).result_in_time(), Ok(81));
}

/// An agent of one slot that takes 2 tasks ahead, for the pool `pool`.
fn agent_ahead(redis: &Redis, pool: &str) -> Agent {
    let exe = std::env::current_exe().unwrap();
    Agent::start_ahead(&exe, &redis.url(), pool, KEY, 1, 2)
}

#[test]
fn an_agent_taking_tasks_ahead_runs_them_and_fails_them_all_when_lost() {
    let redis = Redis::start();
    let pool = pool(&redis, "ahead");
    let a = agent_ahead(&redis, "ahead");
    wait_workers(&pool, 1);
    // Many short tasks through one slot: every one runs, once.
    let futures: Vec<_> = (0..500u64).map(|x| pool.submit(square, x)).collect();
    for (x, f) in futures.iter().enumerate() {
        assert_eq!(f.result_in_time(), Ok(square(x as u64)));
    }
    // One task runs, two wait on the agent, one waits in Redis.
    let running = pool.submit(nap, 5_000);
    until("the first task runs", || redis.taken("ahead") == 1);
    let markers: Vec<String> = (0..2)
        .map(|i| {
            redis
                .server
                .dir
                .join(format!("ahead-{i}"))
                .display()
                .to_string()
        })
        .collect();
    let ahead: Vec<_> = markers
        .iter()
        .map(|m| pool.submit(mark, m.clone()))
        .collect();
    until("two more are taken ahead", || redis.taken("ahead") == 3);
    let waiting = pool.submit(square, 7);
    until("the fourth waits in Redis", || redis.waiting("ahead") == 1);
    a.signal(libc::SIGKILL);
    drop(a);
    let _b = Agent::start(&redis, "ahead", KEY, 1);
    // Every task the lost agent held fails (the pool cannot tell which had
    // started), and none of them runs again...
    let lost = |r: Result<_, TaskError>| matches!(r, Err(TaskError::WorkerLost { .. }));
    assert!(lost(running.result_in_time().map(drop)));
    for f in &ahead {
        assert!(lost(f.result_in_time()), "{:?}", f.result_in_time());
    }
    // ...those taken ahead had not run; the one still in Redis runs.
    assert_eq!(waiting.result_in_time(), Ok(49));
    for m in &markers {
        assert!(!Path::new(m).exists(), "a task taken ahead ran");
    }
}

#[test]
fn a_task_waiting_on_an_agent_is_cancelled_there_without_running() {
    let redis = Redis::start();
    let pool = pool(&redis, "ahead-cancel");
    let _a = agent_ahead(&redis, "ahead-cancel");
    wait_workers(&pool, 1);
    // A task with a timeout runs alone in its process: the next one waits
    // in the agent's own queue (not yet handed to a process).
    let timed = TaskOptions::timeout(Duration::from_secs(60));
    let running = pool.submit_with(nap, 1_000, timed);
    until("the first task runs", || redis.taken("ahead-cancel") == 1);
    let marker = redis.server.dir.join("cancelled").display().to_string();
    let ahead = pool.submit(mark, marker.clone());
    until("the second is taken ahead", || {
        redis.taken("ahead-cancel") == 2
    });
    assert!(ahead.cancel());
    assert_eq!(ahead.result_in_time(), Err(TaskError::Cancelled));
    assert!(running.result_in_time().is_ok());
    // The agent gives its place back and the task leaves its list unrun.
    until("nothing is left taken", || redis.taken("ahead-cancel") == 0);
    assert!(!Path::new(&marker).exists(), "a cancelled task ran");
    let more: Vec<_> = (0..4u64).map(|x| pool.submit(square, x)).collect();
    for (x, f) in more.iter().enumerate() {
        assert_eq!(f.result_in_time(), Ok(square(x as u64)));
    }
}

#[test]
fn a_started_task_with_retries_runs_again_after_a_lost_agent() {
    let redis = Redis::start();
    let a = Agent::start(&redis, "retry", KEY, 1);
    let pool = pool(&redis, "retry");
    wait_workers(&pool, 1);
    let f = pool.submit_with(nap, 1_500, TaskOptions::default().retries(1));
    until("the task runs", || redis.taken("retry") == 1);
    std::thread::sleep(Duration::from_millis(100));
    a.signal(libc::SIGKILL);
    drop(a);
    let _b = Agent::start(&redis, "retry", KEY, 1);
    assert!(f.result_in_time().is_ok(), "it ran again on the new agent");
}

#[test]
fn a_frozen_agent_is_fenced_and_its_late_answer_ignored() {
    let redis = Redis::start();
    let a = Agent::start(&redis, "frozen", KEY, 1);
    let pool = pool(&redis, "frozen");
    wait_workers(&pool, 1);
    let f = pool.submit(nap, 700);
    until("the task runs", || redis.taken("frozen") == 1);
    a.signal(libc::SIGSTOP);
    // Past its lease (400 ms) the pool fences it: the task fails, once.
    assert!(matches!(
        f.result_in_time(),
        Err(TaskError::WorkerLost { .. })
    ));
    a.signal(libc::SIGCONT);
    // It wakes up fenced: its answer goes nowhere, it registers again and
    // serves.
    assert_eq!(pool.submit(square, 7).result_in_time(), Ok(49));
    assert_eq!(pool.remote_status().unwrap().dropped, 0);
}

#[test]
fn a_redis_restart_mid_map_loses_nothing() {
    let mut redis = Redis::start();
    let _a = Agent::start(&redis, "restart", KEY, 2);
    let _b = Agent::start(&redis, "restart", KEY, 2);
    let pool = pool(&redis, "restart");
    wait_workers(&pool, 2);
    let futures: Vec<_> = (0..60u64)
        .map(|x| {
            pool.submit(
                |x: u64| {
                    nap(20);
                    x + 1
                },
                x,
            )
        })
        .collect();
    until("some are done", || {
        futures.iter().filter(|f| f.done()).count() >= 5
    });
    redis.kill();
    std::thread::sleep(Duration::from_millis(300));
    redis.restart();
    for (x, f) in futures.iter().enumerate() {
        assert_eq!(f.result_in_time(), Ok(x as u64 + 1));
    }
}

#[test]
fn redis_gone_for_good_breaks_the_pool_after_the_deadline() {
    let mut redis = Redis::start();
    let pool = ProcessPool::builder()
        .redis(redis.url(), "gone")
        .auth_key(KEY)
        .redis_deadline(Duration::from_millis(500))
        .build()
        .unwrap();
    let f = pool.submit(square, 3); // no worker: it waits in Redis
    std::thread::sleep(Duration::from_millis(100));
    redis.kill();
    match f.result_in_time() {
        Err(TaskError::Broken(why)) => assert!(why.contains("unreachable"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        pool.submit(square, 4).result_in_time(),
        Err(TaskError::Broken(_))
    ));
}

#[test]
fn a_worker_with_the_wrong_key_serves_nothing() {
    let redis = Redis::start();
    let pool = pool(&redis, "keys");
    let intruder = Agent::start(&redis, "keys", "not the key", 1);
    let (code, said) = intruder.exited();
    assert_eq!(code, Some(2));
    assert!(said.contains("wrong auth key"), "{said}");
    let _good = Agent::start(&redis, "keys", KEY, 1);
    assert_eq!(pool.submit(square, 5).result_in_time(), Ok(25));
}

#[test]
fn a_worker_of_another_build_refuses_and_says_why() {
    let redis = Redis::start();
    let pool = pool(&redis, "builds");
    // Another build: the same program with one more byte at its end.
    let other = redis.server.dir.join("other-build");
    std::fs::copy(std::env::current_exe().unwrap(), &other).unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&other)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"\0"))
        .unwrap();
    let (code, said) = Agent::start_exe(&other, &redis.url(), "builds", KEY, 1).exited();
    assert_eq!(code, Some(2));
    assert!(said.contains("another build"), "{said}");
    until("the pool hears of it", || {
        pool.remote_status()
            .unwrap()
            .refusals
            .iter()
            .any(|r| r.contains("another build"))
    });
}

/// Leaves a marker file: proves that it ran.
fn mark(path: String) {
    std::fs::write(path, b"ran").unwrap();
}

#[test]
fn a_forged_task_is_never_executed() {
    let redis = Redis::start();
    let pool = pool(&redis, "forged");
    let marker = redis.server.dir.join("ran").display().to_string();
    // A real task waits in Redis (no worker yet); take its bytes, tamper
    // with them, push the forgery, and take the real one out.
    let real = pool.submit(mark, marker.clone());
    let mut con = redis.con();
    until("the task is in Redis", || redis.waiting("forged") == 1);
    let bytes: Vec<u8> = redis::cmd("RPOP")
        .arg("{mp:forged}:tasks")
        .query(&mut con)
        .unwrap();
    let mut forged = bytes.clone();
    let at = forged.len() / 2;
    forged[at] ^= 0x40;
    redis::cmd("LPUSH")
        .arg("{mp:forged}:tasks")
        .arg(&forged)
        .arg(b"not even a message".as_slice())
        .query::<()>(&mut con)
        .unwrap();
    let _a = Agent::start(&redis, "forged", KEY, 1);
    assert_eq!(pool.submit(square, 6).result_in_time(), Ok(36));
    until("the forgeries are gone", || redis.waiting("forged") == 0);
    assert!(!Path::new(&marker).exists(), "a forged task ran");
    real.cancel();
}

/// Kills the agent whose local pool runs it (the process that started it:
/// its parent, or the parent of its fork server).
fn kill_my_agent(_: ()) {
    let agent = multiproc::process::parent_process().unwrap().pid;
    // SAFETY: kill(2) of the agent process.
    unsafe { libc::kill(agent as libc::pid_t, libc::SIGKILL) };
    std::thread::sleep(Duration::from_secs(30));
}

#[test]
fn a_poison_task_cannot_loop() {
    let redis = Redis::start();
    let pool = pool(&redis, "poison");
    let mut agents = vec![Agent::start(&redis, "poison", KEY, 1)];
    let f = pool.submit_with(kill_my_agent, (), TaskOptions::default().retries(1));
    // Every agent it reaches dies; it runs twice (one retry), then fails.
    until("the poison task fails", || {
        if agents.iter_mut().all(|a| a.0.try_wait().unwrap().is_some()) {
            agents.push(Agent::start(&redis, "poison", KEY, 1));
        }
        f.done()
    });
    assert!(matches!(
        f.result_in_time(),
        Err(TaskError::WorkerLost { .. })
    ));
    let dead = agents
        .iter_mut()
        .filter_map(|a| a.0.try_wait().unwrap())
        .count();
    assert_eq!(dead, 2, "it ran once and once again");
    agents.push(Agent::start(&redis, "poison", KEY, 1));
    assert_eq!(pool.submit(square, 2).result_in_time(), Ok(4));
}

#[test]
fn cancel_queued_and_running_remote_tasks() {
    let redis = Redis::start();
    let pool = pool(&redis, "cancel");
    // Queued: no worker yet.
    let queued = pool.submit(nap, 10);
    until("it is in Redis", || redis.waiting("cancel") == 1);
    assert!(queued.cancel());
    until("it is taken out of Redis", || redis.waiting("cancel") == 0);
    assert_eq!(queued.result_in_time(), Err(TaskError::Cancelled));
    // Running: its process on the worker's machine is killed.
    let _a = Agent::start(&redis, "cancel", KEY, 1);
    let marker = redis.server.dir.join("hung").display().to_string();
    let hung = pool.submit(
        |path: String| {
            std::fs::write(&path, std::process::id().to_string()).unwrap();
            std::thread::sleep(Duration::from_secs(60));
        },
        marker.clone(),
    );
    // The file appears before its content: wait for a whole pid.
    let read_pid = || std::fs::read_to_string(&marker).ok()?.parse::<i32>().ok();
    until("it runs", || read_pid().is_some());
    let pid = read_pid().unwrap();
    assert!(hung.cancel());
    assert_eq!(hung.result_in_time(), Err(TaskError::Cancelled));
    until("its process is killed", || {
        // SAFETY: signal 0 only checks whether the pid exists.
        let gone = unsafe { libc::kill(pid, 0) } != 0;
        gone || std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.contains(") Z "))
    });
    assert_eq!(pool.submit(square, 3).result_in_time(), Ok(9));
}

#[test]
fn many_tasks_random_agent_kills_each_future_done_once() {
    let redis = Redis::start();
    let pool = pool(&redis, "chaos");
    // The second agent takes 4 tasks ahead of its slots.
    let exe = std::env::current_exe().unwrap();
    let agent = |i: usize| Agent::start_ahead(&exe, &redis.url(), "chaos", KEY, 2, 4 * (i % 2));
    let mut agents: Vec<Agent> = (0..3).map(agent).collect();
    wait_workers(&pool, 3);
    let n = 100_000u64;
    let futures: Vec<_> = (0..n)
        .map(|x| pool.submit_with(square, x, TaskOptions::default().retries(5)))
        .collect();
    let mut kills = 0;
    let mut seed = 0x2545f4914f6cdd1du64;
    let deadline = std::time::Instant::now() + DEADLINE;
    while futures.iter().any(|f| !f.done()) {
        assert!(std::time::Instant::now() < deadline, "not done in time");
        std::thread::sleep(Duration::from_millis(150));
        if kills < 6 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let victim = (seed % agents.len() as u64) as usize;
            agents[victim].signal(libc::SIGKILL);
            agents[victim] = agent(victim);
            kills += 1;
        }
    }
    let mut seen = HashSet::new();
    for (x, f) in futures.iter().enumerate() {
        match f.result_in_time() {
            Ok(v) => assert_eq!(v, square(x as u64)),
            Err(TaskError::WorkerLost { .. }) => {}
            Err(e) => panic!("task {x}: {e}"),
        }
        assert!(seen.insert(x));
        // A second look finds the value taken: it was handed out once.
        assert!(matches!(
            f.result_in_time(),
            Err(TaskError::Retrieved | TaskError::WorkerLost { .. })
        ));
    }
    assert_eq!(kills, 6);
}

#[test]
fn shutdown_with_cancel_futures_takes_waiting_tasks_out_of_redis() {
    let redis = Redis::start();
    let other = pool(&redis, "cancel-all"); // another client of the same pool
    let pool = pool(&redis, "cancel-all");
    // No worker: they all wait in Redis, another client's task among them.
    let theirs = other.submit(square, 9);
    let mine: Vec<_> = (0..20_000u64).map(|x| pool.submit(square, x)).collect();
    until("they are in Redis", || {
        redis.waiting("cancel-all") == 20_001
    });
    pool.shutdown(true, true);
    for f in &mine {
        assert_eq!(f.result_in_time(), Err(TaskError::Cancelled));
        assert!(f.cancelled());
    }
    // Only ours were taken out.
    assert_eq!(redis.waiting("cancel-all"), 1);
    let _a = Agent::start(&redis, "cancel-all", KEY, 1);
    assert_eq!(theirs.result_in_time(), Ok(81));
}

#[test]
fn a_pool_dropped_while_its_thread_panics_does_not_wait_for_absent_workers() {
    let redis = Redis::start();
    let url = redis.url();
    let (tx, rx) = std::sync::mpsc::channel();
    let panicking = std::thread::spawn(move || {
        let pool = ProcessPool::builder()
            .redis(url, "unwind")
            .auth_key(KEY)
            .build()
            .unwrap();
        tx.send(pool.submit(square, 3)).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        panic!("the caller fails with the task still waiting for a worker");
    });
    let f = rx.recv_timeout(DEADLINE).unwrap();
    // The thread's unwinding drops the pool: it ends, and so does the task.
    panicking.join_in_time().unwrap_err();
    assert_eq!(f.result_in_time(), Err(TaskError::Cancelled));
}

/// A Redis Cluster of three masters: the pool and its agents are given the
/// URL of different nodes (most of them do not own the pool's slot: the
/// cluster client follows the redirections).
#[test]
fn tasks_run_through_a_redis_cluster() {
    let _w = watchdog("the Redis Cluster test");
    let cluster = redis_server::RedisCluster::start("redis").unwrap();
    let urls = cluster.urls();
    let mut agents: Vec<Agent> = urls[1..]
        .iter()
        .map(|u| Agent::start_exe(&std::env::current_exe().unwrap(), u, "cl", KEY, 1))
        .collect();
    for (i, url) in urls.iter().enumerate() {
        let pool = ProcessPool::builder()
            .redis(url.clone(), "cl")
            .auth_key(KEY)
            .build()
            .unwrap();
        until("the workers register", || {
            pool.remote_status().unwrap().workers == 2
        });
        let futures: Vec<_> = (0..50u64).map(|x| pool.submit(square, x)).collect();
        for (x, f) in futures.iter().enumerate() {
            assert_eq!(f.result_in_time(), Ok(square(x as u64)), "seed node {i}");
        }
        let sum: u64 = pool
            .map_with(square, 0..1_000u64, MapOptions::default().chunksize(50))
            .map(Result::unwrap)
            .sum();
        assert_eq!(sum, (0..1_000u64).map(square).sum());
    }
    // A killed agent on a cluster: its started task fails, the pool goes on.
    let pool = ProcessPool::builder()
        .redis(urls.join(","), "cl")
        .auth_key(KEY)
        .build()
        .unwrap();
    let started = pool.submit(nap, 60_000);
    until("it runs", || started.running());
    std::thread::sleep(Duration::from_millis(200));
    for a in &agents {
        a.signal(libc::SIGKILL);
    }
    agents.clear();
    match started.result_in_time() {
        Err(TaskError::WorkerLost { .. }) => {}
        other => panic!("{other:?}"),
    }
    let _c = Agent::start_exe(&std::env::current_exe().unwrap(), &urls[0], "cl", KEY, 1);
    assert_eq!(pool.submit(square, 12).result_in_time(), Ok(144));
}

#[test]
fn a_handle_in_a_remote_task_is_refused_with_a_reason() {
    let redis = Redis::start();
    let pool = pool(&redis, "handles");
    let q = multiproc::ipc::Queue::<u8>::new(1).unwrap();
    match pool
        .submit(|q: multiproc::ipc::Queue<u8>| q.len(), q)
        .result_in_time()
    {
        Err(TaskError::Broken(why)) => assert!(why.contains("other machines"), "{why}"),
        other => panic!("{other:?}"),
    }
}
