//! etcd's learner rule, applied where client calls enter the member: a learner (a non-voting
//! member that is still catching up) serves only its own `Status`, serializable `Range`s and
//! `Snapshot` streams. Every other client call — writes, linearizable reads, lease calls
//! (keep-alive and time-to-live included: they are refused, not forwarded to the leader),
//! watches, membership, auth and maintenance calls — is answered with `etcdserver: rpc not
//! supported for learner` (FailedPrecondition), as etcd's gRPC interceptors answer them.
//!
//! The refusal comes before anything else looks at the request ([`Server::request`],
//! [`Server::admit`]). Only client calls pass this door: the member's own health checks
//! ([`Server::health_read`]) and requests other members forward ([`Server::forwarded_request`])
//! do not, so a learner's readiness reports `non_learner`, not a failed read.
//!
//! Whether this member is a learner comes from its applied membership (as etcd asks its
//! applied membership); a member that does not know itself yet is served.

use qraft_proto::qraftpb::ClientRequest;
use qraft_proto::qraftpb::client_request::Request as In;

use crate::backend::Backend;
use crate::error::Error;
use crate::raft::Storage;

use super::state_machine::Server;

/// Whether a learner serves `request` (etcd: `Status`, serializable `Range`, and the
/// `Snapshot` stream).
pub fn served_by_learner(request: &ClientRequest) -> bool {
    match &request.request {
        Some(In::Status(_) | In::Snapshot(_)) => true,
        Some(In::Range(r)) => r.serializable,
        _ => false,
    }
}

impl<S: Storage, B: Backend> Server<S, B> {
    /// Whether this member is a learner in its applied membership.
    pub fn is_learner(&self) -> bool {
        self.state
            .members
            .get(&self.config.member_id)
            .and_then(|m| m.raft_attrs.as_ref())
            .is_some_and(|a| a.is_learner)
    }

    /// etcd's refusal when this member is a learner and `request` is not one it serves.
    pub(super) fn learner_refusal(&self, request: &ClientRequest) -> Option<Error> {
        (self.is_learner() && !served_by_learner(request)).then_some(Error::NotSupportedForLearner)
    }
}

#[cfg(test)]
mod tests {
    use qraft_proto::etcdserverpb::{LeaseKeepAliveRequest, RangeRequest};

    use super::*;
    use crate::error::Code;

    fn with(request: In) -> ClientRequest {
        ClientRequest {
            request: Some(request),
            ..Default::default()
        }
    }

    #[test]
    fn learners_serve_status_serializable_ranges_and_snapshots_only() {
        let serializable = RangeRequest {
            serializable: true,
            ..Default::default()
        };
        for served in [
            In::Status(Default::default()),
            In::Snapshot(Default::default()),
            In::Range(serializable),
        ] {
            assert!(served_by_learner(&with(served)));
        }
        for refused in [
            In::Range(Default::default()),
            In::Put(Default::default()),
            In::Txn(Default::default()),
            In::LeaseGrant(Default::default()),
            In::LeaseKeepAlive(LeaseKeepAliveRequest { id: 7 }),
            In::LeaseTimeToLive(Default::default()),
            In::LeaseLeases(Default::default()),
            In::Watch(Default::default()),
            In::MemberList(Default::default()),
            In::Alarm(Default::default()),
            In::Defragment(Default::default()),
            In::MoveLeader(Default::default()),
            In::AuthStatus(Default::default()),
        ] {
            assert!(!served_by_learner(&with(refused)));
        }
        assert!(!served_by_learner(&ClientRequest::default()));
    }

    #[test]
    fn the_refusal_is_etcds() {
        let err = Error::NotSupportedForLearner;
        assert_eq!(
            (err.code(), err.to_string().as_str()),
            (
                Code::FailedPrecondition,
                "etcdserver: rpc not supported for learner"
            )
        );
    }
}
