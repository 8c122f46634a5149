//! `Idempotency-Key` requests with Stripe's semantics, as HTTP: the key scoped to its operation and caller with
//! the body's fingerprint, and the three answers a keyed operation gives a retry: the first response replayed
//! (with `Idempotent-Replayed: true`), 422 `idempotency_key_reused` for the same key with a different body, 409
//! `idempotency_in_progress` while the first attempt runs. Each keyed operation keeps its key's record next to
//! what it guards, in the same conditional write: checkout in the order item, stock adjustments beside the stock
//! item, flash-sale entries as the ticket.

use crate::api::{self, StatusCode};
use crate::domain::idempotency as domain;
use crate::error::DomainError;
use lambda_http::{Body, Response};

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

fn rejection(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    api::json_response(
        status,
        &serde_json::json!({"error": {"code": code, "message": message, "field": "Idempotency-Key"}}),
    )
}

/// The answer to a retry: `status` and `body` as first sent, marked `Idempotent-Replayed: true`.
pub fn replay(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    headers.insert("idempotent-replayed", http::HeaderValue::from_static("true"));
    response
}

/// 422 `idempotency_key_reused`: the key was used with a different request.
pub fn key_reused() -> Response<Body> {
    rejection(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        "this Idempotency-Key was used with a different request",
    )
}

/// 409 `idempotency_in_progress`: a request with the key is still running.
pub fn in_progress() -> Response<Body> {
    rejection(
        StatusCode::CONFLICT,
        "idempotency_in_progress",
        "a request with this Idempotency-Key is still in progress; retry later",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_is_the_first_answer_marked_replayed() {
        let response = replay(StatusCode::ACCEPTED, &serde_json::json!({"order_id": "ord_1"}));
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert_eq!(response.headers()["idempotent-replayed"], "true");
        assert_eq!(response.headers()["content-type"], "application/json");
        assert!(matches!(response.body(), Body::Text(t) if t == r#"{"order_id":"ord_1"}"#));
    }

    #[test]
    fn refusals_name_the_header_with_stable_codes() {
        for (response, status, code) in [
            (key_reused(), StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"),
            (in_progress(), StatusCode::CONFLICT, "idempotency_in_progress"),
        ] {
            assert_eq!(response.status(), status);
            let body: serde_json::Value = match response.body() {
                Body::Text(text) => serde_json::from_str(text).unwrap(),
                Body::Binary(bytes) => serde_json::from_slice(bytes).unwrap(),
                _ => panic!("a JSON body"),
            };
            assert_eq!(
                (body["error"]["code"].as_str(), body["error"]["field"].as_str()),
                (Some(code), Some("Idempotency-Key"))
            );
        }
    }

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
