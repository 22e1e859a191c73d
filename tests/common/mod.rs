//! Helpers shared by the integration tests: serialize the tests of one binary
//! and check that each leaves no zombie and no open descriptor behind.
#![allow(dead_code)]

use std::sync::{Mutex, MutexGuard};

static SERIAL: Mutex<()> = Mutex::new(());

/// Open descriptors of this process.
pub fn open_fds() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok())
        // A descriptor closed between the listing and the look is not open;
        // the listing's own descriptor (whose number depends on what else was
        // open a moment ago) is not counted.
        .filter_map(|e| {
            let target = std::fs::read_link(e.path()).ok()?;
            if target.starts_with("/proc") && target.ends_with("fd") {
                return None;
            }
            Some(format!(
                "{} -> {}",
                e.file_name().to_string_lossy(),
                target.display()
            ))
        })
        .collect();
    v.sort();
    v
}

/// Children of this process that have ended and were not reaped.
pub fn zombies() -> Vec<u32> {
    children()
        .into_iter()
        .filter(|(_, z)| *z)
        .map(|(p, _)| p)
        .collect()
}

/// Children of this process (pid, is a zombie).
pub fn children() -> Vec<(u32, bool)> {
    let me = std::process::id();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let (state, ppid) = (f.next(), f.next().and_then(|p| p.parse::<u32>().ok()));
        if ppid == Some(me) {
            out.push((pid, state == Some("Z")));
        }
    }
    out
}

/// Holds the test binary's lock; on drop, checks that descriptors and zombies
/// are back to what they were.
pub struct Clean {
    fds: Vec<String>,
    children: Vec<(u32, bool)>,
    _lock: MutexGuard<'static, ()>,
}

pub fn clean() -> Clean {
    let lock = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // The fork server lives as long as the program: start it before counting.
    multiproc::process::ensure_fork_server().unwrap();
    Clean {
        fds: open_fds(),
        children: children(),
        _lock: lock,
    }
}

impl Drop for Clean {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        // Children whose handles were dropped while they ran end on their
        // own and are reaped by `active_children`; wait (bounded) for that.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while children() != self.children && std::time::Instant::now() < deadline {
            multiproc::process::active_children();
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(zombies(), Vec::<u32>::new(), "zombie children left behind");
        assert_eq!(children(), self.children, "child processes left behind");
        assert_eq!(open_fds(), self.fds, "descriptors leaked");
    }
}
