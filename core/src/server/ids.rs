//! Unique IDs of proposals.

/// Generates proposal IDs unique across members and restarts, as etcd's `idutil`:
/// the low 16 bits of the member ID in the top 16 bits, then a counter that starts from the
/// shell's clock at startup (milliseconds, passed in), so a restarted member does not reuse
/// the IDs of its previous life.
#[derive(Debug, Clone)]
pub struct IdGenerator {
    prefix: u64,
    suffix: u64,
}

const SUFFIX_BITS: u32 = 48;
const SUFFIX_MASK: u64 = (1 << SUFFIX_BITS) - 1;

impl IdGenerator {
    pub fn new(member_id: u64, start_ms: u64) -> Self {
        IdGenerator {
            prefix: (member_id & 0xffff) << SUFFIX_BITS,
            suffix: (start_ms << 8) & SUFFIX_MASK,
        }
    }

    pub fn next_id(&mut self) -> u64 {
        self.suffix = (self.suffix + 1) & SUFFIX_MASK;
        self.prefix | self.suffix
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_per_member_and_across_restarts() {
        let mut first_life = IdGenerator::new(1, 1_000);
        let mut other_member = IdGenerator::new(2, 1_000);
        let a: Vec<u64> = (0..1000).map(|_| first_life.next_id()).collect();
        let b: Vec<u64> = (0..1000).map(|_| other_member.next_id()).collect();
        assert!(a.iter().all(|id| !b.contains(id)));
        // A restart a second later starts past everything the first life could have issued
        // at up to 256 proposals per millisecond.
        let mut second_life = IdGenerator::new(1, 2_000);
        let c = second_life.next_id();
        assert!(c > *a.last().unwrap());
        assert_eq!(
            a.len(),
            a.iter().collect::<std::collections::HashSet<_>>().len()
        );
    }
}
