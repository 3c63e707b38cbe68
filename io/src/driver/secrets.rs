//! The member's secret generator (token prefixes, password salts): ChaCha12 seeded by the
//! operating system, fresh at every start, so no secret follows from public data such as the
//! member ID (docs/security.md, "Randomness").

use qraft_core::auth::SecretRng;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::handle::DriverError;

/// A generator seeded from the operating system's randomness.
pub fn os_secret_rng() -> Result<SecretRng, DriverError> {
    let rng = StdRng::try_from_os_rng().map_err(|err| DriverError::Randomness(err.to_string()))?;
    Ok(Box::new(rng))
}

#[cfg(test)]
mod tests {
    use rand::Rng;

    use super::*;

    /// Two members started with the same configuration (same member ID) draw different
    /// secrets: nothing about the generator follows from the configuration.
    #[test]
    fn two_generators_draw_different_secrets() {
        let mut a = os_secret_rng().expect("OS randomness");
        let mut b = os_secret_rng().expect("OS randomness");
        let (x, y): ([u8; 32], [u8; 32]) = (a.random(), b.random());
        assert_ne!(x, y);
        let (s, t): ([u8; 16], [u8; 16]) = (a.random(), b.random());
        assert_ne!(s, t);
    }
}
