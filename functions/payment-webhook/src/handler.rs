//! Hands the raw body and the signature header to the webhook use case.

use commerce::api;
use commerce::ports::PaymentLedger;
use commerce::services::payments;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(ledger: &impl PaymentLedger, secret: &str, req: Request) -> Result<Response<Body>, Error> {
    let payload: &[u8] = match req.body() {
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => b"",
    };
    let signature = api::header(&req, "stripe-signature");
    let result = payments::handle_webhook(ledger, secret, signature.as_deref(), payload, chrono::Utc::now()).await;
    let body = result.map(|outcome| serde_json::json!({ "received": true, "outcome": outcome }));
    Ok(api::respond(api::StatusCode::OK, body))
}
