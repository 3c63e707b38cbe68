//! HPACK's static Huffman code (RFC 7541, Appendix B), decoding side, for the header-block
//! rewriter ([`super::hpack`]).
//!
//! The code is canonical: sorted by (length, symbol), each code is the previous one plus one,
//! shifted left when the length grows. So the table of code *lengths* alone defines it, and
//! decoding needs only, per length, the first code and where its symbols start.

/// Bit length of each symbol's code (symbols 0..=255 are bytes, 256 is EOS), RFC 7541 App. B.
const CODE_LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0..
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 16..
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, // 32..
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, // 48..
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, // 64..
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, // 80..
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, // 96..
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, // 112..
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 128..
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 144..
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 160..
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 176..
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 192..
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 208..
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 224..
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 240..
    30, // 256..
];

const EOS: u16 = 256;
const MAX_CODE_BITS: usize = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HuffmanError {
    #[error("Huffman string contains EOS")]
    Eos,
    #[error("invalid Huffman code")]
    InvalidCode,
    #[error("Huffman string ends with bad padding")]
    BadPadding,
}

/// The canonical code in decodable form.
struct Canonical {
    /// First code of each length (index = length).
    first_code: [u32; MAX_CODE_BITS + 1],
    /// Number of codes of each length.
    count: [u32; MAX_CODE_BITS + 1],
    /// Index into `symbols` of each length's first symbol.
    first_index: [usize; MAX_CODE_BITS + 1],
    /// Symbols sorted by (code length, symbol).
    symbols: [u16; 257],
}

const fn canonical() -> Canonical {
    let mut count = [0u32; MAX_CODE_BITS + 1];
    let mut s = 0;
    while s < CODE_LENGTHS.len() {
        count[CODE_LENGTHS[s] as usize] += 1;
        s += 1;
    }
    let mut first_code = [0u32; MAX_CODE_BITS + 1];
    let mut first_index = [0usize; MAX_CODE_BITS + 1];
    let mut code = 0u32;
    let mut index = 0usize;
    let mut len = 1;
    while len <= MAX_CODE_BITS {
        first_code[len] = code;
        first_index[len] = index;
        code = (code + count[len]) << 1;
        index += count[len] as usize;
        len += 1;
    }
    let mut symbols = [0u16; 257];
    let mut next = first_index;
    let mut s = 0;
    while s < CODE_LENGTHS.len() {
        let len = CODE_LENGTHS[s] as usize;
        symbols[next[len]] = s as u16;
        next[len] += 1;
        s += 1;
    }
    Canonical {
        first_code,
        count,
        first_index,
        symbols,
    }
}

static CODE: Canonical = canonical();

/// Decodes a Huffman-coded string literal. The padding after the last symbol must be the
/// most significant bits of EOS (all ones) and shorter than a byte, as RFC 7541 5.2 requires.
pub fn decode(input: &[u8]) -> Result<Vec<u8>, HuffmanError> {
    let mut out = Vec::with_capacity(input.len() * 8 / 5);
    let mut code = 0u32;
    let mut len = 0usize;
    for byte in input {
        for shift in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> shift) & 1);
            len += 1;
            let offset = code.wrapping_sub(CODE.first_code[len]);
            if code >= CODE.first_code[len] && offset < CODE.count[len] {
                let symbol = CODE.symbols[CODE.first_index[len] + offset as usize];
                if symbol == EOS {
                    return Err(HuffmanError::Eos);
                }
                out.push(symbol as u8);
                code = 0;
                len = 0;
            } else if len == MAX_CODE_BITS {
                return Err(HuffmanError::InvalidCode);
            }
        }
    }
    if len > 7 || code != (1u32 << len) - 1 {
        return Err(HuffmanError::BadPadding);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The encoder, for tests only: the rewriter never Huffman-codes what it writes.
    fn encode(input: &[u8]) -> Vec<u8> {
        let mut codes = [0u32; 257];
        let mut next = CODE.first_code;
        for &symbol in &CODE.symbols {
            let len = usize::from(CODE_LENGTHS[usize::from(symbol)]);
            codes[usize::from(symbol)] = next[len];
            next[len] += 1;
        }
        let mut out = Vec::new();
        let (mut acc, mut bits) = (0u64, 0u32);
        for &b in input {
            let len = u32::from(CODE_LENGTHS[usize::from(b)]);
            acc = (acc << len) | u64::from(codes[usize::from(b)]);
            bits += len;
            while bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        if bits > 0 {
            let pad = 8 - bits;
            out.push(((acc << pad) | ((1 << pad) - 1)) as u8);
        }
        out
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    #[test]
    fn rfc_7541_examples_decode() {
        for (wire, text) in [
            ("f1e3 c2e5 f23a 6ba0 ab90 f4ff", "www.example.com"),
            ("a8eb 1064 9cbf", "no-cache"),
            ("25a8 49e9 5ba9 7d7f", "custom-key"),
            ("25a8 49e9 5bb8 e8b4 bf", "custom-value"),
            ("6402", "302"),
            ("aec3 771a 4b", "private"),
            (
                "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff",
                "Mon, 21 Oct 2013 20:13:21 GMT",
            ),
        ] {
            assert_eq!(decode(&hex(wire)).expect(text), text.as_bytes());
            assert_eq!(encode(text.as_bytes()), hex(wire), "{text}");
        }
    }

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(decode(&encode(&all)).expect("all bytes"), all);
        for b in 0..=255u8 {
            assert_eq!(decode(&encode(&[b, b])).expect("pair"), vec![b, b]);
        }
        assert_eq!(decode(&[]).expect("empty"), Vec::<u8>::new());
    }

    #[test]
    fn bad_padding_and_eos_are_refused() {
        // "0" is 00000: padded with zeros instead of ones.
        assert_eq!(decode(&[0b0000_0000]), Err(HuffmanError::BadPadding));
        // A whole byte of ones as padding is too long.
        let mut long_pad = encode(b"a");
        long_pad.push(0xff);
        assert_eq!(decode(&long_pad), Err(HuffmanError::BadPadding));
        // EOS (30 ones) inside the string.
        assert_eq!(decode(&[0xff, 0xff, 0xff, 0xfc]), Err(HuffmanError::Eos));
    }
}
