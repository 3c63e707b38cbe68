//! Key intervals of permissions and requests, and whether granted intervals cover a request.

use qraft_proto::authpb::Permission;
use qraft_proto::authpb::permission::Type as PermType;

/// Whether a permission grants read or write access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

impl Access {
    fn granted_by(self, perm_type: i32) -> bool {
        match PermType::try_from(perm_type) {
            Ok(PermType::Readwrite) => true,
            Ok(PermType::Read) => self == Access::Read,
            Ok(PermType::Write) => self == Access::Write,
            Err(_) => false,
        }
    }
}

/// A half-open key interval `[start, end)`; `end == None` means "to the last key".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInterval {
    pub start: Vec<u8>,
    pub end: Option<Vec<u8>>,
}

impl KeyInterval {
    /// The interval an etcd `(key, range_end)` pair denotes: empty `range_end` is the single key,
    /// `"\0"` is every key from `key` on.
    pub fn from_key_range(key: &[u8], range_end: &[u8]) -> Self {
        let end = match range_end {
            [] => {
                let mut next = key.to_vec();
                next.push(0);
                Some(next)
            }
            [0] => None,
            end => Some(end.to_vec()),
        };
        KeyInterval {
            start: key.to_vec(),
            end,
        }
    }

    fn end_ge(a: &Option<Vec<u8>>, b: &Option<Vec<u8>>) -> bool {
        match (a, b) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => a >= b,
        }
    }
}

/// Whether a `(key, range_end)` pair is a valid permission range: a non-empty single key, a
/// non-empty interval, or "from key on".
pub fn is_valid_permission_range(key: &[u8], range_end: &[u8]) -> bool {
    match range_end {
        [] => !key.is_empty(),
        [0] => true,
        end => key < end,
    }
}

/// Whether the union of `perms` granting `access` covers all of `wanted`. Adjacent or
/// overlapping grants combine, so `[a, b)` + `[b, c)` covers `[a, c)`.
pub fn covers<'a>(
    perms: impl IntoIterator<Item = &'a Permission>,
    access: Access,
    wanted: &KeyInterval,
) -> bool {
    let mut granted: Vec<KeyInterval> = perms
        .into_iter()
        .filter(|perm| access.granted_by(perm.perm_type))
        .map(|perm| KeyInterval::from_key_range(&perm.key, &perm.range_end))
        .collect();
    granted.sort_by(|a, b| a.start.cmp(&b.start));
    // Walk the grants in start order, extending the covered prefix `[wanted.start, covered_to)`.
    // Grants are sorted by start, so once one starts past `covered_to` nothing can fill the gap.
    let mut covered_to: Vec<u8> = wanted.start.clone();
    for interval in granted {
        if interval.start > covered_to {
            return false;
        }
        let Some(end) = interval.end else {
            return true;
        };
        if end <= covered_to {
            continue;
        }
        if KeyInterval::end_ge(&Some(end.clone()), &wanted.end) {
            return true;
        }
        covered_to = end;
    }
    false
}
