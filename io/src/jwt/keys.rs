//! The key pair behind signed tokens, read from PEM files as etcd reads them: private keys as
//! PKCS#1 (`RSA PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`) or PKCS#8 (`PRIVATE KEY`); public keys
//! as `PUBLIC KEY` or inside a `CERTIFICATE` (etcd's e2e suite passes its server certificate).
//! HMAC methods take the private key file's bytes as the secret, as etcd does.

use std::path::Path;

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, UnparsedPublicKey};
use ring::{hmac, rand};
use rustls::pki_types::pem::{PemObject, SectionKind};

use super::{JwtError, SignMethod};

/// What signs new tokens: absent when only a public key was given (etcd's verify-only mode).
pub(super) enum Signer {
    Rsa(RsaKeyPair, &'static dyn signature::RsaEncoding),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Hmac(hmac::Key),
}

/// What checks a token's signature.
pub(super) enum Verifier {
    Public(UnparsedPublicKey<Vec<u8>>),
    Hmac(hmac::Key),
}

impl Signer {
    pub(super) fn sign(&self, rng: &SystemRandom, message: &[u8]) -> Result<Vec<u8>, JwtError> {
        let failed = |_| JwtError::Signing;
        Ok(match self {
            Signer::Rsa(key, encoding) => {
                let mut out = vec![0; key.public().modulus_len()];
                key.sign(*encoding, rng, message, &mut out)
                    .map_err(failed)?;
                out
            }
            Signer::Ecdsa(key) => key.sign(rng, message).map_err(failed)?.as_ref().to_vec(),
            Signer::Ed25519(key) => key.sign(message).as_ref().to_vec(),
            Signer::Hmac(key) => hmac::sign(key, message).as_ref().to_vec(),
        })
    }
}

impl Verifier {
    pub(super) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Verifier::Public(key) => key.verify(message, signature).is_ok(),
            Verifier::Hmac(key) => hmac::verify(key, message, signature).is_ok(),
        }
    }
}

/// Loads the signer (if a private key is given) and the verifier for `method`. With both
/// keys, the public one must belong to the private one (etcd: "public and private keys don't
/// match"); tokens are verified with the private key's own public half, as etcd does.
pub(super) fn load(
    method: SignMethod,
    public: Option<&Path>,
    private: Option<&Path>,
) -> Result<(Option<Signer>, Verifier), JwtError> {
    if let Some(algorithm) = method.hmac() {
        let secret = read(private.ok_or(JwtError::MissingKey)?)?;
        if secret.is_empty() {
            return Err(JwtError::MissingKey);
        }
        let key = hmac::Key::new(algorithm, &secret);
        return Ok((Some(Signer::Hmac(key.clone())), Verifier::Hmac(key)));
    }
    let signer = private.map(|path| private_key(method, path)).transpose()?;
    let given_public = public.map(public_key).transpose()?;
    let (signer, public) = match (signer, given_public) {
        (None, None) => return Err(JwtError::MissingKey),
        (None, Some(public)) => (None, public),
        (Some((_, own)), Some(given)) if given != own => return Err(JwtError::KeyMismatch),
        (Some((signer, own)), _) => (Some(signer), own),
    };
    let algorithm = method
        .verification()
        .ok_or_else(|| JwtError::InvalidMethod(method.name().to_owned()))?;
    let verifier = Verifier::Public(UnparsedPublicKey::new(algorithm, public));
    Ok((signer, verifier))
}

fn read(path: &Path) -> Result<Vec<u8>, JwtError> {
    std::fs::read(path).map_err(|source| JwtError::Read {
        path: path.to_owned(),
        source,
    })
}

fn bad_key(path: &Path, reason: impl std::fmt::Display) -> JwtError {
    JwtError::Key {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// The first PEM section of `path`.
fn pem_section(path: &Path) -> Result<(SectionKind, Vec<u8>), JwtError> {
    let text = read(path)?;
    <(SectionKind, Vec<u8>)>::from_pem_slice(&text).map_err(|err| bad_key(path, err))
}

/// The signer for `method` from the private key file, and its public half.
fn private_key(method: SignMethod, path: &Path) -> Result<(Signer, Vec<u8>), JwtError> {
    let (kind, der) = pem_section(path)?;
    let rng = rand::SystemRandom::new();
    let rejected = |err: ring::error::KeyRejected| bad_key(path, err);
    let wrong_kind = || {
        bad_key(
            path,
            format!(
                "a {kind:?} section is not a private key for {}",
                method.name()
            ),
        )
    };
    if let Some(encoding) = method.rsa_signing() {
        let key = match kind {
            SectionKind::RsaPrivateKey => RsaKeyPair::from_der(&der),
            SectionKind::PrivateKey => RsaKeyPair::from_pkcs8(&der),
            _ => return Err(wrong_kind()),
        }
        .map_err(rejected)?;
        let public = key.public().as_ref().to_vec();
        return Ok((Signer::Rsa(key, encoding), public));
    }
    if let Some((algorithm, curve_oid)) = method.ecdsa_signing() {
        let pkcs8 = match kind {
            SectionKind::PrivateKey => der,
            SectionKind::EcPrivateKey => sec1_to_pkcs8(&der, curve_oid),
            _ => return Err(wrong_kind()),
        };
        let key = EcdsaKeyPair::from_pkcs8(algorithm, &pkcs8, &rng).map_err(rejected)?;
        let public = key.public_key().as_ref().to_vec();
        return Ok((Signer::Ecdsa(key), public));
    }
    match kind {
        SectionKind::PrivateKey => {
            let key = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map_err(rejected)?;
            let public = key.public_key().as_ref().to_vec();
            Ok((Signer::Ed25519(key), public))
        }
        _ => Err(wrong_kind()),
    }
}

/// The raw public key (RSA's `RSAPublicKey` DER, an EC point, Ed25519's 32 bytes) from a
/// `PUBLIC KEY` or a `CERTIFICATE` section.
fn public_key(path: &Path) -> Result<Vec<u8>, JwtError> {
    use x509_parser::prelude::FromDer;
    let (kind, der) = pem_section(path)?;
    let bits = match kind {
        SectionKind::PublicKey => x509_parser::x509::SubjectPublicKeyInfo::from_der(&der)
            .map_err(|err| bad_key(path, err))?
            .1
            .subject_public_key
            .data
            .to_vec(),
        SectionKind::Certificate => x509_parser::certificate::X509Certificate::from_der(&der)
            .map_err(|err| bad_key(path, err))?
            .1
            .public_key()
            .subject_public_key
            .data
            .to_vec(),
        other => {
            return Err(bad_key(
                path,
                format!("a {other:?} section is not a public key or certificate"),
            ));
        }
    };
    Ok(bits)
}

/// OIDs of the EC curves, DER-encoded with their tag.
pub(super) const P256_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
pub(super) const P384_OID: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
/// id-ecPublicKey.
const EC_PUBLIC_KEY_OID: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

/// Wraps a SEC1 `ECPrivateKey` into the PKCS#8 `PrivateKeyInfo` ring reads (version 0, the
/// id-ecPublicKey algorithm on `curve_oid`, the SEC1 structure as the private key octets).
/// ring then checks the key is on that curve.
fn sec1_to_pkcs8(sec1: &[u8], curve_oid: &[u8]) -> Vec<u8> {
    let algorithm = der_tlv(0x30, &[EC_PUBLIC_KEY_OID, curve_oid].concat());
    let body = [&[0x02, 0x01, 0x00][..], &algorithm, &der_tlv(0x04, sec1)].concat();
    der_tlv(0x30, &body)
}

/// One DER tag-length-value.
fn der_tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(value);
    out
}
