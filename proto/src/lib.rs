//! qraft's wire protocol.
//!
//! The client API (`etcdserverpb`), key-value types (`mvccpb`), auth types (`authpb`), raft
//! messages (`raftpb`) and the lock and election services (`v3lockpb`, `v3electionpb`) use the
//! same message shapes, field numbers and enum values as etcd's v3 API, so an etcd-compatible
//! endpoint can serve etcd clients with these very types. `qraftpb` holds qraft's own envelopes:
//! the replicated request, membership records and the QUIC framing.

#![allow(clippy::large_enum_variant, clippy::doc_lazy_continuation)]

pub mod raftpb {
    include!(concat!(env!("OUT_DIR"), "/raftpb.rs"));
}

pub mod mvccpb {
    include!(concat!(env!("OUT_DIR"), "/mvccpb.rs"));
}

pub mod authpb {
    include!(concat!(env!("OUT_DIR"), "/authpb.rs"));
}

pub mod etcdserverpb {
    include!(concat!(env!("OUT_DIR"), "/etcdserverpb.rs"));
}

pub mod v3lockpb {
    include!(concat!(env!("OUT_DIR"), "/v3lockpb.rs"));
}

pub mod v3electionpb {
    include!(concat!(env!("OUT_DIR"), "/v3electionpb.rs"));
}

pub mod qraftpb {
    include!(concat!(env!("OUT_DIR"), "/qraftpb.rs"));
}

pub use prost::Message;
pub use prost::bytes::Bytes;

/// The encoded `FileDescriptorSet` of every .proto file, for reflection in tests and tools.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));
