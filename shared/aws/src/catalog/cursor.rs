//! Opaque page cursors: the query's LastEvaluatedKey as base64url JSON. A cursor is checked before use: it
//! must decode, hold exactly the index's key attributes as strings, and belong to the partition being
//! queried; anything else is a 400 `invalid_parameter` naming `cursor`.

use super::items::{Index, Item, PK, SK};
use aws_sdk_dynamodb::types::AttributeValue;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use commerce_domain::error::{DomainError, Result};
use std::collections::{BTreeMap, HashMap};

const MAX_CURSOR_LEN: usize = 4096;

/// Encodes a LastEvaluatedKey. Only string attributes exist in the catalog's keys.
pub fn encode(key: &Item) -> Option<String> {
    let plain: BTreeMap<&str, &str> = key
        .iter()
        .map(|(name, value)| value.as_s().ok().map(|v| (name.as_str(), v.as_str())))
        .collect::<Option<_>>()?;
    serde_json::to_vec(&plain).ok().map(|json| URL_SAFE_NO_PAD.encode(json))
}

/// Decodes a cursor for a query on `index` within `partition`.
pub fn decode(raw: &str, index: Index, partition: &str) -> Result<Item> {
    let invalid = || DomainError::invalid_parameter("cursor", "is not a cursor this listing issued");
    if raw.len() > MAX_CURSOR_LEN {
        return Err(invalid());
    }
    let json = URL_SAFE_NO_PAD.decode(raw.trim_end_matches('=')).map_err(|_| invalid())?;
    let plain: HashMap<String, String> = serde_json::from_slice(&json).map_err(|_| invalid())?;
    let mut expected = [PK, SK, index.pk, index.sk];
    expected.sort_unstable();
    let mut names: Vec<&str> = plain.keys().map(String::as_str).collect();
    names.sort_unstable();
    if names != expected || plain.get(index.pk).map(String::as_str) != Some(partition) {
        return Err(invalid());
    }
    if plain.values().any(|v| v.is_empty() || v.len() > 1024) {
        return Err(invalid());
    }
    Ok(plain.into_iter().map(|(name, value)| (name, AttributeValue::S(value))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::items::{GSI1, GSI2};

    fn key() -> Item {
        HashMap::from([
            ("pk".to_string(), AttributeValue::S("PRODUCT#prd_1".into())),
            ("sk".to_string(), AttributeValue::S("LISTING#cat_a".into())),
            ("gsi1pk".to_string(), AttributeValue::S("LISTING#cat_a".into())),
            ("gsi1sk".to_string(), AttributeValue::S("2025#prd_1".into())),
        ])
    }

    fn is_cursor_error(result: Result<Item>) -> bool {
        matches!(result, Err(DomainError::InvalidParameter { ref field, .. }) if field == "cursor")
    }

    #[test]
    fn round_trips() {
        let raw = encode(&key()).unwrap();
        assert_eq!(decode(&raw, GSI1, "LISTING#cat_a").unwrap(), key());
    }

    #[test]
    fn rejects_tampering() {
        let raw = encode(&key()).unwrap();
        assert!(is_cursor_error(decode(&raw, GSI1, "LISTING#cat_b")), "other partition");
        assert!(is_cursor_error(decode(&raw, GSI2, "LISTING#cat_a")), "other index");
        assert!(is_cursor_error(decode("!!!", GSI1, "LISTING#cat_a")), "not base64");
        assert!(is_cursor_error(decode(&URL_SAFE_NO_PAD.encode("[1]"), GSI1, "LISTING#cat_a")), "not a key");
        let mut flipped = raw.into_bytes();
        flipped[3] ^= 0x01;
        assert!(is_cursor_error(decode(&String::from_utf8_lossy(&flipped), GSI1, "LISTING#cat_a")));
    }
}
