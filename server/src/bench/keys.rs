//! Key and value generation, as etcd's benchmark: fixed-size keys drawn from a key space either
//! sequentially or uniformly at random, fixed-size values.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum KeyOrder {
    Sequential,
    Random,
}

/// Makes the keys of one requester. Deterministic for a given seed, so runs are repeatable.
#[derive(Debug)]
pub struct KeyGen {
    key_size: usize,
    key_space: u64,
    order: KeyOrder,
    rng: SmallRng,
}

impl KeyGen {
    pub fn new(key_size: usize, key_space: u64, order: KeyOrder, seed: u64) -> Self {
        Self {
            key_size,
            key_space: key_space.max(1),
            order,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// The key for the `n`-th operation of the run (`n` is global across requesters, so
    /// sequential keys cover the key space without overlap).
    pub fn key(&mut self, n: u64) -> Vec<u8> {
        let index = match self.order {
            KeyOrder::Sequential => n % self.key_space,
            KeyOrder::Random => self.rng.random_range(0..self.key_space),
        };
        encode_key(index, self.key_size)
    }
}

/// A key of exactly `size` bytes (at least 8): the index in big-endian after a zero padding,
/// so keys sort by index as in etcd's benchmark.
pub fn encode_key(index: u64, size: usize) -> Vec<u8> {
    let size = size.max(8);
    let mut key = vec![b'0'; size - 8];
    key.extend_from_slice(&index.to_be_bytes());
    key
}

/// A value of `size` bytes that starts with `stamp` (nanoseconds since the run's origin) when
/// there is room, so watchers can measure event latency from the value alone.
pub fn stamped_value(size: usize, stamp: u64) -> Vec<u8> {
    let mut value = stamp.to_be_bytes().to_vec();
    value.resize(size.max(8), b'v');
    value
}

/// The stamp written by `stamped_value`, if the value carries one.
pub fn read_stamp(value: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = value.get(..8)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_keys_cycle_over_the_key_space_with_the_requested_size() {
        let mut keys = KeyGen::new(12, 3, KeyOrder::Sequential, 1);
        let made: Vec<_> = (0..4).map(|n| keys.key(n)).collect();
        assert!(made.iter().all(|k| k.len() == 12));
        assert_eq!(made[0], made[3]);
        assert!(made[0] < made[1] && made[1] < made[2]);
    }

    #[test]
    fn random_keys_stay_in_the_key_space() {
        let mut keys = KeyGen::new(8, 5, KeyOrder::Random, 7);
        for n in 0..100 {
            let index = u64::from_be_bytes(keys.key(n).try_into().unwrap_or_default());
            assert!(index < 5);
        }
    }

    #[test]
    fn stamps_round_trip_through_values() {
        let value = stamped_value(256, 123_456);
        assert_eq!(value.len(), 256);
        assert_eq!(read_stamp(&value), Some(123_456));
        assert_eq!(read_stamp(b"short"), None);
    }
}
