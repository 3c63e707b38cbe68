//! Client requests only the leader may serve, answered by any member: a follower asks the
//! shell to send them to the leader ([`Output::Forward`]), the shell hands the leader's answer
//! back ([`Server::forward_answered`]), as etcd's followers forward lease renewals and
//! time-to-live queries over the peer port (`/leases`, `/leases/internal`).
//!
//! Only the leader tracks lease deadlines, so `LeaseKeepAlive` and `LeaseTimeToLive` are
//! leader-only; everything else is served on any member (writes are proposed through raft,
//! which carries them to the leader).
//!
//! Within the deadline (etcd's request timeout: 5 s + 2 election timeouts) the follower asks
//! again whenever the leader it asked stops being the leader, answers that it is not, or
//! cannot be reached (no answer within two election timeouts); an attempt is abandoned as soon
//! as this member sees another leader (a killed leader never answers), and a new leader is
//! asked at once — this member itself, when it became the leader. After a failed attempt the
//! next waits for the next tick, so an unreachable leader is not asked in a busy loop. When
//! the deadline passes the answer is what stood in the way: `no leader`, `leader changed` or
//! `request timed out`. Renewals and time-to-live queries are idempotent, so asking twice is
//! harmless. Every attempt has a number: a late answer to an abandoned one is dropped.
//!
//! The leader serves forwarded requests through [`Server::forwarded_request`], which never
//! forwards again: a request that reached a member which lost the leadership comes back
//! "not leader" for the asker to retry.

use std::collections::BTreeMap;

use qraft_proto::qraftpb::client_request::Request as In;
use qraft_proto::qraftpb::client_response::Response as Out;
use qraft_proto::qraftpb::{ClientRequest, ClientResponse};

use crate::backend::Backend;
use crate::error::Error;
use crate::raft::Storage;

use super::output::{Output, RequestId};
use super::state_machine::Server;

/// Whether only the leader can answer `request`.
pub fn is_leader_only(request: &ClientRequest) -> bool {
    matches!(
        request.request,
        Some(In::LeaseKeepAlive(_) | In::LeaseTimeToLive(_))
    )
}

/// Why an attempt did not produce the final answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Miss {
    NoLeader,
    LeaderChanged,
    TimedOut,
}

impl Miss {
    fn error(self) -> Error {
        match self {
            Miss::NoLeader => Error::NoLeader,
            Miss::LeaderChanged => Error::LeaderChanged,
            Miss::TimedOut => Error::Timeout,
        }
    }
}

/// One request on its way to the leader.
#[derive(Debug)]
struct Forwarding {
    request: ClientRequest,
    /// When the client gets the last miss for an answer.
    deadline_ms: u64,
    /// The attempt in flight, if any.
    asked: Option<Attempt>,
    /// Why the last attempt failed.
    miss: Miss,
    /// A failed attempt is followed by the next at the first tick after this.
    retry_at_ms: u64,
}

#[derive(Debug, Clone, Copy)]
struct Attempt {
    number: u64,
    leader: u64,
    /// Given up (as unanswered) at this time.
    until_ms: u64,
}

/// The requests being forwarded, by the shell's request ID (ordered, so outputs are too).
#[derive(Debug, Default)]
pub(crate) struct Forwards {
    pending: BTreeMap<RequestId, Forwarding>,
    next_attempt: u64,
}

/// Pause after a failed attempt (the next one goes out at the first tick after it).
const RETRY_PAUSE_MS: u64 = 50;

impl<S: Storage, B: Backend> Server<S, B> {
    /// How long a follower keeps trying to get a leader-only request answered by the leader
    /// (etcd's request timeout: 5 s + 2 election timeouts).
    fn forward_timeout_ms(&self) -> u64 {
        self.config.request_timeout_ms + 2 * self.config.election_timeout_ms()
    }

    /// A leader-only client request that reached a member which does not lead: it is sent to
    /// the leader, and sent again until the deadline.
    pub(super) fn forward(&mut self, id: RequestId, request: ClientRequest) {
        let forwarding = Forwarding {
            request,
            deadline_ms: self.now_ms + self.forward_timeout_ms(),
            asked: None,
            miss: Miss::NoLeader,
            retry_at_ms: 0,
        };
        self.forwards.pending.insert(id, forwarding);
        self.send_forward(id);
    }

    /// Another member forwarded one of its client's requests (from the shell's peer
    /// listener). Served here as if a client had sent it, but never forwarded again, and
    /// only leader-only requests are accepted.
    pub fn forwarded_request(&mut self, id: RequestId, from: u64, request: ClientRequest) {
        if self.is_reopening() {
            let held = super::reopen::HeldRequest::forwarded(id, from, request);
            return self.hold_request(id, held);
        }
        if !is_leader_only(&request) {
            tracing::warn!(
                from = format_args!("{from:x}"),
                "a member forwarded a request that any member serves"
            );
            return self.respond_error(id, &Error::NotForwardable, 0);
        }
        self.serve_here(id, request);
    }

    /// The shell's outcome of forwarding attempt `attempt` of request `id`: the leader's
    /// answer, or `None` when the leader could not be reached or did not answer in time.
    pub fn forward_answered(
        &mut self,
        id: RequestId,
        attempt: u64,
        answer: Option<ClientResponse>,
    ) {
        let Some(forwarding) = self.forwards.pending.get_mut(&id) else {
            return;
        };
        if forwarding.asked.is_none_or(|a| a.number != attempt) {
            return;
        }
        let outcome = match answer {
            Some(response) => final_answer(response),
            None => Err(Miss::TimedOut),
        };
        match outcome {
            Ok(response) => {
                self.forwards.pending.remove(&id);
                self.outputs.push(Output::Respond { id, response });
            }
            Err(miss) => self.attempt_failed(id, miss),
        }
    }

    /// On every tick: answers the requests past their deadline, gives up attempts that got
    /// no answer in time, and sends the next attempts that are due.
    pub(super) fn forwards_tick(&mut self) {
        let now = self.now_ms;
        let ids: Vec<RequestId> = self.forwards.pending.keys().copied().collect();
        for id in ids {
            let Some(forwarding) = self.forwards.pending.get(&id) else {
                continue;
            };
            if forwarding.asked.is_some_and(|a| now >= a.until_ms) {
                self.attempt_failed(id, Miss::TimedOut);
                continue;
            }
            let Some(forwarding) = self.forwards.pending.get(&id) else {
                continue;
            };
            if forwarding.asked.is_none() && now >= forwarding.retry_at_ms {
                self.send_forward(id);
            }
        }
    }

    /// After a raft cycle: attempts addressed to a member that is no longer the leader are
    /// abandoned and the new leader (perhaps this member) is asked at once.
    pub(super) fn reroute_forwards(&mut self) {
        let leader = self.leadership.leader();
        let stale: Vec<RequestId> = self
            .forwards
            .pending
            .iter()
            .filter(|(_, f)| f.asked.is_some_and(|a| a.leader != leader))
            .map(|(&id, _)| id)
            .collect();
        for id in stale {
            if let Some(forwarding) = self.forwards.pending.get_mut(&id) {
                forwarding.asked = None;
                forwarding.miss = Miss::LeaderChanged;
                self.send_forward(id);
            }
        }
    }

    /// Attempt of `id` failed with `miss`: the client gets it if the deadline has passed,
    /// else the next attempt goes out after the pause.
    fn attempt_failed(&mut self, id: RequestId, miss: Miss) {
        let now = self.now_ms;
        let Some(forwarding) = self.forwards.pending.get_mut(&id) else {
            return;
        };
        forwarding.asked = None;
        forwarding.miss = miss;
        forwarding.retry_at_ms = now + RETRY_PAUSE_MS;
        if now >= forwarding.deadline_ms {
            self.forwards.pending.remove(&id);
            self.respond_error(id, &miss.error(), 0);
        }
    }

    /// Asks the current leader: the shell sends the request, or this member serves it when it
    /// leads now. Without a leader, waits (the miss is `no leader`); past the deadline, the
    /// client gets the last miss.
    fn send_forward(&mut self, id: RequestId) {
        let now = self.now_ms;
        let leader = self.leadership.leader();
        let me = self.config.member_id;
        let attempt_ms = 2 * self.config.election_timeout_ms();
        let Some(forwarding) = self.forwards.pending.get_mut(&id) else {
            return;
        };
        if now >= forwarding.deadline_ms {
            let miss = forwarding.miss;
            self.forwards.pending.remove(&id);
            return self.respond_error(id, &miss.error(), 0);
        }
        if leader == 0 {
            forwarding.miss = Miss::NoLeader;
            return;
        }
        if leader == me {
            if let Some(forwarding) = self.forwards.pending.remove(&id) {
                self.serve_here(id, forwarding.request);
            }
            return;
        }
        self.forwards.next_attempt += 1;
        let number = self.forwards.next_attempt;
        let timeout_ms = (forwarding.deadline_ms - now).min(attempt_ms);
        forwarding.asked = Some(Attempt {
            number,
            leader,
            until_ms: now + timeout_ms,
        });
        let request = forwarding.request.clone();
        self.outputs.push(Output::Forward {
            id,
            attempt: number,
            to: leader,
            request,
            timeout_ms,
        });
    }
}

/// The answer, unless it says that the asked member could not act as the leader: then the
/// request is tried again (the leader may have changed, or be on its way out).
fn final_answer(response: ClientResponse) -> Result<ClientResponse, Miss> {
    let Some(Out::Error(error)) = &response.response else {
        return Ok(response);
    };
    let message = error.message.as_str();
    if message == Error::NoLeader.to_string() {
        Err(Miss::NoLeader)
    } else if message == Error::NotLeader.to_string()
        || message == Error::LeaderChanged.to_string()
        || message == Error::Stopped.to_string()
    {
        Err(Miss::LeaderChanged)
    } else if message == Error::Timeout.to_string() {
        Err(Miss::TimedOut)
    } else {
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use qraft_proto::etcdserverpb::LeaseKeepAliveResponse;

    use super::*;
    use crate::error::Code;
    use crate::server::error_response;

    fn error(err: &Error) -> ClientResponse {
        error_response(err, 0)
    }

    #[test]
    fn refusals_to_act_as_leader_are_retried_and_everything_else_is_final() {
        let renewed = ClientResponse {
            response: Some(Out::LeaseKeepAlive(LeaseKeepAliveResponse {
                id: 7,
                ttl: 10,
                ..Default::default()
            })),
        };
        assert_eq!(final_answer(renewed.clone()), Ok(renewed));
        let not_found = error(&Error::LeaseNotFound);
        assert_eq!(final_answer(not_found.clone()), Ok(not_found));
        assert_eq!(final_answer(error(&Error::NoLeader)), Err(Miss::NoLeader));
        for changed in [Error::NotLeader, Error::LeaderChanged, Error::Stopped] {
            assert_eq!(final_answer(error(&changed)), Err(Miss::LeaderChanged));
        }
        assert_eq!(final_answer(error(&Error::Timeout)), Err(Miss::TimedOut));
    }

    #[test]
    fn misses_end_in_etcds_errors_with_unavailable() {
        for (miss, message) in [
            (Miss::NoLeader, "etcdserver: no leader"),
            (Miss::LeaderChanged, "etcdserver: leader changed"),
            (Miss::TimedOut, "etcdserver: request timed out"),
        ] {
            let err = miss.error();
            assert_eq!(
                (err.code(), err.to_string().as_str()),
                (Code::Unavailable, message)
            );
        }
    }

    #[test]
    fn only_lease_renewals_and_time_to_live_are_leader_only() {
        let with = |request| ClientRequest {
            request: Some(request),
            ..Default::default()
        };
        assert!(is_leader_only(&with(
            In::LeaseKeepAlive(Default::default())
        )));
        assert!(is_leader_only(&with(In::LeaseTimeToLive(
            Default::default()
        ))));
        assert!(!is_leader_only(&with(In::LeaseLeases(Default::default()))));
        assert!(!is_leader_only(&with(In::Range(Default::default()))));
        assert!(!is_leader_only(&ClientRequest::default()));
    }
}
