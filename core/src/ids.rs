//! Identifiers from supplied randomness: SIP tags, Via branches and Call-IDs, MSRP transaction ids,
//! message ids and session ids.
//!
//! The core never reads a random number generator. Callers pass an [`Entropy`] (32 random bytes) with
//! an input; a [`TokenSource`] expands it into as many distinct tokens as the input needs by hashing
//! the seed with a counter (SHA-256 in counter mode), so tokens are unpredictable to peers while
//! every test stays deterministic.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// 32 random bytes supplied by the caller (from `getrandom`, `crypto.getRandomValues`, or a test seed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entropy(pub [u8; 32]);

impl Entropy {
    /// The `n`th of a stream of independent values derived from this one (SHA-256 of the seed and
    /// `n`), so that one draw from the platform serves every input of a request.
    pub fn derive(&self, n: u64) -> Entropy {
        let mut hasher = Sha256::new();
        hasher.update(self.0);
        hasher.update(b"derive");
        hasher.update(n.to_be_bytes());
        Entropy(hasher.finalize().into())
    }
}

/// The RFC 3261 magic cookie every Via branch starts with.
pub const BRANCH_MAGIC_COOKIE: &str = "z9hG4bK";

/// Expands one [`Entropy`] into a stream of distinct lowercase hex tokens.
#[derive(Clone, Debug)]
pub struct TokenSource {
    seed: [u8; 32],
    counter: u64,
}

impl TokenSource {
    /// A token source seeded with the caller's randomness.
    pub fn new(entropy: Entropy) -> Self {
        Self {
            seed: entropy.0,
            counter: 0,
        }
    }

    /// A new source whose tokens are independent of this one's and of every other fork's, for a part
    /// of the work that draws its own tokens.
    pub fn fork(&mut self) -> TokenSource {
        let mut hasher = Sha256::new();
        hasher.update(self.seed);
        hasher.update(b"fork");
        hasher.update(self.counter.to_be_bytes());
        self.counter += 1;
        TokenSource {
            seed: hasher.finalize().into(),
            counter: 0,
        }
    }

    /// `bytes` fresh random bytes (at most 32) as lowercase hex: `2 * bytes` characters.
    pub fn token(&mut self, bytes: usize) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.seed);
        hasher.update(self.counter.to_be_bytes());
        self.counter += 1;
        let block = hasher.finalize();
        hex::encode(&block[..bytes.min(block.len())])
    }

    /// A Via branch: the magic cookie followed by 96 random bits.
    pub fn branch(&mut self) -> String {
        format!("{BRANCH_MAGIC_COOKIE}{}", self.token(12))
    }

    /// A From/To tag with 64 random bits.
    pub fn tag(&mut self) -> String {
        self.token(8)
    }

    /// A Call-ID with 128 random bits (no host part: RFC 3261 makes it optional).
    pub fn call_id(&mut self) -> String {
        self.token(16)
    }

    /// An MSRP transaction id, message id or session id: 80 random bits, within the RFC 4975 ident
    /// grammar (alphanumerics, 4 to 32 characters).
    pub fn msrp_id(&mut self) -> String {
        self.token(10)
    }

    /// A number in `1..=max` (for initial CSeq values), drawn from fresh random bits.
    pub fn number(&mut self, max: u32) -> u32 {
        let token = self.token(4);
        let value = u32::from_str_radix(&token, 16).unwrap_or(0);
        value % max.max(1) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_distinct_and_deterministic() {
        let mut a = TokenSource::new(Entropy([7; 32]));
        let mut b = TokenSource::new(Entropy([7; 32]));
        let first: Vec<String> = (0..100).map(|_| a.tag()).collect();
        let second: Vec<String> = (0..100).map(|_| b.tag()).collect();
        assert_eq!(first, second);
        let unique: std::collections::HashSet<_> = first.iter().collect();
        assert_eq!(unique.len(), 100);
        let mut c = TokenSource::new(Entropy([8; 32]));
        assert_ne!(c.tag(), first[0]);
    }

    #[test]
    fn forks_draw_distinct_streams() {
        let mut parent = TokenSource::new(Entropy([3; 32]));
        let mut first = parent.fork();
        let mut second = parent.fork();
        let tokens = [
            first.tag(),
            second.tag(),
            parent.tag(),
            TokenSource::new(Entropy([3; 32])).tag(),
        ];
        let unique: std::collections::HashSet<_> = tokens.iter().collect();
        assert_eq!(unique.len(), tokens.len(), "{tokens:?}");
    }

    #[test]
    fn shapes_match_the_grammars() {
        let mut ids = TokenSource::new(Entropy([1; 32]));
        let branch = ids.branch();
        assert!(branch.starts_with(BRANCH_MAGIC_COOKIE) && branch.len() == 7 + 24);
        assert_eq!(ids.tag().len(), 16);
        assert_eq!(ids.call_id().len(), 32);
        let msrp = ids.msrp_id();
        assert!(msrp.len() == 20 && msrp.bytes().all(|b| b.is_ascii_alphanumeric()));
        for _ in 0..100 {
            assert!((1..=1000).contains(&ids.number(1000)));
        }
    }
}
