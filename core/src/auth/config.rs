//! Tunables of the auth store.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// bcrypt cost (etcd's `--bcrypt-cost`, default 10). Tests use bcrypt's minimum, 4.
    pub bcrypt_cost: u32,
    /// A simple token unused for this long becomes invalid (etcd: 5 minutes).
    pub token_ttl_ms: u64,
    /// Signed tokens (etcd's `--auth-token jwt,...`) instead of simple ones: the embedder
    /// checks a token's signature and expiry off the loop and hands the store its claims
    /// (`TokenClaims`), and signs the claims the store answers an Authenticate with
    /// ([`crate::auth::AuthStore::authenticate`]). Nothing is kept per token, so a token works
    /// on every member holding the same key.
    pub signed_tokens: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            bcrypt_cost: 10,
            token_ttl_ms: 5 * 60 * 1000,
            signed_tokens: false,
        }
    }
}
