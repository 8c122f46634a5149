//! Bearer secrets handed to guests: the cart token (`X-Cart-Token`) and the order token (`X-Order-Token`).
//! Each is 256 bits from the operating system's CSPRNG, base64url, returned once; only its SHA-256 is stored,
//! and a presented token is checked against that hash in constant time.

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A new random token (256 bits, base64url) and the hash that is stored.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_token(&token);
    (token, hash)
}

/// The stored form of a token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether `token` is the one `hash` was stored for; the comparison takes the same time wherever they differ.
pub fn token_matches(token: &str, hash: &str) -> bool {
    let (a, b) = (hash_token(token), hash);
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_checked_by_hash_only() {
        let (token, hash) = new_token();
        let (other, _) = new_token();
        assert_eq!(token.len(), 43, "256 bits in base64url");
        assert_ne!(token, other);
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains(&token));
        assert!(token_matches(&token, &hash));
        assert!(!token_matches(&other, &hash));
        assert!(!token_matches("", &hash));
    }
}
