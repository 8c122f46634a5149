//! Idempotency keys with Stripe's semantics: the first response to a key is replayed to every retry with the
//! same request; the same key with a different request is refused (422); a retry while the first attempt still
//! runs is refused (409). Here: the rules of a key (its form, its scope, the request's fingerprint, a name-safe
//! digest); each keyed operation keeps the key's record next to what it guards (services::idempotency).

use sha2::{Digest, Sha256};

/// Longest accepted key, as Stripe.
pub const MAX_KEY_LEN: usize = 255;

/// Checks a client's key: 1 to 255 printable ASCII characters.
pub fn validate_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        Err("is required")
    } else if key.len() > MAX_KEY_LEN {
        Err("must be at most 255 characters")
    } else if !key.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        Err("must be printable ASCII without spaces")
    } else {
        Ok(())
    }
}

/// The stored key: operation and caller first, so two callers' equal keys never meet.
pub fn scoped_key(operation: &str, caller: &str, key: &str) -> String {
    format!("{operation}#{caller}#{key}")
}

/// A stable hash of a JSON request: key order and whitespace do not matter, values do.
pub fn fingerprint(body: &serde_json::Value) -> String {
    let canonical = canonical_json(body);
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

fn canonical_json(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{}:{}", serde_json::Value::String(k.clone()), canonical_json(v)))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        serde_json::Value::Array(items) => {
            format!("[{}]", items.iter().map(canonical_json).collect::<Vec<_>>().join(","))
        }
        other => other.to_string(),
    }
}

/// A short, name-safe digest of a scoped key: for execution names and derived ids (`[a-z0-9]`, 26 characters).
pub fn key_digest(scoped: &str) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let hash = Sha256::digest(scoped.as_bytes());
    let mut bits: u128 = 0;
    for byte in &hash[..16] {
        bits = (bits << 8) | u128::from(*byte);
    }
    (0..26).map(|i| ALPHABET[((bits >> (i * 5)) & 31) as usize] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn key_rules() {
        assert!(validate_key("abc-123").is_ok());
        assert!(validate_key("").is_err());
        assert!(validate_key("a b").is_err());
        assert!(validate_key(&"x".repeat(256)).is_err());
    }

    #[test]
    fn fingerprint_ignores_key_order_and_whitespace_only() {
        let a = fingerprint(&json!({"cart_id": "c1", "address": {"city": "X", "name": "Y"}}));
        let b =
            fingerprint(&serde_json::from_str(r#"{ "address": {"name":"Y","city":"X"}, "cart_id":"c1" }"#).unwrap());
        let c = fingerprint(&json!({"cart_id": "c2", "address": {"city": "X", "name": "Y"}}));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    proptest! {
        #[test]
        fn digest_is_stable_and_name_safe(key in ".{0,300}") {
            let d = key_digest(&key);
            prop_assert_eq!(d.len(), 26);
            prop_assert!(d.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
            prop_assert_eq!(d, key_digest(&key));
        }
    }
}
