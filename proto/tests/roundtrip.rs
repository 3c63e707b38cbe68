//! Every message of the wire protocol survives encode → decode → encode with every field set,
//! and malformed or truncated buffers give errors, never panics.
//!
//! Messages are filled through reflection over the compiled descriptors, so a field that the
//! generated Rust type would drop (or a message added to a .proto file later) is covered too.

use prost::Message;
use prost::bytes::Bytes;
use prost_reflect::{DescriptorPool, DynamicMessage, Kind, MessageDescriptor, Value};
use qraft_proto::*;

/// Recursive messages (raftpb.Message, TxnRequest ↔ RequestOp) are filled to this depth.
const MAX_DEPTH: usize = 3;

fn pool() -> DescriptorPool {
    DescriptorPool::decode(FILE_DESCRIPTOR_SET).expect("descriptor set compiled by build.rs")
}

/// A non-default value for a field of the given kind; `seed` makes values differ per field.
fn sample(kind: &Kind, seed: u32, variant: usize, depth: usize) -> Option<Value> {
    let n = seed as u64 + 1;
    Some(match kind {
        Kind::Double => Value::F64(n as f64 + 0.5),
        Kind::Float => Value::F32(n as f32 + 0.25),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(-(n as i32)),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(-(n as i64) * 1_000_000_007),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(n as u32 * 7),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(n * 1_000_000_009),
        Kind::Bool => Value::Bool(true),
        Kind::String => Value::String(format!("s{n}-é")),
        Kind::Bytes => Value::Bytes(Bytes::from(vec![0u8, 0xff, seed as u8, b'\n'])),
        Kind::Enum(e) => Value::EnumNumber(e.values().last()?.number()),
        Kind::Message(m) => {
            if depth >= MAX_DEPTH {
                return None;
            }
            Value::Message(filled(m, variant, depth + 1))
        }
    })
}

/// A message with every field set; for each oneof, member number `variant` (mod its size).
fn filled(desc: &MessageDescriptor, variant: usize, depth: usize) -> DynamicMessage {
    let mut msg = DynamicMessage::new(desc.clone());
    for field in desc.fields() {
        if let Some(oneof) = field.containing_oneof() {
            let members: Vec<_> = oneof.fields().collect();
            if members[variant % members.len()].number() != field.number() {
                continue;
            }
        }
        let Some(one) = sample(&field.kind(), field.number(), variant, depth) else {
            continue;
        };
        let value = if field.is_list() {
            let two = sample(&field.kind(), field.number() + 1, variant + 1, depth)
                .unwrap_or_else(|| one.clone());
            Value::List(vec![one, two])
        } else {
            one
        };
        msg.set_field(&field, value);
    }
    msg
}

fn largest_oneof(desc: &MessageDescriptor) -> usize {
    desc.oneofs().map(|o| o.fields().len()).max().unwrap_or(1)
}

fn check_roundtrip<T: Message + Default>(full_name: &str, pool: &DescriptorPool) -> usize {
    let desc = pool
        .get_message_by_name(full_name)
        .unwrap_or_else(|| panic!("{full_name} missing from the descriptor set"));
    let variants = largest_oneof(&desc);
    for variant in 0..variants {
        let original = filled(&desc, variant, 0);
        let bytes = original.encode_to_vec();
        let typed = T::decode(bytes.as_slice())
            .unwrap_or_else(|e| panic!("{full_name} variant {variant}: decode failed: {e}"));
        let again = DynamicMessage::decode(desc.clone(), typed.encode_to_vec().as_slice())
            .unwrap_or_else(|e| panic!("{full_name}: re-decode failed: {e}"));
        assert_eq!(
            original, again,
            "{full_name} variant {variant}: a field was lost or changed by the Rust type"
        );
        check_truncations::<T>(full_name, &bytes);
    }
    variants
}

/// Every strict prefix decodes to an error or to a message; at least one prefix (one that cuts a
/// field in half) must be an error. Nothing may panic.
fn check_truncations<T: Message + Default>(full_name: &str, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let errors = (0..bytes.len())
        .filter(|&len| T::decode(&bytes[..len]).is_err())
        .count();
    assert!(errors > 0, "{full_name}: no truncated prefix was rejected");
}

macro_rules! for_each_message {
    ($($name:literal => $ty:ty,)*) => {
        #[test]
        fn every_message_roundtrips_with_all_fields_set() {
            let pool = pool();
            let mut checked = 0;
            $(
                check_roundtrip::<$ty>($name, &pool);
                checked += 1;
            )*
            let declared = pool.all_messages().count();
            assert_eq!(checked, declared, "every message in the descriptor set is covered");
            assert!(checked >= 127, "the whole API is covered, got {checked} messages");
        }

        /// Arbitrary bytes never make a decoder panic.
        fn decode_garbage_everywhere(bytes: &[u8]) {
            $( let _ = <$ty>::decode(bytes); )*
        }
    };
}

include!(concat!(env!("OUT_DIR"), "/all_messages.rs"));

#[test]
fn malformed_buffers_are_errors() {
    // Field 1 with wire type 7 (does not exist).
    assert!(raftpb::Entry::decode(&[0x0f, 0x01][..]).is_err());
    // A length prefix running past the end of the buffer.
    assert!(etcdserverpb::PutRequest::decode(&[0x0a, 0x05, b'a'][..]).is_err());
    // A varint that never ends.
    assert!(etcdserverpb::RangeRequest::decode(&[0x18, 0xff, 0xff, 0xff][..]).is_err());
    // Wrong type for a nested message: garbage inside the length-delimited field.
    assert!(qraftpb::ClientRequest::decode(&[0x12, 0x02, 0xff, 0xff][..]).is_err());
}

#[test]
fn etcd_field_numbers_are_kept() {
    // A RangeRequest as etcd encodes it: key=1 "a", range_end=2 "b", limit=3 5, revision=4 7.
    let etcd_bytes = [0x0a, 0x01, b'a', 0x12, 0x01, b'b', 0x18, 0x05, 0x20, 0x07];
    let req = etcdserverpb::RangeRequest::decode(&etcd_bytes[..]).expect("valid");
    assert_eq!((&req.key[..], &req.range_end[..]), (&b"a"[..], &b"b"[..]));
    assert_eq!((req.limit, req.revision), (5, 7));
    // Compare.range_end is field 64 in etcd.
    let cmp = etcdserverpb::Compare {
        range_end: Bytes::from_static(b"z"),
        ..Default::default()
    };
    assert_eq!(cmp.encode_to_vec(), vec![0x82, 0x04, 0x01, b'z']);
}

proptest::proptest! {
    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
        decode_garbage_everywhere(&bytes);
    }
}
