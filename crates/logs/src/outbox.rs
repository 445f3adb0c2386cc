//! A bounded queue of what waits for the control plane on an agent's host (its dynos' metrics
//! samples, its router's requests): the oldest goes when it is full, and what was taken but
//! not delivered goes back in front, so that a control plane that is away costs the oldest
//! entries and nothing else.

use std::collections::VecDeque;
use std::sync::Mutex;

#[derive(Debug)]
pub struct Outbox<T> {
    queue: Mutex<VecDeque<T>>,
    capacity: usize,
}

impl<T> Outbox<T> {
    pub fn new(capacity: usize) -> Outbox<T> {
        Outbox {
            queue: Mutex::new(VecDeque::new()),
            capacity,
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<T>> {
        self.queue.lock().expect("outbox lock poisoned")
    }

    /// Queues `entry`; the oldest queued goes when the outbox is full.
    pub fn push(&self, entry: T) {
        let mut queue = self.queue();
        if queue.len() >= self.capacity {
            queue.pop_front();
        }
        queue.push_back(entry);
    }

    /// Up to `max` entries, oldest first, taken off the queue.
    pub fn take(&self, max: usize) -> Vec<T> {
        let mut queue = self.queue();
        let count = queue.len().min(max);
        queue.drain(..count).collect()
    }

    /// Puts back entries [`Outbox::take`] gave that were not delivered, before any queued
    /// since; what no longer fits is the oldest and goes.
    pub fn requeue(&self, entries: Vec<T>) {
        let mut queue = self.queue();
        for entry in entries.into_iter().rev() {
            if queue.len() >= self.capacity {
                break;
            }
            queue.push_front(entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_ordered_and_kept_across_a_failed_send() {
        let outbox = Outbox::new(10);
        for n in 0..15 {
            outbox.push(n);
        }
        // Full: the five oldest went.
        let first = outbox.take(3);
        assert_eq!(first, [5, 6, 7]);
        // Not delivered: back in front, before what was queued since; one more was queued
        // meanwhile, so the oldest of them no longer fits.
        outbox.push(99);
        outbox.push(100);
        outbox.requeue(first);
        assert_eq!(
            outbox.take(usize::MAX),
            [7, 8, 9, 10, 11, 12, 13, 14, 99, 100]
        );
        assert!(outbox.take(10).is_empty());
    }
}
