//! `Election.Observe`: streams the election's leader, as etcd's server does with clientv3's
//! `Election.Observe` — the current leader's key-value (or, with no candidate, the first one
//! put), then each new value of that key, and when the key is deleted the next leader.
//!
//! As in etcd, a failing inner request or watch ends the stream with OK (clientv3 closes the
//! observe channel, and the server returns without error). Dropping the stream cancels its
//! watch; at most one watch answer's events are queued, so nothing grows while observing.

use std::collections::VecDeque;

use futures::StreamExt;
use futures::stream::{self, BoxStream};
use prost::Message;
use prost::bytes::Bytes;
use qraft_proto::etcdserverpb::{ResponseHeader, range_request};
use qraft_proto::mvccpb::{KeyValue, event::EventType};
use qraft_proto::v3electionpb::{LeaderRequest, LeaderResponse};

use super::inner_client::{
    InnerClient, WatchResponses, by_create_revision, prefix_end, recipe_prefix,
};
use super::lock_service::decode;
use super::recipes::Caller;
use super::status::Status;

pub fn observe(
    client: InnerClient,
    message: Bytes,
    caller: Caller,
) -> BoxStream<'static, Result<Bytes, Status>> {
    let request = match decode::<LeaderRequest>(message) {
        Ok(request) => request,
        Err(status) => return stream::iter([Err(status)]).boxed(),
    };
    let observer = Observer {
        client,
        prefix: recipe_prefix(&request.name),
        leader_watch: None,
        queued: VecDeque::new(),
    };
    stream::unfold(Some((observer, caller)), |state| async move {
        let (mut observer, caller) = state?;
        match caller.unless_gone(observer.next_leader()).await {
            Ok(Some(response)) => Some((
                Ok(Bytes::from(response.encode_to_vec())),
                Some((observer, caller)),
            )),
            Ok(None) => None,
            Err(status) => Some((Err(status), None)),
        }
    })
    .boxed()
}

struct Observer {
    client: InnerClient,
    prefix: Bytes,
    /// The watch on the current leader's key, once one is known.
    leader_watch: Option<WatchResponses>,
    /// Leader values of one watch answer not yet sent.
    queued: VecDeque<LeaderResponse>,
}

impl Observer {
    /// The next leader value to send; `None` ends the stream.
    async fn next_leader(&mut self) -> Option<LeaderResponse> {
        loop {
            if let Some(response) = self.queued.pop_front() {
                return Some(response);
            }
            let Some(watch) = self.leader_watch.as_mut() else {
                let (header, kv) = find_leader(&self.client, &self.prefix).await?;
                let revision = header.revision;
                self.leader_watch = Some(self.client.watch(
                    kv.key.clone(),
                    Bytes::new(),
                    revision + 1,
                ));
                return Some(LeaderResponse {
                    header: Some(header),
                    kv: Some(kv),
                });
            };
            let answer = watch.next().await?.ok()?;
            if answer.canceled {
                return None;
            }
            for event in answer.events {
                if event.r#type == EventType::Delete as i32 {
                    // The leader is gone: look for the next one.
                    self.leader_watch = None;
                    break;
                }
                self.queued.push_back(LeaderResponse {
                    header: answer.header,
                    kv: event.kv,
                });
            }
        }
    }
}

/// The oldest candidate, or with none the first one put from now on (its header's revision
/// set to the put's, as clientv3 does).
async fn find_leader(client: &InnerClient, prefix: &Bytes) -> Option<(ResponseHeader, KeyValue)> {
    let mut oldest = client
        .range(by_create_revision(prefix, range_request::SortOrder::Ascend))
        .await
        .ok()?;
    let header = oldest.header.take().unwrap_or_default();
    if !oldest.kvs.is_empty() {
        return Some((header, oldest.kvs.swap_remove(0)));
    }
    let mut candidates = client.watch(prefix.clone(), prefix_end(prefix), header.revision);
    loop {
        let answer = candidates.next().await?.ok()?;
        if answer.canceled {
            return None;
        }
        let put = answer
            .events
            .into_iter()
            .find(|event| event.r#type == EventType::Put as i32)
            .and_then(|event| event.kv);
        if let Some(kv) = put {
            let mut header = answer.header.unwrap_or_default();
            header.revision = kv.mod_revision;
            return Some((header, kv));
        }
    }
}
