//! The mixed workload: `--writers` requesters put while `--readers` requesters read single keys
//! of the same key space, at the same time over the same connections — the shape of a store
//! serving a controller's writes and its clients' reads. Both rates are reported: the summary
//! is the writes', with the reads' as `reads`.

use std::time::Instant;

use futures::future::join_all;

use super::budget::Budget;
use super::keys::{KeyGen, KeyOrder, stamped_value};
use super::stats::Recorder;
use super::target::Conn;
use super::workload::Consistency;

/// The shape of a mixed run.
pub struct MixedShape {
    pub writers: u64,
    pub readers: u64,
    pub key_size: usize,
    pub key_space_size: u64,
    pub val_size: usize,
    pub consistency: Consistency,
}

/// Runs the writers and readers until the budget (shared by both) is spent; returns the
/// writes' and the reads' records. Requester i uses connection i mod conns, writers first.
pub async fn run_mixed(
    conns: &[Box<dyn Conn>],
    budget: &Budget,
    shape: &MixedShape,
    seed: u64,
) -> (Recorder, Recorder) {
    let requesters = (0..shape.writers + shape.readers).map(|i| {
        let conn = conns[(i % conns.len() as u64) as usize].as_ref();
        let keys = KeyGen::new(
            shape.key_size,
            shape.key_space_size,
            KeyOrder::Random,
            seed.wrapping_add(i),
        );
        requester(conn, budget, shape, keys, i < shape.writers)
    });
    let mut writes = Recorder::new();
    let mut reads = Recorder::new();
    for (is_writer, recorder) in join_all(requesters).await {
        if is_writer {
            writes.merge(&recorder);
        } else {
            reads.merge(&recorder);
        }
    }
    (writes, reads)
}

async fn requester(
    conn: &dyn Conn,
    budget: &Budget,
    shape: &MixedShape,
    mut keys: KeyGen,
    is_writer: bool,
) -> (bool, Recorder) {
    let mut recorder = Recorder::new();
    while let Some(n) = budget.claim() {
        let key = keys.key(n);
        let sent = Instant::now();
        let call = if is_writer {
            conn.put(key, stamped_value(shape.val_size, 0))
        } else {
            conn.range(key, shape.consistency == Consistency::S)
        };
        match call.await {
            Ok(()) => recorder.success(sent.elapsed()),
            Err(err) => recorder.error(err.0),
        }
        budget.finished();
    }
    (is_writer, recorder)
}
