//! Where a queue keeps its items: the order (FIFO, LIFO, priority) and the
//! bound.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Mutex;

use crossbeam_queue::{ArrayQueue, SegQueue};

use crate::blocking::lock;

/// The items of a queue, safe to use from many threads at once.
pub(crate) trait Store<T>: Send + Sync {
    /// A store holding at most `capacity` items (`None`: unbounded).
    fn new(capacity: Option<usize>) -> Self;
    /// Adds `item`, or gives it back if the store is full.
    fn try_push(&self, item: T) -> Result<(), T>;
    fn try_pop(&self) -> Option<T>;
    /// The number of items, exact at the moment it is read.
    fn len(&self) -> usize;
    /// A cheap, racy "no room now" (`false` where it would cost): lets a
    /// waiting `put` skip an attempt bound to fail.
    fn looks_full(&self) -> bool {
        false
    }
    fn capacity(&self) -> Option<usize>;
}

/// First in, first out: lock-free rings (crossbeam's bounded `ArrayQueue`
/// and unbounded `SegQueue`). A ring allocates all its slots up front, so a
/// bound above [`RING_LIMIT`] uses a deque under a lock instead, which grows
/// as needed.
pub(crate) enum Fifo<T> {
    Bounded(ArrayQueue<T>),
    Unbounded(SegQueue<T>),
    Large(Locked<VecDeque<T>>),
}

/// The largest bound served by a preallocated ring.
pub(crate) const RING_LIMIT: usize = 1 << 16;

impl<T: Send> Store<T> for Fifo<T> {
    fn new(capacity: Option<usize>) -> Self {
        match capacity {
            Some(n) if n > RING_LIMIT => Fifo::Large(Locked::new(Some(n))),
            Some(n) => Fifo::Bounded(ArrayQueue::new(n.max(1))),
            None => Fifo::Unbounded(SegQueue::new()),
        }
    }

    fn try_push(&self, item: T) -> Result<(), T> {
        match self {
            Fifo::Bounded(q) => q.push(item),
            Fifo::Unbounded(q) => {
                q.push(item);
                Ok(())
            }
            Fifo::Large(q) => q.try_push(item),
        }
    }

    fn try_pop(&self) -> Option<T> {
        match self {
            Fifo::Bounded(q) => q.pop(),
            Fifo::Unbounded(q) => q.pop(),
            Fifo::Large(q) => q.try_pop(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Fifo::Bounded(q) => q.len(),
            Fifo::Unbounded(q) => q.len(),
            Fifo::Large(q) => q.len(),
        }
    }

    fn looks_full(&self) -> bool {
        matches!(self, Fifo::Bounded(q) if q.is_full())
    }

    fn capacity(&self) -> Option<usize> {
        match self {
            Fifo::Bounded(q) => Some(q.capacity()),
            Fifo::Unbounded(_) => None,
            Fifo::Large(q) => q.capacity(),
        }
    }
}

/// A container under a lock, for the orders that no lock-free ring gives.
pub(crate) struct Locked<C> {
    items: Mutex<C>,
    capacity: Option<usize>,
}

/// What [`Locked`] needs of its container.
pub(crate) trait Container<T>: Default + Send {
    fn push(&mut self, item: T);
    fn pop(&mut self) -> Option<T>;
    fn len(&self) -> usize;
}

impl<T: Send, C: Container<T>> Store<T> for Locked<C> {
    fn new(capacity: Option<usize>) -> Self {
        Locked {
            items: Mutex::new(C::default()),
            capacity: capacity.map(|n| n.max(1)),
        }
    }

    fn try_push(&self, item: T) -> Result<(), T> {
        let mut items = lock(&self.items);
        if self.capacity.is_some_and(|c| items.len() >= c) {
            return Err(item);
        }
        items.push(item);
        Ok(())
    }

    fn try_pop(&self) -> Option<T> {
        lock(&self.items).pop()
    }

    fn len(&self) -> usize {
        lock(&self.items).len()
    }

    fn capacity(&self) -> Option<usize> {
        self.capacity
    }
}

/// Last in, first out.
pub(crate) type Lifo<T> = Locked<Vec<T>>;

impl<T: Send> Container<T> for Vec<T> {
    fn push(&mut self, item: T) {
        Vec::push(self, item)
    }
    fn pop(&mut self) -> Option<T> {
        Vec::pop(self)
    }
    fn len(&self) -> usize {
        Vec::len(self)
    }
}

impl<T: Send> Container<T> for VecDeque<T> {
    fn push(&mut self, item: T) {
        VecDeque::push_back(self, item)
    }
    fn pop(&mut self) -> Option<T> {
        VecDeque::pop_front(self)
    }
    fn len(&self) -> usize {
        VecDeque::len(self)
    }
}

/// Smallest first, as Python's `heapq`-based `PriorityQueue`.
pub(crate) type Priority<T> = Locked<BinaryHeap<Reverse<T>>>;

impl<T: Ord + Send> Container<T> for BinaryHeap<Reverse<T>> {
    fn push(&mut self, item: T) {
        BinaryHeap::push(self, Reverse(item))
    }
    fn pop(&mut self) -> Option<T> {
        BinaryHeap::pop(self).map(|Reverse(t)| t)
    }
    fn len(&self) -> usize {
        BinaryHeap::len(self)
    }
}
