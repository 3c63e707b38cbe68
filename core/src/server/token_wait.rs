//! Requests whose token this member cannot resolve yet: a simple token is registered on every
//! member when its sign-in entry is applied (`crate::auth`), so a client that signed in on one
//! member and calls another may arrive before that member applied the entry. As etcd's
//! `isValidSimpleToken` does, the request waits until the token's index (its suffix) is
//! applied here, then is served as if it had just arrived; past the request timeout it is
//! refused "invalid auth token". At most [`MAX_TOKEN_WAITS`] wait at once, so forged tokens
//! naming far indexes cannot hold memory: beyond it they are refused at once.

use qraft_proto::qraftpb::ClientRequest;

use crate::backend::Backend;
use crate::error::Error;
use crate::raft::Storage;

use super::output::RequestId;
use super::state_machine::Server;

/// How many requests may wait for their token's index at once.
pub(super) const MAX_TOKEN_WAITS: usize = 1024;

/// A request waiting for the sign-in entry at `index` to be applied.
#[derive(Debug)]
pub(super) struct TokenWait {
    index: u64,
    deadline_ms: u64,
    id: RequestId,
    request: ClientRequest,
}

impl<S: Storage, B: Backend> Server<S, B> {
    /// Parks `request` until the sign-in behind its token is applied here, when the token
    /// names an index not applied yet and there is room; returns whether it waits (if not,
    /// the caller refuses it at once).
    pub(super) fn wait_for_token(&mut self, id: RequestId, request: ClientRequest) -> bool {
        let Some(index) = self
            .state
            .auth
            .token_issued_after(&request.token, self.state.applied_index)
        else {
            return false;
        };
        if self.pending.token_waits.len() >= MAX_TOKEN_WAITS {
            return false;
        }
        self.pending.token_waits.push(TokenWait {
            index,
            deadline_ms: self.now_ms + self.config.request_timeout_ms,
            id,
            request,
        });
        true
    }

    /// Serves, in arrival order, the waiting requests whose token's index is now applied.
    pub(super) fn serve_token_waits(&mut self) {
        if self.pending.token_waits.is_empty() {
            return;
        }
        let applied = self.state.applied_index;
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending.token_waits)
            .into_iter()
            .partition(|wait| wait.index <= applied);
        self.pending.token_waits = waiting;
        for wait in ready {
            self.serve_here(wait.id, wait.request);
        }
    }

    /// Refuses the waiting requests whose deadline passed, as etcd does when its wait ends.
    pub(super) fn expire_token_waits(&mut self) {
        let now_ms = self.now_ms;
        let (expired, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending.token_waits)
            .into_iter()
            .partition(|wait| wait.deadline_ms <= now_ms);
        self.pending.token_waits = waiting;
        for wait in expired {
            self.respond_error(wait.id, &Error::InvalidAuthToken, 0);
        }
    }
}
