//! Durations in flags: Go's `time.ParseDuration` (`300ms`, `1s`, `1h30m`, `1.5h`) for the flags
//! etcd parses that way (`--auth-token ...,ttl=`, `--auto-compaction-retention`), and one
//! number with one unit for the others (`--corrupt-check-time`, `--grpc-keepalive-*`).

use std::time::Duration;

/// A duration as etcd's flags write them, one unit: `0`, `500ms`, `30s`, `5m`, `1h`.
pub(crate) fn parse_duration_ms(text: &str) -> Option<u64> {
    if text == "0" {
        return Some(0);
    }
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let scale = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    number.checked_mul(scale)
}

/// `None` for anything Go would refuse (no unit, an unknown unit, a sign, overflow); `0`
/// alone is allowed as in Go.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = text;
    let mut total_ns: u128 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        if number.is_empty() || number == "." {
            return None;
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale_ns: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        total_ns = total_ns.checked_add(whole.checked_mul(scale_ns)?)?;
        let mut place = scale_ns;
        for digit in fraction.chars() {
            place /= 10;
            total_ns += u128::from(digit.to_digit(10)?) * place;
        }
        rest = after;
    }
    let secs = u64::try_from(total_ns / 1_000_000_000).ok()?;
    Some(Duration::new(secs, (total_ns % 1_000_000_000) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let ms = |text| parse_go_duration(text).map(|d| d.as_millis());
        assert_eq!(ms("0"), Some(0));
        assert_eq!(ms("1s"), Some(1000));
        assert_eq!(ms("300ms"), Some(300));
        assert_eq!(ms("1h30m"), Some(5_400_000));
        assert_eq!(ms("1.5h"), Some(5_400_000));
        assert_eq!(ms("2m0.5s"), Some(120_500));
        for bad in ["", "1", "5 m", "-1s", "1d", "s", ".s", "1..5s"] {
            assert_eq!(ms(bad), None, "{bad:?}");
        }
    }
}
