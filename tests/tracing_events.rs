//! What the pool does shows as `tracing` events (target `multiproc::pool`):
//! a worker's start, its death with the status, a kill and why.

mod common;
use common::{ResultInTime, until};

use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use multiproc::executor::{ProcessPool, TaskOptions};
use multiproc::futures::TaskError;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata};

static EVENTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Keeps every event as one line: its target and its fields.
struct Collect;

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

impl tracing::Subscriber for Collect {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = Line(event.metadata().target().to_string());
        event.record(&mut line);
        EVENTS.lock().unwrap().push(line.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn seen(what: &str, pid: u32) -> bool {
    EVENTS
        .lock()
        .unwrap()
        .iter()
        .any(|e| e.contains(what) && e.contains(&format!("pid={pid}")))
}

#[test]
fn deaths_and_kills_are_told() {
    tracing::subscriber::set_global_default(Collect).unwrap();
    let _c = common::clean();
    let pool = ProcessPool::new(1);
    until("the worker starts", || pool.worker_pids().len() == 1);
    let first = pool.worker_pids()[0];
    until("its start is told", || seen("worker started", first));
    let f = pool.submit(|()| -> u8 { std::process::abort() }, ());
    assert!(matches!(
        f.result_in_time(),
        Err(TaskError::WorkerDied { .. })
    ));
    until("its death is told, with the status", || {
        EVENTS.lock().unwrap().iter().any(|e| {
            e.starts_with("multiproc::pool")
                && e.contains("a worker died")
                && e.contains(&format!("pid={first}"))
                && e.contains("SIGABRT")
        })
    });
    until("a fresh worker starts", || {
        pool.worker_pids().first().is_some_and(|p| *p != first)
    });
    let second = pool.worker_pids()[0];
    let slow = pool.submit_with(
        |()| std::thread::sleep(Duration::from_secs(60)),
        (),
        TaskOptions::timeout(Duration::from_millis(50)),
    );
    assert!(matches!(
        slow.result_in_time(),
        Err(TaskError::DeadlineExceeded(_))
    ));
    until("the kill and its reason are told", || {
        EVENTS.lock().unwrap().iter().any(|e| {
            e.contains("killing a worker")
                && e.contains(&format!("pid={second}"))
                && e.contains("Timeout")
        })
    });
}
