//! The bounded window of `MsgApp`s sent to one follower but not yet acknowledged.

use std::collections::VecDeque;

/// In-flight appends, oldest first, as `(last index in the message, bytes)`. The window is full
/// when it holds `max_count` messages or `max_bytes` bytes; the leader then stops sending.
#[derive(Debug, Clone)]
pub struct Inflights {
    queue: VecDeque<(u64, u64)>,
    bytes: u64,
    max_count: usize,
    max_bytes: u64,
}

impl Inflights {
    pub fn new(max_count: usize, max_bytes: u64) -> Self {
        Self {
            queue: VecDeque::new(),
            bytes: 0,
            max_count: max_count.max(1),
            max_bytes,
        }
    }

    pub fn add(&mut self, index: u64, bytes: u64) {
        self.queue.push_back((index, bytes));
        self.bytes += bytes;
    }

    /// Frees every message whose last index is `<= to` (acknowledged).
    pub fn free_le(&mut self, to: u64) {
        while let Some(&(index, bytes)) = self.queue.front() {
            if index > to {
                break;
            }
            self.bytes -= bytes;
            self.queue.pop_front();
        }
    }

    pub fn free_first_one(&mut self) {
        if let Some((_, bytes)) = self.queue.pop_front() {
            self.bytes -= bytes;
        }
    }

    pub fn full(&self) -> bool {
        self.queue.len() >= self.max_count || self.bytes >= self.max_bytes
    }

    pub fn count(&self) -> usize {
        self.queue.len()
    }

    pub fn reset(&mut self) {
        self.queue.clear();
        self.bytes = 0;
    }
}
