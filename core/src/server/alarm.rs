//! Alarms, as etcd's `Maintenance.Alarm`: replicated through raft, stored in [`Table::Alarm`]
//! and checked at apply.
//!
//! * Every alarm request (GET included) is a raft entry, so every member answers from the same
//!   applied state, and an alarm raised by one member binds all of them.
//! * While a NOSPACE alarm is active (for any member), requests that can grow the database —
//!   Put, a Txn holding a put, LeaseGrant — are refused at apply with
//!   `etcdserver: mvcc: database space exceeded`; reads, deletes, compaction, lease revokes
//!   and alarm requests still work, so an operator can free space and disarm.
//! * While a CORRUPT alarm is active, every key-space and lease request that goes through raft
//!   (Range, Put, DeleteRange, Txn, Compaction, LeaseGrant, LeaseRevoke) is refused with
//!   `etcdserver: corrupt cluster`. Reads served by the state machine directly (serializable
//!   and ReadIndex reads) still answer, as etcd's do.
//! * The alarm set lives in the backend, written in the apply transaction of the entry that
//!   changed it, so it survives restarts and travels in snapshots.
//!
//! A member raises its own alarms with [`Server::raise_alarm`] (the shell calls it when its
//! backend passes the quota, or when its data disagrees with its peers'); the proposal is
//! made once and again only after the request timeout if it did not apply.

use std::collections::{BTreeMap, BTreeSet};

use qraft_proto::etcdserverpb::alarm_request::AlarmAction;
use qraft_proto::etcdserverpb::request_op::Request as Op;
use qraft_proto::etcdserverpb::{AlarmMember, AlarmRequest, AlarmResponse, AlarmType, TxnRequest};
use qraft_proto::qraftpb::internal_request::Request;

use crate::backend::{Backend, BackendError, ReadTxn, Table, Visit, WriteTxn};
use crate::error::{Error, Result};
use crate::raft::Storage;

use super::state_machine::Server;

/// The active alarms: (member, alarm type) pairs. A member may hold several alarm types and
/// an alarm type may be raised by several members.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlarmStore {
    active: BTreeSet<(u64, AlarmType)>,
}

/// Table key: member id (u64 big-endian) then the alarm type (i32 big-endian).
fn key(member: u64, alarm: AlarmType) -> [u8; 12] {
    let mut key = [0; 12];
    key[..8].copy_from_slice(&member.to_be_bytes());
    key[8..].copy_from_slice(&(alarm as i32).to_be_bytes());
    key
}

fn decode_key(key: &[u8]) -> Option<(u64, AlarmType)> {
    let member = u64::from_be_bytes(key.get(..8)?.try_into().ok()?);
    let raw = i32::from_be_bytes(key.get(8..12)?.try_into().ok()?);
    let alarm = AlarmType::try_from(raw).ok()?;
    (key.len() == 12 && alarm != AlarmType::None).then_some((member, alarm))
}

impl AlarmStore {
    /// The alarms stored in `txn`'s backend.
    pub fn load<T: ReadTxn + ?Sized>(txn: &T) -> std::result::Result<Self, BackendError> {
        let mut store = AlarmStore::default();
        let mut bad = None;
        txn.scan(Table::Alarm, &[], None, &mut |k, _| match decode_key(k) {
            Some(entry) => {
                store.active.insert(entry);
                Visit::Continue(())
            }
            None => {
                bad = Some(BackendError::Corrupt {
                    table: Table::Alarm,
                    reason: format!("undecodable alarm key {k:02x?}"),
                });
                Visit::Break(())
            }
        })?;
        match bad {
            Some(err) => Err(err),
            None => Ok(store),
        }
    }

    /// The active alarms of type `filter` (every type for `AlarmType::None`), ordered by
    /// member then type.
    pub fn list(&self, filter: AlarmType) -> Vec<AlarmMember> {
        self.active
            .iter()
            .filter(|(_, alarm)| filter == AlarmType::None || *alarm == filter)
            .map(|&(member_id, alarm)| AlarmMember {
                member_id,
                alarm: alarm as i32,
            })
            .collect()
    }

    /// Whether any member has raised `alarm`.
    pub fn is_active(&self, alarm: AlarmType) -> bool {
        self.active.iter().any(|(_, a)| *a == alarm)
    }

    /// Whether `member` has raised `alarm`.
    pub fn has(&self, member: u64, alarm: AlarmType) -> bool {
        self.active.contains(&(member, alarm))
    }

    /// Applies a committed alarm request: GET lists, ACTIVATE records (and answers the alarm,
    /// also when it was already active), DEACTIVATE removes (and answers the alarm it removed,
    /// nothing if it was not active). Activating the type NONE does nothing, as in etcd.
    pub fn apply<T: WriteTxn + ?Sized>(
        &mut self,
        txn: &mut T,
        request: &AlarmRequest,
    ) -> Result<AlarmResponse> {
        let alarm = AlarmType::try_from(request.alarm).unwrap_or(AlarmType::None);
        let member = request.member_id;
        let mut response = AlarmResponse::default();
        let one = |alarm: AlarmType| AlarmMember {
            member_id: member,
            alarm: alarm as i32,
        };
        match AlarmAction::try_from(request.action).unwrap_or(AlarmAction::Get) {
            AlarmAction::Get => response.alarms = self.list(alarm),
            AlarmAction::Activate => {
                if alarm != AlarmType::None {
                    txn.put(Table::Alarm, &key(member, alarm), &[])?;
                    self.active.insert((member, alarm));
                    response.alarms.push(one(alarm));
                }
            }
            AlarmAction::Deactivate => {
                if self.active.remove(&(member, alarm)) {
                    txn.delete(Table::Alarm, &key(member, alarm))?;
                    response.alarms.push(one(alarm));
                }
            }
        }
        Ok(response)
    }

    /// Why `request` must be refused at apply under the active alarms, if it must.
    pub fn refusal(&self, request: &Request) -> Option<Error> {
        if self.is_active(AlarmType::Corrupt)
            && matches!(
                request,
                Request::Range(_)
                    | Request::Put(_)
                    | Request::DeleteRange(_)
                    | Request::Txn(_)
                    | Request::Compaction(_)
                    | Request::LeaseGrant(_)
                    | Request::LeaseRevoke(_)
            )
        {
            return Some(Error::Corrupt);
        }
        let grows = match request {
            Request::Put(_) | Request::LeaseGrant(_) => true,
            Request::Txn(txn) => txn_has_put(txn),
            _ => false,
        };
        (grows && self.is_active(AlarmType::Nospace)).then_some(Error::NoSpace)
    }
}

/// Whether either branch of `txn` (nested txns included) writes a key. etcd counts only the
/// top-level puts; a nested put grows the database just the same.
fn txn_has_put(txn: &TxnRequest) -> bool {
    txn.success
        .iter()
        .chain(&txn.failure)
        .any(|op| match &op.request {
            Some(Op::RequestPut(_)) => true,
            Some(Op::RequestTxn(nested)) => txn_has_put(nested),
            _ => false,
        })
}

/// Proposals of this member's own alarms still waiting to apply: alarm type → the time after
/// which the member may propose it again.
pub(crate) type RaisesInFlight = BTreeMap<i32, u64>;

impl<S: Storage, B: Backend> Server<S, B> {
    /// The shell found a condition that needs `alarm` raised for this member (its backend
    /// passed the quota: NOSPACE; its data disagree with its peers': CORRUPT). Proposes the
    /// activation unless the alarm is already active for this member or a proposal of it is
    /// still in flight; cheap to call on every check.
    pub fn raise_alarm(&mut self, alarm: AlarmType) {
        self.raise_alarm_for(self.config.member_id, alarm);
    }

    /// As [`Server::raise_alarm`], naming `member` (0 for the cluster as a whole).
    pub(crate) fn raise_alarm_for(&mut self, member: u64, alarm: AlarmType) {
        if alarm == AlarmType::None || self.state.alarms.has(member, alarm) {
            self.alarm_raises.remove(&(alarm as i32));
            return;
        }
        if self
            .alarm_raises
            .get(&(alarm as i32))
            .is_some_and(|&until| self.now_ms < until)
        {
            return;
        }
        let request = Request::Alarm(AlarmRequest {
            action: AlarmAction::Activate as i32,
            member_id: member,
            alarm: alarm as i32,
        });
        let proposed = self.propose(None, request, crate::auth::ROOT.to_string());
        if proposed.is_ok() {
            tracing::warn!(alarm = alarm.as_str_name(), "raising an alarm");
            let until = self.now_ms + self.config.request_timeout_ms;
            self.alarm_raises.insert(alarm as i32, until);
        }
    }

    /// The alarms active in the cluster, as this member has applied them.
    pub fn alarms(&self) -> Vec<AlarmMember> {
        self.state.alarms.list(AlarmType::None)
    }
}

/// etcd's text form of an alarm (`memberID:… alarm:NOSPACE`), used by `alarm list` and the
/// `errors` of `endpoint status`.
pub fn describe_alarm(alarm: &AlarmMember) -> String {
    let name = AlarmType::try_from(alarm.alarm)
        .unwrap_or(AlarmType::None)
        .as_str_name();
    format!("memberID:{} alarm:{name}", alarm.member_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MemBackend;
    use qraft_proto::etcdserverpb::{PutRequest, RequestOp};

    fn request(action: AlarmAction, member_id: u64, alarm: AlarmType) -> AlarmRequest {
        AlarmRequest {
            action: action as i32,
            member_id,
            alarm: alarm as i32,
        }
    }

    #[test]
    fn alarms_persist_and_reload() {
        let backend = MemBackend::default();
        let mut store = AlarmStore::default();
        let mut txn = backend.write_txn().unwrap();
        store
            .apply(
                &mut txn,
                &request(AlarmAction::Activate, 7, AlarmType::Nospace),
            )
            .unwrap();
        store
            .apply(
                &mut txn,
                &request(AlarmAction::Activate, 3, AlarmType::Corrupt),
            )
            .unwrap();
        txn.commit().unwrap();
        let reloaded = AlarmStore::load(&backend.read_txn().unwrap()).unwrap();
        assert_eq!(reloaded, store);
        assert_eq!(reloaded.list(AlarmType::Corrupt).len(), 1);
        assert_eq!(reloaded.list(AlarmType::None).len(), 2);

        let mut txn = backend.write_txn().unwrap();
        let gone = store
            .apply(
                &mut txn,
                &request(AlarmAction::Deactivate, 7, AlarmType::Nospace),
            )
            .unwrap();
        assert_eq!(gone.alarms.len(), 1);
        let again = store
            .apply(
                &mut txn,
                &request(AlarmAction::Deactivate, 7, AlarmType::Nospace),
            )
            .unwrap();
        assert!(again.alarms.is_empty());
        txn.commit().unwrap();
        let reloaded = AlarmStore::load(&backend.read_txn().unwrap()).unwrap();
        assert!(!reloaded.is_active(AlarmType::Nospace));
        assert!(reloaded.is_active(AlarmType::Corrupt));
    }

    #[test]
    fn nospace_refuses_only_growing_requests() {
        let mut store = AlarmStore::default();
        store.active.insert((1, AlarmType::Nospace));
        let put = RequestOp {
            request: Some(Op::RequestPut(PutRequest::default())),
        };
        let nested = TxnRequest {
            failure: vec![RequestOp {
                request: Some(Op::RequestTxn(TxnRequest {
                    success: vec![put.clone()],
                    ..Default::default()
                })),
            }],
            ..Default::default()
        };
        assert_eq!(
            store.refusal(&Request::Put(PutRequest::default())),
            Some(Error::NoSpace)
        );
        assert_eq!(store.refusal(&Request::Txn(nested)), Some(Error::NoSpace));
        assert_eq!(store.refusal(&Request::Txn(TxnRequest::default())), None);
        assert_eq!(
            store.refusal(&Request::DeleteRange(Default::default())),
            None
        );
        assert_eq!(
            store.refusal(&Request::Compaction(Default::default())),
            None
        );
    }
}
