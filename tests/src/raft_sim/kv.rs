//! The replicated state machine of the simulation: a tiny KV store of registers, and the
//! encoding of client operations as log entries and read contexts.

use prost::bytes::Bytes;
use std::collections::BTreeMap;

/// A client write as carried in a log entry: `client/seq/key/value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteCmd {
    pub client: u64,
    pub seq: u64,
    pub key: u64,
    pub value: u64,
}

impl WriteCmd {
    pub fn encode(&self) -> Bytes {
        Bytes::from(format!(
            "{}/{}/{}/{}",
            self.client, self.seq, self.key, self.value
        ))
    }

    pub fn decode(data: &[u8]) -> Option<Self> {
        let s = std::str::from_utf8(data).ok()?;
        let mut it = s.split('/').map(|p| p.parse::<u64>().ok());
        Some(Self {
            client: it.next()??,
            seq: it.next()??,
            key: it.next()??,
            value: it.next()??,
        })
    }
}

/// The registers, and per client the last applied sequence number: a proposal duplicated by
/// the network (and so appended twice) must take effect once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kv {
    pub values: BTreeMap<u64, u64>,
    pub last_seq: BTreeMap<u64, u64>,
}

impl Kv {
    /// Applies `cmd` unless it is a duplicate; returns whether it took effect.
    pub fn apply(&mut self, cmd: &WriteCmd) -> bool {
        let last = self.last_seq.entry(cmd.client).or_insert(0);
        if cmd.seq <= *last {
            return false;
        }
        *last = cmd.seq;
        self.values.insert(cmd.key, cmd.value);
        true
    }

    pub fn encode(&self) -> Bytes {
        let mut parts: Vec<String> = self
            .values
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        parts.extend(self.last_seq.iter().map(|(c, s)| format!("c{c}={s}")));
        Bytes::from(parts.join(","))
    }

    pub fn decode(data: &[u8]) -> Self {
        let mut kv = Kv::default();
        let Ok(s) = std::str::from_utf8(data) else {
            return kv;
        };
        for part in s.split(',').filter(|p| !p.is_empty()) {
            let Some((k, v)) = part.split_once('=') else {
                continue;
            };
            let (client, k) = match k.strip_prefix('c') {
                Some(c) => (true, c),
                None => (false, k),
            };
            if let (Ok(k), Ok(v)) = (k.parse(), v.parse()) {
                if client {
                    kv.last_seq.insert(k, v);
                } else {
                    kv.values.insert(k, v);
                }
            }
        }
        kv
    }
}
