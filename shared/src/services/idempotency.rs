//! Running an HTTP operation under an `Idempotency-Key` with Stripe's semantics: the first response to a key
//! is stored and replayed (with `Idempotent-Replayed: true`); the same key with a different body is 422
//! `idempotency_key_reused`; the same key while the first attempt runs is 409 `idempotency_in_progress`.
//! A 5xx is not stored: the key is released so the client's retry runs the operation again.

use crate::api::{self, StatusCode};
use crate::domain::idempotency::{self as domain, Decision, IdempotencyRecord, StoredResponse};
use crate::error::DomainError;
use crate::ports::IdempotencyStore;
use chrono::{DateTime, Utc};
use lambda_http::{Body, Response};
use std::future::Future;

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

fn replayed(stored: StoredResponse) -> Response<Body> {
    let mut response = Response::new(Body::Text(stored.body));
    *response.status_mut() = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    headers.insert("idempotent-replayed", http::HeaderValue::from_static("true"));
    response
}

/// The answer to a retry: `status` and `body` as first sent, marked `Idempotent-Replayed: true`.
pub fn replay(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    replayed(StoredResponse { status: status.as_u16(), body: body.to_string() })
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

fn body_text(response: &Response<Body>) -> String {
    match response.body() {
        Body::Text(text) => text.clone(),
        Body::Binary(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        _ => String::new(),
    }
}

/// Runs `work` at most once per key; every other request with the key gets the stored outcome or a refusal.
/// `lock` is how long an attempt may hold the key (the function's timeout).
pub async fn run<S, F, Fut>(
    store: &S,
    request: &IdempotentRequest,
    lock: chrono::Duration,
    now: DateTime<Utc>,
    work: F,
) -> Response<Body>
where
    S: IdempotencyStore,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Response<Body>>,
{
    let record = IdempotencyRecord::begin(request.scoped_key.clone(), request.fingerprint.clone(), now, lock);
    let mut taken = false;
    for _ in 0..3 {
        match store.try_begin(&record, now).await {
            Ok(None) => {
                taken = true;
                break;
            }
            Ok(Some(existing)) => match domain::decide(&existing, &request.fingerprint, now) {
                Decision::Replay(stored) => return replayed(stored),
                Decision::Reused => return key_reused(),
                Decision::InProgress => return in_progress(),
                Decision::TakeOver => continue,
            },
            Err(err) => return api::error_response(&err),
        }
    }
    if !taken {
        return api::error_response(&DomainError::Transient("idempotency key is contended".into()));
    }
    let response = work().await;
    let status = response.status();
    let outcome = if status.is_server_error() {
        store.abandon(&request.scoped_key, &request.fingerprint).await
    } else {
        let stored = StoredResponse { status: status.as_u16(), body: body_text(&response) };
        store.complete(&request.scoped_key, &request.fingerprint, &stored).await
    };
    if let Err(err) = outcome {
        tracing::warn!(error = %err, "idempotency record not updated");
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::idempotency::RecordState;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    #[derive(Default)]
    struct MemoryStore(Mutex<HashMap<String, IdempotencyRecord>>);

    impl IdempotencyStore for MemoryStore {
        async fn try_begin(
            &self,
            record: &IdempotencyRecord,
            now: DateTime<Utc>,
        ) -> crate::error::Result<Option<IdempotencyRecord>> {
            let mut map = self.0.lock().unwrap();
            match map.get(&record.key) {
                Some(existing) if domain::decide(existing, &record.fingerprint, now) != Decision::TakeOver => {
                    Ok(Some(existing.clone()))
                }
                _ => {
                    map.insert(record.key.clone(), record.clone());
                    Ok(None)
                }
            }
        }
        async fn complete(&self, key: &str, _: &str, response: &StoredResponse) -> crate::error::Result<()> {
            if let Some(r) = self.0.lock().unwrap().get_mut(key) {
                r.state = RecordState::Completed { response: response.clone() };
            }
            Ok(())
        }
        async fn abandon(&self, key: &str, _: &str) -> crate::error::Result<()> {
            self.0.lock().unwrap().remove(key);
            Ok(())
        }
    }

    fn req(body: serde_json::Value) -> IdempotentRequest {
        IdempotentRequest::new("checkout", "u1", Some("key-1"), &body).unwrap()
    }

    #[tokio::test]
    async fn when_same_key_and_body_should_replay_without_running_again() {
        let store = MemoryStore::default();
        let runs = AtomicU32::new(0);
        let now = Utc::now();
        let work = || async {
            runs.fetch_add(1, Ordering::SeqCst);
            api::json_response(StatusCode::ACCEPTED, &serde_json::json!({"order_id": "ord_1"}))
        };
        let lock = chrono::Duration::seconds(30);
        let first = run(&store, &req(serde_json::json!({"a": 1})), lock, now, work).await;
        let second = run(&store, &req(serde_json::json!({"a": 1})), lock, now, work).await;
        assert_eq!(first.status(), StatusCode::ACCEPTED);
        assert_eq!(second.status(), StatusCode::ACCEPTED);
        assert_eq!(second.headers()["idempotent-replayed"], "true");
        assert_eq!(body_text(&second), body_text(&first));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn when_same_key_and_different_body_should_be_422() {
        let store = MemoryStore::default();
        let now = Utc::now();
        let ok = || async { api::json_response(StatusCode::ACCEPTED, &serde_json::json!({})) };
        run(&store, &req(serde_json::json!({"a": 1})), chrono::Duration::seconds(30), now, ok).await;
        let other = run(&store, &req(serde_json::json!({"a": 2})), chrono::Duration::seconds(30), now, ok).await;
        assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body_text(&other).contains("idempotency_key_reused"));
    }

    #[tokio::test]
    async fn when_in_progress_should_be_409_and_after_lock_should_take_over() {
        let store = MemoryStore::default();
        let now = Utc::now();
        let request = req(serde_json::json!({"a": 1}));
        let held = IdempotencyRecord::begin(
            request.scoped_key.clone(),
            request.fingerprint.clone(),
            now,
            chrono::Duration::seconds(30),
        );
        store.0.lock().unwrap().insert(held.key.clone(), held);
        let ok = || async { api::json_response(StatusCode::ACCEPTED, &serde_json::json!({})) };
        let busy = run(&store, &request, chrono::Duration::seconds(30), now, ok).await;
        assert_eq!(busy.status(), StatusCode::CONFLICT);
        assert!(body_text(&busy).contains("idempotency_in_progress"));
        let later = run(&store, &request, chrono::Duration::seconds(30), now + chrono::Duration::seconds(31), ok).await;
        assert_eq!(later.status(), StatusCode::ACCEPTED);
    }

    #[tokio::test]
    async fn when_work_fails_with_5xx_should_release_key() {
        let store = MemoryStore::default();
        let now = Utc::now();
        let request = req(serde_json::json!({"a": 1}));
        let fail = || async { api::error_response(&DomainError::Transient("down".into())) };
        let first = run(&store, &request, chrono::Duration::seconds(30), now, fail).await;
        assert_eq!(first.status(), StatusCode::SERVICE_UNAVAILABLE);
        let ok = || async { api::json_response(StatusCode::ACCEPTED, &serde_json::json!({})) };
        assert_eq!(run(&store, &request, chrono::Duration::seconds(30), now, ok).await.status(), StatusCode::ACCEPTED);
    }

    #[test]
    fn missing_key_is_400() {
        let err = IdempotentRequest::new("checkout", "u1", None, &serde_json::json!({})).unwrap_err();
        assert!(matches!(err, DomainError::InvalidParameter { field, .. } if field == "Idempotency-Key"));
    }
}
