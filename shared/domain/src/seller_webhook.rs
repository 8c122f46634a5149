//! Sellers' webhook endpoints, the events each receives, and the state of each delivery.
//!
//! An endpoint belongs to one seller and receives only the event types it subscribed to, and only events about
//! that seller's own orders (an order with several sellers makes one event per seller, carrying only that
//! seller's part). Every event has a stable id derived from what happened (the order event and the seller), so
//! however often the order events queue redelivers, an endpoint gets one delivery per event.
//!
//! A delivery is `pending` (due at `next_at`), `sending` (an attempt is out, leased until `lease_until`: a worker
//! that dies mid-attempt is replaced when the lease ends), `delivered`, or `failed` (given up: a 4xx, the
//! address refused, or the attempts exhausted). Each attempt is recorded with its status and latency. The
//! endpoint's breaker and its attempt budget (a token bucket: at most `rate_per_sec` attempts per second,
//! bursts of `burst`) are checked before every attempt.

use crate::error::{DomainError, Result};
use crate::order::{NotificationKind, Order, OrderNotification, SellerOrderView};
use crate::webhook::{Breaker, Envelope, EventType, MessageId, NextStep, WebhookSecret};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

/// Most endpoints one seller may register.
pub const MAX_ENDPOINTS_PER_SELLER: usize = 10;
/// Longest endpoint URL.
pub const MAX_URL_LEN: usize = 2048;
/// Longest description.
pub const MAX_DESCRIPTION: usize = 200;
/// How long the previous secret still signs after a rotation (receivers switch within it).
pub const ROTATION_GRACE_HOURS: i64 = 24;
/// How long an attempt may be out before another worker may take the delivery over.
pub const LEASE_SECS: i64 = 60;
/// Most attempts kept in a delivery's record (the first ones and the latest ones are what matter).
pub const MAX_RECORDED_ATTEMPTS: usize = 20;

/// `POST /v1/seller/webhooks`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointRequest {
    pub url: String,
    pub events: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
}

impl EndpointRequest {
    /// The URL (https, a host, no credentials, no spaces), the event types (known, at least one) and the
    /// description, checked. Whether the host's addresses may be reached is checked apart (see the app's
    /// `UrlGuard`) and again at every connection.
    pub fn validated(self) -> Result<(String, BTreeSet<EventType>, Option<String>)> {
        let url = check_url(&self.url)?;
        if self.events.is_empty() {
            return Err(DomainError::validation("events", "name at least one event type"));
        }
        let mut events = BTreeSet::new();
        for (i, name) in self.events.iter().enumerate() {
            let event = name.parse().map_err(|e| DomainError::validation(format!("events[{i}]"), e))?;
            events.insert(event);
        }
        let description = self.description.map(|d| d.trim().to_owned()).filter(|d| !d.is_empty());
        if description.as_ref().is_some_and(|d| d.chars().count() > MAX_DESCRIPTION || d.chars().any(char::is_control))
        {
            return Err(DomainError::validation("description", "at most 200 characters, no control characters"));
        }
        Ok((url, events, description))
    }
}

fn check_url(url: &str) -> Result<String> {
    let invalid = |why: &str| DomainError::validation("url", why);
    let url = url.trim();
    if url.len() > MAX_URL_LEN {
        return Err(invalid("must be at most 2048 characters"));
    }
    // http only to this machine, for a local stack that allows it (the guard decides); https anywhere else.
    let (rest, http) = match url.strip_prefix("https://") {
        Some(rest) => (rest, false),
        None => (url.strip_prefix("http://").ok_or_else(|| invalid("must be an https URL"))?, true),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return Err(invalid("must name a host, without a user name or password"));
    }
    let host = authority.rsplit_once(':').filter(|(h, p)| !h.ends_with(':') && p.chars().all(|c| c.is_ascii_digit()));
    let host = host.map_or(authority, |(h, _)| h);
    if http && !["127.0.0.1", "[::1]", "localhost"].contains(&host) {
        return Err(invalid("must be an https URL"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("must not contain spaces or control characters"));
    }
    Ok(url.to_owned())
}

/// A seller's endpoint as stored: with its secrets, breaker and attempt budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub webhook_id: String,
    pub seller_id: String,
    pub url: String,
    pub events: BTreeSet<EventType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `whsec_…`: signs every attempt.
    pub secret: String,
    /// The secret before the last rotation, and until when it still signs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret: Option<(String, DateTime<Utc>)>,
    pub breaker: Breaker,
    pub budget: Budget,
    pub created_at: DateTime<Utc>,
    /// Bumped by every write; writes are conditional on it.
    pub version: u64,
}

/// What a seller sees of an endpoint: never a secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndpointView {
    pub webhook_id: String,
    pub url: String,
    pub events: BTreeSet<EventType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `active`, `failing` (recent attempts failed; the breaker holds deliveries back) or `disabled` (failed for
    /// days; register again to resume).
    pub state: &'static str,
    pub created_at: DateTime<Utc>,
}

impl Endpoint {
    pub fn new(
        webhook_id: String,
        seller_id: String,
        (url, events, description): (String, BTreeSet<EventType>, Option<String>),
        secret: &WebhookSecret,
        budget: Budget,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            webhook_id,
            seller_id,
            url,
            events,
            description,
            secret: secret.reveal(),
            previous_secret: None,
            breaker: Breaker::default(),
            budget,
            created_at: now,
            version: 1,
        }
    }

    pub fn view(&self) -> EndpointView {
        let state = match self.breaker {
            Breaker::Disabled { .. } => "disabled",
            Breaker::Closed { consecutive_failures: 0, .. } => "active",
            _ => "failing",
        };
        EndpointView {
            webhook_id: self.webhook_id.clone(),
            url: self.url.clone(),
            events: self.events.clone(),
            description: self.description.clone(),
            state,
            created_at: self.created_at,
        }
    }

    /// A new secret signs from now on; the old one also signs for [`ROTATION_GRACE_HOURS`].
    pub fn rotate(&mut self, secret: &WebhookSecret, now: DateTime<Utc>) {
        let old = std::mem::replace(&mut self.secret, secret.reveal());
        self.previous_secret = Some((old, now + Duration::hours(ROTATION_GRACE_HOURS)));
    }

    /// The secrets an attempt at `now` is signed with.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Result<Vec<WebhookSecret>> {
        let mut secrets = vec![self.secret.parse().map_err(DomainError::unexpected)?];
        if let Some((previous, until)) = &self.previous_secret {
            if now < *until {
                secrets.push(previous.parse().map_err(DomainError::unexpected)?);
            }
        }
        Ok(secrets)
    }
}

/// An endpoint's attempt budget: a token bucket refilled at `rate_per_sec`, holding at most `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    pub rate_per_sec: f64,
    pub burst: f64,
    pub tokens: f64,
    pub updated_at: DateTime<Utc>,
}

impl Budget {
    pub fn full(rate_per_sec: f64, burst: f64, now: DateTime<Utc>) -> Self {
        let rate_per_sec = rate_per_sec.max(0.001);
        let burst = burst.max(1.0);
        Self { rate_per_sec, burst, tokens: burst, updated_at: now }
    }

    /// Takes one attempt's token at `now`, or says when one will be there.
    pub fn take(&self, now: DateTime<Utc>) -> std::result::Result<Budget, DateTime<Utc>> {
        let elapsed = (now - self.updated_at).num_milliseconds().max(0) as f64 / 1000.0;
        let tokens = (self.tokens + elapsed * self.rate_per_sec).min(self.burst);
        if tokens >= 1.0 {
            return Ok(Budget { tokens: tokens - 1.0, updated_at: now.max(self.updated_at), ..*self });
        }
        let wait_ms = ((1.0 - tokens) / self.rate_per_sec * 1000.0).ceil() as i64;
        Err(now + Duration::milliseconds(wait_ms.max(1)))
    }
}

/// One event for one seller, before it is addressed to that seller's endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct SellerEvent {
    /// `[A-Za-z0-9_-]`: the order event's notification id and a digest of the seller.
    pub event_id: String,
    pub seller_id: String,
    pub event_type: EventType,
    /// The exact bytes signed and sent (see [`Envelope::to_body`]).
    pub body: Vec<u8>,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Serialize)]
struct EventData<'a> {
    order: &'a SellerOrderView,
    #[serde(skip_serializing_if = "Option::is_none")]
    amount: Option<crate::money::Money>,
}

/// The sellers' events an order notification makes: one per seller the notification concerns (every seller of
/// the order for placed and cancelled, the one seller for shipped, delivered and refunded), each carrying only
/// that seller's view of the order.
pub fn seller_events(notification: &OrderNotification, order: &Order) -> Result<Vec<SellerEvent>> {
    let event_type = match notification.kind {
        NotificationKind::OrderPlaced => EventType::OrderPlaced,
        NotificationKind::OrderCancelled => EventType::OrderCancelled,
        NotificationKind::OrderShipped => EventType::OrderShipped,
        NotificationKind::OrderDelivered => EventType::OrderDelivered,
        NotificationKind::OrderRefunded => EventType::RefundIssued,
        NotificationKind::ReturnRequested => EventType::ReturnRequested,
        // Shoppers' news, not sellers': they hear of their own approvals and of failed checkouts nothing.
        NotificationKind::ReturnApproved | NotificationKind::PaymentFailed => return Ok(Vec::new()),
    };
    let sellers: Vec<String> = match &notification.seller_id {
        Some(seller) => vec![seller.clone()],
        None => order.seller_ids().into_iter().map(str::to_owned).collect(),
    };
    let mut events = Vec::new();
    for seller in sellers {
        let Some(view) = order.seller_view(&seller) else { continue };
        let envelope = Envelope {
            event_type,
            timestamp: notification.at,
            data: EventData { order: &view, amount: notification.amount },
        };
        let body = envelope.to_body().map_err(DomainError::unexpected)?;
        events.push(SellerEvent {
            event_id: event_id(&notification.notification_id, &seller),
            seller_id: seller,
            event_type,
            body,
            occurred_at: notification.at,
        });
    }
    Ok(events)
}

/// What a `stock.low` event carries.
#[derive(Serialize)]
struct StockLowData<'a> {
    sku: &'a str,
    warehouse_id: &'a str,
    available: i64,
    threshold: i64,
}

/// A `stock.low` event for the seller of `level`'s SKU: its available stock fell below `threshold`.
/// `source_id` identifies the change (the stream record's sequence number), so a retried record is the same
/// event.
pub fn stock_low_event(
    seller_id: &str,
    level: &crate::inventory::StockLevel,
    threshold: i64,
    source_id: &str,
    at: DateTime<Utc>,
) -> Result<SellerEvent> {
    let data =
        StockLowData { sku: &level.sku, warehouse_id: &level.warehouse_id, available: level.available(), threshold };
    let envelope = Envelope { event_type: EventType::StockLow, timestamp: at, data };
    Ok(SellerEvent {
        event_id: event_id(&format!("stock-{source_id}"), seller_id),
        seller_id: seller_id.to_owned(),
        event_type: EventType::StockLow,
        body: envelope.to_body().map_err(DomainError::unexpected)?,
        occurred_at: at,
    })
}

/// A stable event id: the notification id's allowed characters and 16 hex digits of the seller's digest.
fn event_id(notification_id: &str, seller_id: &str) -> String {
    let base: String =
        notification_id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').take(100).collect();
    let digest = Sha256::digest(seller_id.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("{base}_{hex}")
}

/// Where a delivery stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DeliveryState {
    Pending { next_at: DateTime<Utc> },
    Sending { lease_until: DateTime<Utc> },
    Delivered,
    Failed { reason: String },
}

/// One attempt's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub number: u32,
    pub at: DateTime<Utc>,
    /// The response status, when there was a response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why there was no usable response: `timeout`, `connection_failed`, `address_refused`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub latency_ms: u64,
}

/// One event addressed to one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Sortable by the event's time: `<epoch millis, 13 digits>-<event id>`.
    pub delivery_id: String,
    pub webhook_id: String,
    pub seller_id: String,
    pub event_id: String,
    pub event_type: EventType,
    /// The signed bytes, as stored at fan-out.
    pub body: String,
    pub state: DeliveryState,
    /// Attempts made (the first [`MAX_RECORDED_ATTEMPTS`] / 2 and the latest are kept in `attempts`).
    pub attempt_count: u32,
    pub attempts: Vec<Attempt>,
    pub created_at: DateTime<Utc>,
    pub version: u64,
}

/// What a seller sees of a delivery.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryView {
    pub delivery_id: String,
    pub event_id: String,
    pub event_type: EventType,
    /// `pending`, `sending`, `delivered` or `failed`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    pub attempt_count: u32,
    pub attempts: Vec<Attempt>,
    pub created_at: DateTime<Utc>,
}

impl Delivery {
    /// The delivery of `event` to `endpoint`, due at once.
    pub fn new(event: &SellerEvent, endpoint: &Endpoint, now: DateTime<Utc>) -> Result<Self> {
        MessageId::for_event(&event.event_id).map_err(DomainError::unexpected)?;
        Ok(Self {
            delivery_id: format!("{:013}-{}", event.occurred_at.timestamp_millis().max(0), event.event_id),
            webhook_id: endpoint.webhook_id.clone(),
            seller_id: endpoint.seller_id.clone(),
            event_id: event.event_id.clone(),
            event_type: event.event_type,
            body: String::from_utf8(event.body.clone()).map_err(DomainError::unexpected)?,
            state: DeliveryState::Pending { next_at: now },
            attempt_count: 0,
            attempts: Vec::new(),
            created_at: now,
            version: 1,
        })
    }

    pub fn message_id(&self) -> Result<MessageId> {
        MessageId::for_event(&self.event_id).map_err(DomainError::unexpected)
    }

    /// Whether an attempt may start at `now`: pending and due, or sending with its lease run out.
    pub fn due(&self, now: DateTime<Utc>) -> std::result::Result<(), Option<DateTime<Utc>>> {
        match self.state {
            DeliveryState::Pending { next_at } if next_at <= now => Ok(()),
            DeliveryState::Pending { next_at } => Err(Some(next_at)),
            DeliveryState::Sending { lease_until } if lease_until <= now => Ok(()),
            DeliveryState::Sending { lease_until } => Err(Some(lease_until)),
            DeliveryState::Delivered | DeliveryState::Failed { .. } => Err(None),
        }
    }

    /// Starts an attempt: leased, counted.
    pub fn start(&mut self, now: DateTime<Utc>) -> u32 {
        self.state = DeliveryState::Sending { lease_until: now + Duration::seconds(LEASE_SECS) };
        self.attempt_count += 1;
        self.version += 1;
        self.attempt_count
    }

    /// Waits without an attempt (the breaker is open, or the budget is spent).
    pub fn postpone(&mut self, until: DateTime<Utc>) {
        self.state = DeliveryState::Pending { next_at: until };
        self.version += 1;
    }

    /// Records the attempt's outcome and what follows it.
    pub fn finish(&mut self, attempt: Attempt, next: NextStep, now: DateTime<Utc>) {
        if self.attempts.len() >= MAX_RECORDED_ATTEMPTS {
            self.attempts.remove(MAX_RECORDED_ATTEMPTS / 2);
        }
        let why = attempt.status.map(|s| format!("status {s}")).or_else(|| attempt.error.clone()).unwrap_or_default();
        self.attempts.push(attempt);
        self.state = match next {
            NextStep::Delivered => DeliveryState::Delivered,
            NextStep::RetryIn(wait) => {
                DeliveryState::Pending { next_at: now + Duration::from_std(wait).unwrap_or(Duration::hours(10)) }
            }
            NextStep::GiveUp => DeliveryState::Failed { reason: format!("not retried: {why}") },
            NextStep::Exhausted => DeliveryState::Failed { reason: format!("every attempt failed, last: {why}") },
        };
        self.version += 1;
    }

    /// Sends a delivered or failed delivery again (a seller's retry): due now, its attempts kept.
    pub fn reopen(&mut self, now: DateTime<Utc>) {
        self.state = DeliveryState::Pending { next_at: now };
        self.version += 1;
    }

    pub fn view(&self) -> DeliveryView {
        let (status, next_attempt_at, failure) = match &self.state {
            DeliveryState::Pending { next_at } => ("pending", Some(*next_at), None),
            DeliveryState::Sending { .. } => ("sending", None, None),
            DeliveryState::Delivered => ("delivered", None, None),
            DeliveryState::Failed { reason } => ("failed", None, Some(reason.clone())),
        };
        DeliveryView {
            delivery_id: self.delivery_id.clone(),
            event_id: self.event_id.clone(),
            event_type: self.event_type,
            status,
            next_attempt_at,
            failure,
            attempt_count: self.attempt_count,
            attempts: self.attempts.clone(),
            created_at: self.created_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn request(url: &str, events: &[&str]) -> EndpointRequest {
        EndpointRequest { url: url.into(), events: events.iter().map(|e| e.to_string()).collect(), description: None }
    }

    fn field(err: DomainError) -> String {
        match err {
            DomainError::Validation { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_endpoint_needs_an_https_url_and_known_event_types() {
        let (url, events, _) =
            request(" https://hooks.example.com/in ", &["order.placed", "order.placed"]).validated().unwrap();
        assert_eq!(url, "https://hooks.example.com/in");
        assert_eq!(events.len(), 1);
        for bad in [
            "ftp://x.example",
            "https://",
            "https://user:pw@x.example/",
            "https://x.example/a b",
            "x.example",
            "http://x.example/",
            "http://127.0.0.1.evil.example/",
            "http://localhost@x.example/",
        ] {
            assert_eq!(field(request(bad, &["order.placed"]).validated().unwrap_err()), "url", "{bad}");
        }
        assert_eq!(field(request("https://x.example", &[]).validated().unwrap_err()), "events");
        for local in ["http://127.0.0.1:9000/hook", "http://localhost/hook", "http://[::1]:8080/"] {
            assert!(request(local, &["order.placed"]).validated().is_ok(), "{local}: the guard decides");
        }
        assert_eq!(
            field(request("https://x.example", &["order.placed", "order.eaten"]).validated().unwrap_err()),
            "events[1]"
        );
    }

    #[test]
    fn the_budget_never_allows_more_than_its_rate_after_a_burst() {
        let mut budget = Budget::full(10.0, 5.0, at(0));
        let mut sent = 0;
        let mut now = at(0);
        // Ask every millisecond for 10 s: at most the burst plus 10 per second.
        for _ in 0..10_000 {
            if let Ok(next) = budget.take(now) {
                budget = next;
                sent += 1;
            }
            now += Duration::milliseconds(1);
        }
        assert!((100..=105).contains(&sent), "{sent}");
        let empty = Budget { tokens: 0.0, ..Budget::full(2.0, 1.0, at(0)) };
        assert_eq!(empty.take(at(0)), Err(at(0) + Duration::milliseconds(500)));
    }

    #[test]
    fn a_rotation_signs_with_both_secrets_for_a_day() {
        let first = WebhookSecret::from_random_bytes(&[1; 32]).unwrap();
        let second = WebhookSecret::from_random_bytes(&[2; 32]).unwrap();
        let req = request("https://x.example", &["order.placed"]).validated().unwrap();
        let mut endpoint =
            Endpoint::new("wh_1".into(), "s1".into(), req, &first, Budget::full(10.0, 10.0, at(0)), at(0));
        endpoint.rotate(&second, at(0));
        assert_eq!(endpoint.signing_secrets(at(60)).unwrap(), vec![second.clone(), first]);
        assert_eq!(endpoint.signing_secrets(at(24 * 3600)).unwrap(), vec![second]);
        assert!(!serde_json::to_string(&endpoint.view()).unwrap().contains("whsec_"));
    }

    #[test]
    fn event_ids_are_stable_valid_message_ids_per_seller() {
        let a = event_id("ord_01HX-7", "seller-1");
        assert_eq!(a, event_id("ord_01HX-7", "seller-1"));
        assert_ne!(a, event_id("ord_01HX-7", "seller-2"));
        assert!(MessageId::for_event(&a).is_ok(), "{a}");
        assert!(MessageId::for_event(&event_id("ord.with:odd/chars", "s")).is_ok());
    }

    #[test]
    fn a_delivery_moves_through_its_states() {
        let secret = WebhookSecret::from_random_bytes(&[1; 32]).unwrap();
        let req = request("https://x.example", &["order.placed"]).validated().unwrap();
        let endpoint = Endpoint::new("wh_1".into(), "s1".into(), req, &secret, Budget::full(10.0, 10.0, at(0)), at(0));
        let event = SellerEvent {
            event_id: "ord_1-2_ab".into(),
            seller_id: "s1".into(),
            event_type: EventType::OrderPlaced,
            body: b"{}".to_vec(),
            occurred_at: at(0),
        };
        let mut delivery = Delivery::new(&event, &endpoint, at(1)).unwrap();
        assert_eq!(delivery.delivery_id, format!("{:013}-ord_1-2_ab", at(0).timestamp_millis()));
        assert_eq!(delivery.due(at(1)), Ok(()));
        assert_eq!(delivery.start(at(1)), 1);
        assert_eq!(delivery.due(at(2)), Err(Some(at(1 + LEASE_SECS))), "leased");
        assert_eq!(delivery.due(at(1 + LEASE_SECS)), Ok(()), "a dead worker's lease runs out");
        let attempt = Attempt { number: 1, at: at(1), status: Some(503), error: None, latency_ms: 12 };
        delivery.finish(attempt, NextStep::RetryIn(std::time::Duration::from_secs(5)), at(2));
        assert_eq!(delivery.due(at(3)), Err(Some(at(7))));
        delivery.start(at(7));
        let attempt = Attempt { number: 2, at: at(7), status: Some(410), error: None, latency_ms: 3 };
        delivery.finish(attempt, NextStep::GiveUp, at(7));
        assert_eq!(delivery.view().status, "failed");
        assert_eq!(delivery.due(at(100)), Err(None));
        delivery.reopen(at(100));
        assert_eq!(delivery.due(at(100)), Ok(()));
    }
}
