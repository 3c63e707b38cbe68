//! etcd's signed auth tokens (`--auth-token jwt,pub-key=..,priv-key=..,sign-method=..,ttl=..`):
//! JSON Web Tokens carrying the claims `username`, `revision` (the auth revision they were
//! issued at) and `exp` (Unix seconds), signed with the member's key.
//!
//! Why here and not in the core: signatures cost tens of microseconds (RSA signing a
//! millisecond), and nothing slow may run on the raft loop. The client listener's tasks check a
//! token before its request reaches the loop and hand the core the claims
//! (`qraftpb::TokenClaims`); the core answers an Authenticate with the auth revision, which
//! the listener signs into a token here. Nothing is kept per token, so a token from one member
//! works on every member configured with the same key, as etcd's.
//!
//! Built on ring, the crypto rustls already uses here: RS256/384/512, PS256/384/512,
//! ES256/384, EdDSA (Ed25519) and HS256/384/512. ES512 (P-521) is refused at start: ring does
//! not implement that curve.

mod keys;

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::{hmac, signature};

use keys::{P256_OID, P384_OID, Signer, Verifier};

/// etcd's default token lifetime.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5 * 60);

/// `--auth-token jwt,...` as given (files not read yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtOptions {
    /// etcd's `sign-method`, e.g. `RS256`.
    pub sign_method: String,
    pub public_key: Option<PathBuf>,
    pub private_key: Option<PathBuf>,
    pub ttl: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    /// etcd's `ErrInvalidAuthMethod`.
    #[error("auth: invalid auth signature method {0:?}")]
    InvalidMethod(String),
    #[error("sign-method ES512 is not supported by qraft (its crypto has no P-521 curve)")]
    UnsupportedMethod,
    /// etcd's `ErrMissingKey`.
    #[error("auth: missing key data")]
    MissingKey,
    /// etcd's `ErrKeyMismatch`.
    #[error("auth: public and private keys don't match")]
    KeyMismatch,
    /// etcd's `ErrVerifyOnly`: Authenticate on a member given only a public key.
    #[error("auth: token signing attempted with verify-only key")]
    VerifyOnly,
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("auth: failed to sign the token")]
    Signing,
}

/// etcd's signing methods (golang-jwt's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignMethod {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    EdDsa,
    Hs256,
    Hs384,
    Hs512,
}

impl SignMethod {
    const ALL: [SignMethod; 12] = [
        SignMethod::Rs256,
        SignMethod::Rs384,
        SignMethod::Rs512,
        SignMethod::Ps256,
        SignMethod::Ps384,
        SignMethod::Ps512,
        SignMethod::Es256,
        SignMethod::Es384,
        SignMethod::EdDsa,
        SignMethod::Hs256,
        SignMethod::Hs384,
        SignMethod::Hs512,
    ];

    pub fn parse(name: &str) -> Result<SignMethod, JwtError> {
        if name == "ES512" {
            return Err(JwtError::UnsupportedMethod);
        }
        Self::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| JwtError::InvalidMethod(name.to_owned()))
    }

    /// The name in the token header's `alg` (case-sensitive, as in golang-jwt).
    pub fn name(self) -> &'static str {
        match self {
            SignMethod::Rs256 => "RS256",
            SignMethod::Rs384 => "RS384",
            SignMethod::Rs512 => "RS512",
            SignMethod::Ps256 => "PS256",
            SignMethod::Ps384 => "PS384",
            SignMethod::Ps512 => "PS512",
            SignMethod::Es256 => "ES256",
            SignMethod::Es384 => "ES384",
            SignMethod::EdDsa => "EdDSA",
            SignMethod::Hs256 => "HS256",
            SignMethod::Hs384 => "HS384",
            SignMethod::Hs512 => "HS512",
        }
    }

    fn hmac(self) -> Option<hmac::Algorithm> {
        match self {
            SignMethod::Hs256 => Some(hmac::HMAC_SHA256),
            SignMethod::Hs384 => Some(hmac::HMAC_SHA384),
            SignMethod::Hs512 => Some(hmac::HMAC_SHA512),
            _ => None,
        }
    }

    fn rsa_signing(self) -> Option<&'static dyn signature::RsaEncoding> {
        Some(match self {
            SignMethod::Rs256 => &signature::RSA_PKCS1_SHA256,
            SignMethod::Rs384 => &signature::RSA_PKCS1_SHA384,
            SignMethod::Rs512 => &signature::RSA_PKCS1_SHA512,
            SignMethod::Ps256 => &signature::RSA_PSS_SHA256,
            SignMethod::Ps384 => &signature::RSA_PSS_SHA384,
            SignMethod::Ps512 => &signature::RSA_PSS_SHA512,
            _ => return None,
        })
    }

    fn ecdsa_signing(self) -> Option<(&'static signature::EcdsaSigningAlgorithm, &'static [u8])> {
        match self {
            SignMethod::Es256 => Some((&signature::ECDSA_P256_SHA256_FIXED_SIGNING, P256_OID)),
            SignMethod::Es384 => Some((&signature::ECDSA_P384_SHA384_FIXED_SIGNING, P384_OID)),
            _ => None,
        }
    }

    /// The verification algorithm of the public-key methods (`None` for HMAC).
    fn verification(self) -> Option<&'static dyn signature::VerificationAlgorithm> {
        Some(match self {
            SignMethod::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            SignMethod::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            SignMethod::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            SignMethod::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
            SignMethod::Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
            SignMethod::Ps512 => &signature::RSA_PSS_2048_8192_SHA512,
            SignMethod::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
            SignMethod::Es384 => &signature::ECDSA_P384_SHA384_FIXED,
            SignMethod::EdDsa => &signature::ED25519,
            SignMethod::Hs256 | SignMethod::Hs384 | SignMethod::Hs512 => return None,
        })
    }
}

/// The claims of a token that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub username: String,
    pub revision: u64,
}

/// Signs and checks tokens with one member's key.
pub struct SignedTokens {
    method: SignMethod,
    /// `None`: only a public key was given; Authenticate fails (etcd's verify-only mode).
    signer: Option<Signer>,
    verifier: Verifier,
    ttl: Duration,
    rng: SystemRandom,
}

impl std::fmt::Debug for SignedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedTokens")
            .field("method", &self.method.name())
            .field("verify_only", &self.signer.is_none())
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl SignedTokens {
    /// Reads the keys (at start: a bad key stops the member, as in etcd).
    pub fn load(options: &JwtOptions) -> Result<SignedTokens, JwtError> {
        let method = SignMethod::parse(&options.sign_method)?;
        let (signer, verifier) = keys::load(
            method,
            options.public_key.as_deref(),
            options.private_key.as_deref(),
        )?;
        Ok(SignedTokens {
            method,
            signer,
            verifier,
            ttl: options.ttl,
            rng: SystemRandom::new(),
        })
    }

    /// A token for `username` issued at auth `revision`, expiring `ttl` after `now` (etcd's
    /// claims; `exp` in whole seconds).
    pub fn sign(&self, username: &str, revision: u64, now: SystemTime) -> Result<String, JwtError> {
        let signer = self.signer.as_ref().ok_or(JwtError::VerifyOnly)?;
        let exp = unix_seconds(now + self.ttl);
        let header = format!(r#"{{"alg":"{}","typ":"JWT"}}"#, self.method.name());
        let username = serde_json::Value::String(username.to_owned());
        let claims = format!(r#"{{"exp":{exp},"revision":{revision},"username":{username}}}"#);
        let mut token = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let signature = signer.sign(&self.rng, token.as_bytes())?;
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(token)
    }

    /// The claims of `token` if it is well formed, names this member's signing method, carries
    /// a valid signature and has not expired at `now` (golang-jwt's rules: `exp`, `nbf` and
    /// `iat` are checked when present); `None` otherwise (etcd: "invalid auth token").
    pub fn verify(&self, token: &str, now: SystemTime) -> Option<Claims> {
        let mut parts = token.split('.');
        let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
        if header.get("alg")?.as_str()? != self.method.name() {
            return None;
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let signed = &token[..token.rfind('.')?];
        if !self.verifier.verify(signed.as_bytes(), &signature) {
            return None;
        }
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        let now = unix_seconds(now);
        let time_claim = |name: &str| claims.get(name).map(|v| v.as_f64());
        match time_claim("exp") {
            Some(Some(exp)) if (now as f64) > exp => return None,
            Some(None) => return None,
            _ => {}
        }
        for name in ["nbf", "iat"] {
            match time_claim(name) {
                Some(Some(at)) if (now as f64) < at => return None,
                Some(None) => return None,
                _ => {}
            }
        }
        let username = claims.get("username")?.as_str()?.to_owned();
        let revision = claims.get("revision")?;
        let revision = revision
            .as_u64()
            .or_else(|| revision.as_f64().filter(|r| *r >= 0.0).map(|r| r as u64))?;
        Some(Claims { username, revision })
    }
}

fn unix_seconds(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests;
