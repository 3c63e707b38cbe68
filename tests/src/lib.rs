//! Shared helpers for qraft's cross-crate tests.
