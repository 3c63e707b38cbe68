//! Client traffic: requests by type and bytes on the wire, recorded by both client listeners
//! (QUIC and the etcd gRPC one) for every request message they receive.

use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use qraft_proto::qraftpb::client_request::Request;

/// Label of `qraft_server_client_requests_total`: the request's kind, named as the field of
/// `qraftpb.ClientRequest` that carries it (`range`, `put`, `txn`, `lease_keep_alive`, ...).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestTypeLabel {
    pub r#type: &'static str,
}

macro_rules! request_types {
    ($($index:literal $variant:ident $name:literal,)*) => {
        /// Every value of the `type` label; the last one is for a request without a body.
        pub const REQUEST_TYPES: [&str; TYPE_COUNT] = [$($name,)* "unknown"];

        fn type_index(request: Option<&Request>) -> usize {
            match request {
                $(Some(Request::$variant(_)) => $index,)*
                None => TYPE_COUNT - 1,
            }
        }
    };
}

const TYPE_COUNT: usize = 42;

request_types! {
    0 Range "range",
    1 Put "put",
    2 DeleteRange "delete_range",
    3 Txn "txn",
    4 Compaction "compaction",
    5 Watch "watch",
    6 LeaseGrant "lease_grant",
    7 LeaseRevoke "lease_revoke",
    8 LeaseKeepAlive "lease_keep_alive",
    9 LeaseTimeToLive "lease_time_to_live",
    10 LeaseLeases "lease_leases",
    11 MemberAdd "member_add",
    12 MemberRemove "member_remove",
    13 MemberUpdate "member_update",
    14 MemberList "member_list",
    15 MemberPromote "member_promote",
    16 Alarm "alarm",
    17 Status "status",
    18 Defragment "defragment",
    19 Hash "hash",
    20 HashKv "hash_kv",
    21 Snapshot "snapshot",
    22 MoveLeader "move_leader",
    23 Downgrade "downgrade",
    24 AuthEnable "auth_enable",
    25 AuthDisable "auth_disable",
    26 AuthStatus "auth_status",
    27 Authenticate "authenticate",
    28 UserAdd "user_add",
    29 UserGet "user_get",
    30 UserList "user_list",
    31 UserDelete "user_delete",
    32 UserChangePassword "user_change_password",
    33 UserGrantRole "user_grant_role",
    34 UserRevokeRole "user_revoke_role",
    35 RoleAdd "role_add",
    36 RoleGet "role_get",
    37 RoleList "role_list",
    38 RoleDelete "role_delete",
    39 RoleGrantPermission "role_grant_permission",
    40 RoleRevokePermission "role_revoke_permission",
}

/// The `type` label value of `request`.
pub fn request_type(request: Option<&Request>) -> &'static str {
    REQUEST_TYPES[type_index(request)]
}

/// Client requests and bytes. Recording a request is an array index and an atomic add: each
/// type's counter is looked up in the family (a lock) only the first time that type is seen,
/// so only the types a member served show up in `/metrics`, as Prometheus clients do.
#[derive(Debug)]
pub struct ClientMetrics {
    pub(super) requests: Family<RequestTypeLabel, Counter>,
    by_type: [OnceLock<Counter>; TYPE_COUNT],
    pub(super) received_bytes: Counter,
    pub(super) sent_bytes: Counter,
}

impl Default for ClientMetrics {
    fn default() -> Self {
        ClientMetrics {
            requests: Family::default(),
            by_type: std::array::from_fn(|_| OnceLock::new()),
            received_bytes: Counter::default(),
            sent_bytes: Counter::default(),
        }
    }
}

impl ClientMetrics {
    /// One request message arrived (a unary call, or one message of a stream), `wire_bytes`
    /// long on the wire.
    pub fn received(&self, request: Option<&Request>, wire_bytes: usize) {
        let index = type_index(request);
        self.by_type[index]
            .get_or_init(|| {
                self.requests.get_or_create_owned(&RequestTypeLabel {
                    r#type: REQUEST_TYPES[index],
                })
            })
            .inc();
        self.received_bytes.inc_by(wire_bytes as u64);
    }

    /// Response bytes written to a client.
    pub fn sent(&self, wire_bytes: usize) {
        self.sent_bytes.inc_by(wire_bytes as u64);
    }

    /// Requests of `type` received so far (for tests and diagnostics).
    pub fn requests_of_type(&self, r#type: &'static str) -> u64 {
        self.requests
            .get(&RequestTypeLabel { r#type })
            .map_or(0, |c| c.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qraft_proto::etcdserverpb::{
        AuthRoleRevokePermissionRequest, LeaseKeepAliveRequest, PutRequest,
    };

    #[test]
    fn every_request_kind_has_its_own_type() {
        let put = Request::Put(PutRequest::default());
        let keep_alive = Request::LeaseKeepAlive(LeaseKeepAliveRequest::default());
        let last = Request::RoleRevokePermission(AuthRoleRevokePermissionRequest::default());
        assert_eq!(request_type(Some(&put)), "put");
        assert_eq!(request_type(Some(&keep_alive)), "lease_keep_alive");
        assert_eq!(request_type(Some(&last)), "role_revoke_permission");
        assert_eq!(request_type(None), "unknown");
        let mut names = REQUEST_TYPES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TYPE_COUNT, "duplicate type names");
    }

    #[test]
    fn counts_requests_per_type_and_bytes() {
        let client = ClientMetrics::default();
        let put = Request::Put(PutRequest::default());
        client.received(Some(&put), 10);
        client.received(Some(&put), 15);
        client.received(None, 1);
        client.sent(7);
        assert_eq!(client.requests_of_type("put"), 2);
        assert_eq!(client.requests_of_type("unknown"), 1);
        assert_eq!(client.requests_of_type("range"), 0);
        assert_eq!(client.received_bytes.get(), 26);
        assert_eq!(client.sent_bytes.get(), 7);
    }
}
