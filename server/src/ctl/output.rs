//! Output in etcdctl's shapes. `simple` is line-oriented; `json` mirrors etcdctl's JSON (the
//! Go structs' field names, zero values omitted, byte strings base64); `table` draws
//! etcdctl's ASCII tables for member list and endpoint status/health and is `simple` elsewhere.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use qraft_proto::etcdserverpb::ResponseHeader;
use qraft_proto::mvccpb::KeyValue;
use serde_json::{Map, Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Simple,
    Json,
    Table,
}

pub struct Printer {
    pub format: Format,
    pub hex: bool,
}

impl Printer {
    pub fn new(format: Format, hex: bool) -> Self {
        Self { format, hex }
    }

    pub fn is_json(&self) -> bool {
        self.format == Format::Json
    }

    /// A byte string for simple output: as is (lossy UTF-8) or hex with `--hex`.
    pub fn bytes(&self, b: &[u8]) -> String {
        if self.hex {
            b.iter().map(|x| format!("\\x{x:02x}")).collect()
        } else {
            String::from_utf8_lossy(b).into_owned()
        }
    }

    pub fn print_json(&self, v: &Value) {
        println!("{v}");
    }
}

pub fn header_json(h: Option<&ResponseHeader>) -> Value {
    let h = h.cloned().unwrap_or_default();
    let mut m = Map::new();
    put_nonzero(&mut m, "cluster_id", h.cluster_id);
    put_nonzero(&mut m, "member_id", h.member_id);
    put_nonzero_i(&mut m, "revision", h.revision);
    put_nonzero(&mut m, "raft_term", h.raft_term);
    Value::Object(m)
}

pub fn kv_json(kv: &KeyValue) -> Value {
    let mut m = Map::new();
    if !kv.key.is_empty() {
        m.insert("key".into(), json!(B64.encode(&kv.key)));
    }
    put_nonzero_i(&mut m, "create_revision", kv.create_revision);
    put_nonzero_i(&mut m, "mod_revision", kv.mod_revision);
    put_nonzero_i(&mut m, "version", kv.version);
    if !kv.value.is_empty() {
        m.insert("value".into(), json!(B64.encode(&kv.value)));
    }
    put_nonzero_i(&mut m, "lease", kv.lease);
    Value::Object(m)
}

pub fn put_nonzero(m: &mut Map<String, Value>, k: &str, v: u64) {
    if v != 0 {
        m.insert(k.into(), json!(v));
    }
}

pub fn put_nonzero_i(m: &mut Map<String, Value>, k: &str, v: i64) {
    if v != 0 {
        m.insert(k.into(), json!(v));
    }
}

/// etcdctl's tables: a `+---+` border, upper-case headers, cells padded, one row per line.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    aligned_table(headers, rows, false)
}

/// [`table`] with the cells right-aligned (etcdctl's `snapshot status`); headers stay centred.
pub fn right_aligned_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    aligned_table(headers, rows, true)
}

fn aligned_table(headers: &[&str], rows: &[Vec<String>], right: bool) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let border: String = widths
        .iter()
        .map(|w| format!("+{}", "-".repeat(w + 2)))
        .collect::<String>()
        + "+\n";
    let line = |cells: Vec<String>, right: bool| -> String {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| match right {
                true => format!("| {c:>w$} "),
                false => format!("| {c:^w$} "),
            })
            .collect::<String>()
            + "|\n"
    };
    let mut out = border.clone();
    out += &line(headers.iter().map(|h| h.to_uppercase()).collect(), false);
    out += &border;
    for row in rows {
        out += &line(row.clone(), right);
    }
    out += &border;
    out
}

/// Sizes as etcdctl prints them (go-humanize's SI bytes: `25 kB`, `1.2 MB`).
///
/// go-humanize rounds twice: first to one decimal (half up), then the
/// formatter rounds that to the printed precision (half to even, as Rust's
/// formatter does too). 745,460 bytes is therefore `746 kB`, not `745 kB`.
pub fn human_bytes(n: i64) -> String {
    let n = n.max(0) as f64;
    if n < 10.0 {
        return format!("{n} B");
    }
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let e = (n.ln() / 1000f64.ln()).floor().min(5.0);
    let v = (n / 1000f64.powf(e) * 10.0 + 0.5).floor() / 10.0;
    let unit = units[e as usize];
    if v < 10.0 {
        format!("{v:.1} {unit}")
    } else {
        format!("{v:.0} {unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_json_is_base64_and_omits_zeroes() {
        let kv = KeyValue {
            key: b"foo".to_vec().into(),
            value: b"bar".to_vec().into(),
            create_revision: 2,
            mod_revision: 2,
            version: 1,
            lease: 0,
        };
        assert_eq!(
            kv_json(&kv).to_string(),
            r#"{"key":"Zm9v","create_revision":2,"mod_revision":2,"version":1,"value":"YmFy"}"#
        );
    }

    #[test]
    fn tables_have_etcdctls_borders() {
        let t = table(&["id", "name"], &[vec!["1".into(), "default".into()]]);
        assert_eq!(
            t,
            "+----+---------+\n| ID |  NAME   |\n+----+---------+\n| 1  | default |\n+----+---------+\n"
        );
    }

    #[test]
    fn sizes_like_humanize() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(25_000), "25 kB");
        assert_eq!(human_bytes(1_200_000), "1.2 MB");
        assert_eq!(human_bytes(745_460), "746 kB");
        assert_eq!(human_bytes(745_440), "745 kB");
        assert_eq!(human_bytes(9_960), "10 kB");
        assert_eq!(human_bytes(746_500), "746 kB");
        assert_eq!(human_bytes(745_500), "746 kB");
        assert_eq!(human_bytes(9_949), "9.9 kB");
    }
}
