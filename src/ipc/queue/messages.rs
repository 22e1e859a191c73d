//! A batch of messages in one buffer: what `get_many_bytes_into` fills.

/// Messages taken by one batch call
/// ([`Queue::get_many_bytes_into`](super::Queue::get_many_bytes_into)),
/// kept back to back in one buffer that the caller reuses: a loop that
/// keeps one `Messages` allocates nothing per batch once it has grown.
///
/// ```
/// use multiproc::ipc::{Messages, Queue};
/// let q: Queue<()> = Queue::new(16)?;
/// q.put_many_bytes(&[&b"one"[..], b"two", b"three"])?;
/// let mut batch = Messages::new();
/// assert_eq!(q.try_get_many_bytes_into(&mut batch, 8)?, 3);
/// assert_eq!(batch.iter().collect::<Vec<_>>(), [&b"one"[..], b"two", b"three"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Messages {
    bytes: Vec<u8>,
    /// Where each message ends in `bytes`.
    ends: Vec<usize>,
}

impl Messages {
    /// An empty batch.
    pub fn new() -> Messages {
        Messages::default()
    }

    /// How many messages it holds.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The `i`-th message, oldest first.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.bytes[start..end])
    }

    /// The messages, oldest first.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            messages: self,
            next: 0,
        }
    }

    /// Forgets the messages, keeping the memory.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    /// Adds a message at the end.
    pub fn push(&mut self, message: &[u8]) {
        self.bytes.extend_from_slice(message);
        self.ends.push(self.bytes.len());
    }
}

impl<'a> IntoIterator for &'a Messages {
    type Item = &'a [u8];
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// The messages of a [`Messages`], oldest first.
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    messages: &'a Messages,
    next: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let m = self.messages.get(self.next)?;
        self.next += 1;
        Some(m)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.messages.len() - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::Messages;

    #[test]
    fn messages_keep_their_bounds_and_their_memory() {
        let mut m = Messages::new();
        assert!(m.is_empty() && m.get(0).is_none());
        for part in [&b""[..], b"a", b"bc"] {
            m.push(part);
        }
        assert_eq!(m.len(), 3);
        assert_eq!(m.iter().len(), 3);
        assert_eq!(
            (&m).into_iter().collect::<Vec<_>>(),
            [&b""[..], b"a", b"bc"]
        );
        let grown = m.bytes.capacity();
        m.clear();
        assert!(m.is_empty());
        assert_eq!(m.bytes.capacity(), grown);
    }
}
