//! A one-way connection with latency: a FIFO of timestamped messages.
//!
//! Order entry and the user-data stream are each one ordered connection, so a message never
//! overtakes the one sent before it: a due time earlier than the previous message's is raised to
//! it. Due times therefore never decrease along the queue, a ring (`VecDeque`) is already sorted,
//! and ties keep their sending order, deterministically.

use std::collections::VecDeque;

/// Messages in flight, in due order.
#[derive(Debug)]
pub(crate) struct Link<T> {
    in_flight: VecDeque<(i64, T)>,
    last_due_ns: i64,
    grown: u64,
}

impl<T> Link<T> {
    /// An empty link with room for `capacity` messages before it has to grow.
    pub(crate) fn with_capacity(capacity: usize) -> Link<T> {
        Link {
            in_flight: VecDeque::with_capacity(capacity),
            last_due_ns: i64::MIN,
            grown: 0,
        }
    }

    /// When a message asked to be due at `due_ns` would be: not before the previous one.
    #[inline]
    pub(crate) fn due_for(&self, due_ns: i64) -> i64 {
        due_ns.max(self.last_due_ns)
    }

    /// Sends `msg`, due at `due_ns` or when the previous message is, whichever is later.
    /// Returns the due time used.
    #[inline]
    pub(crate) fn send(&mut self, due_ns: i64, msg: T) -> i64 {
        let due = self.due_for(due_ns);
        self.last_due_ns = due;
        if self.in_flight.len() == self.in_flight.capacity() {
            // The only allocation: more in flight than preallocated. Counted, never silent.
            self.grown += 1;
        }
        self.in_flight.push_back((due, msg));
        due
    }

    /// When the next message is due.
    #[inline]
    pub(crate) fn next_due(&self) -> Option<i64> {
        self.in_flight.front().map(|&(t, _)| t)
    }

    /// The next message if it is due at or before `now_ns`.
    #[inline]
    pub(crate) fn pop_due(&mut self, now_ns: i64) -> Option<(i64, T)> {
        if self.next_due()? <= now_ns {
            self.in_flight.pop_front()
        } else {
            None
        }
    }

    /// Times the queue had to grow past its preallocated capacity.
    pub(crate) fn grown(&self) -> u64 {
        self.grown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_never_reorders() {
        let mut l = Link::with_capacity(4);
        assert_eq!(l.send(100, 'a'), 100);
        // Sent later with a shorter delay: waits for 'a'.
        assert_eq!(l.send(90, 'b'), 100);
        assert_eq!(l.send(120, 'c'), 120);
        assert_eq!(l.pop_due(99), None);
        assert_eq!(l.pop_due(100), Some((100, 'a')));
        assert_eq!(l.pop_due(100), Some((100, 'b')));
        assert_eq!(l.next_due(), Some(120));
        assert_eq!(l.pop_due(1_000), Some((120, 'c')));
        assert_eq!(l.grown(), 0);
    }
}
