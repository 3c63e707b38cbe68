//! `Maintenance.Snapshot` over gRPC, shaped like etcd's: the member's backend image in chunks
//! whose `remaining_bytes` counts down to 0, then one last message whose blob is the SHA-256 of
//! every byte before it. `etcdctl snapshot save` writes all blobs to the file, so the file ends
//! with that digest as an etcd snapshot file does (etcd's restore checks it; qraft's restore
//! tooling can too). The image itself is qraft's snapshot stream (`qraft_io::storage::snapshot`),
//! not a bbolt file: etcd's own `snapshot status|restore` cannot read it.

use futures::stream::{self, StreamExt};
use qraft_io::driver::{DriverHandle, NodeInfo};
use qraft_io::status::{Code, error_response};
use qraft_io::storage::snapshot::SnapshotExporter;
use qraft_proto::etcdserverpb::{ResponseHeader, SnapshotResponse};
use qraft_proto::qraftpb::ClientResponse;
use qraft_proto::qraftpb::client_response::Response as Out;
use ring::digest::{Context, SHA256};

use crate::grpc::{ETCD_COMPATIBLE_VERSION, ResponseStream};

/// Blob bytes per message (etcd sends 32 KiB; larger chunks cost fewer frames and stay well
/// under every client's receive limit).
pub const SNAPSHOT_CHUNK_BYTES: usize = 64 * 1024;

/// etcd's snapshot files are bbolt databases, whose size is a multiple of the page size, and
/// `etcdctl snapshot save` (3.4.2x, 3.5, 3.6) refuses a download unless its length modulo 512
/// is exactly the 32 bytes of the digest. The data is therefore zero-padded to this multiple
/// before the digest; the padding follows qraft's end-of-stream record, so a reader of the
/// image stops before it.
pub const SNAPSHOT_ALIGN_BYTES: u64 = 512;

/// Where the stream is: image chunks, then zero padding, then the digest.
enum Phase {
    Data {
        exporter: Box<SnapshotExporter>,
        remaining: u64,
        digest: Box<Context>,
    },
    Digest(Box<Context>),
    Done,
}

/// The responses of one Snapshot call against `handle`'s storage, taken from one read
/// transaction (a point-in-time image). A storage error ends the stream with an INTERNAL
/// status after whatever was already sent, so a client never mistakes a cut stream for a
/// complete one (the digest is only sent after the last data byte).
pub fn snapshot_responses(handle: &DriverHandle) -> ResponseStream {
    let info = handle.info();
    let start = handle
        .storage()
        .export_snapshot()
        .and_then(|exporter| Ok((exporter.stream_len()?, exporter)));
    let first = match start {
        Ok((len, exporter)) => Phase::Data {
            exporter: Box::new(exporter),
            remaining: len.next_multiple_of(SNAPSHOT_ALIGN_BYTES),
            digest: Box::new(Context::new(&SHA256)),
        },
        Err(err) => return stream::iter([error_response(Code::Internal, err.to_string())]).boxed(),
    };
    let header = header(&info);
    stream::unfold(first, move |phase| async move {
        match phase {
            Phase::Data {
                mut exporter,
                remaining,
                mut digest,
            } => match SnapshotExporter::next_chunk(&mut exporter, SNAPSHOT_CHUNK_BYTES) {
                Ok(Some(blob)) => {
                    digest.update(&blob);
                    let remaining = remaining.saturating_sub(blob.len() as u64);
                    let next = Phase::Data {
                        exporter,
                        remaining,
                        digest,
                    };
                    Some((message(header, remaining, blob), next))
                }
                Ok(None) => {
                    // The image is complete; what is left to announce (< 512 bytes) is padding.
                    let padding = vec![0; usize::try_from(remaining).unwrap_or(0)];
                    digest.update(&padding);
                    Some((message(header, 0, padding), Phase::Digest(digest)))
                }
                Err(err) => Some((error_response(Code::Internal, err.to_string()), Phase::Done)),
            },
            Phase::Digest(digest) => {
                let sha = digest.finish().as_ref().to_vec();
                Some((message(header, 0, sha), Phase::Done))
            }
            Phase::Done => None,
        }
    })
    .boxed()
}

fn header(info: &NodeInfo) -> ResponseHeader {
    ResponseHeader {
        cluster_id: info.cluster_id,
        member_id: info.member_id,
        revision: info.revision,
        raft_term: info.term,
    }
}

fn message(header: ResponseHeader, remaining_bytes: u64, blob: Vec<u8>) -> ClientResponse {
    ClientResponse {
        response: Some(Out::Snapshot(SnapshotResponse {
            header: Some(header),
            remaining_bytes,
            blob: blob.into(),
            version: ETCD_COMPATIBLE_VERSION.to_owned(),
        })),
    }
}
