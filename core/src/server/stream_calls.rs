//! The calls whose stream stays open, and what a later request on such a stream means: the
//! one classification every shell and listener uses (a QUIC client stream, a gRPC call), so
//! no runtime decides for itself which requests a stream carries.
//!
//! Watch and lease keep-alive take several requests and answer each with one or more
//! responses; snapshot answers its one request with many chunks. The first request of every
//! stream goes through [`super::Server::admit`].

use qraft_proto::qraftpb::ClientRequest;
use qraft_proto::qraftpb::client_request::Request as In;

use crate::error::Error;

/// A call served as a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamCall {
    Watch,
    LeaseKeepAlive,
    Snapshot,
}

/// What a shell does with a later request on a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextOnStream {
    /// Serve it on the stream, as the first one.
    Serve,
    /// Answer with this error and end the stream (qraft's own: etcd's typed gRPC streams
    /// cannot carry another call's request).
    EndWith(Error),
    /// End the stream without an answer.
    End,
}

impl StreamCall {
    /// The stream `first` opens, or `None` for a unary call.
    pub fn of(first: &ClientRequest) -> Option<StreamCall> {
        match first.request {
            Some(In::Watch(_)) => Some(StreamCall::Watch),
            Some(In::LeaseKeepAlive(_)) => Some(StreamCall::LeaseKeepAlive),
            Some(In::Snapshot(_)) => Some(StreamCall::Snapshot),
            _ => None,
        }
    }

    /// What `next`, a later request on a stream this call opened, means: a watch stream
    /// carries watch requests (anything else ends it: the client misbehaved), a keep-alive
    /// stream carries keep-alives (anything else is refused), a snapshot stream nothing more.
    pub fn next_request(self, next: &ClientRequest) -> NextOnStream {
        match (self, &next.request) {
            (StreamCall::Watch, Some(In::Watch(_)))
            | (StreamCall::LeaseKeepAlive, Some(In::LeaseKeepAlive(_))) => NextOnStream::Serve,
            (StreamCall::LeaseKeepAlive, _) => NextOnStream::EndWith(Error::NotAKeepAlive),
            (StreamCall::Watch | StreamCall::Snapshot, _) => NextOnStream::End,
        }
    }
}

#[cfg(test)]
mod tests {
    use qraft_proto::etcdserverpb::{
        LeaseKeepAliveRequest, PutRequest, SnapshotRequest, WatchRequest,
    };

    use super::*;

    fn request(body: In) -> ClientRequest {
        ClientRequest {
            request: Some(body),
            ..Default::default()
        }
    }

    #[test]
    fn streams_carry_their_own_requests_only() {
        let watch = request(In::Watch(WatchRequest::default()));
        let keep_alive = request(In::LeaseKeepAlive(LeaseKeepAliveRequest { id: 1 }));
        let snapshot = request(In::Snapshot(SnapshotRequest {}));
        let put = request(In::Put(PutRequest::default()));
        assert_eq!(StreamCall::of(&watch), Some(StreamCall::Watch));
        assert_eq!(
            StreamCall::of(&keep_alive),
            Some(StreamCall::LeaseKeepAlive)
        );
        assert_eq!(StreamCall::of(&snapshot), Some(StreamCall::Snapshot));
        assert_eq!(StreamCall::of(&put), None);

        assert_eq!(StreamCall::Watch.next_request(&watch), NextOnStream::Serve);
        assert_eq!(StreamCall::Watch.next_request(&put), NextOnStream::End);
        let on_keep_alive = StreamCall::LeaseKeepAlive;
        assert_eq!(on_keep_alive.next_request(&keep_alive), NextOnStream::Serve);
        assert_eq!(
            on_keep_alive.next_request(&watch),
            NextOnStream::EndWith(Error::NotAKeepAlive)
        );
        assert_eq!(
            Error::NotAKeepAlive.to_string(),
            "qraft: only keep-alive requests on a keep-alive stream"
        );
        assert_eq!(
            StreamCall::Snapshot.next_request(&snapshot),
            NextOnStream::End
        );
    }
}
