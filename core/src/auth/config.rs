//! Tunables of the auth store.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// bcrypt cost (etcd's `--bcrypt-cost`, default 10). Tests use bcrypt's minimum, 4.
    pub bcrypt_cost: u32,
    /// A simple token unused for this long becomes invalid (etcd: 5 minutes).
    pub token_ttl_ms: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            bcrypt_cost: 10,
            token_ttl_ms: 5 * 60 * 1000,
        }
    }
}
