//! The HTTP answers of the inventory use cases that have more than one success shape.

use crate::api::{self, json_response, StatusCode};
use chrono::{DateTime, Utc};
use commerce_app::ports::ReservationStore;
use commerce_app::services::inventory::{self, Adjusted};
use commerce_domain::error::{ErrorCode, Result};
use commerce_domain::inventory::reservation::Action;
use lambda_http::{Body, Request, Response};

/// A stock adjustment's answer: 200 with the stock (a replay also says `Idempotent-Replayed: true`), or 422
/// `idempotency_key_reused` naming the header, as checkout's keys answer.
pub fn adjusted(result: Result<Adjusted>) -> Response<Body> {
    match result {
        Ok(Adjusted::Applied(view)) => json_response(StatusCode::OK, &view),
        Ok(Adjusted::Replayed(view)) => {
            let mut response = json_response(StatusCode::OK, &view);
            response.headers_mut().insert("idempotent-replayed", http::HeaderValue::from_static("true"));
            response
        }
        Ok(Adjusted::KeyReused) => json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            &serde_json::json!({"error": {
                "code": ErrorCode::IdempotencyKeyReused,
                "message": "this Idempotency-Key was used with a different adjustment",
                "field": "Idempotency-Key",
            }}),
        ),
        Err(err) => api::error_response(&err),
    }
}

/// `POST /v1/admin/reservations/{reservation_id}/{commit|release}`: an admin commits or releases a
/// reservation (again: no effect); 200 with the reservation, or the error mapping.
pub async fn admin_finish(
    store: &impl ReservationStore,
    req: &Request,
    action: Action,
    now: DateTime<Utc>,
) -> Response<Body> {
    let result = async {
        crate::auth::caller(req)?.require_admin()?;
        let reservation_id = api::path_param(req, "reservation_id")?;
        inventory::finish(store, &reservation_id, action, now).await
    }
    .await;
    api::respond(StatusCode::OK, result)
}
