//! Stripe: PaymentIntents with manual capture (multicapture where available, so each seller's shipment
//! captures its own lines), form-encoded over HTTPS, every mutating call with an `Idempotency-Key`. Card
//! errors are `PaymentDeclined`; 409 (a concurrent request with the key), 429, 5xx and network failures are
//! `Transient`. Webhooks are verified with the `Stripe-Signature` scheme (HMAC-SHA256 of `t.payload`).

use chrono::{DateTime, TimeZone, Utc};
use commerce_domain::error::ErrorCode;
use commerce_domain::error::{DomainError, Result};
use commerce_domain::money::{Currency, Money};
use commerce_domain::payment::{validate_payment_method, AuthorizeRequest, Payment, PaymentStatus, WebhookEvent};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use std::time::Duration;

/// Stripe's API.
pub const API_BASE: &str = "https://api.stripe.com";
/// The API version requests are pinned to.
pub const API_VERSION: &str = "2024-06-20";
/// How old a signed webhook may be, as Stripe's libraries default.
pub const SIGNATURE_TOLERANCE_SECS: i64 = commerce_domain::payment::WEBHOOK_TOLERANCE_SECS;

/// The Stripe client.
#[derive(Debug, Clone)]
pub struct StripeProvider {
    http: reqwest::Client,
    base: String,
    secret_key: String,
}

/// A PaymentIntent, as far as we read it.
#[derive(Debug, Clone, Deserialize)]
pub struct PaymentIntent {
    pub id: String,
    pub status: String,
    pub amount: i64,
    #[serde(default)]
    pub amount_received: i64,
    pub currency: String,
    #[serde(default)]
    pub metadata: std::collections::HashMap<String, String>,
    #[serde(default)]
    pub latest_charge: Option<serde_json::Value>,
    #[serde(default)]
    pub last_payment_error: Option<StripeError>,
}

/// Stripe's error object.
#[derive(Debug, Clone, Deserialize)]
pub struct StripeError {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub decline_code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub payment_intent: Option<Box<PaymentIntent>>,
}

#[derive(Debug, Deserialize)]
struct ErrorEnvelope {
    error: StripeError,
}

#[derive(Debug, Deserialize)]
struct SearchResult {
    data: Vec<PaymentIntent>,
}

impl PaymentIntent {
    /// Our view of the intent. Intents that never reached an authorization are declines.
    pub fn to_payment(&self) -> Result<Payment> {
        let currency: Currency = self
            .currency
            .to_ascii_uppercase()
            .parse()
            .map_err(|e: String| DomainError::unexpected(format!("stripe currency: {e}")))?;
        let refunded = self
            .latest_charge
            .as_ref()
            .and_then(|c| c.get("amount_refunded"))
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0);
        let captured = self.amount_received;
        let status = match self.status.as_str() {
            "requires_capture" if captured > 0 => PaymentStatus::PartiallyCaptured,
            "requires_capture" => PaymentStatus::Authorized,
            "succeeded" | "canceled" if refunded > 0 && refunded >= captured => PaymentStatus::Refunded,
            "succeeded" | "canceled" if refunded > 0 => PaymentStatus::PartiallyRefunded,
            "succeeded" => PaymentStatus::Captured,
            "canceled" if captured > 0 => PaymentStatus::Captured,
            "canceled" => PaymentStatus::Voided,
            _ => {
                let reason = self
                    .last_payment_error
                    .as_ref()
                    .and_then(|e| e.decline_code.clone().or_else(|| e.code.clone()))
                    .unwrap_or_else(|| self.status.clone());
                return Err(DomainError::PaymentDeclined { reason });
            }
        };
        Ok(Payment {
            payment_id: self.id.clone(),
            order_id: self.metadata.get("order_id").cloned().unwrap_or_default(),
            status,
            amount: Money::new(self.amount, currency),
            captured,
            refunded,
        })
    }
}

impl StripeProvider {
    pub fn new(secret_key: String, base: String, timeout: Duration) -> std::result::Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder().timeout(timeout).connect_timeout(timeout).build()?;
        Ok(Self { http, base: base.trim_end_matches('/').to_owned(), secret_key })
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        form: &[(&str, String)],
        idempotency_key: Option<&str>,
    ) -> Result<serde_json::Value> {
        let url = format!("{}{path}", self.base);
        let mut request =
            self.http.request(method.clone(), &url).bearer_auth(&self.secret_key).header("Stripe-Version", API_VERSION);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        request = if method == reqwest::Method::GET { request.query(form) } else { request.form(form) };
        let response = request.send().await.map_err(|e| DomainError::Transient(format!("stripe unreachable: {e}")))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| DomainError::Transient(format!("stripe read: {e}")))?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(DomainError::unexpected);
        }
        let error = serde_json::from_slice::<ErrorEnvelope>(&body).ok().map(|e| e.error);
        Err(map_error(status.as_u16(), error))
    }

    fn intent(value: serde_json::Value) -> Result<PaymentIntent> {
        serde_json::from_value(value).map_err(DomainError::unexpected)
    }

    /// The authorization form, exactly as sent.
    pub fn authorize_form(request: &AuthorizeRequest) -> Vec<(&'static str, String)> {
        vec![
            ("amount", request.amount.amount.to_string()),
            ("currency", request.amount.currency.as_str().to_ascii_lowercase()),
            ("payment_method", request.payment_method.clone()),
            ("payment_method_types[]", "card".into()),
            ("confirm", "true".into()),
            ("capture_method", "manual".into()),
            ("payment_method_options[card][request_multicapture]", "if_available".into()),
            ("metadata[order_id]", request.order_id.clone()),
        ]
    }

    pub async fn authorize(&self, request: &AuthorizeRequest) -> Result<Payment> {
        validate_payment_method(&request.payment_method)?;
        let form = Self::authorize_form(request);
        let value =
            self.send(reqwest::Method::POST, "/v1/payment_intents", &form, Some(&request.idempotency_key)).await?;
        Self::intent(value)?.to_payment()
    }

    pub async fn capture(&self, payment_id: &str, amount: Money, final_capture: bool, key: &str) -> Result<Payment> {
        let form = [("amount_to_capture", amount.amount.to_string()), ("final_capture", final_capture.to_string())];
        let path = format!("/v1/payment_intents/{}/capture", encode_id(payment_id)?);
        let value = self.send(reqwest::Method::POST, &path, &form, Some(key)).await?;
        Self::intent(value)?.to_payment()
    }

    pub async fn void(&self, payment_id: &str, key: &str) -> Result<Payment> {
        let path = format!("/v1/payment_intents/{}/cancel", encode_id(payment_id)?);
        let form = [("cancellation_reason", "abandoned".to_string())];
        match self.send(reqwest::Method::POST, &path, &form, Some(key)).await {
            Ok(value) => Self::intent(value)?.to_payment(),
            Err(DomainError::Conflict { code: ErrorCode::PaymentIntentUnexpectedState, .. }) => {
                let current = self.retrieve(payment_id).await?;
                match current.status {
                    PaymentStatus::Voided | PaymentStatus::Captured => Ok(current),
                    _ => Err(DomainError::conflict(ErrorCode::PaymentNotVoidable, "the payment cannot be voided")),
                }
            }
            Err(err) => Err(err),
        }
    }

    pub async fn refund(&self, payment_id: &str, amount: Money, key: &str) -> Result<Payment> {
        let form = [("payment_intent", payment_id.to_owned()), ("amount", amount.amount.to_string())];
        self.send(reqwest::Method::POST, "/v1/refunds", &form, Some(key)).await?;
        self.retrieve(payment_id).await
    }

    /// The intent with its latest charge (for refunded amounts).
    pub async fn retrieve(&self, payment_id: &str) -> Result<Payment> {
        let path = format!("/v1/payment_intents/{}", encode_id(payment_id)?);
        let value = self.send(reqwest::Method::GET, &path, &[("expand[]", "latest_charge".into())], None).await?;
        Self::intent(value)?.to_payment()
    }

    pub async fn find_for_order(&self, order_id: &str) -> Result<Option<Payment>> {
        if !order_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err(DomainError::invalid_parameter("order_id", "is not an order id"));
        }
        let query = [("query", format!("metadata['order_id']:'{order_id}'")), ("limit", "1".into())];
        let value = self.send(reqwest::Method::GET, "/v1/payment_intents/search", &query, None).await?;
        let result: SearchResult = serde_json::from_value(value).map_err(DomainError::unexpected)?;
        match result.data.into_iter().next() {
            None => Ok(None),
            Some(intent) => match intent.to_payment() {
                Ok(payment) => Ok(Some(payment)),
                Err(DomainError::PaymentDeclined { .. }) => Ok(None),
                Err(err) => Err(err),
            },
        }
    }
}

fn encode_id(id: &str) -> Result<&str> {
    if !id.is_empty() && id.len() <= 255 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(id)
    } else {
        Err(DomainError::invalid_parameter("payment_id", "is not a payment id"))
    }
}

/// Maps a Stripe error response to a domain error.
pub fn map_error(status: u16, error: Option<StripeError>) -> DomainError {
    let code = error.as_ref().and_then(|e| e.code.clone());
    let kind = error.as_ref().map(|e| e.kind.as_str()).unwrap_or("");
    match status {
        402 => DomainError::PaymentDeclined {
            reason: error.and_then(|e| e.decline_code.or(e.code)).unwrap_or_else(|| "card_declined".into()),
        },
        _ if kind == "card_error" => DomainError::PaymentDeclined {
            reason: error.and_then(|e| e.decline_code.or(e.code)).unwrap_or_else(|| "card_declined".into()),
        },
        409 | 429 => DomainError::Transient(format!("stripe {status} {}", code.unwrap_or_default())),
        500..=599 => DomainError::Transient(format!("stripe {status}")),
        404 => DomainError::not_found("payment"),
        400 if code.as_deref() == Some("payment_intent_unexpected_state") => {
            DomainError::conflict(ErrorCode::PaymentIntentUnexpectedState, "the payment is not in a state for this")
        }
        400 if kind == "idempotency_error" => DomainError::conflict(
            ErrorCode::IdempotencyKeyReused,
            "the provider idempotency key was used for another request",
        ),
        _ => DomainError::unexpected(format!("stripe {status} {kind} {}", code.unwrap_or_default())),
    }
}

/// Verifies a `Stripe-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.payload">` (several
/// `v1` are allowed while secrets roll), within `tolerance_secs` of `now`.
pub fn verify_signature(header: &str, payload: &[u8], secret: &str, now: i64, tolerance_secs: i64) -> Result<()> {
    verify_signed("Stripe-Signature", header, payload, secret, now, tolerance_secs)
}

/// Verifies a signature header in Stripe's scheme (see [`verify_signature`]); errors name `header_name`.
/// Carriers' webhooks are signed the same way (`Carrier-Signature`).
pub fn verify_signed(
    header_name: &'static str,
    header: &str,
    payload: &[u8],
    secret: &str,
    now: i64,
    tolerance_secs: i64,
) -> Result<()> {
    let invalid = |why: &str| DomainError::invalid_parameter(header_name, why);
    let mut timestamp: Option<i64> = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse().ok(),
            Some(("v1", value)) => signatures.push(value),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| invalid("has no timestamp"))?;
    if signatures.is_empty() {
        return Err(invalid("has no v1 signature"));
    }
    if (now - timestamp).abs() > tolerance_secs {
        return Err(invalid("is outside the tolerance window"));
    }
    for signature in signatures {
        let Ok(expected) = hex::decode(signature) else {
            continue;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(DomainError::unexpected)?;
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(payload);
        if mac.verify_slice(&expected).is_ok() {
            return Ok(());
        }
    }
    Err(invalid("does not match"))
}

/// Signs a payload as Stripe does (for tests and local tools).
pub fn sign(payload: &[u8], secret: &str, timestamp: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[derive(Debug, Deserialize)]
struct RawEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: i64,
    data: RawData,
}

#[derive(Debug, Deserialize)]
struct RawData {
    object: serde_json::Value,
}

/// The webhook endpoint's side of Stripe: deliveries signed with the endpoint secret.
#[derive(Clone)]
pub struct StripeWebhooks {
    secret: String,
}

impl StripeWebhooks {
    pub fn new(secret: impl Into<String>) -> Self {
        Self { secret: secret.into() }
    }
}

impl std::fmt::Debug for StripeWebhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeWebhooks").finish_non_exhaustive()
    }
}

impl commerce_app::ports::WebhookReader for StripeWebhooks {
    fn read(&self, signature: &str, payload: &[u8], now: DateTime<Utc>) -> Result<WebhookEvent> {
        verify_signature(signature, payload, &self.secret, now.timestamp(), SIGNATURE_TOLERANCE_SECS)?;
        parse_event(payload)
    }
}

/// Parses a verified event body.
pub fn parse_event(payload: &[u8]) -> Result<WebhookEvent> {
    let mut value: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| DomainError::MalformedBody(e.to_string()))?;
    commerce_domain::json::integral_floats_as_integers(&mut value);
    let raw: RawEvent = serde_json::from_value(value).map_err(|e| DomainError::MalformedBody(e.to_string()))?;
    let created = Utc
        .timestamp_opt(raw.created, 0)
        .single()
        .ok_or_else(|| DomainError::validation("created", "is not a timestamp"))?;
    let payment = if raw.kind.starts_with("payment_intent.") {
        let intent: PaymentIntent =
            serde_json::from_value(raw.data.object).map_err(|e| DomainError::MalformedBody(e.to_string()))?;
        match intent.to_payment() {
            Ok(payment) if !payment.order_id.is_empty() => Some(payment),
            _ => None,
        }
    } else {
        None
    };
    Ok(WebhookEvent { id: raw.id, kind: raw.kind, created, payment })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-connection-per-request HTTP server on loopback that answers each request with the next
    /// fixture and records what it received (request line, headers, body).
    async fn fixture_server(responses: Vec<(u16, &'static str)>) -> (String, tokio::task::JoinHandle<Vec<String>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let handle = tokio::spawn(async move {
            let mut seen = Vec::new();
            for (status, body) in responses {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = socket.read(&mut chunk).await.unwrap();
                    buffer.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buffer).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length: ")
                                    .map(|v| v.trim().parse::<usize>().unwrap())
                            })
                            .unwrap_or(0);
                        if buffer.len() >= end + 4 + length || n == 0 {
                            break;
                        }
                    }
                }
                seen.push(String::from_utf8_lossy(&buffer).to_string());
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                socket.write_all(response.as_bytes()).await.unwrap();
            }
            seen
        });
        (base, handle)
    }

    /// A PaymentIntent after a confirmed manual-capture authorization, as Stripe documents it (trimmed).
    const INTENT_REQUIRES_CAPTURE: &str = r#"{"id":"pi_3MtwBwLkdIwHu7ix28a3tqPa","object":"payment_intent","amount":2000,"amount_capturable":2000,"amount_received":0,"capture_method":"manual","currency":"usd","metadata":{"order_id":"ord_1"},"status":"requires_capture","latest_charge":"ch_3MtwBwLkdIwHu7ix28a3tqPb"}"#;
    /// Stripe's documented 402 for a declined card.
    const CARD_DECLINED: &str = r#"{"error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds","message":"Your card has insufficient funds.","doc_url":"https://stripe.com/docs/error-codes/card-declined"}}"#;
    const INTENT_PARTIALLY_CAPTURED: &str = r#"{"id":"pi_3MtwBwLkdIwHu7ix28a3tqPa","object":"payment_intent","amount":2000,"amount_capturable":1500,"amount_received":500,"currency":"usd","metadata":{"order_id":"ord_1"},"status":"requires_capture"}"#;

    fn request() -> AuthorizeRequest {
        AuthorizeRequest {
            order_id: "ord_1".into(),
            amount: Money::new(2000, Currency::USD),
            payment_method: "pm_card_visa".into(),
            idempotency_key: "authorize-ord_1".into(),
        }
    }

    #[tokio::test]
    async fn authorize_sends_the_documented_form_and_headers_and_parses_the_intent() {
        let (base, server) = fixture_server(vec![(200, INTENT_REQUIRES_CAPTURE)]).await;
        let stripe = StripeProvider::new("sk_test_123".into(), base, Duration::from_secs(5)).unwrap();
        let payment = stripe.authorize(&request()).await.unwrap();
        assert_eq!(
            (payment.payment_id.as_str(), payment.status, payment.amount.amount),
            ("pi_3MtwBwLkdIwHu7ix28a3tqPa", PaymentStatus::Authorized, 2000)
        );
        assert_eq!(payment.order_id, "ord_1");
        let seen = server.await.unwrap().remove(0);
        let lower = seen.to_ascii_lowercase();
        assert!(seen.starts_with("POST /v1/payment_intents HTTP/1.1"), "{seen}");
        assert!(lower.contains("authorization: bearer sk_test_123"), "{seen}");
        assert!(lower.contains("idempotency-key: authorize-ord_1"), "{seen}");
        assert!(lower.contains("stripe-version: 2024-06-20"), "{seen}");
        assert!(lower.contains("content-type: application/x-www-form-urlencoded"), "{seen}");
        let body = seen.split("\r\n\r\n").nth(1).unwrap();
        let decode =
            |v: &str| percent_encoding::percent_decode_str(&v.replace('+', " ")).decode_utf8().unwrap().into_owned();
        let form: Vec<(String, String)> =
            body.split('&').filter_map(|pair| pair.split_once('=')).map(|(k, v)| (decode(k), decode(v))).collect();
        let expected: Vec<(String, String)> =
            StripeProvider::authorize_form(&request()).into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        assert_eq!(form, expected);
        assert!(form.contains(&("capture_method".into(), "manual".into())));
        assert!(form.contains(&("currency".into(), "usd".into())));
        assert!(form.contains(&("confirm".into(), "true".into())));
    }

    #[tokio::test]
    async fn a_402_card_error_is_a_decline_with_the_decline_code() {
        let (base, server) = fixture_server(vec![(402, CARD_DECLINED)]).await;
        let stripe = StripeProvider::new("sk_test_123".into(), base, Duration::from_secs(5)).unwrap();
        let err = stripe.authorize(&request()).await.unwrap_err();
        assert!(
            matches!(err, DomainError::PaymentDeclined { ref reason } if reason == "insufficient_funds"),
            "{err:?}"
        );
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_5xx_and_a_timeout_are_transient() {
        let (base, server) = fixture_server(vec![(503, r#"{"error":{"type":"api_error"}}"#)]).await;
        let stripe = StripeProvider::new("sk_test_123".into(), base, Duration::from_secs(5)).unwrap();
        assert!(matches!(stripe.authorize(&request()).await, Err(DomainError::Transient(_))));
        server.await.unwrap();
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", silent.local_addr().unwrap());
        let stripe = StripeProvider::new("sk_test_123".into(), base, Duration::from_millis(200)).unwrap();
        assert!(matches!(stripe.authorize(&request()).await, Err(DomainError::Transient(_))));
        drop(silent);
    }

    #[tokio::test]
    async fn partial_capture_sends_amount_and_final_flag() {
        let (base, server) = fixture_server(vec![(200, INTENT_PARTIALLY_CAPTURED)]).await;
        let stripe = StripeProvider::new("sk_test_123".into(), base, Duration::from_secs(5)).unwrap();
        let payment = stripe
            .capture("pi_3MtwBwLkdIwHu7ix28a3tqPa", Money::new(500, Currency::USD), false, "capture-ord_1-s1")
            .await
            .unwrap();
        assert_eq!((payment.status, payment.captured), (PaymentStatus::PartiallyCaptured, 500));
        let seen = server.await.unwrap().remove(0);
        assert!(seen.starts_with("POST /v1/payment_intents/pi_3MtwBwLkdIwHu7ix28a3tqPa/capture "), "{seen}");
        assert!(seen.to_ascii_lowercase().contains("idempotency-key: capture-ord_1-s1"));
        assert!(seen.ends_with("amount_to_capture=500&final_capture=false"), "{seen}");
    }

    #[test]
    fn signature_round_trip_and_rejections() {
        let payload = br#"{"id":"evt_1"}"#;
        let header = sign(payload, "whsec_test", 1_700_000_000);
        assert!(verify_signature(&header, payload, "whsec_test", 1_700_000_100, 300).is_ok());
        assert!(verify_signature(&header, payload, "whsec_other", 1_700_000_100, 300).is_err());
        assert!(verify_signature(&header, br#"{"id":"evt_2"}"#, "whsec_test", 1_700_000_100, 300).is_err());
        assert!(verify_signature(&header, payload, "whsec_test", 1_700_000_301, 300).is_err());
        assert!(verify_signature("v1=abc", payload, "whsec_test", 1_700_000_000, 300).is_err());
        let rolled = format!("{header},v1=00ff");
        assert!(verify_signature(&rolled, payload, "whsec_test", 1_700_000_000, 300).is_ok());
    }

    #[test]
    fn signature_matches_stripe_documented_scheme() {
        // printf '1492774577.{}' | openssl dgst -sha256 -hmac whsec_test_secret
        let header = sign(b"{}", "whsec_test_secret", 1_492_774_577);
        assert_eq!(header, "t=1492774577,v1=53140ab8fa70c511cc40d5c9198af7dde7bbaee877038c056d8250c3bd3b2e11");
    }

    #[test]
    fn intent_statuses_map_to_payment_states() {
        let intent = |status: &str, received: i64| PaymentIntent {
            id: "pi_1".into(),
            status: status.into(),
            amount: 1000,
            amount_received: received,
            currency: "usd".into(),
            metadata: [("order_id".to_string(), "ord_1".to_string())].into(),
            latest_charge: None,
            last_payment_error: None,
        };
        assert_eq!(intent("requires_capture", 0).to_payment().unwrap().status, PaymentStatus::Authorized);
        assert_eq!(intent("requires_capture", 300).to_payment().unwrap().status, PaymentStatus::PartiallyCaptured);
        assert_eq!(intent("succeeded", 1000).to_payment().unwrap().status, PaymentStatus::Captured);
        assert_eq!(intent("canceled", 0).to_payment().unwrap().status, PaymentStatus::Voided);
        assert!(matches!(intent("requires_payment_method", 0).to_payment(), Err(DomainError::PaymentDeclined { .. })));
    }

    #[test]
    fn errors_map_by_status_and_type() {
        let card = StripeError {
            kind: "card_error".into(),
            code: Some("card_declined".into()),
            decline_code: Some("insufficient_funds".into()),
            message: None,
            payment_intent: None,
        };
        assert!(
            matches!(map_error(402, Some(card)), DomainError::PaymentDeclined { reason } if reason == "insufficient_funds")
        );
        assert!(matches!(map_error(503, None), DomainError::Transient(_)));
        assert!(matches!(map_error(429, None), DomainError::Transient(_)));
        assert!(matches!(map_error(409, None), DomainError::Transient(_)));
        assert!(matches!(map_error(401, None), DomainError::Unexpected(_)));
    }
}
