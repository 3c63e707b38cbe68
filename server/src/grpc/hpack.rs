//! HPACK (RFC 7541) header-block decoding with the sender's dynamic table, and encoding into
//! literals that never touch a dynamic table. Just enough for [`super::header_rewrite`], which
//! re-encodes every client header block so it can change a header without the receiver's
//! dynamic table ever disagreeing with the client's.

use std::collections::VecDeque;

use super::huffman::{self, HuffmanError};

/// One decoded header field: name and value bytes, as sent.
pub type Field = (Vec<u8>, Vec<u8>);

/// Bytes of table accounting added to every entry (RFC 7541 4.1).
const ENTRY_OVERHEAD: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HpackError {
    #[error("header block ends inside a field")]
    Truncated,
    #[error("integer too large in header block")]
    IntegerOverflow,
    #[error("header table index {0} out of range")]
    BadIndex(usize),
    #[error("dynamic table size update to {size} above the allowed {max}")]
    TableSizeTooLarge { size: usize, max: usize },
    #[error("dynamic table size update after a header field")]
    LateSizeUpdate,
    #[error("decoded header list larger than {0} bytes")]
    ListTooLarge(usize),
    #[error(transparent)]
    Huffman(#[from] HuffmanError),
}

/// RFC 7541 Appendix A.
const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// The decoding context of one direction of one connection. Invariant: `size` is the sum of
/// the entries' sizes and never exceeds `max_size`, which never exceeds `allowed_max`.
#[derive(Debug)]
pub struct Decoder {
    /// Newest entry first (dynamic index 62 is `entries[0]`).
    entries: VecDeque<Field>,
    size: usize,
    max_size: usize,
    /// The receiver's SETTINGS_HEADER_TABLE_SIZE: size updates may not go above it.
    allowed_max: usize,
    /// Decoded name and value bytes one block may expand to (plus the per-field overhead).
    max_list_bytes: usize,
}

impl Decoder {
    /// `table_size`: the SETTINGS_HEADER_TABLE_SIZE the receiver announced (4,096 unless it
    /// announced another). `max_list_bytes` bounds what one block may decode to.
    pub fn new(table_size: usize, max_list_bytes: usize) -> Self {
        Decoder {
            entries: VecDeque::new(),
            size: 0,
            max_size: table_size,
            allowed_max: table_size,
            max_list_bytes,
        }
    }

    /// Decodes one complete header block (HEADERS plus its CONTINUATIONs, padding removed).
    /// On error the context is unusable: HPACK errors are connection errors.
    pub fn decode(&mut self, block: &[u8]) -> Result<Vec<Field>, HpackError> {
        let mut fields = Vec::new();
        let mut list_bytes = 0usize;
        let mut rest = block;
        while let Some(&first) = rest.first() {
            if first & 0xe0 == 0x20 {
                // Dynamic table size update: only before the first field.
                if !fields.is_empty() {
                    return Err(HpackError::LateSizeUpdate);
                }
                let size = read_integer(&mut rest, 5)?;
                if size > self.allowed_max {
                    return Err(HpackError::TableSizeTooLarge {
                        size,
                        max: self.allowed_max,
                    });
                }
                self.max_size = size;
                self.evict_to(size);
                continue;
            }
            let field = if first & 0x80 != 0 {
                let index = read_integer(&mut rest, 7)?;
                self.get(index)?
            } else {
                // 01: with incremental indexing; 0000: without; 0001: never indexed.
                let (prefix, indexed) = if first & 0x40 != 0 {
                    (6, true)
                } else {
                    (4, false)
                };
                let index = read_integer(&mut rest, prefix)?;
                let name = if index == 0 {
                    read_string(&mut rest)?
                } else {
                    self.get(index)?.0
                };
                let value = read_string(&mut rest)?;
                let field = (name, value);
                if indexed {
                    self.insert(field.clone());
                }
                field
            };
            list_bytes += field.0.len() + field.1.len() + ENTRY_OVERHEAD;
            if list_bytes > self.max_list_bytes {
                return Err(HpackError::ListTooLarge(self.max_list_bytes));
            }
            fields.push(field);
        }
        Ok(fields)
    }

    fn get(&self, index: usize) -> Result<Field, HpackError> {
        if index == 0 {
            return Err(HpackError::BadIndex(0));
        }
        if let Some((name, value)) = STATIC_TABLE.get(index - 1) {
            return Ok((name.as_bytes().to_vec(), value.as_bytes().to_vec()));
        }
        self.entries
            .get(index - STATIC_TABLE.len() - 1)
            .cloned()
            .ok_or(HpackError::BadIndex(index))
    }

    fn insert(&mut self, field: Field) {
        let entry_size = field.0.len() + field.1.len() + ENTRY_OVERHEAD;
        if entry_size > self.max_size {
            // An entry larger than the table empties it and is not added (RFC 7541 4.4).
            self.evict_to(0);
            return;
        }
        self.evict_to(self.max_size - entry_size);
        self.size += entry_size;
        self.entries.push_front(field);
    }

    fn evict_to(&mut self, target: usize) {
        while self.size > target {
            let Some((name, value)) = self.entries.pop_back() else {
                break;
            };
            self.size -= name.len() + value.len() + ENTRY_OVERHEAD;
        }
    }
}

/// Encodes fields as "literal without indexing, new name", never Huffman-coded: the
/// receiver's dynamic table is never used, so no state is shared with it.
pub fn encode_literals(fields: &[Field]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0);
        write_integer(&mut out, 0, 7, name.len());
        out.extend_from_slice(name);
        write_integer(&mut out, 0, 7, value.len());
        out.extend_from_slice(value);
    }
    out
}

/// An integer with an N-bit prefix (RFC 7541 5.1); `flags` are the first byte's high bits.
fn write_integer(out: &mut Vec<u8>, flags: u8, prefix_bits: u32, value: usize) {
    let max_prefix = (1usize << prefix_bits) - 1;
    if value < max_prefix {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max_prefix as u8);
    let mut rest = value - max_prefix;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}

/// Reads an integer with an N-bit prefix, advancing `input`. Values above 2^28 are refused:
/// no legitimate index, length or table size comes near.
fn read_integer(input: &mut &[u8], prefix_bits: u32) -> Result<usize, HpackError> {
    let (&first, mut rest) = input.split_first().ok_or(HpackError::Truncated)?;
    let max_prefix = (1usize << prefix_bits) - 1;
    let mut value = usize::from(first) & max_prefix;
    if value == max_prefix {
        let mut shift = 0;
        loop {
            let (&byte, tail) = rest.split_first().ok_or(HpackError::Truncated)?;
            rest = tail;
            value += usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
            if shift > 21 {
                return Err(HpackError::IntegerOverflow);
            }
        }
    }
    *input = rest;
    Ok(value)
}

/// Reads a string literal (RFC 7541 5.2), Huffman-coded or not.
fn read_string(input: &mut &[u8]) -> Result<Vec<u8>, HpackError> {
    let huffman = input.first().ok_or(HpackError::Truncated)? & 0x80 != 0;
    let len = read_integer(input, 7)?;
    if input.len() < len {
        return Err(HpackError::Truncated);
    }
    let (bytes, rest) = input.split_at(len);
    *input = rest;
    if huffman {
        Ok(huffman::decode(bytes)?)
    } else {
        Ok(bytes.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    fn fields(list: &[(&str, &str)]) -> Vec<Field> {
        list.iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    /// RFC 7541 C.4: three requests with Huffman coding sharing one dynamic table.
    #[test]
    fn rfc_7541_c4_requests_decode_with_the_dynamic_table() {
        let mut decoder = Decoder::new(4096, 64 * 1024);
        let first = decoder
            .decode(&hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"))
            .expect("first");
        assert_eq!(
            first,
            fields(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
            ])
        );
        assert_eq!(decoder.size, 57);
        let second = decoder
            .decode(&hex("8286 84be 5886 a8eb 1064 9cbf"))
            .expect("second");
        assert_eq!(
            second,
            fields(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
                ("cache-control", "no-cache"),
            ])
        );
        let third = decoder
            .decode(&hex(
                "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
            ))
            .expect("third");
        assert_eq!(
            third,
            fields(&[
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/index.html"),
                (":authority", "www.example.com"),
                ("custom-key", "custom-value"),
            ])
        );
        assert_eq!(decoder.size, 164);
    }

    /// RFC 7541 C.5.1-C.5.3 with a 256-byte table: entries are evicted oldest first.
    #[test]
    fn eviction_keeps_the_table_within_its_size() {
        let mut decoder = Decoder::new(256, 64 * 1024);
        decoder
            .decode(&hex(
                "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 \
                 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 \
                 6c65 2e63 6f6d",
            ))
            .expect("first response");
        assert_eq!(decoder.size, 222);
        let second = decoder
            .decode(&hex("4803 3330 37c1 c0bf"))
            .expect("second response");
        assert_eq!(second[0], fields(&[(":status", "307")])[0]);
        assert_eq!(decoder.size, 222);
        assert_eq!(decoder.entries.len(), 4);
        assert_eq!(decoder.entries[0].1, b"307");
    }

    #[test]
    fn literals_round_trip_without_touching_the_table() {
        let list = fields(&[
            (":authority", "127.0.0.1:2379"),
            ("x-long", &"v".repeat(300)),
            ("", ""),
        ]);
        let encoded = encode_literals(&list);
        let mut decoder = Decoder::new(4096, 64 * 1024);
        assert_eq!(decoder.decode(&encoded).expect("literals"), list);
        assert!(decoder.entries.is_empty());
    }

    #[test]
    fn malformed_blocks_are_errors_not_panics() {
        let mut decoder = Decoder::new(4096, 64 * 1024);
        assert_eq!(decoder.decode(&[0x80]), Err(HpackError::BadIndex(0)));
        assert_eq!(decoder.decode(&[0xbe]), Err(HpackError::BadIndex(62)));
        assert_eq!(
            decoder.decode(&[0x00, 0x05, b'a']),
            Err(HpackError::Truncated)
        );
        assert_eq!(
            decoder.decode(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Err(HpackError::IntegerOverflow)
        );
        assert_eq!(
            decoder.decode(&hex("3fe2 1f")),
            Err(HpackError::TableSizeTooLarge {
                size: 4097,
                max: 4096
            })
        );
        assert_eq!(
            decoder.decode(&hex("82 20")),
            Err(HpackError::LateSizeUpdate)
        );
        let mut small = Decoder::new(4096, 40);
        assert_eq!(
            small.decode(&encode_literals(&fields(&[("a", "b"), ("c", "d")]))),
            Err(HpackError::ListTooLarge(40))
        );
    }

    #[test]
    fn size_update_to_zero_empties_the_table() {
        let mut decoder = Decoder::new(4096, 64 * 1024);
        decoder
            .decode(&hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"))
            .expect("first");
        decoder.decode(&[0x20]).expect("size update");
        assert_eq!(decoder.size, 0);
        assert_eq!(decoder.decode(&[0xbe]), Err(HpackError::BadIndex(62)));
    }
}
