//! `Maintenance.Snapshot` over gRPC, shaped like etcd's: the member's backend as an etcd v3
//! database (bbolt; `qraft_io::storage::EtcdImageExporter`) in chunks whose `remaining_bytes`
//! counts down to 0, then one last message whose blob is the SHA-256 of every byte before it —
//! what etcd's server appends. `etcdctl snapshot save` writes all blobs to the file, so the
//! file is what etcd's own `snapshot save` writes: `etcdctl snapshot status` reads it, etcd's
//! `snapshot restore` checks the digest and builds an etcd member from it with qraft's
//! revisions, leases and auth records (docs/operations.md, "Moving back to etcd"), and
//! `qraftctl snapshot restore` reads it too. `qraftctl snapshot save` (over QUIC) keeps
//! qraft's own stream format.
//!
//! The image comes from one read transaction (a point-in-time copy) and is produced page by
//! page while the stream is consumed: memory stays bounded by a chunk and a page per tree
//! level, whatever the size of the data.

use futures::stream::{self, StreamExt};
use qraft_io::driver::DriverHandle;
use qraft_io::error_responses::{Code, error_response};
use qraft_io::runtime;
use qraft_io::storage::{EtcdImageExporter, LmdbStorage};
use qraft_proto::etcdserverpb::{ResponseHeader, SnapshotResponse};
use qraft_proto::qraftpb::ClientResponse;
use qraft_proto::qraftpb::client_response::Response as Out;
use ring::digest::{Context, SHA256};

use crate::grpc::{ETCD_COMPATIBLE_VERSION, ResponseStream};

/// Blob bytes per message (etcd sends 32 KiB; larger chunks cost fewer frames and stay well
/// under every client's receive limit). A multiple of bbolt's page size.
pub const SNAPSHOT_CHUNK_BYTES: usize = 64 * 1024;

/// Where the stream is: laying the image out, image chunks, then the digest.
enum Phase {
    Start(LmdbStorage),
    Data {
        image: Box<EtcdImageExporter>,
        remaining: u64,
        digest: Box<Context>,
    },
    Done,
}

/// The responses of one Snapshot call against `handle`'s storage. A storage error ends the
/// stream with an INTERNAL status after whatever was already sent, so a client never mistakes
/// a cut stream for a complete one (the digest is only sent after the last data byte, and
/// only when the bytes sent are exactly the length announced).
///
/// Laying the image out reads the whole key space and each chunk reads pages of the data
/// file (a page fault may wait for the disk), so both run on blocking threads: a snapshot of
/// gigabytes never holds an executor thread that client and peer tasks share.
pub fn snapshot_responses(handle: &DriverHandle) -> ResponseStream {
    let header = handle.info().header();
    stream::unfold(
        Phase::Start(handle.storage().clone()),
        move |phase| async move {
            let (mut image, remaining, mut digest) = match phase {
                Phase::Start(storage) => {
                    match runtime::spawn_blocking(move || storage.export_etcd_image()).await {
                        Ok(image) => {
                            let whole = image.len();
                            (Box::new(image), whole, Box::new(Context::new(&SHA256)))
                        }
                        Err(err) => {
                            let failed = error_response(Code::Internal, err.to_string());
                            return Some((failed, Phase::Done));
                        }
                    }
                }
                Phase::Data {
                    image,
                    remaining,
                    digest,
                } => (image, remaining, digest),
                Phase::Done => return None,
            };
            let (image, chunk) = runtime::spawn_blocking(move || {
                let chunk = image.next_chunk(SNAPSHOT_CHUNK_BYTES);
                (image, chunk)
            })
            .await;
            match chunk {
                Ok(Some(blob)) if blob.len() as u64 <= remaining => {
                    digest.update(&blob);
                    let remaining = remaining - blob.len() as u64;
                    let next = Phase::Data {
                        image,
                        remaining,
                        digest,
                    };
                    Some((message(header, remaining, blob), next))
                }
                Ok(None) if remaining == 0 => {
                    let sha = digest.finish().as_ref().to_vec();
                    Some((message(header, 0, sha), Phase::Done))
                }
                Ok(_) => Some((
                    error_response(
                        Code::Internal,
                        "snapshot image length differs from the announced length",
                    ),
                    Phase::Done,
                )),
                Err(err) => Some((error_response(Code::Internal, err.to_string()), Phase::Done)),
            }
        },
    )
    .boxed()
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
