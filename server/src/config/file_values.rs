//! The shapes etcd's YAML file gives values that qraft's flags hold as text: any scalar
//! (`max-txn-ops: 5`, `auto-compaction-retention: 1` or `"30m"`, `pre-vote: true`), lists
//! (`log-outputs: [stderr]`, `cipher-suites: [...]`, which etcd reads as `[]string`) and
//! durations (etcd's `time.Duration` keys are integers of nanoseconds in its file, as its YAML
//! goes through JSON; a string such as `5s` is taken too).

use serde::Deserialize;
use serde::de::{self, Deserializer};

/// A scalar of any YAML type, kept as the text a flag would carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_norway::Value::deserialize(d)? {
            serde_norway::Value::String(s) => Ok(Scalar(s)),
            serde_norway::Value::Bool(b) => Ok(Scalar(b.to_string())),
            serde_norway::Value::Number(n) => Ok(Scalar(n.to_string())),
            serde_norway::Value::Null => Ok(Scalar(String::new())),
            _ => Err(de::Error::custom("expected a single value")),
        }
    }
}

/// A list of strings (or one string, comma-separated as on the command line), joined with
/// commas as the flag takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct List(pub String);

impl<'de> Deserialize<'de> for List {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_norway::Value::deserialize(d)? {
            serde_norway::Value::String(s) => Ok(List(s)),
            serde_norway::Value::Sequence(items) => {
                let items: Result<Vec<String>, D::Error> = (items.into_iter())
                    .map(|item| match item {
                        serde_norway::Value::String(s) => Ok(s),
                        _ => Err(de::Error::custom("expected a list of strings")),
                    })
                    .collect();
                Ok(List(items?.join(",")))
            }
            _ => Err(de::Error::custom("expected a list of strings")),
        }
    }
}

/// A duration: an integer of nanoseconds (etcd's file format), or a flag-style text (`5s`).
/// Integers become the text of whole seconds (`5s`) or milliseconds (`1500ms`); a fraction of a
/// millisecond is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Nanos(pub String);

impl<'de> Deserialize<'de> for Nanos {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_norway::Value::deserialize(d)? {
            serde_norway::Value::String(s) => Ok(Nanos(s)),
            serde_norway::Value::Number(n) => match n.as_u64() {
                Some(0) => Ok(Nanos("0".to_string())),
                Some(ns) if ns % 1_000_000_000 == 0 => {
                    Ok(Nanos(format!("{}s", ns / 1_000_000_000)))
                }
                Some(ns) if ns % 1_000_000 == 0 => Ok(Nanos(format!("{}ms", ns / 1_000_000))),
                _ => Err(de::Error::custom(format!(
                    "duration {n}: expected whole milliseconds, in nanoseconds"
                ))),
            },
            _ => Err(de::Error::custom(
                "expected a duration (nanoseconds, or text such as 5s)",
            )),
        }
    }
}
