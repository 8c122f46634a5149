//! The stock ledger's rules as an in-memory model, and the invariant checker.
//!
//! `Ledger` applies exactly the conditional updates the DynamoDB adapter writes (the same guards, the same
//! counter changes), so the property tests here say what the stored system must keep true, and in-memory
//! fakes for handler tests behave like the real store.
//!
//! The invariant, in the spirit of Jepsen's bank test, for every SKU and warehouse:
//! - `(on_hand - reserved) + reserved + sold == received + adjustments` (available incl. safety stock, plus
//!   reserved, plus sold, equals everything ever received or adjusted);
//! - `reserved` equals the units of held reservations there plus `flash` (held by flash sales), `sold` the
//!   units of committed ones plus `flash_sold`;
//! - the stored `free` and `avail` agree with the counters;
//! - `on_hand`, `reserved`, `sold` and `on_hand - reserved` are never below zero.

use super::reservation::{
    net_change, Action, ReleaseReason, ReplaceOutcome, Reservation, ReservationStatus, ReserveOutcome, Transition,
};
use super::{SetStock, StockAdjustment, StockLevel};
use crate::error::DomainError;
use crate::error::ErrorCode;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};

/// One broken rule, for one SKU and warehouse (or one reservation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub sku: String,
    pub warehouse_id: String,
    pub message: String,
}

/// Checks the invariant over a consistent snapshot of all stock levels and all reservations. Reservations
/// are taken as stored (an expired but not yet released reservation still holds its units).
pub fn check_invariant(stock: &[StockLevel], reservations: &[Reservation]) -> Vec<Violation> {
    let mut held: HashMap<(&str, &str), i64> = HashMap::new();
    let mut committed: HashMap<(&str, &str), i64> = HashMap::new();
    let mut violations = Vec::new();
    for reservation in reservations {
        let bucket = match reservation.status {
            ReservationStatus::Held | ReservationStatus::Expired => &mut held,
            ReservationStatus::Committed => &mut committed,
            ReservationStatus::Released => continue,
        };
        for a in &reservation.allocations {
            *bucket.entry((a.sku.as_str(), a.warehouse_id.as_str())).or_default() += i64::from(a.quantity);
        }
    }
    let mut seen: HashMap<(&str, &str), ()> = HashMap::new();
    for s in stock {
        let key = (s.sku.as_str(), s.warehouse_id.as_str());
        seen.insert(key, ());
        violations.extend(item_violations(s));
        let mut fail = |message: String| {
            violations.push(Violation { sku: s.sku.clone(), warehouse_id: s.warehouse_id.clone(), message })
        };
        let held_units = held.get(&key).copied().unwrap_or(0) + s.flash;
        if s.reserved != held_units {
            fail(format!("reserved {} != held by reservations and flash sales {}", s.reserved, held_units));
        }
        let sold_units = committed.get(&key).copied().unwrap_or(0) + s.flash_sold - s.returned;
        if s.sold != sold_units {
            fail(format!("sold {} != committed by reservations and flash sales {}", s.sold, sold_units));
        }
    }
    for ((sku, warehouse_id), units) in held.iter().chain(committed.iter()) {
        if *units != 0 && !seen.contains_key(&(*sku, *warehouse_id)) {
            violations.push(Violation {
                sku: sku.to_string(),
                warehouse_id: warehouse_id.to_string(),
                message: format!("reservations hold {units} units of a stock item that does not exist"),
            });
        }
    }
    violations
}

/// The rules one stock item keeps by itself, with no reservation read: counters never below zero, `free` and
/// `avail` agreeing with them, and `available + reserved + sold == received + adjustments`. A consumer of the
/// inventory stream checks them on every change at no read cost.
pub fn item_violations(s: &StockLevel) -> Vec<Violation> {
    let mut violations = Vec::new();
    let mut fail = |message: String| {
        violations.push(Violation { sku: s.sku.clone(), warehouse_id: s.warehouse_id.clone(), message })
    };
    for (name, value) in [("on_hand", s.on_hand), ("reserved", s.reserved), ("sold", s.sold), ("free", s.free)] {
        if value < 0 {
            fail(format!("{name} is {value}"));
        }
    }
    if Some(s.free) != s.on_hand.checked_sub(s.reserved) {
        fail(format!("free {} != on_hand {} - reserved {}", s.free, s.on_hand, s.reserved));
    }
    if Some(s.avail) != s.free.checked_sub(s.safety) {
        fail(format!("avail {} != free {} - safety {}", s.avail, s.free, s.safety));
    }
    let total_in = s.received.checked_add(s.adjustments);
    let total = s.free.checked_add(s.reserved).and_then(|t| t.checked_add(s.sold));
    if total.is_none() || total != total_in {
        fail(format!(
            "available {} + reserved {} + sold {} != received {} + adjustments {}",
            s.free, s.reserved, s.sold, s.received, s.adjustments
        ));
    }
    violations
}

/// Stock levels and reservations in memory, changed by the same guarded updates as the stored ones.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    pub stock: BTreeMap<(String, String), StockLevel>,
    pub reservations: BTreeMap<String, Reservation>,
}

impl Ledger {
    /// All stock levels of one SKU.
    pub fn levels(&self, sku: &str) -> Vec<StockLevel> {
        self.stock.values().filter(|l| l.sku == sku).cloned().collect()
    }

    /// Sets on hand to an absolute count. The difference is booked as an adjustment. Fails with 409
    /// `stock_reserved` if fewer units than are reserved would remain.
    pub fn set(&mut self, sku: &str, warehouse_id: &str, set: &SetStock) -> Result<StockLevel, DomainError> {
        set.validate()?;
        let level = self
            .stock
            .entry((sku.to_owned(), warehouse_id.to_owned()))
            .or_insert_with(|| StockLevel::empty(sku, warehouse_id));
        if set.on_hand < level.reserved {
            return Err(below_reserved());
        }
        let delta = set.on_hand - level.on_hand;
        level.on_hand += delta;
        level.free += delta;
        level.avail += delta;
        level.adjustments += delta;
        if let Some(safety) = set.safety_stock {
            level.safety = safety;
            level.avail = level.free - safety;
        }
        Ok(level.clone())
    }

    /// Adds a delta to on hand. A negative delta may not take reserved units (409 `stock_reserved`).
    pub fn adjust(&mut self, sku: &str, warehouse_id: &str, adj: &StockAdjustment) -> Result<StockLevel, DomainError> {
        adj.validate()?;
        let key = (sku.to_owned(), warehouse_id.to_owned());
        if adj.delta < 0 && self.stock.get(&key).is_none_or(|l| l.free < -adj.delta) {
            return Err(below_reserved());
        }
        if adj.exceeds_limit(self.stock.get(&key).map_or(0, |l| l.on_hand)) {
            return Err(StockAdjustment::over_limit());
        }
        let level = self.stock.entry(key).or_insert_with(|| StockLevel::empty(sku, warehouse_id));
        let (received, adjustments) = adj.ledger_split();
        level.on_hand += adj.delta;
        level.free += adj.delta;
        level.avail += adj.delta;
        level.received += received;
        level.adjustments += adjustments;
        Ok(level.clone())
    }

    /// Writes a planned reservation all or nothing: every allocation's stock item must have `avail >= qty`.
    pub fn try_reserve(&mut self, reservation: Reservation) -> ReserveOutcome {
        if let Some(existing) = self.reservations.get(&reservation.reservation_id) {
            return ReserveOutcome::Existing(existing.clone());
        }
        for a in &reservation.allocations {
            let enough = self
                .stock
                .get(&(a.sku.clone(), a.warehouse_id.clone()))
                .is_some_and(|l| l.avail >= i64::from(a.quantity));
            if !enough {
                return ReserveOutcome::Insufficient { sku: a.sku.clone(), warehouse_id: a.warehouse_id.clone() };
            }
        }
        for a in &reservation.allocations {
            if let Some(level) = self.stock.get_mut(&(a.sku.clone(), a.warehouse_id.clone())) {
                let q = i64::from(a.quantity);
                level.avail -= q;
                level.free -= q;
                level.reserved += q;
            }
        }
        self.reservations.insert(reservation.reservation_id.clone(), reservation.clone());
        ReserveOutcome::Reserved(reservation)
    }

    /// Writes `new` and releases the held reservations `replacing` (reason `replaced`) all or nothing, moving
    /// only the net difference of stock: extra units need `avail >= q`, units given back `reserved >= q`.
    pub fn try_replace(&mut self, replacing: &[String], new: Reservation) -> ReplaceOutcome {
        if let Some(existing) = self.reservations.get(&new.reservation_id) {
            return ReplaceOutcome::Existing(existing.clone());
        }
        let mut old = Vec::with_capacity(replacing.len());
        for id in replacing {
            match self.reservations.get(id) {
                Some(r) if r.status == ReservationStatus::Held => old.push(r.clone()),
                _ => return ReplaceOutcome::NotHeld,
            }
        }
        let changes = net_change(old.iter().flat_map(|r| &r.allocations), &new.allocations);
        for (sku, warehouse_id, q) in &changes {
            let level = self.stock.get(&(sku.clone(), warehouse_id.clone()));
            let ok = level.is_some_and(|l| if *q > 0 { l.avail >= *q } else { l.reserved >= -q });
            if !ok {
                return ReplaceOutcome::Insufficient { sku: sku.clone(), warehouse_id: warehouse_id.clone() };
            }
        }
        for (sku, warehouse_id, q) in changes {
            if let Some(level) = self.stock.get_mut(&(sku, warehouse_id)) {
                level.avail -= q;
                level.free -= q;
                level.reserved += q;
            }
        }
        for r in old {
            if let Some(stored) = self.reservations.get_mut(&r.reservation_id) {
                stored.status = ReservationStatus::Released;
                stored.release_reason = Some(ReleaseReason::Replaced);
            }
        }
        self.reservations.insert(new.reservation_id.clone(), new.clone());
        ReplaceOutcome::Replaced(new)
    }

    /// Releases or commits a reservation, as decided by `Reservation::transition`.
    pub fn apply(
        &mut self,
        reservation_id: &str,
        action: Action,
        now: DateTime<Utc>,
    ) -> Result<Reservation, DomainError> {
        let reservation =
            self.reservations.get(reservation_id).cloned().ok_or_else(|| DomainError::not_found("reservation"))?;
        let (status, reason) = match reservation.transition(action, now)? {
            Transition::NoEffect => return Ok(reservation.view_at(now)),
            Transition::Apply(status, reason) => (status, reason),
        };
        for a in &reservation.allocations {
            if let Some(level) = self.stock.get_mut(&(a.sku.clone(), a.warehouse_id.clone())) {
                let q = i64::from(a.quantity);
                level.reserved -= q;
                match action {
                    Action::Release => {
                        level.free += q;
                        level.avail += q;
                    }
                    Action::Commit => {
                        level.on_hand -= q;
                        level.sold += q;
                    }
                }
            }
        }
        let stored = self.reservations.entry(reservation_id.to_owned()).or_insert(reservation);
        stored.status = status;
        stored.release_reason = reason;
        Ok(stored.clone())
    }

    /// Held reservations whose expiry is at or before `now`.
    pub fn expired(&self, now: DateTime<Utc>) -> Vec<String> {
        self.reservations
            .values()
            .filter(|r| r.status == ReservationStatus::Held && r.expires_at <= now)
            .map(|r| r.reservation_id.clone())
            .collect()
    }

    /// The invariant over the whole ledger.
    pub fn violations(&self) -> Vec<Violation> {
        let stock: Vec<StockLevel> = self.stock.values().cloned().collect();
        let reservations: Vec<Reservation> = self.reservations.values().cloned().collect();
        check_invariant(&stock, &reservations)
    }
}

/// The error for a stock change that would take units already reserved.
pub fn below_reserved() -> DomainError {
    DomainError::conflict(ErrorCode::StockReserved, "on hand cannot go below the units reserved")
}

#[cfg(test)]
mod tests {
    use super::super::reservation::OwnerKind;
    use super::super::{AdjustmentReason, Allocation, MAX_UNITS};
    use super::*;
    use chrono::Duration;
    use proptest::prelude::*;

    #[test]
    fn a_stock_item_is_checked_by_itself_without_overflowing() {
        let mut ledger = Ledger::default();
        let level = ledger.set("SKU-1", "wh", &SetStock { on_hand: 10, safety_stock: Some(2) }).unwrap();
        assert!(item_violations(&level).is_empty(), "{:?}", item_violations(&level));
        let oversold = StockLevel { free: -1, avail: -3, sold: level.sold + 12, ..level.clone() };
        let messages: Vec<String> = item_violations(&oversold).into_iter().map(|v| v.message).collect();
        assert!(messages.iter().any(|m| m == "free is -1"), "{messages:?}");
        assert!(messages.iter().any(|m| m.starts_with("free -1 != on_hand 10")), "{messages:?}");
        assert!(messages.iter().any(|m| m.starts_with("available -1 + reserved 0 + sold 12")), "{messages:?}");
        let huge = StockLevel { on_hand: i64::MAX, reserved: i64::MIN, free: i64::MAX, received: i64::MAX, ..level };
        assert!(!item_violations(&huge).is_empty(), "overflowing counters are a violation, not a panic");
    }

    const SKUS: [&str; 2] = ["A", "B"];
    const WHS: [&str; 2] = ["wh_1", "wh_2"];

    #[derive(Debug, Clone)]
    enum Op {
        Set { sku: usize, wh: usize, on_hand: i64, safety: Option<i64> },
        Adjust { sku: usize, wh: usize, delta: i64 },
        Reserve { id: u8, allocs: Vec<(usize, usize, u32)>, ttl: i64 },
        Replace { old: Vec<u8>, id: u8, allocs: Vec<(usize, usize, u32)>, ttl: i64 },
        Release { id: u8 },
        Commit { id: u8 },
        Sweep,
        Tick { secs: i64 },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..2usize, 0..2usize, 0i64..30, proptest::option::of(0i64..5))
                .prop_map(|(sku, wh, on_hand, safety)| Op::Set { sku, wh, on_hand, safety }),
            (0..2usize, 0..2usize, prop_oneof![4 => -10i64..10, 1 => crate::edges::i64_near(&[MAX_UNITS])])
                .prop_filter("non-zero", |(_, _, d)| *d != 0)
                .prop_map(|(sku, wh, delta)| Op::Adjust { sku, wh, delta }),
            (0..8u8, proptest::collection::vec((0..2usize, 0..2usize, 1u32..6), 1..3), 1i64..100)
                .prop_map(|(id, allocs, ttl)| Op::Reserve { id, allocs, ttl }),
            (
                proptest::collection::vec(0..8u8, 1..3),
                0..16u8,
                proptest::collection::vec((0..2usize, 0..2usize, 1u32..6), 1..3),
                1i64..100
            )
                .prop_map(|(old, id, allocs, ttl)| Op::Replace { old, id, allocs, ttl }),
            (0..8u8).prop_map(|id| Op::Release { id }),
            (0..8u8).prop_map(|id| Op::Commit { id }),
            Just(Op::Sweep),
            (1i64..60).prop_map(|secs| Op::Tick { secs }),
        ]
    }

    fn reservation(id: u8, allocs: &[(usize, usize, u32)], now: DateTime<Utc>, ttl: i64) -> Reservation {
        let mut merged: BTreeMap<(usize, usize), u32> = BTreeMap::new();
        for (s, w, q) in allocs {
            *merged.entry((*s, *w)).or_default() += q;
        }
        Reservation {
            reservation_id: format!("r{id}"),
            status: ReservationStatus::Held,
            owner: OwnerKind::Guest,
            lines: vec![],
            allocations: merged
                .into_iter()
                .map(|((s, w), quantity)| Allocation { sku: SKUS[s].into(), warehouse_id: WHS[w].into(), quantity })
                .collect(),
            bundles: BTreeMap::new(),
            created_at: now,
            expires_at: now + Duration::seconds(ttl),
            release_reason: None,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever sequence of stock changes, reservations, releases, commits, expiries and sweeps happens,
        /// the invariant holds after every step, and reserved units are never more than were available.
        #[test]
        fn invariant_holds_for_any_history(ops in proptest::collection::vec(op(), 1..60)) {
            let mut ledger = Ledger::default();
            let mut now = Utc::now();
            for op in ops {
                let before = ledger.clone();
                match op {
                    Op::Set { sku, wh, on_hand, safety } => {
                        let result = ledger.set(SKUS[sku], WHS[wh], &SetStock { on_hand, safety_stock: safety });
                        let reserved = before.stock.get(&(SKUS[sku].into(), WHS[wh].into())).map_or(0, |l| l.reserved);
                        prop_assert_eq!(result.is_ok(), on_hand >= reserved);
                    }
                    Op::Adjust { sku, wh, delta } => {
                        let reason = if delta > 0 { AdjustmentReason::Receipt } else { AdjustmentReason::Damage };
                        let _ = ledger.adjust(SKUS[sku], WHS[wh], &StockAdjustment { delta, reason });
                    }
                    Op::Reserve { id, allocs, ttl } => {
                        let r = reservation(id, &allocs, now, ttl);
                        let outcome = ledger.try_reserve(r.clone());
                        if let ReserveOutcome::Reserved(_) = outcome {
                            for a in &r.allocations {
                                let old = &before.stock[&(a.sku.clone(), a.warehouse_id.clone())];
                                prop_assert!(old.avail >= i64::from(a.quantity));
                            }
                        } else {
                            prop_assert_eq!(&ledger.stock, &before.stock);
                        }
                    }
                    Op::Replace { mut old, id, allocs, ttl } => {
                        old.sort_unstable();
                        old.dedup();
                        let old: Vec<String> = old.iter().map(|o| format!("r{o}")).collect();
                        let outcome = ledger.try_replace(&old, reservation(id, &allocs, now, ttl));
                        if matches!(outcome, ReplaceOutcome::Replaced(_)) {
                            for o in &old {
                                prop_assert_eq!(ledger.reservations[o].status, ReservationStatus::Released);
                            }
                        } else {
                            prop_assert_eq!(&ledger.stock, &before.stock);
                        }
                    }
                    Op::Release { id } => {
                        let _ = ledger.apply(&format!("r{id}"), Action::Release, now);
                    }
                    Op::Commit { id } => {
                        let first = ledger.apply(&format!("r{id}"), Action::Commit, now);
                        let again_stock = ledger.stock.clone();
                        let second = ledger.apply(&format!("r{id}"), Action::Commit, now);
                        prop_assert_eq!(&again_stock, &ledger.stock, "a second commit changed stock");
                        prop_assert_eq!(first.is_ok(), second.is_ok());
                    }
                    Op::Sweep => {
                        for id in ledger.expired(now) {
                            ledger.apply(&id, Action::Release, now).unwrap();
                            let after_first = ledger.stock.clone();
                            ledger.apply(&id, Action::Release, now).unwrap();
                            prop_assert_eq!(&after_first, &ledger.stock, "a second release changed stock");
                        }
                    }
                    Op::Tick { secs } => now += Duration::seconds(secs),
                }
                let violations = ledger.violations();
                prop_assert!(violations.is_empty(), "{:?}", violations);
                prop_assert!(ledger.stock.values().all(|l| (0..=MAX_UNITS).contains(&l.on_hand)), "{:?}", ledger.stock);
            }
        }
    }

    #[test]
    fn checker_catches_a_lost_release() {
        let mut ledger = Ledger::default();
        ledger.adjust("A", "wh_1", &StockAdjustment { delta: 5, reason: AdjustmentReason::Receipt }).unwrap();
        let now = Utc::now();
        let r = reservation(1, &[(0, 0, 2)], now, 60);
        assert!(matches!(ledger.try_reserve(r), ReserveOutcome::Reserved(_)));
        assert!(ledger.violations().is_empty());
        ledger.reservations.get_mut("r1").unwrap().status = ReservationStatus::Released;
        assert_eq!(ledger.violations().len(), 1, "{:?}", ledger.violations());
    }

    #[test]
    fn damage_cannot_take_reserved_units() {
        let mut ledger = Ledger::default();
        ledger.adjust("A", "wh_1", &StockAdjustment { delta: 3, reason: AdjustmentReason::Receipt }).unwrap();
        let now = Utc::now();
        assert!(matches!(ledger.try_reserve(reservation(1, &[(0, 0, 2)], now, 60)), ReserveOutcome::Reserved(_)));
        let err = ledger.adjust("A", "wh_1", &StockAdjustment { delta: -2, reason: AdjustmentReason::Damage });
        assert!(matches!(err, Err(DomainError::Conflict { code: ErrorCode::StockReserved, .. })));
        assert!(ledger.adjust("A", "wh_1", &StockAdjustment { delta: -1, reason: AdjustmentReason::Damage }).is_ok());
    }
}
