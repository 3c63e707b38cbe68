//! The source of secrets: simple-token prefixes and bcrypt salts.
//!
//! Core owns no randomness of its own (it must stay deterministic), so the embedder hands the
//! server a cryptographically secure generator when it builds it. The io driver seeds one from
//! the operating system; transcripts and simulations pass a fixed seed so their runs repeat.
//! Nothing secret may ever be drawn from a generator seeded with public data (the member ID is
//! in every response header): that made every token computable from outside.

use rand::CryptoRng;

/// A cryptographically secure generator, owned by the server for its whole life.
pub type SecretRng = Box<dyn CryptoRng + Send>;
