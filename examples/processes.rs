//! The notes' first story: "每个进程都有自己的地址空间、内存、数据栈…进程之间没有共享信息"
//! — every process has its own address space; processes share nothing.
//!
//! Three children each change a global counter and report what they see; the
//! parent's counter is untouched. Then the parent waits for each of them.
//!
//! ```text
//! cargo run --example processes
//! ```
use std::sync::atomic::{AtomicU64, Ordering};

use multiproc::process::{self, Process};

static COUNTER: AtomicU64 = AtomicU64::new(100);

fn work(step: u64) -> (u32, u64) {
    // This runs in the child: its COUNTER is its own copy.
    COUNTER.fetch_add(step, Ordering::SeqCst);
    (
        process::current_process().pid,
        COUNTER.load(Ordering::SeqCst),
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "---parent {} starts, counter = {}---",
        std::process::id(),
        COUNTER.load(Ordering::SeqCst)
    );
    let mut children = Vec::new();
    for step in 1..=3 {
        children.push(
            Process::builder()
                .name(format!("adder-{step}"))
                .start(work, step)?,
        );
    }
    println!(
        "---waiting for {} children---",
        process::active_children().len()
    );
    for mut child in children {
        let name = child.name().to_string();
        let (pid, seen) = child.join()?;
        println!(
            "{name} (pid {pid}) saw counter = {seen}; it exited with {}",
            child.exit_status().unwrap()
        );
    }
    println!(
        "---parent ends, its counter is still {}---",
        COUNTER.load(Ordering::SeqCst)
    );
    Ok(())
}
