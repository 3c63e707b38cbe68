//! Random sequences of restarts (as 0.1 or 0.2), publishes, leader checks, downgrade enables
//! and cancels on a three-member cluster. After every step: all running members hold the same
//! replicated state, every running member is inside its version window, an enabled downgrade
//! means cluster version == target, and the cluster version only drops through an enable.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

use proptest::prelude::*;
use qraft_core::version::{
    BINARY_VERSION, ClusterVersions, DowngradeStep, LocalVersion, V0_1, VersionEvent,
    VersionNegotiator,
};
use qraft_proto::etcdserverpb::DowngradeRequest;
use qraft_proto::etcdserverpb::downgrade_request::DowngradeAction;
use qraft_proto::qraftpb::internal_request::Request;

#[derive(Clone, Debug)]
enum Op {
    Restart { member: usize, as_old: bool },
    Publish,
    Tick { leader: usize },
    Enable { leader: usize },
    Cancel { leader: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3usize, any::<bool>()).prop_map(|(member, as_old)| Op::Restart { member, as_old }),
        Just(Op::Publish),
        (0..3usize).prop_map(|leader| Op::Tick { leader }),
        (0..3usize).prop_map(|leader| Op::Enable { leader }),
        (0..3usize).prop_map(|leader| Op::Cancel { leader }),
    ]
}

struct Cluster {
    log: Vec<Request>,
    /// Per member: the applied state it persisted and how far it applied.
    persisted: Vec<(ClusterVersions, usize)>,
    running: Vec<Option<VersionNegotiator>>,
}

const IDS: [u64; 3] = [1, 2, 3];

impl Cluster {
    fn new() -> Self {
        Cluster {
            log: Vec::new(),
            persisted: vec![(ClusterVersions::default(), 0); 3],
            running: IDS
                .iter()
                .map(|id| Some(start(*id, false, ClusterVersions::default()).unwrap()))
                .collect(),
        }
    }

    fn apply_all(&mut self, member: usize) {
        while let Some(n) = self.running[member].as_mut() {
            let applied = self.persisted[member].1;
            let Some(request) = self.log.get(applied) else {
                break;
            };
            let events = n.apply(request);
            self.persisted[member] = (n.state().clone(), applied + 1);
            if events
                .iter()
                .any(|e| matches!(e, VersionEvent::MemberMustStop(_)))
            {
                self.running[member] = None;
            }
        }
    }

    fn commit(&mut self, request: Request) {
        self.log.push(request);
        for member in 0..3 {
            self.apply_all(member);
        }
    }

    fn step(&mut self, op: &Op) {
        match *op {
            Op::Restart { member, as_old } => {
                let state = self.persisted[member].0.clone();
                self.running[member] = start(IDS[member], as_old, state);
                self.apply_all(member);
            }
            Op::Publish => {
                for member in 0..3 {
                    let request = self.running[member]
                        .as_ref()
                        .and_then(|n| n.publish_request());
                    if let Some(request) = request {
                        self.commit(request);
                    }
                }
            }
            Op::Tick { leader } => {
                let proposals = self.running[leader]
                    .as_ref()
                    .map(|n| n.leader_proposals())
                    .unwrap_or_default();
                for request in proposals {
                    self.commit(request);
                }
            }
            Op::Enable { leader } | Op::Cancel { leader } => {
                let action = match op {
                    Op::Enable { .. } => DowngradeAction::Enable,
                    _ => DowngradeAction::Cancel,
                };
                let request = DowngradeRequest {
                    action: action as i32,
                    version: V0_1.to_string(),
                };
                let step = self.running[leader]
                    .as_ref()
                    .map(|n| n.handle_downgrade(&request));
                if let Some(Ok(DowngradeStep::Propose { request, .. })) = step {
                    self.commit(request);
                }
            }
        }
    }

    fn check(&self, cluster_before: Option<qraft_core::version::Version>, op: &Op) {
        let states: Vec<&ClusterVersions> =
            self.running.iter().flatten().map(|n| n.state()).collect();
        for pair in states.windows(2) {
            assert_eq!(pair[0], pair[1], "running members disagree");
        }
        for n in self.running.iter().flatten() {
            if let Some(cluster) = n.state().cluster_version() {
                assert!(
                    n.local().check_cluster(cluster).is_ok(),
                    "member outside its window"
                );
            }
            let downgrade = n.state().downgrade();
            if let Some(target) = downgrade.active_target() {
                assert_eq!(n.state().cluster_version(), Some(target));
            }
        }
        // The latest state any member persisted is the cluster's state.
        let latest = self
            .persisted
            .iter()
            .max_by_key(|(_, applied)| *applied)
            .unwrap();
        let after = latest.0.cluster_version();
        if let (Some(before), Some(after)) = (cluster_before, after)
            && after < before
        {
            assert!(
                matches!(op, Op::Enable { .. }),
                "cluster version dropped on {op:?}"
            );
        }
    }

    fn cluster_version(&self) -> Option<qraft_core::version::Version> {
        let latest = self
            .persisted
            .iter()
            .max_by_key(|(_, applied)| *applied)
            .unwrap();
        latest.0.cluster_version()
    }
}

fn start(id: u64, as_old: bool, state: ClusterVersions) -> Option<VersionNegotiator> {
    let local = LocalVersion::new(BINARY_VERSION, as_old.then_some(V0_1)).unwrap();
    let mut n = VersionNegotiator::start(id, local, None, state).ok()?;
    n.set_members(IDS);
    Some(n)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn negotiation_invariants(ops in proptest::collection::vec(op(), 1..60)) {
        let mut cluster = Cluster::new();
        for op in &ops {
            let before = cluster.cluster_version();
            cluster.step(op);
            cluster.check(before, op);
        }
    }
}
