//! Splitting large watch responses (etcd's `sendFragments`): a response of at least
//! `max_bytes` with two or more events is cut into parts that each stay below the limit
//! (a single oversized event still goes alone); every part but the last has `fragment` set.

use prost::Message;
use qraft_proto::etcdserverpb::WatchResponse;

pub(crate) fn fragments(response: WatchResponse, max_bytes: usize) -> Vec<WatchResponse> {
    if response.encoded_len() < max_bytes || response.events.len() < 2 {
        return vec![response];
    }
    let mut parts = Vec::new();
    let template = WatchResponse {
        events: Vec::new(),
        fragment: true,
        ..response.clone()
    };
    let mut current = template.clone();
    for event in response.events {
        current.events.push(event);
        if current.events.len() > 1 && current.encoded_len() >= max_bytes {
            let overflow = current.events.pop();
            parts.push(std::mem::replace(&mut current, template.clone()));
            current.events.extend(overflow);
        }
    }
    current.fragment = false;
    parts.push(current);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use qraft_proto::mvccpb::{Event, KeyValue};

    fn event(size: usize) -> Event {
        Event {
            kv: Some(KeyValue {
                key: b"k".to_vec().into(),
                value: vec![b'x'; size].into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn splits_below_the_limit_and_flags_all_but_last() {
        let response = WatchResponse {
            watch_id: 7,
            events: (0..10).map(|_| event(100)).collect(),
            ..Default::default()
        };
        let parts = fragments(response.clone(), 350);
        assert!(parts.len() > 1);
        assert!(parts.iter().all(|p| p.encoded_len() < 350));
        assert!(parts[..parts.len() - 1].iter().all(|p| p.fragment));
        assert!(!parts[parts.len() - 1].fragment);
        let total: usize = parts.iter().map(|p| p.events.len()).sum();
        assert_eq!(total, 10);
        assert_eq!(fragments(response, 1 << 20).len(), 1);
        let single = WatchResponse {
            events: vec![event(1000)],
            ..Default::default()
        };
        assert_eq!(fragments(single, 10).len(), 1);
    }
}
