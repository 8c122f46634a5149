//! Reservations: units of several inventory items held all or nothing, until released (explicitly, or by
//! expiry) or committed when an order is placed. Every transition is decided here, once; the DynamoDB adapter
//! and the in-memory ledger both apply what `Reservation::transition` says.

use super::{validate_sku, Allocation, Component, Location};
use crate::error::DomainError;
use crate::error::ErrorCode;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Largest number of distinct inventory items one reservation may hold (a DynamoDB transaction holds 100
/// actions: the reservation record plus up to 99 stock items).
pub const MAX_ALLOCATIONS: usize = 99;
/// Largest number of lines in one reservation request.
pub const MAX_LINES: usize = 50;
/// Largest quantity of one line.
pub const MAX_LINE_QUANTITY: u32 = 1_000;

/// Who the reservation is for; guests and signed-in shoppers get different hold times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnerKind {
    Guest,
    Shopper,
}

/// A SKU and a quantity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ReservationLine {
    pub sku: String,
    pub quantity: u32,
}

/// What the checkout asks for. The same `reservation_id` twice is the same reservation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReservationRequest {
    pub reservation_id: String,
    pub lines: Vec<ReservationLine>,
    #[serde(default)]
    pub ship_to: Option<Location>,
    pub owner: OwnerKind,
    /// Overrides the owner's default hold time; 1 s to 24 h.
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
}

impl ReservationRequest {
    /// Validates the request and returns its lines merged per SKU, sorted.
    pub fn normalized_lines(&self) -> Result<Vec<ReservationLine>, DomainError> {
        validate_reservation_id(&self.reservation_id)?;
        if self.lines.is_empty() || self.lines.len() > MAX_LINES {
            return Err(DomainError::validation("lines", format!("must have 1-{MAX_LINES} lines")));
        }
        if let Some(ship_to) = &self.ship_to {
            ship_to.validate("ship_to")?;
        }
        if let Some(ttl) = self.ttl_seconds {
            if !(1..=86_400).contains(&ttl) {
                return Err(DomainError::validation("ttl_seconds", "must be within 1..=86400"));
            }
        }
        let mut merged: BTreeMap<&str, u32> = BTreeMap::new();
        for line in &self.lines {
            validate_sku(&line.sku)?;
            if line.quantity == 0 || line.quantity > MAX_LINE_QUANTITY {
                return Err(DomainError::validation("quantity", format!("must be within 1..={MAX_LINE_QUANTITY}")));
            }
            let total = merged.entry(&line.sku).or_default();
            *total = total.saturating_add(line.quantity).min(MAX_LINE_QUANTITY * MAX_LINES as u32);
        }
        Ok(merged.into_iter().map(|(sku, quantity)| ReservationLine { sku: sku.to_owned(), quantity }).collect())
    }
}

/// Reservation ids come from callers (checkout ids, cart ids): 1-128 safe characters.
pub fn validate_reservation_id(id: &str) -> Result<(), DomainError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        Err(DomainError::validation("reservation_id", "must be 1-128 letters, digits, '-', '_', '.' or ':'"))
    }
}

/// Where a reservation is in its life. `Expired` is never stored: it is how a held reservation past its
/// expiry reads (and it is released by whoever reads it first, or the sweeper).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    Held,
    Released,
    Committed,
    Expired,
}

/// Why a reservation was released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseReason {
    Explicit,
    Expired,
    /// Its units moved, without touching stock, to the reservation that replaced it (a cart's new hold, or
    /// the order that adopted the cart's hold).
    Replaced,
}

/// A reservation and the stock it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reservation {
    pub reservation_id: String,
    pub status: ReservationStatus,
    pub owner: OwnerKind,
    /// The requested lines, merged per SKU.
    pub lines: Vec<ReservationLine>,
    /// Units held per inventory item and warehouse (after bundle expansion).
    pub allocations: Vec<Allocation>,
    /// What each bundle line consumes, as it was reserved (a line not listed consumes itself once): which
    /// allocations a line's return gives back, whatever the catalog says later.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub bundles: BTreeMap<String, Vec<Component>>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_reason: Option<ReleaseReason>,
}

/// What to do to a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Release,
    Commit,
}

/// The decided outcome of an action on a reservation in its current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Move from `Held` to this status and apply the stock effect.
    Apply(ReservationStatus, Option<ReleaseReason>),
    /// Already done: nothing changes.
    NoEffect,
}

impl Reservation {
    /// The status as read at `now`: a held reservation past its expiry reads as expired.
    pub fn status_at(&self, now: DateTime<Utc>) -> ReservationStatus {
        match self.status {
            ReservationStatus::Held if now >= self.expires_at => ReservationStatus::Expired,
            other => other,
        }
    }

    /// This reservation as a caller sees it at `now`.
    pub fn view_at(mut self, now: DateTime<Utc>) -> Self {
        self.status = self.status_at(now);
        self
    }

    /// Whether `lines` (already normalized) ask for what this reservation holds.
    pub fn matches(&self, lines: &[ReservationLine]) -> bool {
        self.lines == lines
    }

    /// Decides an action. Releasing twice, or committing twice, has no effect; committing an expired or
    /// released reservation and releasing a committed one are errors.
    pub fn transition(&self, action: Action, now: DateTime<Utc>) -> Result<Transition, DomainError> {
        use ReservationStatus::*;
        match (action, self.status) {
            (Action::Release, Held) => {
                let reason = if now >= self.expires_at { ReleaseReason::Expired } else { ReleaseReason::Explicit };
                Ok(Transition::Apply(Released, Some(reason)))
            }
            (Action::Release, Released | Expired) => Ok(Transition::NoEffect),
            (Action::Release, Committed) => {
                Err(DomainError::conflict(ErrorCode::ReservationCommitted, "the reservation is already committed"))
            }
            (Action::Commit, Held) if now < self.expires_at => Ok(Transition::Apply(Committed, None)),
            (Action::Commit, Committed) => Ok(Transition::NoEffect),
            (Action::Commit, Held | Expired) => Err(expired()),
            (Action::Commit, Released) if self.release_reason == Some(ReleaseReason::Expired) => Err(expired()),
            (Action::Commit, Released) => {
                Err(DomainError::conflict(ErrorCode::ReservationReleased, "the reservation was released"))
            }
        }
    }
}

/// The typed error for a reservation whose hold ran out.
pub fn expired() -> DomainError {
    DomainError::Gone { code: ErrorCode::ReservationExpired, message: "the reservation has expired".into() }
}

/// Default hold times per owner kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReservationPolicy {
    pub guest_ttl: Duration,
    pub shopper_ttl: Duration,
}

impl Default for ReservationPolicy {
    fn default() -> Self {
        Self { guest_ttl: Duration::minutes(15), shopper_ttl: Duration::minutes(15) }
    }
}

impl ReservationPolicy {
    /// When a reservation made now for this request expires.
    pub fn expires_at(&self, request: &ReservationRequest, now: DateTime<Utc>) -> DateTime<Utc> {
        let ttl = match (request.ttl_seconds, request.owner) {
            (Some(secs), _) => Duration::seconds(i64::try_from(secs).unwrap_or(86_400)),
            (None, OwnerKind::Guest) => self.guest_ttl,
            (None, OwnerKind::Shopper) => self.shopper_ttl,
        };
        now + ttl
    }
}

/// The result of one attempt to write a reservation.
#[derive(Debug, Clone, PartialEq)]
pub enum ReserveOutcome {
    /// Written now.
    Reserved(Reservation),
    /// A reservation with this id already exists (a retry, or a concurrent duplicate).
    Existing(Reservation),
    /// A stock item no longer had the units the plan expected; re-read and re-plan.
    Insufficient { sku: String, warehouse_id: String },
}

/// The result of one attempt to replace held reservations by a new one.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplaceOutcome {
    /// The new reservation is written and the replaced ones released, in one transaction.
    Replaced(Reservation),
    /// A reservation with the new id already exists.
    Existing(Reservation),
    /// One of the replaced reservations was no longer held.
    NotHeld,
    /// A stock item could not cover the extra units the new reservation needs; re-read and re-plan.
    Insufficient { sku: String, warehouse_id: String },
}

impl From<ReserveOutcome> for ReplaceOutcome {
    fn from(outcome: ReserveOutcome) -> Self {
        match outcome {
            ReserveOutcome::Reserved(r) => Self::Replaced(r),
            ReserveOutcome::Existing(r) => Self::Existing(r),
            ReserveOutcome::Insufficient { sku, warehouse_id } => Self::Insufficient { sku, warehouse_id },
        }
    }
}

/// The stock change of replacing `old` holds by `new` per inventory item and warehouse: positive means more
/// units to hold, negative units to give back. Items whose holds cancel out are left out. Sorted.
pub fn net_change<'a>(old: impl IntoIterator<Item = &'a Allocation>, new: &[Allocation]) -> Vec<(String, String, i64)> {
    let mut net: BTreeMap<(String, String), i64> = BTreeMap::new();
    for a in old {
        *net.entry((a.sku.clone(), a.warehouse_id.clone())).or_default() -= i64::from(a.quantity);
    }
    for a in new {
        *net.entry((a.sku.clone(), a.warehouse_id.clone())).or_default() += i64::from(a.quantity);
    }
    net.into_iter().filter(|(_, q)| *q != 0).map(|((sku, wh), q)| (sku, wh, q)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(expires_in: i64) -> (Reservation, DateTime<Utc>) {
        let now = Utc::now();
        let reservation = Reservation {
            reservation_id: "r1".into(),
            status: ReservationStatus::Held,
            owner: OwnerKind::Guest,
            lines: vec![],
            allocations: vec![],
            bundles: BTreeMap::new(),
            created_at: now,
            expires_at: now + Duration::seconds(expires_in),
            release_reason: None,
        };
        (reservation, now)
    }

    #[test]
    fn commit_of_expired_is_gone() {
        let (r, now) = held(-1);
        assert_eq!(r.status_at(now), ReservationStatus::Expired);
        assert!(matches!(
            r.transition(Action::Commit, now),
            Err(DomainError::Gone { code: ErrorCode::ReservationExpired, .. })
        ));
        assert_eq!(
            r.transition(Action::Release, now).unwrap(),
            Transition::Apply(ReservationStatus::Released, Some(ReleaseReason::Expired))
        );
    }

    #[test]
    fn second_release_and_commit_have_no_effect() {
        let (mut r, now) = held(60);
        r.status = ReservationStatus::Released;
        assert_eq!(r.transition(Action::Release, now).unwrap(), Transition::NoEffect);
        assert!(r.transition(Action::Commit, now).is_err());
        r.status = ReservationStatus::Committed;
        assert_eq!(r.transition(Action::Commit, now).unwrap(), Transition::NoEffect);
        assert!(r.transition(Action::Release, now).is_err());
    }

    #[test]
    fn lines_merge_per_sku() {
        let req = ReservationRequest {
            reservation_id: "chk_1".into(),
            lines: vec![
                ReservationLine { sku: "B".into(), quantity: 1 },
                ReservationLine { sku: "A".into(), quantity: 2 },
                ReservationLine { sku: "B".into(), quantity: 3 },
            ],
            ship_to: None,
            owner: OwnerKind::Guest,
            ttl_seconds: None,
        };
        let lines = req.normalized_lines().unwrap();
        assert_eq!(
            lines,
            vec![ReservationLine { sku: "A".into(), quantity: 2 }, ReservationLine { sku: "B".into(), quantity: 4 }]
        );
        let bad = ReservationRequest { ttl_seconds: Some(0), ..req };
        assert!(bad.normalized_lines().is_err());
    }

    #[test]
    fn net_change_nets_out_per_item() {
        let a = |sku: &str, wh: &str, quantity| Allocation { sku: sku.into(), warehouse_id: wh.into(), quantity };
        let old = [a("A", "wh_1", 2), a("B", "wh_1", 1)];
        let new = [a("A", "wh_1", 3), a("B", "wh_1", 1), a("C", "wh_2", 4)];
        assert_eq!(net_change(&old, &new), vec![("A".into(), "wh_1".into(), 1), ("C".into(), "wh_2".into(), 4)]);
        assert_eq!(net_change(&new, &old), vec![("A".into(), "wh_1".into(), -1), ("C".into(), "wh_2".into(), -4)]);
    }

    #[test]
    fn guest_and_shopper_ttls_differ() {
        let policy = ReservationPolicy { guest_ttl: Duration::minutes(10), shopper_ttl: Duration::minutes(20) };
        let now = Utc::now();
        let mut req = ReservationRequest {
            reservation_id: "x".into(),
            lines: vec![],
            ship_to: None,
            owner: OwnerKind::Guest,
            ttl_seconds: None,
        };
        assert_eq!(policy.expires_at(&req, now) - now, Duration::minutes(10));
        req.owner = OwnerKind::Shopper;
        assert_eq!(policy.expires_at(&req, now) - now, Duration::minutes(20));
        req.ttl_seconds = Some(120);
        assert_eq!(policy.expires_at(&req, now) - now, Duration::minutes(2));
    }
}
