//! The tour's manager story: a dict served by a process to four others,
//! Python's classic lost update next to the call that cannot lose one, and
//! a manager over TCP that turns a wrong key away.

use std::time::Duration;

use multiproc::manager::{Dict, Manager};
use multiproc::process::Process;

/// Four processes each add 1 to two counters 250 times: one the way
/// Python's `d[k] = d[k] + 1` does (read, then write), one with `increment`.
fn count((d, times): (Dict<String, u64>, u64)) {
    for _ in 0..times {
        let seen = d.get(&"naive".into()).unwrap().unwrap_or(0);
        d.insert(&"naive".into(), &(seen + 1)).unwrap();
        d.increment(&"atomic".into(), 1).unwrap();
    }
}

pub fn shared_dict() -> Result<(), Box<dyn std::error::Error>> {
    let manager = Manager::start()?;
    println!(
        "   a manager process (pid {}) serves a dict at {}",
        manager.pid().unwrap_or(0),
        manager.address()
    );
    let d = manager.dict::<String, u64>()?;
    let mut ps: Vec<_> = (0..4)
        .map(|_| Process::start(count, (d.clone(), 250)))
        .collect::<Result<_, _>>()?;
    for p in &mut ps {
        p.join_timeout(Duration::from_secs(60))?;
    }
    let naive = d.get(&"naive".into())?.unwrap_or(0);
    let atomic = d.get(&"atomic".into())?.unwrap_or(0);
    println!(
        "   read-then-write from 4 processes: {naive} of 1000 (Python's d[k] += 1 loses these too)"
    );
    println!("   d.increment(k, 1) from 4 processes: {atomic} of 1000");

    let server = Manager::builder()
        .address("127.0.0.1:0")
        .key("s3cret")
        .serve()?;
    match Manager::connect(server.address(), "guess") {
        Err(e) => println!(
            "   over TCP at {}: a wrong key is refused ({e})",
            server.address()
        ),
        Ok(_) => println!("   over TCP: a wrong key was accepted?!"),
    }
    let remote = Manager::connect(server.address(), "s3cret")?;
    remote
        .named("jobs")
        .queue::<String>(0)?
        .put(&"render frame 7".into())?;
    let jobs = server.manager().named("jobs").queue::<String>(0)?;
    println!(
        "   the right key reaches the named queue: {:?}",
        jobs.get_timeout(Duration::from_secs(10))?
    );
    Ok(())
}
