//! The Redis keys of one pool, and the scripts that move tasks atomically.
//! Every key of a pool carries the hash tag `{mp:NAME}`, so they live in one
//! slot and a Redis Cluster serves them like a single server.

use std::time::Duration;

/// The keys of the pool `name`.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    tag: String,
}

impl Keys {
    pub(crate) fn new(pool: &str) -> Keys {
        Keys {
            tag: format!("{{mp:{pool}}}"),
        }
    }

    /// Tasks waiting for a worker: new ones pushed on the left, taken from
    /// the right; a task put back goes to the right (the front).
    pub(crate) fn tasks(&self) -> String {
        format!("{}:tasks", self.tag)
    }

    /// The pool's announcement (its build), signed.
    pub(crate) fn pool(&self) -> String {
        format!("{}:pool", self.tag)
    }

    /// Workers alive (whose tasks the pool watches).
    pub(crate) fn workers(&self) -> String {
        format!("{}:workers", self.tag)
    }

    /// Slots of each worker (a hash).
    pub(crate) fn slots(&self) -> String {
        format!("{}:slots", self.tag)
    }

    /// A worker's lease: exists while the worker renews it.
    pub(crate) fn lease(&self, worker: &str) -> String {
        format!("{}:lease:{worker}", self.tag)
    }

    /// The tasks a worker took and has not answered (the reliable-queue
    /// pattern: a task moves here atomically when taken).
    pub(crate) fn processing(&self, worker: &str) -> String {
        format!("{}:proc:{worker}", self.tag)
    }

    /// Cancellations for a worker.
    pub(crate) fn cancels(&self, worker: &str) -> String {
        format!("{}:cancel:{worker}", self.tag)
    }

    /// Answers for one pool client.
    pub(crate) fn results(&self, client: u64) -> String {
        format!("{}:results:{client:016x}", self.tag)
    }

    /// Tasks of one client found on a lost worker by another client.
    pub(crate) fn lost(&self, client: u64) -> String {
        format!("{}:lost:{client:016x}", self.tag)
    }

    /// Exists while the Redis the client talks to is the one it started
    /// with (gone after a restart that lost the data).
    pub(crate) fn alive(&self, client: u64) -> String {
        format!("{}:client:{client:016x}", self.tag)
    }

    /// Refusals and other news from workers, for the pool.
    pub(crate) fn events(&self) -> String {
        format!("{}:events", self.tag)
    }
}

/// A worker's step, atomic: first its answers — each task leaves its
/// processing list and its answer goes to the client's list, both or
/// neither (a task no longer there, because the worker was fenced and the
/// pool handled it, draws no answer) — then, only while it holds its lease,
/// up to `ARGV[1]` new tasks, each moving from the pool's list to its
/// processing list (the reliable-queue pattern). Returns the new tasks, or
/// false without a lease.
/// KEYS: tasks, processing, lease, then one results list per answer.
/// ARGV: how many to take, then (task, answer) per answer.
pub(crate) const STEP: &str = r"
for i = 4, #KEYS do
  local t = ARGV[2 * (i - 4) + 2]
  if redis.call('LREM', KEYS[2], 1, t) == 1 then
    redis.call('LPUSH', KEYS[i], ARGV[2 * (i - 4) + 3])
  end
end
if redis.call('EXISTS', KEYS[3]) == 0 then return false end
local out = {}
for i = 1, tonumber(ARGV[1]) do
  local t = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
  if not t then break end
  out[#out + 1] = t
end
return out
";

/// A worker renews its lease, only while it is still a member (a fenced
/// worker is not resurrected). KEYS: workers, lease. ARGV: worker, ms.
pub(crate) const RENEW: &str = r"
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return 1
";

/// The pool fences a worker whose lease lapsed: it is no member any more,
/// and its processing list is handed over (and deleted) in the same step.
/// KEYS: workers, lease, processing, cancels, slots. ARGV: worker.
pub(crate) const FENCE: &str = r"
if redis.call('EXISTS', KEYS[2]) == 1 then return false end
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
local t = redis.call('LRANGE', KEYS[3], 0, -1)
redis.call('DEL', KEYS[3], KEYS[4])
return t
";

/// Takes the tasks named in ARGV out of the list `KEYS[1]`, keeping the
/// others in their order; returns those taken. One pass over the list.
pub(crate) const TAKE_OUT: &str = r"
local mine = {}
for i = 1, #ARGV do mine[ARGV[i]] = true end
local all = redis.call('LRANGE', KEYS[1], 0, -1)
local keep, taken = {}, {}
for i = 1, #all do
  if mine[all[i]] then
    taken[#taken + 1] = all[i]
    mine[all[i]] = nil
  else
    keep[#keep + 1] = all[i]
  end
end
if #taken > 0 then
  redis.call('DEL', KEYS[1])
  for i = 1, #keep, 1000 do
    redis.call('RPUSH', KEYS[1], unpack(keep, i, math.min(i + 999, #keep)))
  end
end
return taken
";

/// A pause between tries to reach Redis: 10 ms doubling to 1 s.
pub(crate) fn backoff(tries: u32) -> Duration {
    Duration::from_millis(10u64 << tries.min(7)).min(Duration::from_secs(1))
}
