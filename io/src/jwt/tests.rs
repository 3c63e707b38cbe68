//! Signed tokens: round trips for each key kind etcd reads, and the refusals (expired, forged,
//! tampered, another method, verify-only).
//!
//! The keys in `testdata/` are test-only, made with openssl: `rsa.key` (PKCS#1, as etcd's
//! fixtures) with its self-signed `rsa.crt` (etcd's e2e suite passes a certificate as
//! `pub-key`), `other-rsa.key`, `ec.key` (SEC1, P-256) with `ec.pub`, `ed25519.key`
//! (PKCS#8) with `ed25519.pub`.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::{Claims, JwtError, JwtOptions, SignedTokens};

fn key(name: &str) -> Option<PathBuf> {
    Some(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("src/jwt/testdata")
            .join(name),
    )
}

fn options(method: &str, public: Option<PathBuf>, private: Option<PathBuf>) -> JwtOptions {
    JwtOptions {
        sign_method: method.into(),
        public_key: public,
        private_key: private,
        ttl: Duration::from_secs(60),
    }
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

const NOW: u64 = 1_800_000_000;

fn alice() -> Option<Claims> {
    Some(Claims {
        username: "alice".into(),
        revision: 7,
    })
}

#[test]
fn every_key_kind_signs_and_verifies() {
    let cases = [
        ("RS256", key("rsa.crt"), key("rsa.key")),
        ("RS384", None, key("rsa.key")),
        ("RS512", key("rsa.crt"), key("rsa.key")),
        ("PS256", key("rsa.crt"), key("rsa.key")),
        ("PS512", None, key("rsa.key")),
        ("ES256", key("ec.pub"), key("ec.key")),
        ("EdDSA", key("ed25519.pub"), key("ed25519.key")),
        ("HS256", None, key("other-rsa.key")),
        ("HS512", None, key("other-rsa.key")),
    ];
    for (method, public, private) in cases {
        let tokens = SignedTokens::load(&options(method, public, private)).unwrap();
        let token = tokens.sign("alice", 7, at(NOW)).unwrap();
        assert_eq!(tokens.verify(&token, at(NOW)), alice(), "{method}");
    }
}

#[test]
fn claims_are_etcds() {
    let tokens = SignedTokens::load(&options("RS256", key("rsa.crt"), key("rsa.key"))).unwrap();
    let token = tokens.sign("al\"ice", 7, at(NOW)).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header = URL_SAFE_NO_PAD.decode(parts[0]).unwrap();
    assert_eq!(header, br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(
        claims,
        serde_json::json!({"exp": NOW + 60, "revision": 7, "username": "al\"ice"})
    );
}

#[test]
fn expired_tokens_are_refused() {
    let tokens = SignedTokens::load(&options("RS256", None, key("rsa.key"))).unwrap();
    let token = tokens.sign("alice", 7, at(NOW)).unwrap();
    // golang-jwt: valid while now <= exp.
    assert_eq!(tokens.verify(&token, at(NOW + 60)), alice());
    assert_eq!(tokens.verify(&token, at(NOW + 61)), None);
}

#[test]
fn forged_and_tampered_tokens_are_refused() {
    let tokens = SignedTokens::load(&options("RS256", key("rsa.crt"), key("rsa.key"))).unwrap();
    let forger = SignedTokens::load(&options("RS256", None, key("other-rsa.key"))).unwrap();
    let forged = forger.sign("root", 7, at(NOW)).unwrap();
    assert_eq!(tokens.verify(&forged, at(NOW)), None);

    // Another user's name under a genuine signature.
    let genuine = tokens.sign("alice", 7, at(NOW)).unwrap();
    let parts: Vec<&str> = genuine.split('.').collect();
    let claims = format!(r#"{{"exp":{},"revision":7,"username":"root"}}"#, NOW + 60);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims),
        parts[2]
    );
    assert_eq!(tokens.verify(&tampered, at(NOW)), None);

    // `alg: none`, and a token of another method with the same key material.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        parts[1]
    );
    assert_eq!(tokens.verify(&none, at(NOW)), None);
    let ps = SignedTokens::load(&options("PS256", None, key("rsa.key"))).unwrap();
    let other_method = ps.sign("alice", 7, at(NOW)).unwrap();
    assert_eq!(tokens.verify(&other_method, at(NOW)), None);

    for junk in ["", "a.b", "a.b.c.d", "simpletoken.12", "..."] {
        assert_eq!(tokens.verify(junk, at(NOW)), None, "{junk:?}");
    }
}

#[test]
fn a_public_key_alone_verifies_but_does_not_sign() {
    let signer = SignedTokens::load(&options("RS256", None, key("rsa.key"))).unwrap();
    let verifier = SignedTokens::load(&options("RS256", key("rsa.crt"), None)).unwrap();
    let token = signer.sign("alice", 7, at(NOW)).unwrap();
    assert_eq!(verifier.verify(&token, at(NOW)), alice());
    assert!(matches!(
        verifier.sign("alice", 7, at(NOW)),
        Err(JwtError::VerifyOnly)
    ));
}

#[test]
fn bad_options_are_refused_with_etcds_errors() {
    let err = |o: JwtOptions| SignedTokens::load(&o).unwrap_err().to_string();
    assert_eq!(
        err(options("RS256", key("rsa.crt"), key("other-rsa.key"))),
        "auth: public and private keys don't match"
    );
    assert_eq!(err(options("RS256", None, None)), "auth: missing key data");
    assert_eq!(
        err(options("XS256", None, key("rsa.key"))),
        "auth: invalid auth signature method \"XS256\""
    );
    assert!(err(options("ES512", None, key("ec.key"))).contains("not supported"));
    // An EC key for an RSA method, and a missing file.
    assert!(err(options("RS256", None, key("ec.key"))).contains("ec.key"));
    assert!(err(options("RS256", None, key("missing.key"))).contains("missing.key"));
}
