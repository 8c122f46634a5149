//! Seller webhooks, the pure part: signing secrets, the Standard Webhooks signature (<https://www.standardwebhooks.com>)
//! and its verification, the event catalogue and envelope, the retry schedule with the classification of an HTTP
//! outcome, and the per-endpoint circuit breaker. Randomness, clocks and the network come in as arguments, so the
//! delivery worker, the API and the receivers in our tests share one definition of each rule.

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

// ---------------------------------------------------------------------------------------------------------------
// Secrets

/// The prefix that marks a Standard Webhooks symmetric secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// The specification's bounds on a secret, in bytes (192 to 512 bits).
pub const SECRET_LEN: RangeInclusive<usize> = 24..=64;

/// Standard base64 with or without padding: the reference libraries pad whatever they are given, so a secret a
/// seller pasted without its trailing `=` must still parse.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a text or a byte string is not a webhook secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a webhook secret starts with `whsec_`")]
    MissingPrefix,
    #[error("a webhook secret is standard base64 after `whsec_`")]
    NotBase64,
    #[error("a webhook secret is 24 to 64 bytes, not {0}")]
    Length(usize),
}

/// An endpoint's HMAC key. Shown to the seller once as `whsec_<base64>`; its `Debug` never prints the key, so a
/// secret inside a logged struct stays secret.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

impl WebhookSecret {
    /// A secret from `bytes` the caller drew from a CSPRNG (the domain draws nothing itself).
    pub fn from_random_bytes(bytes: &[u8]) -> Result<Self, SecretError> {
        if !SECRET_LEN.contains(&bytes.len()) {
            return Err(SecretError::Length(bytes.len()));
        }
        Ok(Self { key: bytes.to_vec() })
    }

    /// Parses `whsec_<base64>`; nothing else is a secret.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text.strip_prefix(SECRET_PREFIX).ok_or(SecretError::MissingPrefix)?;
        let key = LENIENT_BASE64.decode(encoded).map_err(|_| SecretError::NotBase64)?;
        Self::from_random_bytes(&key)
    }

    /// The `whsec_<base64>` form: what the seller is shown and what the store keeps. Named so that every place
    /// that exposes the key says so.
    pub fn reveal(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.key))
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length")
    }
}

impl FromStr for WebhookSecret {
    type Err = SecretError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(redacted)")
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Message ids

/// The longest event id a message id is made from.
pub const MAX_EVENT_ID_LEN: usize = 128;

/// An event id that cannot become a message id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an event id is 1 to 128 ASCII letters, digits, `_` or `-`")]
pub struct InvalidEventId;

/// The `webhook-id` of every delivery of one event: `msg_` + the event's id. Derived, not drawn, so a redelivery
/// carries the same id and the receiver can use it as an idempotency key. Restricted to `[A-Za-z0-9_-]` because
/// the specification warns that a `.` in the id would make the signed content ambiguous.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageId(String);

impl MessageId {
    /// The message id of the event `event_id` (a ULID in practice).
    pub fn for_event(event_id: &str) -> Result<Self, InvalidEventId> {
        let valid = !event_id.is_empty()
            && event_id.len() <= MAX_EVENT_ID_LEN
            && event_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(InvalidEventId);
        }
        Ok(Self(format!("msg_{event_id}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Signing and verification

/// The header that carries the message id.
pub const HEADER_ID: &str = "webhook-id";
/// The header that carries the attempt's Unix time in whole seconds.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// The header that carries the space-separated signatures.
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// The only signature version we produce and accept: symmetric HMAC-SHA256.
const VERSION: &str = "v1";

/// The HMAC over the specification's signed content, `{msg_id}.{timestamp}.{body}`, fed in parts so the body is
/// never copied.
fn signed_content(secret: &WebhookSecret, msg_id: &str, timestamp_secs: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = secret.mac();
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// `v1,<base64 HMAC-SHA256>` of one attempt of a message.
pub fn sign(secret: &WebhookSecret, msg_id: &MessageId, timestamp_secs: i64, body: &[u8]) -> String {
    let tag = signed_content(secret, msg_id.as_str(), timestamp_secs, body).finalize().into_bytes();
    format!("{VERSION},{}", STANDARD.encode(tag))
}

/// Signing was asked for with no secret at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signing needs at least one secret")]
pub struct NoSecret;

/// The three headers of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookHeaders {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
}

impl WebhookHeaders {
    /// Signs with every secret in `secrets`: during a rotation the endpoint holds the new and the old one, and a
    /// receiver still configured with either accepts the message.
    pub fn sign(
        secrets: &[WebhookSecret],
        msg_id: &MessageId,
        timestamp_secs: i64,
        body: &[u8],
    ) -> Result<Self, NoSecret> {
        if secrets.is_empty() {
            return Err(NoSecret);
        }
        let signatures: Vec<String> = secrets.iter().map(|s| sign(s, msg_id, timestamp_secs, body)).collect();
        Ok(Self { id: msg_id.to_string(), timestamp: timestamp_secs.to_string(), signature: signatures.join(" ") })
    }

    /// Name and value of each header, for an HTTP client.
    pub fn pairs(&self) -> [(&'static str, &str); 3] {
        [(HEADER_ID, &self.id), (HEADER_TIMESTAMP, &self.timestamp), (HEADER_SIGNATURE, &self.signature)]
    }
}

/// How far a receiver lets an attempt's timestamp be from its own clock: the specification's example value.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// A message as a receiver got it: the three header values (empty if absent) and the raw body.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    pub id: &'a str,
    pub timestamp: &'a str,
    pub signature: &'a str,
    pub body: &'a [u8],
}

/// Why a receiver refuses a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the `{0}` header is missing")]
    MissingHeader(&'static str),
    #[error("`webhook-timestamp` is not whole seconds since the epoch")]
    BadTimestamp,
    #[error("the message is older than the tolerance")]
    TooOld,
    #[error("the message is newer than the tolerance")]
    TooNew,
    #[error("no signature matches")]
    NoMatch,
}

/// What a receiver does: the timestamp within `tolerance` of `now_secs` (so a captured message cannot be
/// replayed later), then any `v1` signature in the header matching, compared in constant time so that timing does
/// not reveal how much of a forged signature was right. Other versions (e.g. `v1a`) are skipped, not errors.
pub fn verify(
    secret: &WebhookSecret,
    received: &Received<'_>,
    now_secs: i64,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    let headers =
        [(HEADER_ID, received.id), (HEADER_TIMESTAMP, received.timestamp), (HEADER_SIGNATURE, received.signature)];
    if let Some((name, _)) = headers.iter().find(|(_, value)| value.is_empty()) {
        return Err(VerifyError::MissingHeader(name));
    }
    let timestamp = parse_timestamp(received.timestamp)?;
    check_fresh(timestamp, now_secs, tolerance)?;
    let expected = signed_content(secret, received.id, timestamp, received.body);
    let matched =
        received.signature.split(' ').filter_map(v1_tag).any(|tag| expected.clone().verify_slice(&tag).is_ok());
    if matched {
        Ok(())
    } else {
        Err(VerifyError::NoMatch)
    }
}

fn parse_timestamp(text: &str) -> Result<i64, VerifyError> {
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::BadTimestamp);
    }
    text.parse().map_err(|_| VerifyError::BadTimestamp)
}

fn check_fresh(timestamp: i64, now_secs: i64, tolerance: Duration) -> Result<(), VerifyError> {
    let tolerance = i128::from(tolerance.as_secs());
    let age = i128::from(now_secs) - i128::from(timestamp);
    if age > tolerance {
        Err(VerifyError::TooOld)
    } else if -age > tolerance {
        Err(VerifyError::TooNew)
    } else {
        Ok(())
    }
}

/// The decoded tag of a `v1,<base64>` signature; `None` for any other version or malformed entry.
fn v1_tag(signature: &str) -> Option<Vec<u8>> {
    let (version, tag) = signature.split_once(',')?;
    if version != VERSION {
        return None;
    }
    STANDARD.decode(tag).ok()
}

// ---------------------------------------------------------------------------------------------------------------
// Event catalogue

/// The registry of event types: each variant and its wire name, spelled once.
macro_rules! event_types {
    ($($(#[doc = $doc:literal])* $variant:ident = $name:literal,)*) => {
        /// What happened, as the `type` of the envelope and the filter a seller subscribes with.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType {
            $($(#[doc = $doc])* $variant,)*
        }

        impl EventType {
            /// Every event type, in the catalogue's order.
            pub const ALL: &'static [EventType] = &[$(EventType::$variant,)*];

            /// The wire name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(EventType::$variant => $name,)*
                }
            }
        }
    };
}

event_types! {
    /// An order was paid for and its stock is held.
    OrderPlaced = "order.placed",
    /// An order was cancelled before shipping; its stock is released.
    OrderCancelled = "order.cancelled",
    /// A shipment left the warehouse.
    OrderShipped = "order.shipped",
    /// The carrier reported the delivery.
    OrderDelivered = "order.delivered",
    /// A shopper asked to return items.
    ReturnRequested = "return.requested",
    /// Money went back to the shopper.
    RefundIssued = "refund.issued",
    /// A SKU's available stock fell below its threshold.
    StockLow = "stock.low",
}

/// A name that is not in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type `{0}`")]
pub struct UnknownEventType(pub String);

impl FromStr for EventType {
    type Err = UnknownEventType;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL.iter().copied().find(|t| t.as_str() == name).ok_or_else(|| UnknownEventType(name.to_owned()))
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// The body of every delivery: `{"type": ..., "timestamp": RFC 3339 UTC, "data": {...}}`. `timestamp` is when the
/// event happened and stays the same on every retry; the attempt's time is in `webhook-timestamp`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub timestamp: DateTime<Utc>,
    pub data: T,
}

impl<T: Serialize> Envelope<T> {
    /// The bytes that are signed and sent: built once per event and stored, since re-serializing could change
    /// them and break the signature a receiver checks.
    pub fn to_body(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Retry schedule

/// The nominal wait after each failed attempt: the Standard Webhooks example schedule up to its ten-hour step.
/// Eight attempts (the first at once, then seven retries) over 27 h 35 min 5 s: a receiver that is down for most
/// of a day still gets the event.
pub const RETRY_DELAYS: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// Attempts of one message before it is given up: the first and one per step of [`RETRY_DELAYS`].
pub const MAX_ATTEMPTS: u32 = RETRY_DELAYS.len() as u32 + 1;

/// The longest single wait, also the most a receiver's `Retry-After` can ask for.
pub const RETRY_CAP: Duration = Duration::from_secs(10 * 3600);

/// How a wait is spread. Every message that failed during the same outage would otherwise come back at the same
/// instant; the caller passes the random fraction so this stays pure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Exactly the schedule.
    None,
    /// Full jitter within the step: anywhere between the previous step's nominal wait and this one's. Drawing from
    /// zero instead would halve the expected total and cut short a day-long outage's retries.
    Full,
    /// Decorrelated jitter: anywhere between the previous step's nominal wait and three times `previous` (the
    /// wait actually used last time), at least this step's nominal wait and at most [`RETRY_CAP`].
    Decorrelated { previous: Duration },
}

/// The wait after failed attempt `attempt` (1 for the first delivery), or `None` once [`MAX_ATTEMPTS`] are spent.
/// `fraction` is uniform in [0, 1]; out-of-range values are clamped.
pub fn retry_delay(attempt: u32, jitter: Jitter, fraction: f64) -> Option<Duration> {
    let step = attempt.max(1) as usize;
    let nominal = *RETRY_DELAYS.get(step - 1)?;
    let floor = step.checked_sub(2).map_or(Duration::ZERO, |i| RETRY_DELAYS[i]);
    let ceiling = match jitter {
        Jitter::None => return Some(nominal),
        Jitter::Full => nominal,
        Jitter::Decorrelated { previous } => previous.saturating_mul(3).clamp(nominal, RETRY_CAP),
    };
    Some(between(floor, ceiling, fraction))
}

fn between(low: Duration, high: Duration, fraction: f64) -> Duration {
    let fraction = if fraction.is_finite() { fraction.clamp(0.0, 1.0) } else { 0.0 };
    low + high.saturating_sub(low).mul_f64(fraction)
}

/// A `Retry-After` value as a wait from `now`: delay-seconds, or an HTTP date (IMF-fixdate and the two obsolete
/// forms HTTP/1.1 still requires a client to read). A date in the past is no wait; anything else is `None`.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(value.parse().map_or(Duration::MAX, Duration::from_secs));
    }
    let at = parse_http_date(value)?;
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

fn parse_http_date(value: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc2822(value) {
        return Some(at.with_timezone(&Utc));
    }
    ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(value, format).ok())
        .map(|naive| naive.and_utc())
}

/// What one delivery attempt came to, as the HTTP client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpOutcome<'a> {
    /// The receiver answered.
    Status { code: u16, retry_after: Option<&'a str> },
    /// No answer within the timeout.
    Timeout,
    /// DNS, TCP or TLS failed.
    ConnectionFailed,
    /// Our own address policy refused the URL or every address it resolved to: retrying cannot help.
    Refused,
}

/// What to do about an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Delivered,
    /// The receiver asked for this wait (already capped at [`RETRY_CAP`]).
    RetryAfter(Duration),
    /// Retry on the schedule.
    Retry,
    /// Do not retry this message.
    GiveUp,
}

/// 2xx is delivered; 429 and 503 retry, after `Retry-After` when it is readable; other 5xx, timeouts and
/// connection failures retry on the schedule; redirects (never followed: the seller should register the final
/// URL), other 4xx (the receiver rejects this message, and 410 says it wants no more) and refusals give up.
pub fn classify(outcome: &HttpOutcome<'_>, now: DateTime<Utc>) -> Disposition {
    match *outcome {
        HttpOutcome::Status { code: 200..=299, .. } => Disposition::Delivered,
        HttpOutcome::Status { code: 429 | 503, retry_after } => retry_after
            .and_then(|value| parse_retry_after(value, now))
            .map_or(Disposition::Retry, |wait| Disposition::RetryAfter(wait.min(RETRY_CAP))),
        HttpOutcome::Status { code: 500..=599, .. } => Disposition::Retry,
        HttpOutcome::Status { .. } | HttpOutcome::Refused => Disposition::GiveUp,
        HttpOutcome::Timeout | HttpOutcome::ConnectionFailed => Disposition::Retry,
    }
}

/// Where a message goes after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    Delivered,
    RetryIn(Duration),
    /// The receiver or our policy said not to retry.
    GiveUp,
    /// [`MAX_ATTEMPTS`] are spent.
    Exhausted,
}

/// Combines an attempt's disposition with the schedule. A receiver's `Retry-After` replaces the schedule's wait
/// but does not buy attempts beyond [`MAX_ATTEMPTS`].
pub fn next_step(attempt: u32, disposition: Disposition, jitter: Jitter, fraction: f64) -> NextStep {
    let scheduled = retry_delay(attempt, jitter, fraction);
    match (disposition, scheduled) {
        (Disposition::Delivered, _) => NextStep::Delivered,
        (Disposition::GiveUp, _) => NextStep::GiveUp,
        (_, None) => NextStep::Exhausted,
        (Disposition::RetryAfter(wait), Some(_)) => NextStep::RetryIn(wait),
        (Disposition::Retry, Some(wait)) => NextStep::RetryIn(wait),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Circuit breaker

/// When an endpoint's breaker opens, how long it rests, and when the endpoint is disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// The first rest after opening.
    pub cool_down: Duration,
    /// Each failed probe doubles the rest, up to this.
    pub max_cool_down: Duration,
    /// Failing without a single success for this many days disables the endpoint (the seller is told and
    /// re-enables it).
    pub disable_after_days: u32,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            cool_down: Duration::from_secs(60),
            max_cool_down: Duration::from_secs(3600),
            disable_after_days: 5,
        }
    }
}

/// One endpoint's breaker, as stored beside it. Keeps a dead receiver from holding the delivery worker on
/// timeouts for every queued message: while open, messages wait instead of being tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Breaker {
    Closed {
        consecutive_failures: u32,
        failing_since: Option<DateTime<Utc>>,
    },
    Open {
        until: DateTime<Utc>,
        cool_down_secs: u64,
        failing_since: DateTime<Utc>,
    },
    /// One probe is out; everything else waits for its result.
    HalfOpen {
        probe_sent: DateTime<Utc>,
        cool_down_secs: u64,
        failing_since: DateTime<Utc>,
    },
    Disabled {
        since: DateTime<Utc>,
    },
}

/// Whether an attempt may go out now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Send,
    /// Send this one attempt as the probe; report its result.
    Probe,
    Wait {
        until: DateTime<Utc>,
    },
    Disabled,
}

impl Default for Breaker {
    fn default() -> Self {
        Self::Closed { consecutive_failures: 0, failing_since: None }
    }
}

impl Breaker {
    /// Whether an attempt may go out at `now`, and the state after the decision (a probe moves Open to
    /// Half-open). A probe that never reported is replaced by another after its cool-down.
    pub fn admit(&self, now: DateTime<Utc>) -> (Admission, Breaker) {
        match *self {
            Breaker::Closed { .. } => (Admission::Send, self.clone()),
            Breaker::Open { until, cool_down_secs, failing_since } if now >= until => {
                (Admission::Probe, Breaker::HalfOpen { probe_sent: now, cool_down_secs, failing_since })
            }
            Breaker::Open { until, .. } => (Admission::Wait { until }, self.clone()),
            Breaker::HalfOpen { probe_sent, cool_down_secs, failing_since } => {
                let until = after(probe_sent, cool_down_secs);
                if now >= until {
                    (Admission::Probe, Breaker::HalfOpen { probe_sent: now, cool_down_secs, failing_since })
                } else {
                    (Admission::Wait { until }, self.clone())
                }
            }
            Breaker::Disabled { .. } => (Admission::Disabled, self.clone()),
        }
    }

    /// A delivered attempt closes the breaker. A disabled endpoint stays disabled until the seller re-enables it
    /// (a late success of an attempt sent before disabling does not).
    pub fn on_success(&self) -> Breaker {
        match self {
            Breaker::Disabled { .. } => self.clone(),
            _ => Breaker::default(),
        }
    }

    /// A failed attempt: counts towards opening, re-opens with a doubled rest after a failed probe, and disables
    /// the endpoint once it has failed continuously for the policy's days.
    pub fn on_failure(&self, now: DateTime<Utc>, policy: &BreakerPolicy) -> Breaker {
        let next = match *self {
            Breaker::Closed { consecutive_failures, failing_since } => {
                let failures = consecutive_failures.saturating_add(1);
                let since = failing_since.unwrap_or(now);
                if failures >= policy.failure_threshold.max(1) {
                    open(now, policy.cool_down.as_secs(), since)
                } else {
                    Breaker::Closed { consecutive_failures: failures, failing_since: Some(since) }
                }
            }
            Breaker::Open { .. } => self.clone(),
            Breaker::HalfOpen { cool_down_secs, failing_since, .. } => {
                let longer = cool_down_secs.saturating_mul(2).min(policy.max_cool_down.as_secs());
                open(now, longer, failing_since)
            }
            Breaker::Disabled { .. } => return self.clone(),
        };
        next.disabled_if_failing_too_long(now, policy)
    }

    /// Since when the endpoint has failed without a success, if it has.
    pub fn failing_since(&self) -> Option<DateTime<Utc>> {
        match *self {
            Breaker::Closed { failing_since, .. } => failing_since,
            Breaker::Open { failing_since, .. } | Breaker::HalfOpen { failing_since, .. } => Some(failing_since),
            Breaker::Disabled { .. } => None,
        }
    }

    fn disabled_if_failing_too_long(self, now: DateTime<Utc>, policy: &BreakerPolicy) -> Breaker {
        let limit = TimeDelta::try_days(i64::from(policy.disable_after_days)).unwrap_or(TimeDelta::MAX);
        match self.failing_since() {
            Some(since) if now - since >= limit => Breaker::Disabled { since: now },
            _ => self,
        }
    }
}

fn open(now: DateTime<Utc>, cool_down_secs: u64, failing_since: DateTime<Utc>) -> Breaker {
    Breaker::Open { until: after(now, cool_down_secs), cool_down_secs, failing_since }
}

fn after(at: DateTime<Utc>, secs: u64) -> DateTime<Utc> {
    TimeDelta::try_seconds(i64::try_from(secs).unwrap_or(i64::MAX))
        .and_then(|delta| at.checked_add_signed(delta))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    /// The reference implementations' published vector (standard-webhooks, libraries/*/tests).
    const VECTOR_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const VECTOR_EVENT: &str = "p5jXN8AQM9LWM0D4loKWxJek";
    const VECTOR_TIMESTAMP: i64 = 1_614_265_330;
    const VECTOR_BODY: &str = r#"{"test": 2432232314}"#;
    const VECTOR_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn vector() -> (WebhookSecret, MessageId) {
        (WebhookSecret::parse(VECTOR_SECRET).unwrap(), MessageId::for_event(VECTOR_EVENT).unwrap())
    }

    fn received<'a>(headers: &'a WebhookHeaders, body: &'a [u8]) -> Received<'a> {
        Received { id: &headers.id, timestamp: &headers.timestamp, signature: &headers.signature, body }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).unwrap()
    }

    #[test]
    fn when_signing_the_published_vector_should_give_its_signature() {
        let (secret, id) = vector();
        assert_eq!(id.as_str(), "msg_p5jXN8AQM9LWM0D4loKWxJek");
        assert_eq!(sign(&secret, &id, VECTOR_TIMESTAMP, VECTOR_BODY.as_bytes()), VECTOR_SIGNATURE);
    }

    #[test]
    fn when_the_published_vector_is_verified_should_pass_and_any_change_should_fail() {
        let (secret, id) = vector();
        let headers =
            WebhookHeaders::sign(std::slice::from_ref(&secret), &id, VECTOR_TIMESTAMP, VECTOR_BODY.as_bytes()).unwrap();
        assert_eq!(headers.signature, VECTOR_SIGNATURE);
        let ok = received(&headers, VECTOR_BODY.as_bytes());
        assert_eq!(verify(&secret, &ok, VECTOR_TIMESTAMP, DEFAULT_TOLERANCE), Ok(()));
        let tampered = Received { body: br#"{"test": 2432232315}"#, ..ok };
        assert_eq!(verify(&secret, &tampered, VECTOR_TIMESTAMP, DEFAULT_TOLERANCE), Err(VerifyError::NoMatch));
        let other_id = Received { id: "msg_other", ..ok };
        assert_eq!(verify(&secret, &other_id, VECTOR_TIMESTAMP, DEFAULT_TOLERANCE), Err(VerifyError::NoMatch));
        let other_time = (VECTOR_TIMESTAMP + 1).to_string();
        let moved = Received { timestamp: &other_time, ..ok };
        assert_eq!(verify(&secret, &moved, VECTOR_TIMESTAMP, DEFAULT_TOLERANCE), Err(VerifyError::NoMatch));
    }

    #[test]
    fn when_the_timestamp_is_outside_the_tolerance_should_refuse() {
        let (secret, id) = vector();
        let headers = WebhookHeaders::sign(std::slice::from_ref(&secret), &id, VECTOR_TIMESTAMP, b"{}").unwrap();
        let msg = received(&headers, b"{}");
        let edge = DEFAULT_TOLERANCE.as_secs() as i64;
        assert_eq!(verify(&secret, &msg, VECTOR_TIMESTAMP + edge, DEFAULT_TOLERANCE), Ok(()));
        assert_eq!(verify(&secret, &msg, VECTOR_TIMESTAMP - edge, DEFAULT_TOLERANCE), Ok(()));
        assert_eq!(verify(&secret, &msg, VECTOR_TIMESTAMP + edge + 1, DEFAULT_TOLERANCE), Err(VerifyError::TooOld));
        assert_eq!(verify(&secret, &msg, VECTOR_TIMESTAMP - edge - 1, DEFAULT_TOLERANCE), Err(VerifyError::TooNew));
        assert_eq!(verify(&secret, &msg, VECTOR_TIMESTAMP + 600, Duration::from_secs(600)), Ok(()));
    }

    #[test]
    fn when_headers_are_missing_or_malformed_should_say_which() {
        let (secret, id) = vector();
        let headers = WebhookHeaders::sign(std::slice::from_ref(&secret), &id, VECTOR_TIMESTAMP, b"x").unwrap();
        let ok = received(&headers, b"x");
        let now = VECTOR_TIMESTAMP;
        let cases = [
            (Received { id: "", ..ok }, VerifyError::MissingHeader(HEADER_ID)),
            (Received { timestamp: "", ..ok }, VerifyError::MissingHeader(HEADER_TIMESTAMP)),
            (Received { signature: "", ..ok }, VerifyError::MissingHeader(HEADER_SIGNATURE)),
            (Received { timestamp: "hello", ..ok }, VerifyError::BadTimestamp),
            (Received { timestamp: "-1614265330", ..ok }, VerifyError::BadTimestamp),
            (Received { timestamp: "1614265330.0", ..ok }, VerifyError::BadTimestamp),
            (Received { timestamp: "99999999999999999999999", ..ok }, VerifyError::BadTimestamp),
        ];
        for (msg, want) in cases {
            assert_eq!(verify(&secret, &msg, now, DEFAULT_TOLERANCE), Err(want));
        }
    }

    #[test]
    fn when_several_signatures_are_sent_any_v1_match_should_pass() {
        let (secret, id) = vector();
        let good = sign(&secret, &id, VECTOR_TIMESTAMP, VECTOR_BODY.as_bytes());
        let tag = good.trim_start_matches("v1,");
        let check = |header: &str| {
            let msg =
                Received { id: id.as_str(), timestamp: "1614265330", signature: header, body: VECTOR_BODY.as_bytes() };
            verify(&secret, &msg, VECTOR_TIMESTAMP, DEFAULT_TOLERANCE)
        };
        let noise = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";
        assert_eq!(check(&format!("{noise} v2,{tag} {good} {noise}")), Ok(()));
        assert_eq!(check(&format!("v1a,{tag} v2,{tag} {noise}")), Err(VerifyError::NoMatch), "only v1 counts");
        assert_eq!(
            check(&format!("{tag} v1 v1,!!! ,{tag}")),
            Err(VerifyError::NoMatch),
            "malformed entries count for nothing"
        );
        assert_eq!(check(&format!("v1,{}", &tag[..tag.len() - 4])), Err(VerifyError::NoMatch), "a truncated tag fails");
    }

    #[test]
    fn when_rotating_should_sign_with_every_secret_and_each_should_verify() {
        let old = WebhookSecret::from_random_bytes(&[1; 32]).unwrap();
        let new = WebhookSecret::from_random_bytes(&[2; 24]).unwrap();
        let stranger = WebhookSecret::from_random_bytes(&[3; 64]).unwrap();
        let id = MessageId::for_event("01J00000000000000000000000").unwrap();
        let headers = WebhookHeaders::sign(&[new.clone(), old.clone()], &id, 1_700_000_000, b"{}").unwrap();
        let parts: Vec<&str> = headers.signature.split(' ').collect();
        assert_eq!(parts, [sign(&new, &id, 1_700_000_000, b"{}"), sign(&old, &id, 1_700_000_000, b"{}")]);
        let msg = received(&headers, b"{}");
        for secret in [&old, &new] {
            assert_eq!(verify(secret, &msg, 1_700_000_000, DEFAULT_TOLERANCE), Ok(()));
        }
        assert_eq!(verify(&stranger, &msg, 1_700_000_000, DEFAULT_TOLERANCE), Err(VerifyError::NoMatch));
        assert_eq!(WebhookHeaders::sign(&[], &id, 1, b""), Err(NoSecret));
        assert_eq!(headers.pairs().map(|(name, _)| name), ["webhook-id", "webhook-timestamp", "webhook-signature"]);
        assert_eq!(headers.pairs()[0].1, "msg_01J00000000000000000000000");
        assert_eq!(headers.pairs()[1].1, "1700000000");
    }

    #[test]
    fn when_a_secret_is_made_parsed_or_printed_should_keep_its_rules() {
        for len in [0, 23, 65, 128] {
            assert_eq!(WebhookSecret::from_random_bytes(&vec![7; len]), Err(SecretError::Length(len)));
        }
        let secret = WebhookSecret::from_random_bytes(&[0xfb; 32]).unwrap();
        let text = secret.reveal();
        assert_eq!(text, format!("whsec_{}", STANDARD.encode([0xfb; 32])));
        assert!(text.contains('+') || text.contains('/'), "standard, not url-safe, alphabet: {text}");
        assert_eq!(text.parse::<WebhookSecret>().unwrap(), secret);
        assert_eq!(WebhookSecret::parse(text.trim_end_matches('=')).unwrap(), secret, "padding optional");
        assert_eq!(format!("{secret:?}"), "WebhookSecret(redacted)");
        assert!(!format!("{:?}", Some(&secret)).contains(&text[6..12]));
        let cases = [
            ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", SecretError::MissingPrefix),
            ("whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", SecretError::MissingPrefix),
            ("WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", SecretError::MissingPrefix),
            ("whsec_MfKQ9r8GKYqrTwjU-D8ILPZIo2LaLaSw", SecretError::NotBase64),
            ("whsec_MfKQ9r8GKYqrTwjU PD8ILPZIo2LaLaSw", SecretError::NotBase64),
            ("whsec_", SecretError::Length(0)),
            ("whsec_c2hvcnQ=", SecretError::Length(5)),
        ];
        for (text, want) in cases {
            assert_eq!(WebhookSecret::parse(text), Err(want), "{text}");
        }
    }

    #[test]
    fn when_an_event_id_is_turned_into_a_message_id_should_be_stable_and_dot_free() {
        let first = MessageId::for_event("01HZY3V0QJ8K2M4N6P8R0T2V4X").unwrap();
        assert_eq!(first, MessageId::for_event("01HZY3V0QJ8K2M4N6P8R0T2V4X").unwrap());
        assert_eq!(first.to_string(), "msg_01HZY3V0QJ8K2M4N6P8R0T2V4X");
        assert!(MessageId::for_event(&"a".repeat(MAX_EVENT_ID_LEN)).is_ok());
        for bad in ["", "a.b", "a b", "é", "a,b", "a/b", &"a".repeat(MAX_EVENT_ID_LEN + 1)] {
            assert_eq!(MessageId::for_event(bad), Err(InvalidEventId), "{bad:?}");
        }
    }

    #[test]
    fn when_event_types_are_named_should_round_trip_and_refuse_unknown_names() {
        let names: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(
            names,
            [
                "order.placed",
                "order.cancelled",
                "order.shipped",
                "order.delivered",
                "return.requested",
                "refund.issued",
                "stock.low"
            ]
        );
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>(), Ok(*t));
            assert_eq!(serde_json::to_string(t).unwrap(), format!("\"{t}\""));
            assert_eq!(serde_json::from_str::<EventType>(&format!("\"{t}\"")).unwrap(), *t);
        }
        assert_eq!("order.Placed".parse::<EventType>(), Err(UnknownEventType("order.Placed".into())));
        assert_eq!("order".parse::<EventType>(), Err(UnknownEventType("order".into())));
        let err = serde_json::from_str::<EventType>("\"user.created\"").unwrap_err();
        assert!(err.to_string().contains("unknown event type `user.created`"), "{err}");
    }

    #[test]
    fn when_an_envelope_is_serialized_should_have_type_rfc3339_timestamp_and_data() {
        let timestamp = Utc.with_ymd_and_hms(2025, 3, 1, 12, 30, 5).unwrap() + TimeDelta::milliseconds(250);
        let envelope = Envelope {
            event_type: EventType::OrderShipped,
            timestamp,
            data: serde_json::json!({"order_id": "01J0", "carrier": "ups"}),
        };
        let body = String::from_utf8(envelope.to_body().unwrap()).unwrap();
        assert_eq!(
            body,
            r#"{"type":"order.shipped","timestamp":"2025-03-01T12:30:05.250Z","data":{"carrier":"ups","order_id":"01J0"}}"#
        );
        let back: Envelope<serde_json::Value> = serde_json::from_str(&body).unwrap();
        assert_eq!(back, envelope);
        assert!(serde_json::from_str::<Envelope<serde_json::Value>>(
            r#"{"type":"nope","timestamp":"2025-03-01T12:30:05Z","data":{}}"#
        )
        .is_err());
    }

    #[test]
    fn when_no_jitter_the_schedule_should_be_the_documented_one() {
        let hours = |h: u64| Duration::from_secs(h * 3600);
        let want = [
            Duration::from_secs(5),
            Duration::from_secs(300),
            Duration::from_secs(1800),
            hours(2),
            hours(5),
            hours(10),
            hours(10),
        ];
        let got: Vec<Duration> = (1..MAX_ATTEMPTS).map(|n| retry_delay(n, Jitter::None, 0.5).unwrap()).collect();
        assert_eq!(got, want);
        assert_eq!(got.iter().sum::<Duration>(), Duration::from_secs(27 * 3600 + 35 * 60 + 5));
        assert_eq!(retry_delay(MAX_ATTEMPTS, Jitter::None, 0.5), None);
        assert_eq!(retry_delay(0, Jitter::None, 0.0), Some(Duration::from_secs(5)), "attempt 0 reads as the first");
    }

    #[test]
    fn when_jitter_is_full_the_wait_should_span_from_the_previous_step_to_this_one() {
        assert_eq!(retry_delay(1, Jitter::Full, 0.0), Some(Duration::ZERO));
        assert_eq!(retry_delay(1, Jitter::Full, 1.0), Some(Duration::from_secs(5)));
        assert_eq!(retry_delay(3, Jitter::Full, 0.0), Some(Duration::from_secs(300)));
        assert_eq!(retry_delay(3, Jitter::Full, 0.5), Some(Duration::from_secs(1050)));
        assert_eq!(retry_delay(3, Jitter::Full, 7.0), Some(Duration::from_secs(1800)), "clamped");
        assert_eq!(retry_delay(3, Jitter::Full, f64::NAN), Some(Duration::from_secs(300)));
        assert_eq!(retry_delay(7, Jitter::Full, 0.3), Some(RETRY_CAP), "the last two steps are both the cap");
    }

    #[test]
    fn when_jitter_is_decorrelated_the_wait_should_grow_from_the_last_one_within_the_cap() {
        let previous = Duration::from_secs(2 * 3600);
        assert_eq!(retry_delay(5, Jitter::Decorrelated { previous }, 0.0), Some(Duration::from_secs(2 * 3600)));
        assert_eq!(retry_delay(5, Jitter::Decorrelated { previous }, 1.0), Some(Duration::from_secs(6 * 3600)));
        let huge = Duration::from_secs(u64::MAX);
        assert_eq!(retry_delay(5, Jitter::Decorrelated { previous: huge }, 1.0), Some(RETRY_CAP));
        let tiny = Duration::from_secs(1);
        assert_eq!(retry_delay(2, Jitter::Decorrelated { previous: tiny }, 1.0), Some(Duration::from_secs(300)));
    }

    #[test]
    fn when_retry_after_is_given_should_read_seconds_and_http_dates() {
        let now = Utc.with_ymd_and_hms(1994, 11, 6, 8, 49, 0).unwrap();
        let cases = [
            ("7", Some(7)),
            (" 120 ", Some(120)),
            ("0", Some(0)),
            ("Sun, 06 Nov 1994 08:49:37 GMT", Some(37)),
            ("Sunday, 06-Nov-94 08:49:37 GMT", Some(37)),
            ("Sun Nov  6 08:49:37 1994", Some(37)),
            ("Sun, 06 Nov 1994 08:48:00 GMT", Some(0)),
            ("-5", None),
            ("1.5", None),
            ("soon", None),
            ("", None),
        ];
        for (value, want) in cases {
            assert_eq!(parse_retry_after(value, now), want.map(Duration::from_secs), "{value:?}");
        }
        assert_eq!(parse_retry_after("99999999999999999999999", now), Some(Duration::MAX));
    }

    #[test]
    fn when_an_outcome_is_classified_should_follow_the_status_rules() {
        let now = at(1_700_000_000);
        let status = |code, retry_after| classify(&HttpOutcome::Status { code, retry_after }, now);
        for code in [200, 201, 204, 299] {
            assert_eq!(status(code, None), Disposition::Delivered, "{code}");
        }
        assert_eq!(status(429, Some("7")), Disposition::RetryAfter(Duration::from_secs(7)));
        assert_eq!(status(503, Some("7")), Disposition::RetryAfter(Duration::from_secs(7)));
        assert_eq!(status(429, None), Disposition::Retry);
        assert_eq!(status(503, Some("later")), Disposition::Retry);
        assert_eq!(status(503, Some("86400")), Disposition::RetryAfter(RETRY_CAP), "clamped to the cap");
        assert_eq!(status(500, Some("7")), Disposition::Retry, "Retry-After counts on 429 and 503 only");
        for code in [500, 502, 504, 599] {
            assert_eq!(status(code, None), Disposition::Retry, "{code}");
        }
        for code in [100, 301, 302, 308, 400, 401, 403, 404, 408, 410, 413, 422, 499, 600] {
            assert_eq!(status(code, None), Disposition::GiveUp, "{code}");
        }
        assert_eq!(classify(&HttpOutcome::Timeout, now), Disposition::Retry);
        assert_eq!(classify(&HttpOutcome::ConnectionFailed, now), Disposition::Retry);
        assert_eq!(classify(&HttpOutcome::Refused, now), Disposition::GiveUp);
    }

    #[test]
    fn when_the_next_step_is_planned_should_honour_retry_after_within_the_attempts() {
        let seven = Duration::from_secs(7);
        assert_eq!(next_step(1, Disposition::Delivered, Jitter::None, 0.0), NextStep::Delivered);
        assert_eq!(next_step(1, Disposition::GiveUp, Jitter::None, 0.0), NextStep::GiveUp);
        assert_eq!(next_step(4, Disposition::RetryAfter(seven), Jitter::Full, 0.9), NextStep::RetryIn(seven));
        assert_eq!(next_step(2, Disposition::Retry, Jitter::None, 0.0), NextStep::RetryIn(Duration::from_secs(300)));
        assert_eq!(next_step(MAX_ATTEMPTS, Disposition::Retry, Jitter::None, 0.0), NextStep::Exhausted);
        assert_eq!(next_step(MAX_ATTEMPTS, Disposition::RetryAfter(seven), Jitter::None, 0.0), NextStep::Exhausted);
        assert_eq!(next_step(MAX_ATTEMPTS, Disposition::Delivered, Jitter::None, 0.0), NextStep::Delivered);
    }

    fn policy() -> BreakerPolicy {
        BreakerPolicy {
            failure_threshold: 3,
            cool_down: Duration::from_secs(60),
            max_cool_down: Duration::from_secs(300),
            disable_after_days: 2,
        }
    }

    #[test]
    fn when_failures_reach_the_threshold_the_breaker_should_open_then_let_one_probe_through() {
        let p = policy();
        let mut b = Breaker::default();
        for n in 0..2 {
            assert_eq!(b.admit(at(n)).0, Admission::Send);
            b = b.on_failure(at(n), &p);
        }
        assert_eq!(b, Breaker::Closed { consecutive_failures: 2, failing_since: Some(at(0)) });
        b = b.on_failure(at(10), &p);
        assert_eq!(b, Breaker::Open { until: at(70), cool_down_secs: 60, failing_since: at(0) });
        assert_eq!(b.admit(at(69)), (Admission::Wait { until: at(70) }, b.clone()));
        let (admission, half) = b.admit(at(70));
        assert_eq!(admission, Admission::Probe);
        assert_eq!(half, Breaker::HalfOpen { probe_sent: at(70), cool_down_secs: 60, failing_since: at(0) });
        assert_eq!(half.admit(at(71)).0, Admission::Wait { until: at(130) }, "one probe at a time");
        assert_eq!(half.admit(at(130)).0, Admission::Probe, "a probe that never reported is replaced");
        assert_eq!(half.on_success(), Breaker::default());
    }

    #[test]
    fn when_probes_fail_the_cool_down_should_double_up_to_its_maximum() {
        let p = policy();
        let mut b = open(at(0), 60, at(0));
        let mut rests = Vec::new();
        for _ in 0..5 {
            let Breaker::Open { until, .. } = b else { panic!("{b:?}") };
            let (admission, half) = b.admit(until);
            assert_eq!(admission, Admission::Probe);
            b = half.on_failure(until, &p);
            let Breaker::Open { until: next, cool_down_secs, .. } = b else { panic!("{b:?}") };
            assert_eq!((next - until).num_seconds() as u64, cool_down_secs);
            rests.push(cool_down_secs);
        }
        assert_eq!(rests, [120, 240, 300, 300, 300]);
    }

    #[test]
    fn when_an_endpoint_fails_for_the_policys_days_should_be_disabled_until_re_enabled() {
        let p = policy();
        let day = 86_400;
        let b = Breaker::default().on_failure(at(0), &p);
        let b = b.on_failure(at(day), &p).on_failure(at(2 * day - 1), &p);
        assert!(matches!(b, Breaker::Open { .. }), "{b:?}");
        let late = b.on_failure(at(2 * day - 1), &p);
        assert!(matches!(late, Breaker::Open { .. }), "a late report while open keeps it open: {late:?}");
        let disabled = late.on_failure(at(2 * day), &p);
        assert_eq!(disabled, Breaker::Disabled { since: at(2 * day) });
        assert_eq!(disabled.admit(at(3 * day)).0, Admission::Disabled);
        assert_eq!(disabled.on_success(), disabled);
        assert_eq!(disabled.on_failure(at(4 * day), &p), disabled);
    }

    #[test]
    fn when_a_success_comes_between_failures_the_clock_should_restart() {
        let p = policy();
        let day = 86_400;
        let b = Breaker::default().on_failure(at(0), &p).on_failure(at(day), &p).on_success();
        let b = b.on_failure(at(2 * day), &p);
        assert_eq!(b, Breaker::Closed { consecutive_failures: 1, failing_since: Some(at(2 * day)) });
    }

    #[test]
    fn when_the_breaker_is_stored_should_round_trip_as_tagged_json() {
        let b = Breaker::HalfOpen { probe_sent: at(70), cool_down_secs: 60, failing_since: at(0) };
        let json = serde_json::to_value(&b).unwrap();
        assert_eq!(json["state"], "half_open");
        assert_eq!(serde_json::from_value::<Breaker>(json).unwrap(), b);
    }

    fn secret_bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), SECRET_LEN)
    }

    proptest! {
        #[test]
        fn any_signed_message_verifies_and_any_changed_byte_does_not(
            key in secret_bytes(),
            event in "[A-Za-z0-9_-]{1,40}",
            timestamp in 0i64..4_000_000_000,
            body in proptest::collection::vec(any::<u8>(), 0..300),
            flip in any::<prop::sample::Index>(),
        ) {
            let secret = WebhookSecret::from_random_bytes(&key).unwrap();
            let id = MessageId::for_event(&event).unwrap();
            let headers = WebhookHeaders::sign(std::slice::from_ref(&secret), &id, timestamp, &body).unwrap();
            prop_assert_eq!(verify(&secret, &received(&headers, &body), timestamp, DEFAULT_TOLERANCE), Ok(()));
            if !body.is_empty() {
                let mut changed = body.clone();
                changed[flip.index(body.len())] ^= 1;
                prop_assert_eq!(verify(&secret, &received(&headers, &changed), timestamp, DEFAULT_TOLERANCE), Err(VerifyError::NoMatch));
            }
        }

        #[test]
        fn any_secret_survives_reveal_and_parse(key in secret_bytes()) {
            let secret = WebhookSecret::from_random_bytes(&key).unwrap();
            prop_assert_eq!(WebhookSecret::parse(&secret.reveal()).unwrap(), secret);
        }

        /// Whatever the draws, each wait stays within its step's window and the cap, and the waits add up to
        /// most of a day at least, so a day-long outage does not exhaust a message early.
        #[test]
        fn jittered_waits_stay_in_their_windows(fractions in proptest::collection::vec(-0.5f64..1.5, 7), decorrelated in any::<bool>()) {
            let mut previous = Duration::ZERO;
            let mut total = Duration::ZERO;
            for (attempt, fraction) in (1..MAX_ATTEMPTS).zip(fractions) {
                let jitter = if decorrelated { Jitter::Decorrelated { previous } } else { Jitter::Full };
                let wait = retry_delay(attempt, jitter, fraction).unwrap();
                let floor = if attempt == 1 { Duration::ZERO } else { RETRY_DELAYS[attempt as usize - 2] };
                prop_assert!(wait >= floor && wait <= RETRY_CAP, "attempt {attempt}: {wait:?}");
                if !decorrelated {
                    prop_assert!(wait <= RETRY_DELAYS[attempt as usize - 1]);
                }
                previous = wait;
                total += wait;
            }
            prop_assert!(total >= Duration::from_secs(17 * 3600 + 35 * 60 + 5), "{total:?}");
            prop_assert!(total <= Duration::from_secs(7 * 3600 * 10), "{total:?}");
        }

        #[test]
        fn every_status_has_one_disposition_by_class(code in 100u16..600) {
            let got = classify(&HttpOutcome::Status { code, retry_after: None }, at(0));
            let want = match code {
                200..=299 => Disposition::Delivered,
                429 | 500..=599 => Disposition::Retry,
                _ => Disposition::GiveUp,
            };
            prop_assert_eq!(got, want);
        }

        /// Any sequence of admissions, successes and failures keeps the breaker's invariants: a success closes it
        /// unless disabled, disabled is final, and an open breaker never sends before its time.
        #[test]
        fn breaker_sequences_keep_their_invariants(steps in proptest::collection::vec((0u8..3, 0i64..50_000), 1..80)) {
            let p = policy();
            let mut b = Breaker::default();
            let mut now = at(0);
            for (event, advance) in steps {
                now += TimeDelta::seconds(advance);
                let was_disabled = matches!(b, Breaker::Disabled { .. });
                b = match event {
                    0 => {
                        let (admission, next) = b.admit(now);
                        if let Breaker::Open { until, .. } = b {
                            prop_assert_eq!(admission == Admission::Probe, now >= until);
                        }
                        next
                    }
                    1 => {
                        let next = b.on_success();
                        prop_assert!(was_disabled || next == Breaker::default());
                        next
                    }
                    _ => b.on_failure(now, &p),
                };
                let still_disabled = matches!(b, Breaker::Disabled { .. });
                prop_assert!(!was_disabled || still_disabled, "disabled is final");
                if let Breaker::Open { cool_down_secs, .. } | Breaker::HalfOpen { cool_down_secs, .. } = b {
                    prop_assert!((60..=300).contains(&cool_down_secs));
                }
            }
        }
    }
}
