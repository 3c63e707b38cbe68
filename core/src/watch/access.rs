//! Who may watch what. With auth enabled, etcd checks a watch create like a range read of the
//! watched key or range: no token is refused with "user name is empty", a token the store does
//! not know with "invalid auth token", a user without read permission on the whole range with
//! "permission denied" — as a `created` and `canceled` response carrying the reason. A watcher
//! whose user lost the permission (role revoked, user deleted, auth enabled over an anonymous
//! watcher) is cancelled with the reason when the auth store next changes, before any further
//! event reaches it.
//!
//! The reason is written as etcd writes it, the text of its gRPC status error
//! (`rpc error: code = PermissionDenied desc = etcdserver: permission denied`): etcd's clients
//! print it as it comes (etcdctl: `watch was canceled (<reason>)`).

use qraft_proto::etcdserverpb::watch_request::RequestUnion;
use qraft_proto::etcdserverpb::{WatchRequest, WatchResponse};

use super::hub::{StreamId, WatchHub, header};
use crate::auth::{AuthInfo, AuthStore};
use crate::error::{Code, Error};
use crate::mvcc::MvccStore;

impl WatchHub {
    /// Handles one request of the stream on behalf of `who`: the stream's token as the auth
    /// store resolved it (`Ok(None)` without a token or with auth disabled). A create the
    /// user may not make is answered `created`, `canceled` with the reason; cancels and
    /// progress requests need no permission (they only touch the stream's own watchers).
    pub fn request_as(
        &mut self,
        stream: StreamId,
        request: WatchRequest,
        store: &MvccStore,
        auth: &AuthStore,
        who: Result<Option<AuthInfo>, Error>,
    ) {
        let user = match &request.request_union {
            Some(RequestUnion::CreateRequest(create)) => {
                let allowed = who.and_then(|info| {
                    auth.check_read(info.as_ref(), &create.key, &create.range_end)
                        .map(|()| info)
                });
                match allowed {
                    Ok(info) => info.map(|info| info.username),
                    Err(err) => {
                        if self.streams.contains_key(&stream) {
                            self.refuse(stream, store, &cancel_reason(&err));
                        }
                        return;
                    }
                }
            }
            _ => None,
        };
        self.request_by(stream, request, store, user);
    }

    /// Cancels every watcher whose user may no longer read what it watches. Does nothing
    /// unless the auth store changed (enabled flag or revision) since the last call, so the
    /// shell calls it after every batch of applied entries, before delivering their events.
    pub fn recheck_permissions(&mut self, store: &MvccStore, auth: &AuthStore) {
        let now = (auth.is_enabled(), auth.revision());
        if self.auth_checked == Some(now) {
            return;
        }
        self.auth_checked = Some(now);
        if !auth.is_enabled() {
            return;
        }
        let lost: Vec<((StreamId, i64), Error)> = self
            .watchers
            .iter()
            .filter_map(|(id, watcher)| {
                let info = watcher.user.as_ref().map(|user| AuthInfo {
                    username: user.clone(),
                    revision: auth.revision(),
                });
                let (key, range_end) = watcher.requested_range();
                let verdict = auth.check_read(info.as_ref(), key, range_end);
                verdict.err().map(|err| (*id, err))
            })
            .collect();
        for ((stream, id), err) in lost {
            self.remove_watcher((stream, id));
            let response = WatchResponse {
                header: header(store.current_revision()),
                watch_id: id,
                canceled: true,
                cancel_reason: cancel_reason(&err),
                ..WatchResponse::default()
            };
            self.push(stream, response, false);
        }
    }
}

/// etcd's cancel reason for a refused watch: its gRPC status error as text.
fn cancel_reason(err: &Error) -> String {
    format!(
        "rpc error: code = {} desc = {err}",
        go_code_name(err.code())
    )
}

/// The names grpc-go gives the status codes (in that text).
fn go_code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}
