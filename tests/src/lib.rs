//! Shared helpers for qraft's cross-crate tests.

pub mod bounded_wait;
pub mod cluster;
pub mod cluster_ctl;
pub mod cluster_faults;
pub mod cluster_grpc;
pub mod cluster_members;
pub mod cluster_ops;
pub mod etcd;
pub mod etcd_cluster;
pub mod etcd_json;
pub mod etcd_migration;
pub mod etcdctl;
pub mod etcdctl_script;
pub mod fault_history;
pub mod fault_watch;
pub mod http;
pub mod kv_gen;
pub mod netns;
pub mod process_memory;
pub mod prometheus;
pub mod quic_raw;
pub mod raft_sim;
pub mod transcript;
