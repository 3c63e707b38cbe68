//! The lessor: every lease, the keys attached to them, and (on the primary) their deadlines.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use qraft_proto::Bytes;
use qraft_proto::etcdserverpb::{
    LeaseCheckpoint, LeaseCheckpointRequest, LeaseKeepAliveResponse, LeaseLeasesResponse,
    LeaseStatus, LeaseTimeToLiveResponse,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::config::{LessorConfig, MAX_LEASE_TTL_SECS};
use super::persist::LeaseRecord;
use super::record::Lease;
use crate::error::Error;

/// Leases of one member.
///
/// Everything that changes replicated state (`grant`, `revoke`, `attach`, `detach`,
/// `apply_checkpoint`) is called while applying committed entries, identically on every member.
/// Deadlines are member-local: only the primary (the raft leader) tracks them, so only the
/// primary renews leases and reports expired ones, which it then revokes through raft.
/// Time is the caller's monotonic clock in milliseconds, passed in as `now_ms`; the lessor never
/// reads a clock.
#[derive(Debug)]
pub struct Lessor {
    config: LessorConfig,
    leases: BTreeMap<i64, Lease>,
    key_owner: HashMap<Bytes, i64>,
    primary: bool,
    /// `(next_expiry_check_ms, id)` of every lease on the primary; empty elsewhere.
    expiry_queue: BTreeSet<(u64, i64)>,
    /// `(next_checkpoint_ms, id)` of leases whose remaining TTL the primary will replicate.
    checkpoint_queue: BTreeSet<(u64, i64)>,
    /// Checkpoints the primary must propose now (e.g. clearing a remainder after a renewal).
    urgent_checkpoints: Vec<LeaseCheckpoint>,
    rng: SmallRng,
}

impl Lessor {
    pub fn new(config: LessorConfig) -> Self {
        let rng = SmallRng::seed_from_u64(config.seed);
        Lessor {
            config,
            leases: BTreeMap::new(),
            key_owner: HashMap::new(),
            primary: false,
            expiry_queue: BTreeSet::new(),
            checkpoint_queue: BTreeSet::new(),
            urgent_checkpoints: Vec::new(),
            rng,
        }
    }

    pub fn config(&self) -> &LessorConfig {
        &self.config
    }

    pub fn is_primary(&self) -> bool {
        self.primary
    }

    pub fn get(&self, id: i64) -> Option<&Lease> {
        self.leases.get(&id)
    }

    pub fn len(&self) -> usize {
        self.leases.len()
    }

    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    /// The lease a key is attached to, if any.
    pub fn lease_of_key(&self, key: &[u8]) -> Option<i64> {
        self.key_owner.get(key).copied()
    }

    /// A fresh random positive 63-bit ID that no lease uses.
    ///
    /// The member that *proposes* a grant with ID 0 calls this and proposes the chosen ID, so
    /// applying the grant is deterministic on every member (as etcd picks the ID before
    /// proposing).
    pub fn assign_id(&mut self) -> i64 {
        loop {
            let id = (self.rng.random::<u64>() >> 1) as i64;
            if id != 0 && !self.leases.contains_key(&id) {
                return id;
            }
        }
    }

    /// Grants a lease and returns it. `id == 0` picks a random ID (see [`Lessor::assign_id`]);
    /// a TTL below the minimum is raised to it.
    pub fn grant(&mut self, id: i64, ttl: i64, now_ms: u64) -> Result<&Lease, Error> {
        if ttl > MAX_LEASE_TTL_SECS {
            return Err(Error::LeaseTtlTooLarge);
        }
        let id = if id == 0 { self.assign_id() } else { id };
        if self.leases.contains_key(&id) {
            return Err(Error::LeaseExists);
        }
        let ttl = ttl.max(self.config.min_ttl_secs);
        self.leases.insert(id, Lease::new(id, ttl, 0));
        if self.primary {
            self.refresh(id, 0, now_ms);
            self.schedule_checkpoint(id, now_ms);
        }
        Ok(&self.leases[&id])
    }

    /// Removes a lease and returns its keys (sorted) so the caller deletes them in one revision.
    pub fn revoke(&mut self, id: i64) -> Result<Vec<Bytes>, Error> {
        let lease = self.leases.remove(&id).ok_or(Error::LeaseNotFound)?;
        self.unqueue(&lease);
        for key in &lease.keys {
            self.key_owner.remove(key);
        }
        Ok(lease.keys.into_iter().collect())
    }

    /// Attaches a key to a lease, moving it off the lease it was attached to before.
    pub fn attach(&mut self, id: i64, key: Bytes) -> Result<(), Error> {
        if !self.leases.contains_key(&id) {
            return Err(Error::LeaseNotFound);
        }
        self.detach(&key);
        if let Some(lease) = self.leases.get_mut(&id) {
            lease.keys.insert(key.clone());
        }
        self.key_owner.insert(key, id);
        Ok(())
    }

    /// Detaches a key from whatever lease holds it; a key without lease is left alone.
    pub fn detach(&mut self, key: &[u8]) {
        if let Some(old) = self.key_owner.remove(key)
            && let Some(lease) = self.leases.get_mut(&old)
        {
            lease.keys.remove(key);
        }
    }

    /// Renews a lease on the primary: its deadline becomes `now + ttl`. Returns the TTL.
    pub fn renew(&mut self, id: i64, now_ms: u64) -> Result<i64, Error> {
        if !self.primary {
            return Err(Error::NotLeader);
        }
        let lease = self.leases.get(&id).ok_or(Error::LeaseNotFound)?;
        if lease.remaining_ms(now_ms) == Some(0) {
            // Expired: its revoke is on its way; renewing it now would resurrect it on this
            // member only.
            return Err(Error::LeaseNotFound);
        }
        if self.config.checkpoints_enabled && lease.remaining_ttl > 0 {
            // Replicate that the checkpointed remainder no longer applies, or a new leader
            // would start the renewed lease from the old, shorter remainder.
            self.urgent_checkpoints.push(LeaseCheckpoint {
                id,
                remaining_ttl: 0,
            });
        }
        let ttl = lease.ttl;
        if let Some(lease) = self.leases.get_mut(&id) {
            lease.remaining_ttl = 0;
        }
        self.refresh(id, 0, now_ms);
        self.schedule_checkpoint(id, now_ms);
        Ok(ttl)
    }

    /// Removes the pending "clear the remainder" checkpoint of lease `id` queued by a renewal,
    /// returning whether there was one. A caller that replicates it itself (and answers the
    /// renewal only once it is applied, as etcd does) takes it here so it is not sent twice.
    pub fn take_urgent_checkpoint(&mut self, id: i64) -> bool {
        let before = self.urgent_checkpoints.len();
        self.urgent_checkpoints.retain(|c| c.id != id);
        self.urgent_checkpoints.len() != before
    }

    /// Keep-alive as a client sees it: an unknown (or just expired) lease answers TTL 0.
    pub fn keep_alive(&mut self, id: i64, now_ms: u64) -> Result<LeaseKeepAliveResponse, Error> {
        let ttl = match self.renew(id, now_ms) {
            Ok(ttl) => ttl,
            Err(Error::LeaseNotFound) => 0,
            Err(err) => return Err(err),
        };
        Ok(LeaseKeepAliveResponse {
            header: None,
            id,
            ttl,
        })
    }

    /// Time-to-live as a client sees it: an unknown lease answers TTL -1. The remaining TTL is
    /// exact on the primary; elsewhere it is the last checkpointed remainder (or the granted TTL).
    pub fn time_to_live(&self, id: i64, with_keys: bool, now_ms: u64) -> LeaseTimeToLiveResponse {
        let Some(lease) = self.leases.get(&id) else {
            return LeaseTimeToLiveResponse {
                id,
                ttl: -1,
                ..Default::default()
            };
        };
        let ttl = match lease.remaining_ms(now_ms) {
            Some(ms) => i64::try_from(ms / 1000).unwrap_or(i64::MAX),
            None => lease.ttl_for_refresh(),
        };
        LeaseTimeToLiveResponse {
            header: None,
            id,
            ttl,
            granted_ttl: lease.ttl,
            keys: if with_keys {
                lease.keys.iter().cloned().collect()
            } else {
                Vec::new()
            },
        }
    }

    /// Every lease ID, ascending.
    pub fn leases(&self) -> LeaseLeasesResponse {
        LeaseLeasesResponse {
            header: None,
            leases: self.leases.keys().map(|&id| LeaseStatus { id }).collect(),
        }
    }

    /// Applies a replicated checkpoint: the lease's remaining TTL becomes `remaining_ttl` (0
    /// clears it). The deadline of a live lease is not touched; the remainder matters when a
    /// member is promoted or restarts. Unknown leases are ignored (revoked meanwhile).
    pub fn apply_checkpoint(&mut self, id: i64, remaining_ttl: i64, now_ms: u64) {
        if let Some(lease) = self.leases.get_mut(&id) {
            lease.remaining_ttl = remaining_ttl;
            if self.primary {
                self.schedule_checkpoint(id, now_ms);
            }
        }
    }

    /// Applies every checkpoint of a replicated `LeaseCheckpointRequest`.
    pub fn apply_checkpoints(&mut self, request: &LeaseCheckpointRequest, now_ms: u64) {
        for checkpoint in &request.checkpoints {
            self.apply_checkpoint(checkpoint.id, checkpoint.remaining_ttl, now_ms);
        }
    }

    /// This member became the leader: every lease gets `now + extend + remaining TTL`, where
    /// `extend` (the election timeout) gives clients time to find the new leader and renew.
    pub fn promote(&mut self, extend_ms: u64, now_ms: u64) {
        self.primary = true;
        let ids: Vec<i64> = self.leases.keys().copied().collect();
        for id in ids {
            self.refresh(id, extend_ms, now_ms);
            self.schedule_checkpoint(id, now_ms);
        }
    }

    /// This member is no longer the leader: it stops tracking deadlines.
    pub fn demote(&mut self) {
        self.primary = false;
        for lease in self.leases.values_mut() {
            lease.expiry_ms = None;
            lease.next_expiry_check_ms = None;
            lease.next_checkpoint_ms = None;
        }
        self.expiry_queue.clear();
        self.checkpoint_queue.clear();
        self.urgent_checkpoints.clear();
    }

    /// On the primary, up to `max_revokes_per_call` leases whose deadline has passed, in deadline
    /// order. Each is reported again after `expired_retry_ms` if it still exists then (its
    /// revoke got lost, e.g. in a leader change).
    pub fn expired(&mut self, now_ms: u64) -> Vec<i64> {
        let mut expired = Vec::new();
        while expired.len() < self.config.max_revokes_per_call {
            let Some(&(at, id)) = self.expiry_queue.first() else {
                break;
            };
            if at > now_ms {
                break;
            }
            self.expiry_queue.remove(&(at, id));
            let retry = now_ms.saturating_add(self.config.expired_retry_ms);
            self.expiry_queue.insert((retry, id));
            if let Some(lease) = self.leases.get_mut(&id) {
                lease.next_expiry_check_ms = Some(retry);
            }
            expired.push(id);
        }
        expired
    }

    /// On the primary, the checkpoints due at `now_ms`, as one request to propose (or `None`).
    pub fn due_checkpoints(&mut self, now_ms: u64) -> Option<LeaseCheckpointRequest> {
        if !self.primary || !self.config.checkpoints_enabled {
            return None;
        }
        let max = self.config.max_checkpoints_per_request.max(1);
        let take = self.urgent_checkpoints.len().min(max);
        let mut checkpoints: Vec<LeaseCheckpoint> = self.urgent_checkpoints.drain(..take).collect();
        while checkpoints.len() < max {
            let Some(&(at, id)) = self.checkpoint_queue.first() else {
                break;
            };
            if at > now_ms {
                break;
            }
            self.checkpoint_queue.remove(&(at, id));
            let Some(lease) = self.leases.get_mut(&id) else {
                continue;
            };
            lease.next_checkpoint_ms = None;
            let Some(left_ms) = lease.remaining_ms(now_ms) else {
                continue;
            };
            let remaining_ttl = i64::try_from(left_ms.div_ceil(1000)).unwrap_or(i64::MAX);
            if left_ms == 0 || remaining_ttl >= lease.ttl {
                continue;
            }
            checkpoints.push(LeaseCheckpoint { id, remaining_ttl });
        }
        (!checkpoints.is_empty()).then_some(LeaseCheckpointRequest { checkpoints })
    }

    /// The persisted part of every lease, ascending by ID.
    pub fn records(&self) -> impl Iterator<Item = LeaseRecord> + '_ {
        self.leases.values().map(|lease| LeaseRecord {
            id: lease.id,
            ttl: lease.ttl,
            remaining_ttl: lease.remaining_ttl,
        })
    }

    /// Rebuilds the leases from persisted records (after a restart or a snapshot install);
    /// attach their keys afterwards from the key space. The member starts as non-primary: a
    /// restarted member only tracks deadlines once it is promoted, so no lease expires early.
    pub fn restore(&mut self, records: impl IntoIterator<Item = LeaseRecord>) {
        self.demote();
        self.leases.clear();
        self.key_owner.clear();
        for record in records {
            self.leases.insert(
                record.id,
                Lease::new(record.id, record.ttl, record.remaining_ttl),
            );
        }
    }

    fn refresh(&mut self, id: i64, extend_ms: u64, now_ms: u64) {
        let Some(lease) = self.leases.get_mut(&id) else {
            return;
        };
        let ttl_ms = u64::try_from(lease.ttl_for_refresh())
            .unwrap_or(0)
            .saturating_mul(1000);
        let expiry = now_ms.saturating_add(extend_ms).saturating_add(ttl_ms);
        lease.expiry_ms = Some(expiry);
        if let Some(old) = lease.next_expiry_check_ms.replace(expiry) {
            self.expiry_queue.remove(&(old, id));
        }
        self.expiry_queue.insert((expiry, id));
    }

    /// Schedules the next checkpoint of a lease on the primary, if it lives longer than the
    /// checkpoint interval (shorter leases expire before a checkpoint would matter).
    fn schedule_checkpoint(&mut self, id: i64, now_ms: u64) {
        if !self.primary
            || !self.config.checkpoints_enabled
            || self.config.checkpoint_interval_ms == 0
        {
            return;
        }
        let Some(lease) = self.leases.get_mut(&id) else {
            return;
        };
        if lease.remaining_ms(now_ms).unwrap_or(0) <= self.config.checkpoint_interval_ms {
            return;
        }
        let at = now_ms.saturating_add(self.config.checkpoint_interval_ms);
        if let Some(old) = lease.next_checkpoint_ms.replace(at) {
            self.checkpoint_queue.remove(&(old, id));
        }
        self.checkpoint_queue.insert((at, id));
    }

    fn unqueue(&mut self, lease: &Lease) {
        if let Some(at) = lease.next_expiry_check_ms {
            self.expiry_queue.remove(&(at, lease.id));
        }
        if let Some(at) = lease.next_checkpoint_ms {
            self.checkpoint_queue.remove(&(at, lease.id));
        }
    }
}
