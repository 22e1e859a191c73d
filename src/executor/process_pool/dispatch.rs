//! The dispatch policy, as pure functions: how many jobs a worker takes
//! now, which worker takes the next job. No processes, no locks: the
//! manager feeds them what it sees, and they are unit-tested alone.

use super::claims::WINDOW;

/// Jobs handed to one worker ahead of time, at most. (16 before answers
/// went by shared memory; then the batches' socket writes and the workers'
/// wake-ups bounded a pool of short tasks: `process_pool_task` 1.47 → 1.13
/// µs/task at 48, 4 alternating runs.)
pub(crate) const DEPTH: usize = 48;
/// A worker is refilled when it has this many jobs left, or fewer.
pub(crate) const LOW_WATER: usize = DEPTH / 2;
/// Arguments in one batch stop growing it past this many bytes.
pub(crate) const BATCH_BYTES: usize = 64 << 10;
/// A job whose argument is larger goes alone to an idle worker.
pub(crate) const SMALL_ARG: usize = 16 << 10;

// A board word is reused by the task `WINDOW` numbers later; the margin
// lets the worker mark its last answered task done before that.
const _: () = assert!(DEPTH + 16 <= WINDOW);

/// What the policy needs to know of a worker.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Worker {
    /// Ready, not retiring, not being killed.
    pub(crate) takes_jobs: bool,
    /// Its first outstanding job has a deadline.
    pub(crate) timed: bool,
    /// Jobs handed to it and not answered.
    pub(crate) outstanding: usize,
    /// It has not read the last batch sent to it.
    pub(crate) unread: bool,
    /// Jobs it has answered.
    pub(crate) done: usize,
}

/// How many more jobs `w` takes now: none while it has a timed one, more
/// than [`LOW_WATER`], or jobs outstanding in a batch it has not read, and
/// never more than its share of tasks (`max_tasks_per_child`) allows. A
/// worker with nothing outstanding is reading, whatever is still in its
/// pipe (a batch whose jobs were all taken back).
pub(crate) fn room(w: Worker, max_tasks: Option<usize>) -> usize {
    let unread = w.outstanding > 0 && w.unread;
    if !w.takes_jobs || w.timed || w.outstanding > LOW_WATER || unread {
        return 0;
    }
    let share = max_tasks.map_or(usize::MAX, |m| m.saturating_sub(w.done + w.outstanding));
    (DEPTH - w.outstanding).min(share)
}

/// A job with a deadline, a large argument or handles (whose descriptors
/// must not pile up in one message) is only handed to an idle worker, and
/// nothing is sent with it.
pub(crate) fn goes_alone(timeout: bool, arg_len: usize, handles: bool) -> bool {
    timeout || arg_len > SMALL_ARG || handles
}

/// A worker's batch being built in this round.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Batch {
    /// Its room at the start of the round ([`room`]).
    pub(crate) room: usize,
    /// Jobs outstanding before this round.
    pub(crate) outstanding: usize,
    /// Jobs in the batch so far.
    pub(crate) len: usize,
    /// Bytes of their arguments.
    pub(crate) bytes: usize,
    /// Its first job goes alone.
    pub(crate) alone: bool,
}

/// The worker that takes the next job (which goes alone or not): the least
/// loaded one whose batch has room, whose batch is not a lone job, and —
/// for a job that goes alone — that is idle with an empty batch.
pub(crate) fn pick(batches: &[Batch], alone: bool) -> Option<usize> {
    (0..batches.len())
        .filter(|&i| {
            let b = &batches[i];
            b.len < b.room
                && b.bytes < BATCH_BYTES
                && !(b.len > 0 && b.alone)
                && (!alone || (b.outstanding == 0 && b.len == 0))
        })
        .min_by_key(|&i| batches[i].outstanding + batches[i].len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(outstanding: usize) -> Worker {
        Worker {
            takes_jobs: true,
            outstanding,
            ..Worker::default()
        }
    }

    #[test]
    fn room_follows_the_water_marks() {
        assert_eq!(room(ready(0), None), DEPTH);
        assert_eq!(room(ready(LOW_WATER), None), DEPTH - LOW_WATER);
        assert_eq!(room(ready(LOW_WATER + 1), None), 0, "refilled only at half");
        let starting = Worker::default();
        assert_eq!(room(starting, None), 0);
        let timed = Worker {
            timed: true,
            ..ready(1)
        };
        assert_eq!(room(timed, None), 0, "nothing queued behind a timed job");
        let unread = Worker {
            unread: true,
            ..ready(2)
        };
        assert_eq!(room(unread, None), 0, "its pipe may be full");
        let drained = Worker {
            unread: true,
            ..ready(0)
        };
        assert_eq!(room(drained, None), DEPTH, "nothing outstanding: it reads");
        // max_tasks_per_child: 5, 3 done, 1 outstanding: one more.
        let w = Worker {
            done: 3,
            ..ready(1)
        };
        assert_eq!(room(w, Some(5)), 1);
        assert_eq!(
            room(
                Worker {
                    done: 5,
                    ..ready(0)
                },
                Some(5)
            ),
            0
        );
    }

    #[test]
    fn pick_prefers_the_least_loaded_with_room() {
        let b = |room, outstanding, len| Batch {
            room,
            outstanding,
            len,
            ..Batch::default()
        };
        assert_eq!(pick(&[b(4, 3, 0), b(4, 1, 0)], false), Some(1));
        assert_eq!(
            pick(&[b(4, 3, 0), b(1, 1, 1)], false),
            Some(0),
            "full batch"
        );
        assert_eq!(pick(&[b(0, 0, 0), b(0, 9, 0)], false), None);
        // A lone job wants an idle worker with an empty batch.
        assert_eq!(pick(&[b(4, 1, 0), b(4, 0, 1)], true), None);
        assert_eq!(pick(&[b(4, 1, 0), b(4, 0, 0)], true), Some(1));
        // Nothing joins a lone job's batch, nor a batch over the byte cap.
        let lone = Batch {
            alone: true,
            ..b(16, 0, 1)
        };
        let heavy = Batch {
            bytes: BATCH_BYTES,
            ..b(16, 0, 1)
        };
        assert_eq!(pick(&[lone, heavy], false), None);
        assert!(goes_alone(true, 0, false) && goes_alone(false, SMALL_ARG + 1, false));
        assert!(goes_alone(false, 0, true), "handles go alone");
        assert!(!goes_alone(false, SMALL_ARG, false));
    }
}
