//! Raft consensus, sans-IO, in the shape of etcd-io/raft.
