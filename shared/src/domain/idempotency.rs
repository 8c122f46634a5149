//! Idempotency keys with Stripe's semantics: the first response to a key is kept for 24 hours and replayed to
//! every retry with the same request; the same key with a different request is refused (422); a retry while
//! the first attempt still runs is refused (409). An attempt that crashed holds its key only until its lock
//! expires (the function timeout), so a retry can take over.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How long a completed key is kept and replayed.
pub const RECORD_TTL_HOURS: i64 = 24;

/// Longest accepted key, as Stripe.
pub const MAX_KEY_LEN: usize = 255;

/// A response kept for replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    /// The JSON body, as sent.
    pub body: String,
}

/// Where a key stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RecordState {
    /// An attempt holds the key until `locked_until`.
    InProgress { locked_until: DateTime<Utc> },
    /// The first response, replayed to retries.
    Completed { response: StoredResponse },
}

/// One key's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// The key, scoped to its caller and operation (see [`scoped_key`]).
    pub key: String,
    /// A hash of the request the key was first used with.
    pub fingerprint: String,
    #[serde(flatten)]
    pub state: RecordState,
    pub created_at: DateTime<Utc>,
    /// After this the record counts as absent, whether or not storage has deleted it yet.
    pub expires_at: DateTime<Utc>,
}

impl IdempotencyRecord {
    /// A new in-progress record, locked for `lock` (the function's timeout).
    pub fn begin(key: String, fingerprint: String, now: DateTime<Utc>, lock: Duration) -> Self {
        Self {
            key,
            fingerprint,
            state: RecordState::InProgress { locked_until: now + lock },
            created_at: now,
            expires_at: now + Duration::hours(RECORD_TTL_HOURS),
        }
    }

    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now
    }
}

/// What to do with a request whose key already has a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The record is expired or its attempt crashed: take the key over and run the request.
    TakeOver,
    /// Replay the first response.
    Replay(StoredResponse),
    /// Same key, different request: 422 `idempotency_key_reused`.
    Reused,
    /// The first attempt is still running: 409 `idempotency_in_progress`.
    InProgress,
}

/// Decides how a request meets an existing record.
pub fn decide(existing: &IdempotencyRecord, fingerprint: &str, now: DateTime<Utc>) -> Decision {
    if existing.is_expired(now) {
        return Decision::TakeOver;
    }
    if existing.fingerprint != fingerprint {
        return Decision::Reused;
    }
    match &existing.state {
        RecordState::Completed { response } => Decision::Replay(response.clone()),
        RecordState::InProgress { locked_until } if *locked_until > now => Decision::InProgress,
        RecordState::InProgress { .. } => Decision::TakeOver,
    }
}

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

    fn now() -> DateTime<Utc> {
        "2025-01-01T00:00:00Z".parse().unwrap()
    }

    fn completed(fp: &str) -> IdempotencyRecord {
        let mut r = IdempotencyRecord::begin("k".into(), fp.into(), now(), Duration::seconds(30));
        r.state = RecordState::Completed { response: StoredResponse { status: 202, body: "{}".into() } };
        r
    }

    #[test]
    fn same_request_replays_first_response() {
        assert!(matches!(decide(&completed("a"), "a", now()), Decision::Replay(r) if r.status == 202));
    }

    #[test]
    fn different_request_is_reused() {
        assert_eq!(decide(&completed("a"), "b", now()), Decision::Reused);
    }

    #[test]
    fn in_progress_blocks_until_lock_expires() {
        let r = IdempotencyRecord::begin("k".into(), "a".into(), now(), Duration::seconds(30));
        assert_eq!(decide(&r, "a", now() + Duration::seconds(29)), Decision::InProgress);
        assert_eq!(decide(&r, "a", now() + Duration::seconds(30)), Decision::TakeOver);
    }

    #[test]
    fn records_expire_after_a_day() {
        let r = completed("a");
        assert!(matches!(decide(&r, "a", now() + Duration::hours(23)), Decision::Replay(_)));
        assert_eq!(decide(&r, "b", now() + Duration::hours(24)), Decision::TakeOver);
    }

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
