//! etcd's `--tls-min-version`, `--tls-max-version` and `--cipher-suites`, for the listeners
//! that run TLS over TCP (the gRPC / HTTP client listener). QUIC requires TLS 1.3, so qraft's
//! QUIC listeners (peers, QUIC clients) keep TLS 1.3 and its fixed suites whatever is asked.
//!
//! As etcd (Go's `crypto/tls`): TLS 1.2 and 1.3 by default (etcd 3.6's `--tls-min-version`
//! is `TLS1.2`); the cipher suites listed, by Go's names, restrict TLS 1.2 only (TLS 1.3's
//! suites are not configurable in Go, its names are accepted and change nothing); listing
//! suites with TLS 1.3 as the minimum is refused. Names Go does not know are refused with
//! etcd's message; names of suites rustls does not implement (CBC, RC4, 3DES, RSA key
//! exchange: all of Go's "insecure" list and the CBC ones) are refused with the list qraft
//! supports.

use std::sync::Arc;

use rustls::SupportedCipherSuite;
use rustls::crypto::CryptoProvider;
use rustls::crypto::ring::cipher_suite as ring;
use rustls::version::{TLS12, TLS13};

/// A TLS protocol version, as etcd names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

impl TlsVersion {
    /// etcd's `GetTLSVersion`: `""` is Go's default.
    pub fn parse(text: &str, default: TlsVersion) -> Result<TlsVersion, String> {
        match text {
            "" => Ok(default),
            "TLS1.2" => Ok(TlsVersion::Tls12),
            "TLS1.3" => Ok(TlsVersion::Tls13),
            other => Err(format!(
                "unexpected TLS version {other:?} (must be one of: TLS1.2, TLS1.3)"
            )),
        }
    }
}

/// What the TCP listeners' TLS accepts.
#[derive(Debug, Clone)]
pub struct TcpTlsPolicy {
    pub min: TlsVersion,
    pub max: TlsVersion,
    /// TLS 1.2 suites in preference order; empty = every suite qraft implements.
    pub tls12_suites: Vec<SupportedCipherSuite>,
}

impl Default for TcpTlsPolicy {
    /// etcd 3.6's defaults: TLS 1.2 to 1.3, Go's default suites.
    fn default() -> Self {
        Self {
            min: TlsVersion::Tls12,
            max: TlsVersion::Tls13,
            tls12_suites: Vec::new(),
        }
    }
}

/// The TLS 1.2 suites qraft implements, by Go's names (and Go's short aliases of the two
/// ChaCha20 ones).
const TLS12_SUITES: &[(&str, SupportedCipherSuite)] = &[
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        ring::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        ring::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        ring::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        ring::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        ring::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
        ring::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        ring::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
        ring::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
];

/// Go's TLS 1.3 suite names: accepted, and (as in Go) they configure nothing.
const TLS13_NAMES: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

/// The rest of Go's `tls.CipherSuites()` and `tls.InsecureCipherSuites()`: suites etcd
/// accepts that rustls does not implement.
const GO_ONLY: &[&str] = &[
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
];

impl TcpTlsPolicy {
    /// Reads etcd's three flags (`min`/`max` as given, `""` for Go's default; `suites` the
    /// comma-separated names, empty for the default). Errors are etcd's where etcd refuses,
    /// or say why qraft cannot serve what etcd would.
    pub fn from_flags(min: &str, max: &str, suites: &str) -> Result<TcpTlsPolicy, String> {
        let min = TlsVersion::parse(min, TlsVersion::Tls12)?;
        let max = TlsVersion::parse(max, TlsVersion::Tls13)?;
        if min > max {
            return Err(format!(
                "min version ({}) is greater than max version ({})",
                name(min),
                name(max)
            ));
        }
        let names: Vec<&str> = suites.split(',').filter(|s| !s.is_empty()).collect();
        if min == TlsVersion::Tls13 && !names.is_empty() {
            return Err("cipher suites cannot be configured when only TLS1.3 is enabled".into());
        }
        let mut tls12_suites = Vec::new();
        for suite in names {
            if let Some((_, found)) = TLS12_SUITES.iter().find(|(n, _)| *n == suite) {
                if !tls12_suites.contains(found) {
                    tls12_suites.push(*found);
                }
            } else if TLS13_NAMES.contains(&suite) {
                continue;
            } else if GO_ONLY.contains(&suite) {
                let supported: Vec<&str> = TLS12_SUITES.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "TLS cipher suite {suite:?} is not supported by qraft (supported: {})",
                    supported.join(", ")
                ));
            } else {
                return Err(format!("unexpected TLS cipher suite {suite:?}"));
            }
        }
        // Only TLS 1.3 names listed: Go would then offer no TLS 1.2 suite at all.
        if tls12_suites.is_empty() && !suites.is_empty() && min == TlsVersion::Tls12 {
            return Err(
                "--cipher-suites lists no TLS 1.2 suite: TLS 1.2 could not be negotiated".into(),
            );
        }
        Ok(TcpTlsPolicy {
            min,
            max,
            tls12_suites,
        })
    }

    /// The crypto provider with this policy's suites: TLS 1.3's always, TLS 1.2's as listed.
    pub fn provider(&self) -> Arc<CryptoProvider> {
        let mut provider = rustls::crypto::ring::default_provider();
        if !self.tls12_suites.is_empty() {
            let tls13 = (provider.cipher_suites.iter())
                .filter(|s| s.version() == &TLS13)
                .copied();
            provider.cipher_suites = self.tls12_suites.iter().copied().chain(tls13).collect();
        }
        Arc::new(provider)
    }

    /// The protocol versions to offer.
    pub fn versions(&self) -> Vec<&'static rustls::SupportedProtocolVersion> {
        let mut versions = Vec::new();
        if self.max == TlsVersion::Tls13 {
            versions.push(&TLS13);
        }
        if self.min == TlsVersion::Tls12 {
            versions.push(&TLS12);
        }
        versions
    }
}

fn name(version: TlsVersion) -> &'static str {
    match version {
        TlsVersion::Tls12 => "TLS1.2",
        TlsVersion::Tls13 => "TLS1.3",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_defaults_and_errors() {
        let p = TcpTlsPolicy::from_flags("", "", "").unwrap();
        assert_eq!((p.min, p.max), (TlsVersion::Tls12, TlsVersion::Tls13));
        assert_eq!(p.versions().len(), 2);
        let p = TcpTlsPolicy::from_flags("TLS1.3", "", "").unwrap();
        assert_eq!(p.versions(), vec![&TLS13]);
        let p = TcpTlsPolicy::from_flags("TLS1.2", "TLS1.2", "").unwrap();
        assert_eq!(p.versions(), vec![&TLS12]);
        let err = |min, max, suites| TcpTlsPolicy::from_flags(min, max, suites).unwrap_err();
        assert_eq!(
            err("TLS1.1", "", ""),
            "unexpected TLS version \"TLS1.1\" (must be one of: TLS1.2, TLS1.3)"
        );
        assert_eq!(
            err("TLS1.3", "TLS1.2", ""),
            "min version (TLS1.3) is greater than max version (TLS1.2)"
        );
        assert_eq!(
            err("TLS1.3", "", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
            "cipher suites cannot be configured when only TLS1.3 is enabled"
        );
        assert_eq!(
            err("", "", "TLS_NOPE"),
            "unexpected TLS cipher suite \"TLS_NOPE\""
        );
        assert!(err("", "", "TLS_RSA_WITH_AES_128_CBC_SHA").contains("not supported by qraft"));
    }

    #[test]
    fn listed_suites_restrict_tls12_and_keep_tls13() {
        let p = TcpTlsPolicy::from_flags(
            "",
            "",
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,TLS_AES_128_GCM_SHA256",
        )
        .unwrap();
        assert_eq!(
            p.tls12_suites,
            vec![ring::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256]
        );
        let suites = p.provider().cipher_suites.clone();
        assert_eq!(suites.iter().filter(|s| s.version() == &TLS12).count(), 1);
        assert_eq!(suites.iter().filter(|s| s.version() == &TLS13).count(), 3);
    }
}
