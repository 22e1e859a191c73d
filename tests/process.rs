//! Real processes: start, exit codes, signals, panics, timeouts, handles.
mod common;
use common::JoinInTime;

use std::time::{Duration, Instant};

use multiproc::ipc::{Connection, Pipe};
use multiproc::process::{self, ExitStatus, Process, ProcessError, StartMethod};

const METHODS: [StartMethod; 3] = [
    StartMethod::Spawn,
    StartMethod::Fork,
    StartMethod::ForkServer,
];

macro_rules! start {
    ($m:expr, $f:expr, $arg:expr) => {
        Process::builder()
            .start_method($m)
            .start($f, $arg)
            .expect("start")
    };
}

fn triple(x: i64) -> i64 {
    x * 3
}

#[test]
fn fn_item_and_closure_in_every_method() {
    let _c = common::clean();
    for m in METHODS {
        let mut p = start!(m, triple, 14);
        assert_eq!(p.join_in_time().unwrap(), 42, "{m:?}");
        let mut p = start!(
            m,
            |s: String| s.chars().rev().collect::<String>(),
            "abc".to_string()
        );
        assert_eq!(p.join_in_time().unwrap(), "cba", "{m:?}");
        assert_eq!(p.exit_status(), Some(ExitStatus::Code(0)));
        assert!(matches!(p.join_in_time(), Err(ProcessError::Retrieved)));
    }
}

#[test]
fn exit_codes_and_signals() {
    let _c = common::clean();
    for m in METHODS {
        let mut p = start!(m, |code: i32| -> () { std::process::exit(code) }, 7);
        assert!(
            matches!(
                p.join_in_time(),
                Err(ProcessError::Died {
                    status: ExitStatus::Code(7)
                })
            ),
            "{m:?}"
        );
        let mut p = start!(m, |()| -> () { std::process::exit(0) }, ());
        assert!(
            matches!(
                p.join_in_time(),
                Err(ProcessError::Died {
                    status: ExitStatus::Code(0)
                })
            ),
            "{m:?}"
        );
        let mut p = start!(m, |()| -> () { std::process::abort() }, ());
        let err = p.join_in_time().unwrap_err();
        assert!(
            matches!(
                err,
                ProcessError::Died {
                    status: ExitStatus::Signal(libc::SIGABRT)
                }
            ),
            "{m:?}: {err:?}"
        );
        assert_eq!(p.exit_status().unwrap().python_exitcode(), -libc::SIGABRT);
        assert!(err.to_string().contains("SIGABRT"), "{err}");
    }
}

#[test]
fn panic_message_and_location() {
    let _c = common::clean();
    for m in METHODS {
        let mut p = start!(m, |n: u32| -> u32 { panic!("bad input {n}") }, 5);
        match p.join_in_time() {
            Err(ProcessError::Panicked { message, location }) => {
                assert_eq!(message, "bad input 5");
                let location = location.expect("a location");
                assert!(location.starts_with("tests/process.rs:"), "{location}");
            }
            other => panic!("{m:?}: {other:?}"),
        }
        assert_eq!(p.exit_status(), Some(ExitStatus::Code(1)));
    }
}

fn sleep_secs(s: u64) -> u64 {
    std::thread::sleep(Duration::from_secs(s));
    s
}

#[test]
fn join_timeout_terminate_kill_is_alive() {
    let _c = common::clean();
    for m in METHODS {
        let mut p = start!(m, sleep_secs, 60);
        assert!(p.is_alive());
        let t = Instant::now();
        assert!(matches!(
            p.join_timeout(Duration::from_millis(100)),
            Err(ProcessError::Timeout)
        ));
        assert!(t.elapsed() >= Duration::from_millis(100));
        assert!(matches!(p.try_join(), Err(ProcessError::Timeout)));
        assert!(p.is_alive());
        assert_eq!(p.exit_status(), None);
        p.terminate().unwrap();
        assert!(
            matches!(
                p.join_in_time(),
                Err(ProcessError::Died {
                    status: ExitStatus::Signal(libc::SIGTERM)
                })
            ),
            "{m:?}"
        );
        assert!(!p.is_alive());
        p.kill().unwrap(); // already dead: not an error

        let mut p = start!(m, sleep_secs, 60);
        p.kill().unwrap();
        assert!(matches!(
            p.join_in_time(),
            Err(ProcessError::Died {
                status: ExitStatus::Signal(libc::SIGKILL)
            })
        ));
        assert_eq!(p.exit_status().map(ExitStatus::python_exitcode), Some(-9));
    }
}

#[test]
fn a_finished_process_is_not_alive_and_joins_fast() {
    let _c = common::clean();
    let mut p = start!(StartMethod::Spawn, |x: u8| x, 1);
    while p.is_alive() {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(p.join_timeout(Duration::ZERO).unwrap(), 1);
}

#[test]
fn names_current_parent_and_active_children() {
    let _c = common::clean();
    assert_eq!(process::current_process().name, "MainProcess");
    assert_eq!(process::parent_process(), None);
    for m in METHODS {
        let mut p = Process::builder()
            .name("worker")
            .start_method(m)
            .start(
                |()| {
                    let me = process::current_process();
                    let parent = process::parent_process().unwrap();
                    (
                        me.name,
                        me.pid,
                        parent.pid,
                        parent.name,
                        process::active_children().len(),
                        std::fs::read_to_string("/proc/self/comm").unwrap(),
                    )
                },
                (),
            )
            .unwrap();
        let pid = p.pid();
        let (name, child_pid, parent_pid, parent_name, its_children, comm) =
            p.join_in_time().unwrap();
        assert_eq!((name.as_str(), child_pid), ("worker", pid), "{m:?}");
        assert_eq!(comm, "worker\n", "ps shows the name: {m:?}");
        assert_eq!(
            (parent_pid, parent_name.as_str()),
            (std::process::id(), "MainProcess")
        );
        assert_eq!(
            its_children, 0,
            "a forked child does not inherit its parent's children"
        );
    }
    let mut p = start!(StartMethod::Spawn, sleep_secs, 60);
    assert!(p.name().starts_with("Process-"));
    assert!(process::active_children().iter().any(|c| c.pid == p.pid()));
    p.kill().unwrap();
    let _ = p.join_in_time();
    assert!(!process::active_children().iter().any(|c| c.pid == p.pid()));
    assert!(process::cpu_count() >= 1);
}

#[test]
fn dropped_running_process_is_reaped_later() {
    let _c = common::clean();
    let p = start!(StartMethod::Spawn, sleep_secs, 0);
    drop(p); // still running (or about to end): adopted, reaped by Clean's check
}

#[test]
fn a_pipe_end_goes_to_a_child_and_a_grandchild() {
    let _c = common::clean();
    for m in METHODS {
        let (here, there) = Pipe::duplex().unwrap();
        let mut child = start!(
            m,
            |conn: Connection| {
                conn.send("from the child").unwrap();
                let mut grandchild = Process::start(
                    |conn: Connection| {
                        conn.send("from the grandchild").unwrap();
                        let n: u32 = conn.recv().unwrap();
                        n + 1
                    },
                    conn,
                )
                .unwrap();
                grandchild.join_in_time().unwrap()
            },
            there
        );
        assert_eq!(here.recv::<String>().unwrap(), "from the child");
        assert_eq!(here.recv::<String>().unwrap(), "from the grandchild");
        here.send(&41u32).unwrap();
        assert_eq!(child.join_in_time().unwrap(), 42, "{m:?}");
    }
}

#[test]
fn a_child_returns_a_pipe_end() {
    let _c = common::clean();
    let mut p = start!(
        StartMethod::ForkServer,
        |()| {
            let (a, b) = Pipe::duplex().unwrap();
            a.send(&"kept in the pipe").unwrap();
            b
        },
        ()
    );
    let b = p.join_in_time().unwrap();
    assert_eq!(b.recv::<String>().unwrap(), "kept in the pipe");
}

#[test]
fn big_argument_and_big_result() {
    let _c = common::clean();
    let data: Vec<u8> = (0..8 << 20).map(|i| (i % 251) as u8).collect();
    for m in METHODS {
        let mut p = start!(
            m,
            |v: Vec<u8>| v.iter().rev().copied().collect::<Vec<u8>>(),
            data.clone()
        );
        let back = p.join_in_time().unwrap();
        assert_eq!(back.len(), data.len());
        assert!(back.iter().rev().eq(data.iter()), "{m:?}");
    }
}

/// What a fork server's child reports: two variables of its environment,
/// its working directory; it also prints a line on its standard output.
fn surroundings((): ()) -> ([Option<String>; 2], String) {
    println!("printed by the fork server's child");
    (
        ["MULTIPROC_TEST_SET", "MULTIPROC_TEST_GONE"].map(|k| std::env::var(k).ok()),
        std::env::current_dir().unwrap().display().to_string(),
    )
}

/// In a fresh process: starts the fork server, then changes its environment,
/// working directory and standard output, and starts a fork server child.
fn change_then_start(dir: String) -> (([Option<String>; 2], String), String) {
    // SAFETY (the three calls): this re-executed child runs only this
    // function, on its only thread: nothing reads the environment meanwhile.
    unsafe { std::env::set_var("MULTIPROC_TEST_GONE", "removed after the server started") };
    process::ensure_fork_server().unwrap();
    unsafe { std::env::set_var("MULTIPROC_TEST_SET", "set after the server started") };
    unsafe { std::env::remove_var("MULTIPROC_TEST_GONE") };
    std::fs::create_dir_all(&dir).unwrap();
    std::env::set_current_dir(&dir).unwrap();
    let out = std::fs::File::create("out.txt").unwrap();
    rustix::stdio::dup2_stdout(&out).unwrap();
    let mut p = start!(StartMethod::ForkServer, surroundings, ());
    let seen = p.join_in_time().unwrap();
    let cwd = std::env::current_dir().unwrap().display().to_string();
    (seen, cwd)
}

#[test]
fn a_fork_server_child_starts_with_its_parents_surroundings_of_now() {
    let _c = common::clean();
    let dir = std::env::temp_dir().join(common::unique_name("surroundings"));
    let mut p = start!(
        StartMethod::Spawn,
        change_then_start,
        dir.display().to_string()
    );
    let (([set, gone], child_cwd), parent_cwd) = p.join_in_time().unwrap();
    assert_eq!(set.as_deref(), Some("set after the server started"));
    assert_eq!(gone, None);
    assert_eq!(child_cwd, parent_cwd);
    let printed = std::fs::read_to_string(dir.join("out.txt")).unwrap();
    assert_eq!(printed, "printed by the fork server's child\n");
    std::fs::remove_dir_all(&dir).unwrap();
}
