//! Which flags were given, read off the flag definitions themselves (`Flags` serializes under
//! the flags' own names), so that no list of flags is kept by hand: the refusal of
//! fixed-behaviour flags (`unsupported::check`) and the warning about the flags
//! `--config-file` replaces both work from it.

use super::Flags;

/// Every flag given (set on the command line or by a `QRAFT_*` variable), kebab-case without
/// the dashes, with its value as text.
pub(super) fn given_flags(flags: &Flags) -> Vec<(String, String)> {
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(flags) else {
        return Vec::new();
    };
    map.into_iter()
        .filter_map(|(name, value)| {
            let text = match value {
                serde_json::Value::Null => return None,
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            Some((name, text))
        })
        .collect()
}

/// The flags `--config-file` makes etcd (and qraft) ignore: every other one given.
pub(super) fn ignored_flags(flags: &Flags) -> Vec<String> {
    given_flags(flags)
        .into_iter()
        .filter(|(name, _)| name != "config-file")
        .map(|(name, _)| format!("--{name}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::super::{Config, unsupported};
    use super::*;

    /// Every flag clap defines (kebab-case, without the dashes), but clap's own.
    fn defined_flags() -> Vec<String> {
        Flags::command()
            .get_arguments()
            .filter_map(|a| a.get_long())
            .filter(|long| !matches!(*long, "help" | "version"))
            .map(str::to_string)
            .collect()
    }

    /// Values to try a flag with: something of every shape a flag takes.
    const PROBES: &[&str] = &["0", "7", "false", "true", "x", "http://127.0.0.1:7"];

    fn parsed(flag: &str, value: &str) -> Option<Flags> {
        Flags::try_parse_from(["qraft", &format!("--{flag}={value}")]).ok()
    }

    /// A flag is consumed when giving it changes the outcome of `resolve`: an error, or
    /// another configuration. A flag nothing reads would leave both unchanged — silently
    /// ignored, which issue 17 forbids.
    #[test]
    fn every_defined_flag_is_resolved_or_refused() {
        let baseline = format!("{:?}", Config::resolve(Flags::default()).unwrap());
        for flag in defined_flags().iter().filter(|f| *f != "config-file") {
            let consumed = PROBES.iter().any(|value| {
                parsed(flag, value).is_some_and(|flags| match Config::resolve(flags) {
                    Err(_) => true,
                    Ok(config) => format!("{config:?}") != baseline,
                })
            });
            assert!(consumed, "--{flag} is neither resolved nor refused");
        }
    }

    #[test]
    fn every_fixed_behaviour_flag_is_defined() {
        let defined = defined_flags();
        for flag in unsupported::fixed_flags() {
            assert!(defined.iter().any(|d| d == flag), "--{flag} is not defined");
        }
    }

    #[test]
    fn the_config_file_ignores_every_other_defined_flag() {
        let defined = defined_flags();
        let mut argv = vec!["qraft".to_string()];
        for flag in &defined {
            let value = PROBES.iter().find(|v| parsed(flag, v).is_some());
            let value = value.unwrap_or_else(|| panic!("--{flag} takes none of {PROBES:?}"));
            argv.push(format!("--{flag}={value}"));
        }
        let flags = Flags::try_parse_from(argv).unwrap();
        let mut ignored = ignored_flags(&flags);
        ignored.sort();
        let mut expected: Vec<String> = (defined.iter())
            .filter(|f| *f != "config-file")
            .map(|f| format!("--{f}"))
            .collect();
        expected.sort();
        assert_eq!(ignored, expected);
    }
}
