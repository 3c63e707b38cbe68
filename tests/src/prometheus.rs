//! A parser for the Prometheus / OpenMetrics text exposition format, enough to check a
//! member's `/metrics` by family, sample and label instead of by substring.
//!
//! Handles `# TYPE` / `# HELP` / `# EOF`, label sets with escaped values (`\\`, `\"`, `\n`),
//! and the special values `+Inf`, `-Inf`, `NaN`; an optional timestamp after the value is
//! ignored. A malformed line is an error naming it.

use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// One scrape: the declared family types and every sample.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    pub types: HashMap<String, String>,
    pub samples: Vec<Sample>,
}

impl Scrape {
    pub fn parse(text: &str) -> Result<Scrape, String> {
        let mut scrape = Scrape::default();
        for line in text.lines() {
            let line = line.trim_end();
            if line.is_empty() || line == "# EOF" {
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (family, kind) = rest
                    .split_once(' ')
                    .ok_or_else(|| format!("bad TYPE line {line:?}"))?;
                scrape.types.insert(family.to_string(), kind.to_string());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            scrape.samples.push(parse_sample(line)?);
        }
        Ok(scrape)
    }

    /// The declared type of `family` (`counter`, `gauge`, `histogram`, ...).
    pub fn type_of(&self, family: &str) -> Option<&str> {
        self.types.get(family).map(String::as_str)
    }

    /// Every sample named `name`.
    pub fn samples<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// The value of the sample `name` whose labels are exactly `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples(name)
            .find(|s| s.labels == wanted)
            .map(|s| s.value)
    }

    /// As [`Scrape::value`], 0 when the sample is absent (a labelled counter not yet used).
    pub fn value_or_zero(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels).unwrap_or(0.0)
    }
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let bad = |why: &str| format!("{why} in sample line {line:?}");
    let name_end = line.find(['{', ' ']).ok_or_else(|| bad("no value"))?;
    let name = &line[..name_end];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    {
        return Err(bad("bad metric name"));
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, remaining) = parse_labels(after).map_err(|e| bad(&e))?;
        labels = parsed;
        rest = remaining;
    }
    let mut fields = rest.split_whitespace();
    let value = fields.next().ok_or_else(|| bad("no value"))?;
    let value = match value {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().map_err(|_| bad("bad value"))?,
    };
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Parses `k="v",k2="v2"}`; returns the labels and what follows the closing brace.
fn parse_labels(mut s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let (key, rest) = s.split_once("=\"").ok_or("label without =\"")?;
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("bad label name {key:?}"));
        }
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    _ => return Err("bad escape in label value".into()),
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(key.to_string(), value).is_some() {
            return Err(format!("label {key} twice"));
        }
        s = &rest[end + 1..];
        s = s.strip_prefix(',').unwrap_or(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP qraft_x_total Things.\n\
# TYPE qraft_x counter\n\
qraft_x_total{To=\"abc\",kind=\"a \\\"b\\\" \\\\ c\"} 42\n\
qraft_x_total{To=\"def\"} 1.5e3\n\
# TYPE qraft_h histogram\n\
qraft_h_bucket{le=\"0.001\"} 0\n\
qraft_h_bucket{le=\"+Inf\"} 3\n\
qraft_h_count 3\n\
qraft_g 7 1700000000\n\
# EOF\n";

    #[test]
    fn parses_types_samples_labels_and_escapes() {
        let scrape = Scrape::parse(TEXT).unwrap();
        assert_eq!(scrape.type_of("qraft_x"), Some("counter"));
        assert_eq!(scrape.type_of("qraft_h"), Some("histogram"));
        assert_eq!(
            scrape.value("qraft_x_total", &[("To", "abc"), ("kind", "a \"b\" \\ c")]),
            Some(42.0)
        );
        assert_eq!(
            scrape.value("qraft_x_total", &[("To", "def")]),
            Some(1500.0)
        );
        assert_eq!(scrape.value("qraft_x_total", &[("To", "zzz")]), None);
        assert_eq!(scrape.value("qraft_h_bucket", &[("le", "+Inf")]), Some(3.0));
        assert_eq!(scrape.value("qraft_h_count", &[]), Some(3.0));
        assert_eq!(scrape.value("qraft_g", &[]), Some(7.0));
        assert_eq!(scrape.samples("qraft_x_total").count(), 2);
    }

    #[test]
    fn malformed_lines_are_errors() {
        for bad in [
            "qraft_x{a=\"1\" 3",
            "qraft_x{a=1} 3",
            "qraft_x",
            "qraft_x abc",
            "qraft_x{a=\"1\",a=\"2\"} 3",
            "bad-name 1",
        ] {
            assert!(Scrape::parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
