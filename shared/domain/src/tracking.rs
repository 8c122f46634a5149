//! Shipment tracking: the carrier a seller ships with, the tracking link built from it, and the updates a
//! shipment's status moves through (posted by the seller, or by the carrier to its signed webhook).
//!
//! A shipment's timeline starts with `label_created` when the seller ships; every update after it is kept
//! (what happened, when it happened, where, who said so), in the order it happened. The status is the latest
//! reported update by the time it happened (`label_created` until the first), so an update that arrives late
//! lands in its place instead of moving the status back, and a carrier's scans from before the seller told us
//! still count. A `delivered` update also delivers the seller's part, which is final: a later update changes
//! the timeline and the status, never the delivery.

use crate::error::{DomainError, Result};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Most characters of a tracking number.
pub const MAX_TRACKING_NUMBER: usize = 100;
/// Most characters of an update's `location`, `detail` and `event_id`.
pub const MAX_LOCATION: usize = 200;
pub const MAX_DETAIL: usize = 500;
pub const MAX_EVENT_ID: usize = 100;
/// Most characters of a tracking link a seller gives for carrier `other`.
pub const MAX_TRACKING_URL: usize = 2048;
/// Most tracking updates one order keeps (every seller part together): the order is one item, which must stay
/// far below DynamoDB's 400 KB. Past it, only `delivered` and `exception` are still recorded.
pub const MAX_UPDATES_PER_ORDER: usize = 200;
/// Most orders one parcel's updates are applied to (a parcel may carry several orders of one shopper).
pub const MAX_ORDERS_PER_PARCEL: usize = 20;
/// How far ahead of our clock an update's `occurred_at` may be (carriers' clocks drift; more is an error).
pub const MAX_CLOCK_AHEAD_MINUTES: i64 = 60;

/// The carriers we build tracking links for and accept signed webhooks from, and `other`: any carrier, with
/// the link the seller gives (or none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Carrier {
    Ups,
    Fedex,
    Usps,
    Dhl,
    #[default]
    Other,
}

impl Carrier {
    pub const ALL: [Carrier; 5] = [Carrier::Ups, Carrier::Fedex, Carrier::Usps, Carrier::Dhl, Carrier::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ups => "ups",
            Self::Fedex => "fedex",
            Self::Usps => "usps",
            Self::Dhl => "dhl",
            Self::Other => "other",
        }
    }

    /// The carrier's name as people read it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ups => "UPS",
            Self::Fedex => "FedEx",
            Self::Usps => "USPS",
            Self::Dhl => "DHL",
            Self::Other => "the seller's carrier",
        }
    }

    /// The carrier named `name` (lower case, as in URLs and bodies).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// Whether the carrier posts updates to our webhook (every named carrier; not `other`).
    pub fn has_webhook(self) -> bool {
        self != Self::Other
    }

    /// The carrier's public tracking page for `number` (already validated: letters, digits and `-` only, so
    /// nothing needs escaping). `None` for `other`.
    fn link(self, number: &str) -> Option<String> {
        let base = match self {
            Self::Ups => "https://www.ups.com/track?tracknum=",
            Self::Fedex => "https://www.fedex.com/fedextrack/?trknbr=",
            Self::Usps => "https://tools.usps.com/go/TrackConfirmAction?tLabels=",
            Self::Dhl => "https://www.dhl.com/global-en/home/tracking/tracking-express.html?tracking-id=",
            Self::Other => return None,
        };
        Some(format!("{base}{number}"))
    }
}

/// Where a shipment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackingStatus {
    LabelCreated,
    InTransit,
    OutForDelivery,
    Delivered,
    Exception,
}

impl TrackingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LabelCreated => "label_created",
            Self::InTransit => "in_transit",
            Self::OutForDelivery => "out_for_delivery",
            Self::Delivered => "delivered",
            Self::Exception => "exception",
        }
    }

    /// Recorded even when the order has reached [`MAX_UPDATES_PER_ORDER`]: the outcomes a shopper must see.
    pub fn is_outcome(self) -> bool {
        matches!(self, Self::Delivered | Self::Exception)
    }
}

/// How a seller ships: the carrier, the tracking number and the link shoppers follow. Validated by
/// [`Parcel::new`]: a named carrier's number is letters, digits and `-` (what carriers issue), and its link is
/// ours; only `other` takes a link from the seller (https, no credentials).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parcel {
    pub carrier: Carrier,
    pub tracking_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_url: Option<String>,
}

impl Parcel {
    pub fn new(carrier: Carrier, tracking_number: &str, tracking_url: Option<&str>) -> Result<Self> {
        let number = tracking_number.trim();
        if number.is_empty() || number.chars().count() > MAX_TRACKING_NUMBER {
            return Err(DomainError::validation(
                "tracking_number",
                format!("must be 1 to {MAX_TRACKING_NUMBER} characters"),
            ));
        }
        let tracking_url = match (carrier, tracking_url) {
            (Carrier::Other, None) => None,
            (Carrier::Other, Some(url)) => Some(check_link(url)?),
            (_, Some(_)) => {
                return Err(DomainError::validation(
                    "tracking_url",
                    format!(
                        "is built from the tracking number for {}; give it only with carrier other",
                        carrier.as_str()
                    ),
                ))
            }
            (named, None) => {
                if !number.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    return Err(DomainError::validation(
                        "tracking_number",
                        format!("a {} tracking number has only letters, digits and '-'", named.as_str()),
                    ));
                }
                named.link(number)
            }
        };
        Ok(Self { carrier, tracking_number: number.to_owned(), tracking_url })
    }
}

/// A link a seller gives: https, a host, no user name or password, no spaces, at most [`MAX_TRACKING_URL`].
fn check_link(url: &str) -> Result<String> {
    let invalid = |why: &str| DomainError::validation("tracking_url", why);
    let url = url.trim();
    if url.len() > MAX_TRACKING_URL {
        return Err(invalid("must be at most 2048 characters"));
    }
    let rest = url.strip_prefix("https://").ok_or_else(|| invalid("must be an https URL"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return Err(invalid("must name a host, without a user name or password"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"')) {
        return Err(invalid("must not contain spaces, quotes or angle brackets"));
    }
    Ok(url.to_owned())
}

/// One update of a shipment, as the seller or the carrier reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackingUpdate {
    pub status: TrackingStatus,
    /// When it happened (not when we heard of it).
    pub occurred_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The reporter's id for this update: the same id again is the same update (a retry), recorded once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

impl TrackingUpdate {
    /// Checks the sizes and the time (at most [`MAX_CLOCK_AHEAD_MINUTES`] ahead of `now`); trims the texts and
    /// drops empty ones.
    pub fn validated(mut self, now: DateTime<Utc>) -> Result<Self> {
        if self.occurred_at > now + Duration::minutes(MAX_CLOCK_AHEAD_MINUTES) {
            return Err(DomainError::validation("occurred_at", "is in the future"));
        }
        for (field, value, max) in [
            ("location", &mut self.location, MAX_LOCATION),
            ("detail", &mut self.detail, MAX_DETAIL),
            ("event_id", &mut self.event_id, MAX_EVENT_ID),
        ] {
            let trimmed = value.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
            if trimmed.as_ref().is_some_and(|v| v.chars().count() > max || v.chars().any(char::is_control)) {
                return Err(DomainError::validation(
                    field,
                    format!("must be at most {max} characters, no control characters"),
                ));
            }
            *value = trimmed;
        }
        Ok(self)
    }

    /// Whether `other` reports the same thing: the same `event_id`, or without ids the same status, time,
    /// place and detail.
    pub fn same_as(&self, other: &TrackingUpdate) -> bool {
        match (&self.event_id, &other.event_id) {
            (Some(a), Some(b)) => a == b,
            _ => {
                self.status == other.status
                    && self.occurred_at == other.occurred_at
                    && self.location == other.location
                    && self.detail == other.detail
            }
        }
    }
}

/// A carrier's webhook body: which parcel (the carrier is in the URL), and the update with the carrier's event
/// id (`id`). Fields we do not know are ignored, since carriers add some over time.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CarrierEvent {
    pub id: String,
    pub tracking_number: String,
    pub status: TrackingStatus,
    pub occurred_at: DateTime<Utc>,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
}

impl CarrierEvent {
    /// The update it reports (not yet validated).
    pub fn update(&self) -> TrackingUpdate {
        TrackingUpdate {
            status: self.status,
            occurred_at: self.occurred_at,
            location: self.location.clone(),
            detail: self.detail.clone(),
            event_id: Some(self.id.clone()),
        }
    }
}

/// Who reported a timeline entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackingSource {
    Seller,
    Carrier,
}

/// One entry of a shipment's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub status: TrackingStatus,
    pub occurred_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub source: TrackingSource,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + minute * 60, 0).unwrap()
    }

    fn update(status: TrackingStatus, minute: i64) -> TrackingUpdate {
        TrackingUpdate { status, occurred_at: at(minute), location: None, detail: None, event_id: None }
    }

    #[test]
    fn named_carriers_build_their_link_and_other_takes_the_sellers() {
        let ups = Parcel::new(Carrier::Ups, " 1Z999AA10123456784 ", None).unwrap();
        assert_eq!(ups.tracking_number, "1Z999AA10123456784");
        assert_eq!(ups.tracking_url.as_deref(), Some("https://www.ups.com/track?tracknum=1Z999AA10123456784"));
        for carrier in [Carrier::Fedex, Carrier::Usps, Carrier::Dhl] {
            let url = Parcel::new(carrier, "123-456", None).unwrap().tracking_url.unwrap();
            assert!(url.starts_with("https://") && url.ends_with("123-456"), "{url}");
        }
        let other = Parcel::new(Carrier::Other, "LP00123", Some("https://track.example.com/LP00123")).unwrap();
        assert_eq!(other.tracking_url.as_deref(), Some("https://track.example.com/LP00123"));
        assert_eq!(Parcel::new(Carrier::Other, "LP00123", None).unwrap().tracking_url, None);
    }

    #[test]
    fn a_link_that_could_mislead_or_inject_is_refused() {
        let field = |r: Result<Parcel>| match r.unwrap_err() {
            DomainError::Validation { field, .. } => field,
            other => panic!("{other:?}"),
        };
        // A named carrier's number goes into our link: nothing that could change it.
        for number in ["1Z 999", "1Z999&x=1", "1Z999/../", "1Z<script>", "１Z999"] {
            assert_eq!(field(Parcel::new(Carrier::Ups, number, None)), "tracking_number", "{number}");
        }
        assert_eq!(field(Parcel::new(Carrier::Ups, "", None)), "tracking_number");
        assert_eq!(field(Parcel::new(Carrier::Ups, &"9".repeat(101), None)), "tracking_number");
        assert_eq!(field(Parcel::new(Carrier::Ups, "1Z9", Some("https://evil.example"))), "tracking_url");
        for url in [
            "http://track.example.com/1",
            "javascript:alert(1)",
            "https://user:pw@track.example.com/",
            "https:///path",
            "https://track.example.com/a b",
            "https://track.example.com/\"onmouseover=",
            &format!("https://t.example/{}", "a".repeat(2048)),
        ] {
            assert_eq!(field(Parcel::new(Carrier::Other, "1", Some(url))), "tracking_url", "{url}");
        }
    }

    #[test]
    fn carriers_parse_by_their_url_names() {
        for carrier in Carrier::ALL {
            assert_eq!(Carrier::parse(carrier.as_str()), Some(carrier));
            assert_eq!(serde_json::to_value(carrier).unwrap(), carrier.as_str());
        }
        assert_eq!(Carrier::parse("UPS"), None);
        assert_eq!(Carrier::parse("royal-mail"), None);
        assert!(!Carrier::Other.has_webhook() && Carrier::Dhl.has_webhook());
    }

    #[test]
    fn updates_are_trimmed_and_checked() {
        let now = at(0);
        let mut u = update(TrackingStatus::InTransit, 0);
        u.location = Some("  Memphis, TN ".into());
        u.detail = Some("   ".into());
        let u = u.validated(now).unwrap();
        assert_eq!(u.location.as_deref(), Some("Memphis, TN"));
        assert_eq!(u.detail, None);
        assert!(update(TrackingStatus::InTransit, 60).validated(now).is_ok());
        assert!(update(TrackingStatus::InTransit, 61).validated(now).is_err());
        let mut long = update(TrackingStatus::InTransit, 0);
        long.detail = Some("x".repeat(MAX_DETAIL + 1));
        assert!(long.validated(now).is_err());
        let mut control = update(TrackingStatus::InTransit, 0);
        control.event_id = Some("evt\u{0}1".into());
        assert!(control.validated(now).is_err());
        let parsed: std::result::Result<TrackingUpdate, _> =
            serde_json::from_str(r#"{"status":"lost","occurred_at":"2027-01-01T00:00:00Z"}"#);
        assert!(parsed.is_err());
    }

    #[test]
    fn the_same_update_is_known_by_its_id_or_else_by_everything_it_says() {
        let mut a = update(TrackingStatus::InTransit, 1);
        let mut b = update(TrackingStatus::InTransit, 1);
        assert!(a.same_as(&b));
        b.location = Some("Hub".into());
        assert!(!a.same_as(&b));
        a.event_id = Some("e1".into());
        b.event_id = Some("e1".into());
        assert!(a.same_as(&b), "the same id is the same update whatever it says");
        b.event_id = Some("e2".into());
        a.location = Some("Hub".into());
        assert!(!a.same_as(&b), "two ids are two updates, even saying the same");
    }
}
