//! Simple tokens: opaque bearer strings mapped to a user, expiring after a period of disuse.
//!
//! A token is `<32 random letters>.<raft index>` (26^32 ≈ 2^150 possible prefixes; etcd uses 16
//! letters, clients treat the token as opaque). The member that receives an Authenticate
//! request draws the random prefix from its [`super::SecretRng`] and proposes it; applying the entry
//! appends the entry's index and registers the token on every member. So apply stays
//! deterministic, every member knows every token (a client may switch members), and two
//! tokens never collide even if two members draw the same prefix. Expiry is member-local
//! bookkeeping driven by the `now_ms` the caller passes in.

use std::collections::HashMap;

use rand::{CryptoRng, Rng};

/// Length of the random part of a token: at least 128 bits of entropy.
const PREFIX_LEN: usize = 32;

#[derive(Debug, Default)]
pub struct TokenStore {
    /// token → (user name, expiry in ms)
    tokens: HashMap<String, (String, u64)>,
    ttl_ms: u64,
}

impl TokenStore {
    pub fn new(ttl_ms: u64) -> Self {
        TokenStore {
            tokens: HashMap::new(),
            ttl_ms,
        }
    }

    pub fn new_prefix(rng: &mut (impl CryptoRng + ?Sized)) -> String {
        (0..PREFIX_LEN)
            .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
            .collect()
    }

    pub fn token_for(prefix: &str, index: u64) -> String {
        format!("{prefix}.{index}")
    }

    /// The raft index a token's sign-in was applied at (its suffix), if it has the shape of
    /// one; says nothing about whether the token is valid.
    pub fn index_of(token: &str) -> Option<u64> {
        let (prefix, index) = token.rsplit_once('.')?;
        if prefix.len() != PREFIX_LEN {
            return None;
        }
        index.parse().ok()
    }

    pub fn assign(&mut self, token: String, user: &str, now_ms: u64) {
        let expiry = now_ms.saturating_add(self.ttl_ms);
        self.tokens.insert(token, (user.to_string(), expiry));
    }

    /// The user a live token belongs to; using a token extends its life.
    pub fn user_of(&mut self, token: &str, now_ms: u64) -> Option<String> {
        let ttl_ms = self.ttl_ms;
        match self.tokens.get_mut(token) {
            Some((user, expiry)) if *expiry > now_ms => {
                *expiry = now_ms.saturating_add(ttl_ms);
                Some(user.clone())
            }
            Some(_) => {
                self.tokens.remove(token);
                None
            }
            None => None,
        }
    }

    pub fn invalidate_user(&mut self, user: &str) {
        self.tokens.retain(|_, (owner, _)| owner != user);
    }

    pub fn clear(&mut self) {
        self.tokens.clear();
    }

    /// Drops expired tokens so memory stays bounded by live sessions.
    pub fn sweep(&mut self, now_ms: u64) {
        self.tokens.retain(|_, (_, expiry)| *expiry > now_ms);
    }
}
