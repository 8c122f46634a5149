//! `Idempotency-Key` requests with Stripe's semantics (the HTTP answers are the Lambda crate's `idempotency`): the key scoped to its operation and caller with
//! the body's fingerprint, and the three answers a keyed operation gives a retry: the first response replayed
//! (with `Idempotent-Replayed: true`), 422 `idempotency_key_reused` for the same key with a different body, 409
//! `idempotency_in_progress` while the first attempt runs. Each keyed operation keeps its key's record next to
//! what it guards, in the same conditional write: checkout in the order item, stock adjustments beside the stock
//! item, flash-sale entries as the ticket.

use commerce_domain::error::DomainError;
use commerce_domain::idempotency as domain;

/// A request's key, scoped to its operation and caller, and its body's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentRequest {
    pub scoped_key: String,
    pub fingerprint: String,
}

impl IdempotentRequest {
    /// From the raw header and the parsed JSON body. A missing or malformed key is 400 naming the header.
    pub fn new(
        operation: &str,
        caller: &str,
        key: Option<&str>,
        body: &serde_json::Value,
    ) -> Result<Self, DomainError> {
        let key = key.ok_or_else(|| DomainError::invalid_parameter("Idempotency-Key", "is required"))?;
        domain::validate_key(key).map_err(|reason| DomainError::invalid_parameter("Idempotency-Key", reason))?;
        Ok(Self { scoped_key: domain::scoped_key(operation, caller, key), fingerprint: domain::fingerprint(body) })
    }

    /// A name-safe digest of the scoped key, for derived ids and execution names.
    pub fn digest(&self) -> String {
        domain::key_digest(&self.scoped_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_without_a_valid_key_is_400_naming_the_header() {
        let body = serde_json::json!({"a": 1});
        for key in [None, Some(""), Some("bad\nkey")] {
            let err = IdempotentRequest::new("checkout", "u1", key, &body).unwrap_err();
            assert!(
                matches!(&err, DomainError::InvalidParameter { field, .. } if field == "Idempotency-Key"),
                "{key:?}: {err:?}"
            );
        }
        let a = IdempotentRequest::new("checkout", "u1", Some("k"), &body).unwrap();
        let b = IdempotentRequest::new("checkout", "u2", Some("k"), &body).unwrap();
        assert_ne!(a.scoped_key, b.scoped_key, "keys are scoped to their caller");
        assert_eq!(a.digest().len(), 26);
    }
}
