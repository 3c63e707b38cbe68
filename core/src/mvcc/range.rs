//! The Range request: etcd's filtering, sorting, limit and `more`/`count` rules on top of a
//! raw read of the key index.

use std::cmp::Ordering;

use qraft_proto::etcdserverpb::range_request::{SortOrder, SortTarget};
use qraft_proto::etcdserverpb::{RangeRequest, RangeResponse, ResponseHeader};
use qraft_proto::mvccpb::KeyValue;

use super::key_index::KeyRange;
use super::store::RangeResult;
use crate::error::Result;

/// The number of keys to fetch from the index: everything when the result is sorted or
/// filtered afterwards, otherwise one more than the limit so `more` can be told.
fn fetch_limit(req: &RangeRequest) -> usize {
    let reorders = req.sort_order != SortOrder::None as i32
        || req.min_mod_revision != 0
        || req.max_mod_revision != 0
        || req.min_create_revision != 0
        || req.max_create_revision != 0;
    if reorders || req.limit <= 0 {
        0
    } else {
        usize::try_from(req.limit)
            .unwrap_or(usize::MAX)
            .saturating_add(1)
    }
}

/// Runs `req` given a reader of raw results and the revision reads happen at (the response
/// header's revision). Validation (empty key, sort enums) happened before.
pub(crate) fn execute(
    req: &RangeRequest,
    header_revision: i64,
    read: impl FnOnce(KeyRange<'_>, i64, usize, bool) -> Result<RangeResult>,
) -> Result<RangeResponse> {
    let range = KeyRange::from_request(&req.key, &req.range_end);
    let RangeResult { mut kvs, count } =
        read(range, req.revision, fetch_limit(req), req.count_only)?;

    if req.max_mod_revision != 0 {
        kvs.retain(|kv| kv.mod_revision <= req.max_mod_revision);
    }
    if req.min_mod_revision != 0 {
        kvs.retain(|kv| kv.mod_revision >= req.min_mod_revision);
    }
    if req.max_create_revision != 0 {
        kvs.retain(|kv| kv.create_revision <= req.max_create_revision);
    }
    if req.min_create_revision != 0 {
        kvs.retain(|kv| kv.create_revision >= req.min_create_revision);
    }

    sort(&mut kvs, req.sort_order, req.sort_target);

    let mut more = false;
    if req.limit > 0 && kvs.len() as i64 > req.limit {
        kvs.truncate(req.limit as usize);
        more = true;
    }
    if req.keys_only {
        for kv in &mut kvs {
            kv.value = Default::default();
        }
    }
    Ok(RangeResponse {
        header: Some(ResponseHeader {
            revision: header_revision,
            ..ResponseHeader::default()
        }),
        kvs,
        more,
        count,
    })
}

/// Sorts like etcd: a target other than KEY with order NONE means ascending. The sort is
/// stable (ties keep key order), which is what etcd's sort yields for small results.
fn sort(kvs: &mut [KeyValue], order: i32, target: i32) {
    let target = SortTarget::try_from(target).unwrap_or(SortTarget::Key);
    let mut order = SortOrder::try_from(order).unwrap_or(SortOrder::None);
    if target != SortTarget::Key && order == SortOrder::None {
        order = SortOrder::Ascend;
    }
    let by: fn(&KeyValue, &KeyValue) -> Ordering = match target {
        SortTarget::Key => |a, b| a.key.cmp(&b.key),
        SortTarget::Version => |a, b| a.version.cmp(&b.version),
        SortTarget::Create => |a, b| a.create_revision.cmp(&b.create_revision),
        SortTarget::Mod => |a, b| a.mod_revision.cmp(&b.mod_revision),
        SortTarget::Value => |a, b| a.value.cmp(&b.value),
    };
    match order {
        SortOrder::None => {}
        SortOrder::Ascend => kvs.sort_by(by),
        SortOrder::Descend => kvs.sort_by(|a, b| by(b, a)),
    }
}
