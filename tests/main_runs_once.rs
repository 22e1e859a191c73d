//! `main`'s side effects never happen in a child: this test binary has its own
//! `main` (no test harness) that appends a line to a file before starting
//! children with every start method; the file must hold exactly one line.
use std::io::Write;

use multiproc::process::{Process, StartMethod};

fn main() {
    let path =
        std::env::temp_dir().join(format!("multiproc-main-runs-once-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"main ran\n")
        .unwrap();
    for m in [
        StartMethod::Spawn,
        StartMethod::ForkServer,
        StartMethod::Fork,
    ] {
        let mut p = Process::builder()
            .start_method(m)
            .start(|x: u32| x + 1, 1)
            .unwrap();
        assert_eq!(
            p.join_timeout(std::time::Duration::from_secs(120)).unwrap(),
            2,
            "{m:?}"
        );
    }
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(text, "main ran\n", "main ran in a child");
    println!("1 passed, 0 failed");
}
