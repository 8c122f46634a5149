//! The HTTP answers of `Idempotency-Key` requests: the first response replayed (with `Idempotent-Replayed:
//! true`), 422 `idempotency_key_reused`, 409 `idempotency_in_progress`. The key itself is the application's
//! `services::idempotency::IdempotentRequest`.

use crate::api::{self, StatusCode};
use commerce_domain::error::ErrorCode;
use lambda_http::{Body, Response};

fn rejection(status: StatusCode, code: ErrorCode, message: &str) -> Response<Body> {
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
    headers.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static(api::NO_STORE));
    response
}

/// 422 `idempotency_key_reused`: the key was used with a different request.
pub fn key_reused() -> Response<Body> {
    rejection(
        StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::IdempotencyKeyReused,
        "this Idempotency-Key was used with a different request",
    )
}

/// 409 `idempotency_in_progress`: a request with the key is still running.
pub fn in_progress() -> Response<Body> {
    rejection(
        StatusCode::CONFLICT,
        ErrorCode::IdempotencyInProgress,
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
}
