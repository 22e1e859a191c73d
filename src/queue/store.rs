//! Where a queue keeps its items: the order (FIFO, LIFO, priority) and the
//! bound.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Mutex;

use crossbeam_queue::SegQueue;

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
    fn capacity(&self) -> Option<usize>;
}

/// First in, first out, for the queues the ring does not serve
/// (`sync::ring`, see `FifoCore`): unbounded, crossbeam's lock-free
/// `SegQueue`; bounded above [`RING_LIMIT`] (a ring allocates all its slots
/// up front), a deque under a lock, which grows as needed.
pub(crate) enum Fifo<T> {
    Unbounded(SegQueue<T>),
    Large(Locked<VecDeque<T>>),
}

/// The largest bound served by a preallocated ring.
pub(crate) const RING_LIMIT: usize = 1 << 16;

impl<T: Send> Store<T> for Fifo<T> {
    fn new(capacity: Option<usize>) -> Self {
        match capacity {
            Some(n) => Fifo::Large(Locked::new(Some(n))),
            None => Fifo::Unbounded(SegQueue::new()),
        }
    }

    fn try_push(&self, item: T) -> Result<(), T> {
        match self {
            Fifo::Unbounded(q) => {
                q.push(item);
                Ok(())
            }
            Fifo::Large(q) => q.try_push(item),
        }
    }

    fn try_pop(&self) -> Option<T> {
        match self {
            Fifo::Unbounded(q) => q.pop(),
            Fifo::Large(q) => q.try_pop(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Fifo::Unbounded(q) => q.len(),
            Fifo::Large(q) => q.len(),
        }
    }

    fn capacity(&self) -> Option<usize> {
        match self {
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
