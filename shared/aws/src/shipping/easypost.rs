//! EasyPost's rate API: `POST /v2/shipments` (JSON, basic auth with the API key as user name and no password)
//! creates a shipment and answers with its `rates`, one per carrier service.
//!
//! Request: `to_address` from the destination, `from_address` from the origin (the warehouse's country, region
//! and postal code), `parcel.weight` in ounces, rounded up to a tenth. A request without an
//! origin is not sent: it has no rate (`Ok(None)`).
//!
//! Answer, validated before anything is used (a carrier's answer is input like any other): the shipment must
//! have an `id` and a `rates` array whose every entry has string `id`, `carrier`, `service`, `rate` and
//! `currency`; fields EasyPost adds are ignored. The rate taken is the cheapest of those whose `service` equals
//! the requested one, ignoring case; none is no rate (`Ok(None)`). A matching rate in another currency than
//! the requested one is skipped, so a service priced only in other currencies is no rate: the answer is
//! well-formed, and asking again would not change it. A matching rate that is not a plain decimal with at most
//! the currency's decimals, is zero, negative or over `money::MAX_PRICE` makes the whole answer `Transient`
//! (logged, with the rate's id): a broken price is never shown to a shopper.
//!
//! Statuses: 401, 402 and 403 (the key or the account) and other 4xx (a request we built wrong) are
//! `Unexpected`; 422 (EasyPost cannot rate the shipment as described, e.g. an address it cannot verify) is no
//! rate; 408, 429, 5xx, network failures, timeouts and answers over `MAX_ANSWER_BYTES` are `Transient`.
//! Redirects are not followed. Logs name the shipment, the rate and EasyPost's error code, never an address.

use commerce_app::ports::{CarrierRateRequest, ShippingRateProvider};
use commerce_domain::error::{DomainError, Result};
use commerce_domain::money::{Currency, Money};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::time::Duration;

/// EasyPost's API.
pub const API_BASE: &str = "https://api.easypost.com";
/// Where shipments are created (and rated).
pub const SHIPMENTS_PATH: &str = "/v2/shipments";
/// The largest answer read; a shipment with every carrier's rates is a few tens of kilobytes.
pub const MAX_ANSWER_BYTES: usize = 1 << 20;
/// Grams in an avoirdupois ounce, times 10^9 (28.349523125 g).
const NANOGRAMS_PER_OUNCE: u128 = 28_349_523_125;

/// The EasyPost client.
#[derive(Clone)]
pub struct EasyPostCarrier {
    http: reqwest::Client,
    base: String,
    api_key: String,
}

impl std::fmt::Debug for EasyPostCarrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EasyPostCarrier").field("base", &self.base).finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
struct ShipmentAnswer {
    id: String,
    rates: Vec<RateAnswer>,
    #[serde(default)]
    messages: Option<Vec<CarrierMessage>>,
}

#[derive(Debug, Deserialize)]
struct RateAnswer {
    id: String,
    carrier: String,
    service: String,
    rate: String,
    currency: String,
}

/// A carrier's rating failure, as EasyPost relays it; only who and what kind are logged.
#[derive(Debug, Deserialize)]
struct CarrierMessage {
    #[serde(default)]
    carrier: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: Option<String>,
}

impl EasyPostCarrier {
    /// A client of `base` (`API_BASE` in production) whose calls give up after `timeout`.
    pub fn new(api_key: String, base: String, timeout: Duration) -> std::result::Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { http, base: base.trim_end_matches('/').to_owned(), api_key })
    }

    /// The shipment `request` is priced with, exactly as sent; `None` without an origin.
    pub fn shipment_body(request: &CarrierRateRequest) -> Option<Value> {
        let origin = request.origin.as_ref()?;
        let to = &request.destination;
        let mut to_address = Map::new();
        to_address.insert("name".into(), json!(to.name));
        to_address.insert("street1".into(), json!(to.line1));
        if let Some(line2) = &to.line2 {
            to_address.insert("street2".into(), json!(line2));
        }
        to_address.insert("city".into(), json!(to.city));
        if let Some(region) = &to.region {
            to_address.insert("state".into(), json!(region));
        }
        to_address.insert("zip".into(), json!(to.postal_code));
        to_address.insert("country".into(), json!(to.country));
        let mut from_address = Map::new();
        if let Some(region) = &origin.region {
            from_address.insert("state".into(), json!(region));
        }
        if let Some(zip) = &origin.postal_code {
            from_address.insert("zip".into(), json!(zip));
        }
        from_address.insert("country".into(), json!(origin.country));
        Some(json!({
            "shipment": {
                "to_address": to_address,
                "from_address": from_address,
                "parcel": { "weight": ounces(request.weight_grams) },
            }
        }))
    }

    async fn create_shipment(&self, body: &Value) -> Result<(reqwest::StatusCode, Vec<u8>)> {
        let url = format!("{}{SHIPMENTS_PATH}", self.base);
        let response = self
            .http
            .post(&url)
            .basic_auth(&self.api_key, None::<&str>)
            .json(body)
            .send()
            .await
            .map_err(|e| transport_error("request", &e))?;
        let status = response.status();
        Ok((status, read_limited(response).await?))
    }
}

/// What a network failure means: always worth a retry.
fn transport_error(stage: &str, error: &reqwest::Error) -> DomainError {
    if error.is_timeout() {
        DomainError::Transient(format!("easypost {stage} timed out"))
    } else {
        DomainError::Transient(format!("easypost unreachable ({stage}): {error}"))
    }
}

/// The body, refused past `MAX_ANSWER_BYTES`.
async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>> {
    let too_large = || DomainError::Transient(format!("easypost answer over {MAX_ANSWER_BYTES} bytes"));
    if response.content_length().is_some_and(|n| n > MAX_ANSWER_BYTES as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| transport_error("read", &e))? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `grams` in ounces, rounded up to a tenth (never under-declared; at least 0.1 oz, EasyPost's weights are
/// positive).
pub fn ounces(grams: u64) -> f64 {
    let tenths = (u128::from(grams) * 10 * 1_000_000_000).div_ceil(NANOGRAMS_PER_OUNCE).max(1);
    tenths as f64 / 10.0
}

/// The rate an answer of `status` with `body` gives `request` (see the module for every rule).
pub fn answer_rate(status: u16, body: &[u8], request: &CarrierRateRequest) -> Result<Option<Money>> {
    match status {
        200..=299 => choose_rate(body, request),
        422 => {
            tracing::warn!(carrier = "easypost", status, code = %error_code(body), "easypost cannot rate the shipment");
            Ok(None)
        }
        401..=403 => {
            let code = error_code(body);
            tracing::error!(carrier = "easypost", status, code = %code, "easypost refused the account");
            Err(DomainError::unexpected(format!("easypost refused the account: {status} {code}")))
        }
        408 | 429 | 500..=599 => Err(DomainError::Transient(format!("easypost answered {status}"))),
        _ => {
            let code = error_code(body);
            tracing::error!(carrier = "easypost", status, code = %code, "easypost refused the request");
            Err(DomainError::unexpected(format!("easypost answered {status} {code}")))
        }
    }
}

fn error_code(body: &[u8]) -> String {
    serde_json::from_slice::<ErrorEnvelope>(body)
        .ok()
        .and_then(|e| e.error.code)
        .unwrap_or_else(|| "(no error code)".into())
}

fn choose_rate(body: &[u8], request: &CarrierRateRequest) -> Result<Option<Money>> {
    let shipment: ShipmentAnswer = serde_json::from_slice(body).map_err(|e| {
        tracing::warn!(carrier = "easypost", error = %e, "easypost answer refused: not a shipment with rates");
        DomainError::Transient(format!("easypost answer is not a shipment with rates: {e}"))
    })?;
    let wanted = request.service.trim();
    let mut best: Option<Money> = None;
    let mut other_currencies = Vec::new();
    for rate in shipment.rates.iter().filter(|r| r.service.trim().eq_ignore_ascii_case(wanted)) {
        let refuse = |reason: String| {
            tracing::warn!(
                carrier = "easypost",
                shipment_id = %shipment.id,
                rate_id = %rate.id,
                reason = %reason,
                "easypost answer refused: invalid rate"
            );
            DomainError::Transient(format!("easypost rate {} refused: {reason}", rate.id))
        };
        let currency: Currency = rate.currency.parse().map_err(refuse)?;
        if currency != request.currency {
            other_currencies.push(currency);
            continue;
        }
        let money = Money::from_decimal(&rate.rate, currency, "rate").map_err(|e| refuse(e.reason))?;
        if money.amount == 0 {
            return Err(refuse("a rate of zero".into()));
        }
        if best.is_none_or(|b| money.amount < b.amount) {
            best = Some(money);
        }
    }
    if best.is_none() {
        let carriers: Vec<String> = shipment
            .messages
            .iter()
            .flatten()
            .map(|m| format!("{}:{}", m.carrier.as_deref().unwrap_or("?"), m.kind.as_deref().unwrap_or("?")))
            .collect();
        let offered: Vec<String> = shipment.rates.iter().map(|r| format!("{}/{}", r.carrier, r.service)).collect();
        tracing::info!(
            carrier = "easypost",
            shipment_id = %shipment.id,
            service = %wanted,
            ?other_currencies,
            ?offered,
            ?carriers,
            "easypost has no rate for the service"
        );
    }
    Ok(best)
}

impl ShippingRateProvider for EasyPostCarrier {
    async fn rate(&self, request: &CarrierRateRequest) -> Result<Option<Money>> {
        let Some(body) = Self::shipment_body(request) else {
            tracing::info!(carrier = "easypost", seller_id = %request.seller_id, "no origin: no easypost rate");
            return Ok(None);
        };
        let (status, answer) = self.create_shipment(&body).await?;
        answer_rate(status.as_u16(), &answer, request)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use commerce_domain::inventory::Location;
    use commerce_domain::money::MAX_PRICE;
    use commerce_domain::shipping::Carrier;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    pub(crate) const REQUEST_FIXTURE: &str = include_str!("fixtures/easypost/create-shipment.request.json");
    pub(crate) const RESPONSE_FIXTURE: &str = include_str!("fixtures/easypost/create-shipment.response.json");
    const UNPROCESSABLE_FIXTURE: &str = include_str!("fixtures/easypost/unprocessable.response.json");

    /// What the fake server does with one request.
    #[derive(Clone)]
    pub(crate) enum Reply {
        Json(u16, String),
        /// Reads the request and never answers.
        Hang,
    }

    /// A one-connection-per-request HTTP server on loopback: answers each request with the next reply (the
    /// last one again once they run out), counts and records them (request line, headers, body).
    pub(crate) struct FakeServer {
        pub(crate) base: String,
        seen: Arc<Mutex<Vec<String>>>,
        hits: Arc<AtomicUsize>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for FakeServer {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    impl FakeServer {
        pub(crate) async fn start(replies: Vec<Reply>) -> Self {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let seen = Arc::new(Mutex::new(Vec::new()));
            let hits = Arc::new(AtomicUsize::new(0));
            let task = tokio::spawn({
                let (seen, hits) = (seen.clone(), hits.clone());
                async move {
                    let mut held = Vec::new();
                    for n in 0.. {
                        let Ok((mut socket, _)) = listener.accept().await else { return };
                        let mut buffer = Vec::new();
                        let mut chunk = [0u8; 4096];
                        while let Ok(read) = socket.read(&mut chunk).await {
                            buffer.extend_from_slice(&chunk[..read]);
                            let text = String::from_utf8_lossy(&buffer).to_string();
                            if let Some(end) = text.find("\r\n\r\n") {
                                let length = text[..end]
                                    .lines()
                                    .find_map(|l| {
                                        l.to_ascii_lowercase()
                                            .strip_prefix("content-length: ")
                                            .and_then(|v| v.trim().parse::<usize>().ok())
                                    })
                                    .unwrap_or(0);
                                if buffer.len() >= end + 4 + length {
                                    break;
                                }
                            }
                            if read == 0 {
                                break;
                            }
                        }
                        seen.lock().unwrap().push(String::from_utf8_lossy(&buffer).to_string());
                        hits.fetch_add(1, Ordering::SeqCst);
                        match replies[n.min(replies.len() - 1)].clone() {
                            Reply::Json(status, body) => {
                                let response = format!(
                                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                                    body.len()
                                );
                                let _ = socket.write_all(response.as_bytes()).await;
                            }
                            Reply::Hang => held.push(socket),
                        }
                    }
                }
            });
            Self { base, seen, hits, task }
        }

        pub(crate) fn hits(&self) -> usize {
            self.hits.load(Ordering::SeqCst)
        }

        pub(crate) fn seen(&self) -> Vec<String> {
            self.seen.lock().unwrap().clone()
        }
    }

    /// The request the fixtures describe: 1 kg from California to Illinois, Priority, in USD.
    pub(crate) fn request() -> CarrierRateRequest {
        let mut request = crate::shipping::sandbox::tests::request("priority", 1_000, Some("US"), "US");
        request.carrier = Carrier::Easypost;
        request.origin = Some(Location {
            country: "US".into(),
            region: Some("CA".into()),
            coordinates: None,
            postal_code: Some("91761".into()),
        });
        request.destination.line2 = Some("Apt 4".into());
        request
    }

    fn carrier(base: &str) -> EasyPostCarrier {
        EasyPostCarrier::new("EZTK_test_key".into(), base.into(), Duration::from_secs(10)).unwrap()
    }

    fn ok(body: &str) -> Vec<Reply> {
        vec![Reply::Json(200, body.into())]
    }

    /// The fixture answer with its Priority rate changed by `edit`.
    fn with_priority_rate(edit: impl Fn(&mut Map<String, Value>)) -> String {
        let mut answer: Value = serde_json::from_str(RESPONSE_FIXTURE).unwrap();
        for rate in answer["rates"].as_array_mut().unwrap() {
            if rate["service"] == "Priority" {
                edit(rate.as_object_mut().unwrap());
            }
        }
        answer.to_string()
    }

    fn rate_of(body: &str, service: &str) -> Result<Option<Money>> {
        let mut request = request();
        request.service = service.into();
        answer_rate(200, body.as_bytes(), &request)
    }

    fn is_transient(outcome: &Result<Option<Money>>) -> bool {
        matches!(outcome, Err(DomainError::Transient(_)))
    }

    #[tokio::test]
    async fn the_request_is_the_documented_shipment_with_basic_auth_and_the_weight_in_ounces() {
        let server = FakeServer::start(ok(RESPONSE_FIXTURE)).await;
        let rate = carrier(&server.base).rate(&request()).await.unwrap();
        assert_eq!(rate, Some(Money::new(758, Currency::USD)));
        let seen = server.seen().remove(0);
        let lower = seen.to_ascii_lowercase();
        assert!(seen.starts_with("POST /v2/shipments HTTP/1.1\r\n"), "{seen}");
        // base64("EZTK_test_key:")
        assert!(lower.contains("\r\nauthorization: basic rvpus190zxn0x2tleto=\r\n"), "{seen}");
        assert!(lower.contains("\r\ncontent-type: application/json\r\n"), "{seen}");
        let body: Value = serde_json::from_str(seen.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        let fixture: Value = serde_json::from_str(REQUEST_FIXTURE).unwrap();
        assert_eq!(body, fixture);
        assert_eq!(body["shipment"]["parcel"]["weight"].as_f64(), Some(35.3));
    }

    #[test]
    fn grams_become_ounces_rounded_up_to_a_tenth() {
        assert_eq!(ounces(1_000), 35.3);
        assert_eq!(ounces(28), 1.0);
        assert_eq!(ounces(453), 16.0);
        assert_eq!(ounces(454), 16.1);
        assert_eq!(ounces(0), 0.1);
        assert_eq!(ounces(1), 0.1);
        assert!(ounces(u64::MAX) > 6.5e17);
    }

    #[test]
    fn the_fixture_answer_gives_the_rate_of_the_requested_service_ignoring_case() {
        assert_eq!(rate_of(RESPONSE_FIXTURE, "priority").unwrap(), Some(Money::new(758, Currency::USD)));
        assert_eq!(rate_of(RESPONSE_FIXTURE, "Priority").unwrap(), Some(Money::new(758, Currency::USD)));
        assert_eq!(rate_of(RESPONSE_FIXTURE, "EXPRESS").unwrap(), Some(Money::new(4_960, Currency::USD)));
        assert_eq!(rate_of(RESPONSE_FIXTURE, "groundadvantage").unwrap(), Some(Money::new(679, Currency::USD)));
    }

    #[test]
    fn a_service_the_answer_does_not_offer_has_no_rate() {
        assert_eq!(rate_of(RESPONSE_FIXTURE, "FirstClass").unwrap(), None);
        assert_eq!(rate_of(r#"{"id":"shp_1","rates":[],"messages":null}"#, "Priority").unwrap(), None);
        let failed_carrier =
            r#"{"id":"shp_1","rates":[],"messages":[{"carrier":"UPS","type":"rate_error","message":"x"}]}"#;
        assert_eq!(rate_of(failed_carrier, "Priority").unwrap(), None);
    }

    #[test]
    fn the_cheapest_matching_rate_in_the_requested_currency_is_taken() {
        let answer = r#"{"id":"shp_1","rates":[
            {"id":"rate_1","carrier":"UPS","service":"Priority","rate":"9.10","currency":"USD"},
            {"id":"rate_2","carrier":"USPS","service":"Priority","rate":"7.58","currency":"USD"},
            {"id":"rate_3","carrier":"DHL","service":"Priority","rate":"1.00","currency":"EUR"}]}"#;
        assert_eq!(rate_of(answer, "priority").unwrap(), Some(Money::new(758, Currency::USD)));
    }

    #[test]
    fn a_rate_only_in_another_currency_is_no_rate() {
        let euros = with_priority_rate(|r| {
            r.insert("currency".into(), json!("EUR"));
        });
        assert_eq!(rate_of(&euros, "priority").unwrap(), None);
        let mut in_euros = request();
        in_euros.currency = Currency::EUR;
        assert_eq!(answer_rate(200, euros.as_bytes(), &in_euros).unwrap(), Some(Money::new(758, Currency::EUR)));
    }

    #[test]
    fn malformed_answers_and_missing_fields_are_transient() {
        let missing_rate = with_priority_rate(|r| {
            r.remove("rate");
        });
        let numeric_rate = with_priority_rate(|r| {
            r.insert("rate".into(), json!(7.58));
        });
        let null_service = with_priority_rate(|r| {
            r.insert("service".into(), Value::Null);
        });
        let answers = [
            "",
            "not json",
            "{\"id\":\"shp_1\",\"rates\":[",
            "[]",
            r#"{"error":{"code":"x"}}"#,
            r#"{"id":"shp_1"}"#,
            r#"{"id":"shp_1","rates":null}"#,
            r#"{"rates":[]}"#,
            r#"{"id":"shp_1","rates":{"service":"Priority"}}"#,
            missing_rate.as_str(),
            numeric_rate.as_str(),
            null_service.as_str(),
        ];
        for answer in answers {
            assert!(is_transient(&rate_of(answer, "priority")), "{answer}");
        }
    }

    #[test]
    fn a_matching_rate_that_is_not_a_sane_price_refuses_the_answer() {
        let absurd = format!("{}.01", MAX_PRICE / 100);
        let prices = ["-7.58", "7.585", "7,58", "$7.58", " 7.58", "7.", ".58", "1e3", "", "0.00", absurd.as_str()];
        for price in prices {
            let answer = with_priority_rate(|r| {
                r.insert("rate".into(), json!(price));
            });
            let outcome = rate_of(&answer, "priority");
            assert!(
                matches!(&outcome, Err(DomainError::Transient(m)) if m.starts_with("easypost rate rate_c9e1a6c4be1e40a7af83b42d1115c550 refused")),
                "{price}: {outcome:?}"
            );
        }
        let bad_currency = with_priority_rate(|r| {
            r.insert("currency".into(), json!("usd"));
        });
        assert!(is_transient(&rate_of(&bad_currency, "priority")));
        let most = format!("{}.00", MAX_PRICE / 100);
        let answer = with_priority_rate(|r| {
            r.insert("rate".into(), json!(most));
        });
        assert_eq!(rate_of(&answer, "priority").unwrap(), Some(Money::new(MAX_PRICE, Currency::USD)));
        let broken_elsewhere = r#"{"id":"shp_1","rates":[
            {"id":"rate_1","carrier":"UPS","service":"Ground","rate":"-1","currency":"usd"},
            {"id":"rate_2","carrier":"USPS","service":"Priority","rate":"7.58","currency":"USD"}]}"#;
        assert_eq!(rate_of(broken_elsewhere, "priority").unwrap(), Some(Money::new(758, Currency::USD)));
    }

    #[test]
    fn statuses_map_to_no_rate_transient_or_unexpected() {
        let request = request();
        assert_eq!(answer_rate(422, UNPROCESSABLE_FIXTURE.as_bytes(), &request).unwrap(), None);
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(is_transient(&answer_rate(status, b"", &request)), "{status}");
        }
        let unauthorized = br#"{"error":{"code":"APIKEY.REQUIRED","message":"API key required"}}"#;
        for status in [400, 401, 402, 403, 404, 405, 301] {
            assert!(matches!(answer_rate(status, unauthorized, &request), Err(DomainError::Unexpected(_))), "{status}");
        }
    }

    #[tokio::test]
    async fn a_500_is_transient_and_a_401_is_unexpected_over_the_wire() {
        let server = FakeServer::start(vec![
            Reply::Json(500, r#"{"error":{"code":"INTERNAL_SERVER_ERROR"}}"#.into()),
            Reply::Json(401, r#"{"error":{"code":"APIKEY.REQUIRED","message":"API key required"}}"#.into()),
        ])
        .await;
        let easypost = carrier(&server.base);
        assert!(is_transient(&easypost.rate(&request()).await));
        assert!(matches!(easypost.rate(&request()).await, Err(DomainError::Unexpected(_))));
        assert_eq!(server.hits(), 2);
    }

    #[tokio::test]
    async fn malformed_json_over_the_wire_is_transient() {
        let server = FakeServer::start(ok("{\"id\": \"shp_1\", \"rates\": [{\"id\":")).await;
        assert!(is_transient(&carrier(&server.base).rate(&request()).await));
    }

    #[tokio::test]
    async fn an_oversized_answer_is_transient() {
        let padding = "x".repeat(MAX_ANSWER_BYTES);
        let server = FakeServer::start(ok(&format!(r#"{{"id":"shp_1","rates":[],"padding":"{padding}"}}"#))).await;
        let outcome = carrier(&server.base).rate(&request()).await;
        assert!(matches!(&outcome, Err(DomainError::Transient(m)) if m.contains("bytes")), "{outcome:?}");
    }

    #[tokio::test]
    async fn a_server_that_never_answers_is_transient_after_the_client_timeout() {
        let server = FakeServer::start(vec![Reply::Hang]).await;
        let easypost =
            EasyPostCarrier::new("EZTK_test_key".into(), server.base.clone(), Duration::from_millis(200)).unwrap();
        let outcome = easypost.rate(&request()).await;
        assert!(matches!(&outcome, Err(DomainError::Transient(m)) if m.contains("timed out")), "{outcome:?}");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_transient() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        assert!(is_transient(&carrier(&base).rate(&request()).await));
    }

    #[tokio::test]
    async fn without_an_origin_nothing_is_sent_and_there_is_no_rate() {
        let server = FakeServer::start(ok(RESPONSE_FIXTURE)).await;
        let mut request = request();
        request.origin = None;
        assert_eq!(carrier(&server.base).rate(&request).await.unwrap(), None);
        assert_eq!(server.hits(), 0);
    }
}
