//! Returning sold units to stock: an order's committed units come back on hand (a cancellation after the
//! commit, an approved return with restock), exactly once per (order, reason).
//!
//! The units leave `sold` and come back to `on_hand`, `free` and `avail`, so `free + reserved + sold ==
//! received + adjustments` is unchanged. Units sold through a reservation are counted in `returned`
//! (`sold == committed reservations + flash_sold - returned`); units sold through a flash sale leave
//! `flash_sold` instead.

use super::{Allocation, Reservation, StockLevel};
use crate::error::ErrorCode;
use crate::error::{DomainError, Result};
use serde::{Deserialize, Serialize};

/// Most lines one return may move (a TransactWriteItems holds 100 actions; one is the marker).
pub const MAX_RETURN_LINES: usize = 99;

/// Sold units of one order going back to stock, for one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoldReturn {
    pub order_id: String,
    /// Why, and the dedupe scope: `cancel`, `return-<seller>`.
    pub reason: String,
    /// The units per stock item (SKU and warehouse), each at most once.
    pub lines: Vec<Allocation>,
    /// The units were sold through a flash sale (booked in `flash_sold`), not through a reservation.
    #[serde(default)]
    pub flash: bool,
}

impl SoldReturn {
    /// The id of the marker written with the return: one per (order, reason).
    pub fn marker_id(&self) -> String {
        format!("{}#{}", self.order_id, self.reason)
    }

    /// Positive quantities, each stock item once, at most `MAX_RETURN_LINES`, an order and a reason.
    pub fn validate(&self) -> Result<()> {
        if self.order_id.is_empty() || self.reason.is_empty() {
            return Err(DomainError::validation("order_id", "a return names its order and reason"));
        }
        if self.lines.is_empty() || self.lines.len() > MAX_RETURN_LINES {
            return Err(DomainError::validation("lines", format!("1 to {MAX_RETURN_LINES} stock items")));
        }
        let mut seen = std::collections::BTreeSet::new();
        for line in &self.lines {
            if line.quantity == 0 {
                return Err(DomainError::validation("quantity", "must be at least 1"));
            }
            if !seen.insert((line.sku.as_str(), line.warehouse_id.as_str())) {
                return Err(DomainError::validation("lines", "each stock item at most once"));
            }
        }
        Ok(())
    }
}

/// The units of `reservation` that its lines `skus` took: each line expanded as it was reserved (a bundle
/// into its components, any other line into itself), taken from the allocations in order and capped by them.
/// What a seller's return gives back: exactly its own lines' units, a bundle's as its components.
pub fn units_of_lines(reservation: &Reservation, skus: &[String]) -> Vec<Allocation> {
    let mut demand: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
    for line in reservation.lines.iter().filter(|l| skus.contains(&l.sku)) {
        let quantity = u64::from(line.quantity);
        match reservation.bundles.get(&line.sku) {
            Some(parts) => {
                for part in parts {
                    *demand.entry(&part.sku).or_default() += quantity * u64::from(part.quantity);
                }
            }
            None => *demand.entry(&line.sku).or_default() += quantity,
        }
    }
    let mut units = Vec::new();
    for allocation in &reservation.allocations {
        let Some(left) = demand.get_mut(allocation.sku.as_str()) else { continue };
        let taken = u64::from(allocation.quantity).min(*left);
        if taken > 0 {
            *left -= taken;
            units.push(Allocation { quantity: taken as u32, ..allocation.clone() });
        }
    }
    units
}

/// Moves `quantity` sold units of `level` back on hand. Refused (nothing changes) when fewer units are
/// booked as sold (through flash sales, with `flash`) than come back.
pub fn return_sold(level: &mut StockLevel, quantity: u32, flash: bool) -> Result<()> {
    let q = i64::from(quantity);
    let booked = if flash { level.flash_sold } else { level.sold };
    if level.sold < q || booked < q {
        return Err(DomainError::conflict(ErrorCode::NotSold, "fewer units are sold than would come back"));
    }
    level.sold -= q;
    if flash {
        level.flash_sold -= q;
    } else {
        level.returned += q;
    }
    level.on_hand += q;
    level.free += q;
    level.avail += q;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sold(units: i64) -> StockLevel {
        StockLevel { on_hand: 3, free: 3, avail: 3, sold: units, received: 3 + units, ..StockLevel::empty("S", "wh") }
    }

    fn balanced(l: &StockLevel) -> bool {
        l.free + l.reserved + l.sold == l.received + l.adjustments && l.free == l.on_hand - l.reserved
    }

    #[test]
    fn returned_units_leave_sold_and_keep_the_ledger_balanced() {
        let mut level = sold(2);
        return_sold(&mut level, 2, false).unwrap();
        assert_eq!((level.sold, level.returned, level.on_hand, level.avail), (0, 2, 5, 5));
        assert!(balanced(&level));
    }

    #[test]
    fn flash_units_leave_flash_sold() {
        let mut level = StockLevel { flash_sold: 1, ..sold(1) };
        return_sold(&mut level, 1, true).unwrap();
        assert_eq!((level.sold, level.flash_sold, level.returned), (0, 0, 0));
        assert!(balanced(&level));
    }

    #[test]
    fn more_than_sold_is_refused_without_change() {
        let mut level = sold(1);
        let before = level.clone();
        assert!(return_sold(&mut level, 2, false).is_err());
        assert!(return_sold(&mut level, 1, true).is_err(), "no flash sale sold it");
        assert_eq!(level, before);
    }

    #[test]
    fn a_lines_units_are_its_own_or_its_bundles_components_as_reserved() {
        use crate::inventory::{Component, OwnerKind, ReservationLine, ReservationStatus};
        let at = |sku: &str, warehouse_id: &str, quantity| Allocation {
            sku: sku.into(),
            warehouse_id: warehouse_id.into(),
            quantity,
        };
        let now = chrono::Utc::now();
        // KIT (x2) = 1 A + 2 B; A also sold on its own line (x1). Another seller's line C.
        let reservation = Reservation {
            reservation_id: "ord_1".into(),
            status: ReservationStatus::Committed,
            owner: OwnerKind::Shopper,
            lines: vec![
                ReservationLine { sku: "A".into(), quantity: 1 },
                ReservationLine { sku: "C".into(), quantity: 1 },
                ReservationLine { sku: "KIT".into(), quantity: 2 },
            ],
            allocations: vec![at("A", "wh_1", 2), at("A", "wh_2", 1), at("B", "wh_1", 4), at("C", "wh_1", 1)],
            bundles: [(
                "KIT".to_string(),
                vec![Component { sku: "A".into(), quantity: 1 }, Component { sku: "B".into(), quantity: 2 }],
            )]
            .into(),
            created_at: now,
            expires_at: now,
            release_reason: None,
        };
        let skus = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(units_of_lines(&reservation, &skus(&["KIT"])), vec![at("A", "wh_1", 2), at("B", "wh_1", 4)]);
        assert_eq!(
            units_of_lines(&reservation, &skus(&["A", "KIT"])),
            vec![at("A", "wh_1", 2), at("A", "wh_2", 1), at("B", "wh_1", 4)]
        );
        assert_eq!(units_of_lines(&reservation, &skus(&["C"])), vec![at("C", "wh_1", 1)]);
        assert!(units_of_lines(&reservation, &skus(&["B"])).is_empty(), "B is no line of the order");
    }

    #[test]
    fn a_return_names_each_item_once() {
        let line = Allocation { sku: "S".into(), warehouse_id: "wh".into(), quantity: 1 };
        let request =
            SoldReturn { order_id: "ord_1".into(), reason: "cancel".into(), lines: vec![line.clone()], flash: false };
        assert!(request.validate().is_ok());
        assert_eq!(request.marker_id(), "ord_1#cancel");
        let twice = SoldReturn { lines: vec![line.clone(), line], ..request };
        assert!(twice.validate().is_err());
    }
}
