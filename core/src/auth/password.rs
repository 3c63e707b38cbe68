//! Password hashing with bcrypt, the scheme etcd uses (so etcd's `hashedPassword` values work).
//!
//! Hashing runs on the member that receives the request, before proposing: only the hash is
//! replicated, the clear password never enters the log. The salt comes from the server's
//! [`super::SecretRng`]: a salt drawn from a predictable generator would let an attacker
//! precompute hashes for the salts to come.

use rand::{CryptoRng, Rng};

use crate::error::Error;

/// A fresh bcrypt salt from the secret generator.
pub fn new_salt(rng: &mut (impl CryptoRng + ?Sized)) -> [u8; 16] {
    rng.random()
}

/// Hashes `password` with `cost` (etcd's default is 10; bcrypt's minimum, 4, keeps tests fast).
pub fn hash_password(password: &str, cost: u32, salt: [u8; 16]) -> Result<String, Error> {
    bcrypt::hash_with_salt(password, cost, salt)
        .map(|parts| parts.to_string())
        .map_err(|err| Error::PasswordHashing(err.to_string()))
}

/// Whether `password` matches a stored bcrypt hash; a malformed hash matches nothing.
pub fn verify_password(password: &str, hash: &[u8]) -> bool {
    let Ok(hash) = std::str::from_utf8(hash) else {
        return false;
    };
    bcrypt::verify(password, hash).unwrap_or(false)
}
