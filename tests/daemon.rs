//! Daemon processes and pool workers die with their program, however it
//! ends (here: SIGKILL, which runs no clean-up of the program's); a process
//! that is not a daemon outlives it, as in Python.

mod common;
use common::{DEADLINE, JoinInTime, until};

use std::time::Duration;

use multiproc::executor::ProcessPool;
use multiproc::ipc::Queue;
use multiproc::process::{Process, ProcessError, StartMethod};

/// Whether `pid` has ended (gone, or a zombie nobody reaped yet).
fn ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, s)| s.starts_with(" Z")),
    }
}

fn sleep_long(_: ()) {
    std::thread::sleep(Duration::from_secs(300));
}

/// What the doomed program started: (pool workers, daemons, the others).
type Started = (Vec<u32>, Vec<u32>, Vec<u32>);

/// The program that is killed: a pool of two busy workers, a daemon and a
/// plain process of each start method; it says their pids and waits.
fn doomed(report: Queue<Started>) {
    let pool = ProcessPool::new(2);
    let busy: Vec<_> = (0..2).map(|_| pool.submit(sleep_long, ())).collect();
    until("both workers start", || pool.worker_pids().len() == 2);
    let methods = [
        StartMethod::Spawn,
        StartMethod::Fork,
        StartMethod::ForkServer,
    ];
    let daemons: Vec<_> = methods
        .iter()
        .map(|m| {
            Process::builder()
                .start_method(*m)
                .daemon(true)
                .start(sleep_long, ())
                .unwrap()
        })
        .collect();
    let others: Vec<_> = methods
        .iter()
        .map(|m| {
            Process::builder()
                .start_method(*m)
                .start(sleep_long, ())
                .unwrap()
        })
        .collect();
    report
        .put(&(
            pool.worker_pids(),
            daemons.iter().map(|p| p.pid()).collect(),
            others.iter().map(|p| p.pid()).collect(),
        ))
        .unwrap();
    std::thread::sleep(Duration::from_secs(300));
    drop((busy, daemons, others));
}

#[test]
fn a_killed_program_takes_its_pool_workers_and_daemons_with_it() {
    let _c = common::clean();
    let report = Queue::<Started>::new(1).unwrap();
    let mut program = Process::start(doomed, report.clone()).unwrap();
    let (workers, daemons, others) = report.get_timeout(DEADLINE).unwrap();
    assert_eq!((workers.len(), daemons.len(), others.len()), (2, 3, 3));
    program.kill().unwrap();
    assert!(matches!(
        program.join_in_time(),
        Err(ProcessError::Died { .. })
    ));
    for pid in workers.iter().chain(&daemons) {
        until("a pool worker or daemon ends with its program", || {
            ended(*pid)
        });
    }
    // The others live on (Python's non-daemon children do too): end them.
    for pid in &others {
        assert!(
            !ended(*pid),
            "a process that is not a daemon outlives its program"
        );
        // SAFETY: kill(2) of a process this test made (it is alive: just checked).
        unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
        until("it ends", || ended(*pid));
    }
}

#[test]
fn a_daemon_whose_parent_returns_normally_ends_too() {
    let _c = common::clean();
    let report = Queue::<u32>::new(1).unwrap();
    // The parent starts a daemon and returns at once: its process exits.
    let mut parent = Process::start(
        |q: Queue<u32>| {
            let d = Process::builder()
                .daemon(true)
                .start(sleep_long, ())
                .unwrap();
            q.put(&d.pid()).unwrap();
        },
        report.clone(),
    )
    .unwrap();
    let daemon = report.get_timeout(DEADLINE).unwrap();
    parent.join_in_time().unwrap();
    until("the daemon ends with its parent", || ended(daemon));
}

/// A daemon started through a fork server that belongs to another program
/// — a forked child using its parent's — dies with its own program: it
/// watches its own program's lifeline, not the server's.
#[test]
fn a_daemon_dies_with_its_own_program_when_the_fork_server_is_anothers() {
    let _c = common::clean();
    let report = Queue::<u32>::new(1).unwrap();
    let mut program = Process::builder()
        .start_method(StartMethod::Fork)
        .start(
            |q: Queue<u32>| {
                let d = Process::builder()
                    .start_method(StartMethod::ForkServer)
                    .daemon(true)
                    .start(sleep_long, ())
                    .unwrap();
                q.put(&d.pid()).unwrap();
                std::thread::sleep(Duration::from_secs(300));
            },
            report.clone(),
        )
        .unwrap();
    let daemon = report.get_timeout(DEADLINE).unwrap();
    program.kill().unwrap();
    let _ = program.join_in_time();
    until("the daemon ends with its own program", || ended(daemon));
}

/// A daemon forked by a fork server that its own program started ends
/// with that server too (it has no thread watching its program: it dies
/// with its parent, the server, which dies with the program).
#[test]
fn a_fork_server_daemon_ends_with_its_server() {
    let _c = common::clean();
    let report = Queue::<(u32, Vec<u32>)>::new(1).unwrap();
    let mut program = Process::start(
        |q: Queue<(u32, Vec<u32>)>| {
            multiproc::process::ensure_fork_server().unwrap();
            let servers = common::children().into_iter().map(|(p, _)| p).collect();
            let d = Process::builder()
                .start_method(StartMethod::ForkServer)
                .daemon(true)
                .start(sleep_long, ())
                .unwrap();
            q.put(&(d.pid(), servers)).unwrap();
            std::thread::sleep(Duration::from_secs(300));
        },
        report.clone(),
    )
    .unwrap();
    let (daemon, servers) = report.get_timeout(DEADLINE).unwrap();
    assert_eq!(
        servers.len(),
        1,
        "the program's only child is its fork server"
    );
    // SAFETY: kill(2) of the fork server this test's program started.
    unsafe { libc::kill(servers[0] as i32, libc::SIGKILL) };
    until("the daemon ends with its fork server", || ended(daemon));
    program.kill().unwrap();
    let _ = program.join_in_time();
}
