//! Peer traffic: per-peer labels (etcd's `To` / `From`, the member id in hex) and the
//! leader's heartbeat timeliness check.

use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;

/// Label of the families about traffic to a peer (`To="<member id hex>"`, as etcd).
#[allow(non_snake_case)]
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ToPeer {
    pub To: String,
}

impl ToPeer {
    pub fn new(member_id: u64) -> Self {
        ToPeer {
            To: format!("{member_id:x}"),
        }
    }
}

/// Label of the families about traffic from a peer (`From="<member id hex>"`, as etcd).
#[allow(non_snake_case)]
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FromPeer {
    pub From: String,
}

impl FromPeer {
    pub fn new(member_id: u64) -> Self {
        FromPeer {
            From: format!("{member_id:x}"),
        }
    }
}

/// etcd's leader heartbeat check, for one peer: a heartbeat that leaves more than twice the
/// heartbeat interval after the previous one (in the same term) was not sent on time — the
/// leader is overloaded, typically by a slow disk. The first heartbeat of a term (a new
/// leadership) starts the clock without being judged.
#[derive(Debug, Clone)]
pub struct HeartbeatClock {
    max_gap: Duration,
    last: Option<(u64, Instant)>,
}

impl HeartbeatClock {
    pub fn new(heartbeat_interval: Duration) -> Self {
        HeartbeatClock {
            max_gap: heartbeat_interval * 2,
            last: None,
        }
    }

    /// Records a heartbeat of `term` sent at `now`; returns whether it was late.
    pub fn sent(&mut self, term: u64, now: Instant) -> bool {
        let late = matches!(self.last, Some((t, at)) if t == term && now.saturating_duration_since(at) > self.max_gap);
        self.last = Some((term, now));
        late
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heartbeat_is_late_after_twice_the_interval_in_the_same_term() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        let mut clock = HeartbeatClock::new(ms(100));
        assert!(!clock.sent(2, start), "the first heartbeat is not judged");
        assert!(!clock.sent(2, start + ms(100)));
        assert!(
            !clock.sent(2, start + ms(300)),
            "exactly twice the interval is on time"
        );
        assert!(clock.sent(2, start + ms(501)));
        assert!(
            !clock.sent(3, start + ms(5000)),
            "a new term (new leadership) starts the clock again"
        );
        assert!(!clock.sent(3, start + ms(5150)));
        assert!(clock.sent(3, start + ms(5400)));
    }

    #[test]
    fn labels_name_the_member_in_hex() {
        assert_eq!(ToPeer::new(0xabc).To, "abc");
        assert_eq!(FromPeer::new(255).From, "ff");
    }
}
