//! `--auth-token`: etcd's `simple` (the default) or `jwt,pub-key=..,priv-key=..,sign-method=..,
//! ttl=..` (signed tokens, `qraft_io::jwt`). Options are split as etcd splits them (comma
//! separated `key=value`, no key twice); the key files are read when the member starts.

use std::path::PathBuf;

use qraft_io::jwt::{DEFAULT_TTL, JwtOptions};

use super::duration::parse_go_duration;
use super::{ConfigError, invalid};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AuthToken {
    #[default]
    Simple,
    Jwt(JwtOptions),
}

/// etcd's error for a malformed `--auth-token`.
const INVALID: &str = "auth: invalid auth options";

pub fn parse_auth_token(text: Option<&str>) -> Result<AuthToken, ConfigError> {
    let Some(text) = text else {
        return Ok(AuthToken::Simple);
    };
    let bad = |why: String| invalid(format!("--auth-token {text:?}: {INVALID} ({why})"));
    let mut parts = text.split(',');
    let kind = parts.next().unwrap_or_default();
    let mut options: Vec<(&str, &str)> = Vec::new();
    for part in parts {
        let (key, value) = part
            .split_once('=')
            .filter(|(_, value)| !value.contains('='))
            .ok_or_else(|| bad(format!("{part:?} is not key=value")))?;
        if options.iter().any(|(k, _)| *k == key) {
            return Err(bad(format!("{key} is given twice")));
        }
        options.push((key, value));
    }
    match kind {
        "simple" => Ok(AuthToken::Simple),
        "jwt" => {
            let option = |name: &str| {
                options
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| *v)
                    .filter(|v| !v.is_empty())
            };
            if let Some((key, _)) = options
                .iter()
                .find(|(k, _)| !["pub-key", "priv-key", "sign-method", "ttl"].contains(k))
            {
                return Err(bad(format!(
                    "unknown option {key:?}; jwt takes pub-key, priv-key, sign-method, ttl"
                )));
            }
            let ttl = match option("ttl") {
                None => DEFAULT_TTL,
                Some(ttl) => parse_go_duration(ttl)
                    .ok_or_else(|| bad(format!("ttl {ttl:?} is not a duration such as 5m")))?,
            };
            Ok(AuthToken::Jwt(JwtOptions {
                sign_method: option("sign-method").unwrap_or_default().to_owned(),
                public_key: option("pub-key").map(PathBuf::from),
                private_key: option("priv-key").map(PathBuf::from),
                ttl,
            }))
        }
        other => Err(bad(format!(
            "unknown token type {other:?}: expected simple or jwt"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn etcds_token_options() {
        assert_eq!(parse_auth_token(None).unwrap(), AuthToken::Simple);
        assert_eq!(parse_auth_token(Some("simple")).unwrap(), AuthToken::Simple);
        let jwt = parse_auth_token(Some(
            "jwt,pub-key=a.crt,priv-key=a.key,sign-method=RS256,ttl=1s",
        ))
        .unwrap();
        assert_eq!(
            jwt,
            AuthToken::Jwt(JwtOptions {
                sign_method: "RS256".into(),
                public_key: Some("a.crt".into()),
                private_key: Some("a.key".into()),
                ttl: Duration::from_secs(1),
            })
        );
        let AuthToken::Jwt(defaults) = parse_auth_token(Some("jwt,sign-method=ES256")).unwrap()
        else {
            panic!("jwt expected");
        };
        assert_eq!(defaults.ttl, Duration::from_secs(300));
        for bad in [
            "jwt,ttl",
            "jwt,ttl=1s,ttl=2s",
            "jwt,ttl=soon",
            "jwt,colour=red",
            "oauth",
        ] {
            let err = parse_auth_token(Some(bad)).unwrap_err().to_string();
            assert!(err.contains("auth: invalid auth options"), "{bad}: {err}");
        }
    }
}
