//! The URLs qraft's flags take (`https://127.0.0.1:2379`): parsed once, with etcd's rules for what
//! a listener may bind to.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

/// How a listener speaks. QUIC always runs TLS, so peer and client URLs are `https`; the metrics
/// listener is plain HTTP (`http`), as etcd's `--listen-metrics-urls` usually is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// One `scheme://host:port` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid URL {url:?}: {reason}")]
pub struct UrlError {
    pub url: String,
    pub reason: &'static str,
}

impl FromStr for Url {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| UrlError {
            url: s.to_string(),
            reason,
        };
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| err("expected scheme://host:port"))?;
        let scheme = match scheme {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return Err(err("scheme must be http or https")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') || rest.contains('?') {
            return Err(err("a path or query is not allowed"));
        }
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| err("URL address does not have the form \"host:port\""))?;
        let port: u16 = port
            .parse()
            .map_err(|_| err("port is not a number in 0..65535"))?;
        if host.is_empty() {
            return Err(err("host is empty"));
        }
        if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
            return Err(err("an IPv6 host must be written in brackets"));
        }
        Ok(Url {
            scheme,
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

impl Url {
    /// The address a listener binds to. Like etcd, a listen URL must name an IP (`localhost` is
    /// accepted as 127.0.0.1 for convenience) so that binding never depends on DNS.
    pub fn bind_addr(&self) -> Result<SocketAddr, UrlError> {
        let ip = self.ip().ok_or_else(|| UrlError {
            url: self.to_string(),
            reason: "expected an IP address in a listen URL",
        })?;
        Ok(SocketAddr::new(ip, self.port))
    }

    /// The host as an IP, when it is one (or `localhost`).
    pub fn ip(&self) -> Option<IpAddr> {
        if self.host == "localhost" {
            return Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        self.host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()
    }

    /// The host without IPv6 brackets, as TLS server names and certificates want it.
    pub fn host_name(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }
}

/// Parses a comma-separated URL list as etcd's flags take it (`a,b,c`).
pub fn parse_list(s: &str) -> Result<Vec<Url>, UrlError> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(Url::from_str)
        .collect()
}

pub fn join_list(urls: &[Url]) -> String {
    urls.iter()
        .map(Url::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_back() {
        let u: Url = "https://127.0.0.1:2379".parse().unwrap();
        assert_eq!(u.scheme, Scheme::Https);
        assert_eq!(u.port, 2379);
        assert_eq!(u.to_string(), "https://127.0.0.1:2379");
        let v6: Url = "https://[::1]:2380/".parse().unwrap();
        assert_eq!(v6.bind_addr().unwrap(), "[::1]:2380".parse().unwrap());
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "127.0.0.1:2379",
            "ftp://a:1",
            "https://a",
            "https://a:99999",
            "https://::1:80",
            "https://a:1/path",
            "https://:1",
        ] {
            assert!(bad.parse::<Url>().is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn listen_urls_need_an_ip() {
        let u: Url = "https://example.com:2379".parse().unwrap();
        assert!(u.bind_addr().is_err());
        let l: Url = "https://localhost:2379".parse().unwrap();
        assert_eq!(l.bind_addr().unwrap(), "127.0.0.1:2379".parse().unwrap());
    }

    #[test]
    fn list_parsing() {
        let l = parse_list("https://127.0.0.1:1, https://127.0.0.1:2").unwrap();
        assert_eq!(join_list(&l), "https://127.0.0.1:1,https://127.0.0.1:2");
    }
}
