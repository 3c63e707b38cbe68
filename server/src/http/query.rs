//! A URL query string as a list of decoded `(name, value)` pairs, in order, repeats kept.

/// Parses `a=1&b&a=2` (with `+` and `%XX` decoding). Malformed escapes are kept literally:
/// a probe's query is never worth an error.
pub fn parse(query: Option<&str>) -> Vec<(String, String)> {
    let Some(query) = query else {
        return Vec::new();
    };
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) => (decode(name), decode(value)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

/// Whether `name` appears at all (with or without a value), as Go's `Query()[name]` found.
pub fn has(pairs: &[(String, String)], name: &str) -> bool {
    pairs.iter().any(|(n, _)| n == name)
}

/// Every non-empty value of `name`.
pub fn values<'a>(pairs: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(n, v)| n == name && !v.is_empty())
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The first value of `name`, or "" (Go's `Query().Get`).
pub fn first<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', hi, lo]) => hex(*hi).zip(hex(*lo)).map(|(hi, lo)| hi << 4 | lo),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, b) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_repeats_flags_and_escapes() {
        let q = parse(Some(
            "verbose&exclude=a&exclude=&exclude=b%5Fc&x=1+2&bad=%zz&end=%4&u=%C3%A9%",
        ));
        assert!(has(&q, "verbose"));
        assert!(!has(&q, "verbos"));
        assert_eq!(values(&q, "exclude"), ["a", "b_c"]);
        assert_eq!(first(&q, "x"), "1 2");
        assert_eq!(first(&q, "bad"), "%zz");
        assert_eq!(first(&q, "end"), "%4");
        assert_eq!(first(&q, "u"), "é%");
        assert_eq!(first(&q, "missing"), "");
        assert!(parse(None).is_empty());
    }
}
