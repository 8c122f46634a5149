//! Inventory: stock per SKU per warehouse, warehouses and their locations, stock changes by sellers,
//! reservations and how they are allocated across warehouses, and the ledger invariant that says no unit
//! was created or lost.
//!
//! A stock level's counters (see `docs/DATA_MODEL.md`, InventoryTable):
//! - `on_hand`: units physically in the warehouse and not yet sold;
//! - `reserved`: units held by live reservations;
//! - `safety`: units held back from sale;
//! - `sold`: units committed to orders (they left `on_hand` and `reserved` together);
//! - `received` / `adjustments`: the ledger of every change a seller made (receipts vs. everything else);
//! - `free = on_hand - reserved` and `avail = on_hand - reserved - safety`, kept in the stored item so a
//!   reservation is one conditional write (`avail >= :qty`), never read-then-write.

pub mod allocation;
pub mod ledger;
pub mod reservation;
pub mod returns;

pub use allocation::{allocate, bundle_lines, expand_lines, rank_warehouses, Allocation, Component};
pub use ledger::{check_invariant, item_violations, Ledger, Violation};
pub use reservation::{
    OwnerKind, Reservation, ReservationLine, ReservationPolicy, ReservationRequest, ReservationStatus,
};

use crate::catalog::SkuView;
use crate::error::DomainError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::Digest;

/// Largest on-hand count of one SKU in one warehouse, safety stock, or single adjustment accepted. A stock
/// change past it is a 422 naming the field. With every stored counter bounded by it (and reservations by
/// `reservation::MAX_LINE_QUANTITY`), no stock arithmetic comes near `i64`'s range.
pub const MAX_UNITS: i64 = 10_000_000;

/// A SKU as the catalog defines it, else 400 naming `sku` (`ids::Sku::parse`).
pub fn validate_sku(sku: &str) -> Result<(), DomainError> {
    crate::ids::Sku::parse(sku).map(|_| ())
}

/// A warehouse id issued by `create_warehouse` (`wh_<ulid>`), or a short seeded slug (`wh_east`)
/// (`ids::WarehouseId::parse`).
pub fn validate_warehouse_id(id: &str) -> Result<(), DomainError> {
    crate::ids::WarehouseId::parse(id).map(|_| ())
}

/// A point on Earth, in decimal degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Coordinates {
    pub latitude: f64,
    pub longitude: f64,
}

impl Coordinates {
    /// To 1e-7 degrees (about a centimetre), so a stored value has no more digits than the store takes: a
    /// number as small as 1e-200 is refused by DynamoDB (its magnitude floor is 1e-130) and becomes 0 here.
    pub fn rounded(self) -> Coordinates {
        let round = |v: f64| (v * 1e7).round() / 1e7 + 0.0;
        Coordinates { latitude: round(self.latitude), longitude: round(self.longitude) }
    }

    /// Great-circle distance in kilometres (haversine).
    pub fn distance_km(&self, other: &Coordinates) -> f64 {
        const EARTH_RADIUS_KM: f64 = 6371.0;
        let (lat1, lat2) = (self.latitude.to_radians(), other.latitude.to_radians());
        let dlat = lat2 - lat1;
        let dlon = (other.longitude - self.longitude).to_radians();
        let a = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_KM * a.sqrt().asin()
    }

    fn validate(&self, field: &str) -> Result<(), DomainError> {
        if !(-90.0..=90.0).contains(&self.latitude) || !self.latitude.is_finite() {
            return Err(DomainError::validation(format!("{field}.latitude"), "must be within -90..90"));
        }
        if !(-180.0..=180.0).contains(&self.longitude) || !self.longitude.is_finite() {
            return Err(DomainError::validation(format!("{field}.longitude"), "must be within -180..180"));
        }
        Ok(())
    }
}

/// Where a warehouse is, or where a shipment goes. Region and coordinates are optional for a destination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// ISO 3166-1 alpha-2 country code, upper case.
    pub country: String,
    /// State, province or region code within the country.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinates: Option<Coordinates>,
    /// The postal code: what a carrier prices a warehouse's parcels from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
}

impl Location {
    /// Checks a destination: a two-letter country, a short region, valid coordinates.
    pub fn validate(&self, field: &str) -> Result<(), DomainError> {
        if self.country.len() != 2 || !self.country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(DomainError::validation(format!("{field}.country"), "must be an ISO 3166 alpha-2 code"));
        }
        if let Some(region) = &self.region {
            if region.is_empty() || region.len() > 64 {
                return Err(DomainError::validation(format!("{field}.region"), "must be 1-64 characters"));
            }
        }
        if let Some(coordinates) = &self.coordinates {
            coordinates.validate(&format!("{field}.coordinates"))?;
        }
        if let Some(postal_code) = &self.postal_code {
            let ok = (1..=20).contains(&postal_code.chars().count())
                && postal_code.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-');
            if !ok {
                return Err(DomainError::validation(
                    format!("{field}.postal_code"),
                    "must be 1-20 letters, digits, spaces or '-'",
                ));
            }
        }
        Ok(())
    }
}

/// A place stock is kept and shipped from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warehouse {
    pub warehouse_id: String,
    pub name: String,
    pub location: Location,
    pub created_at: DateTime<Utc>,
}

/// What an admin sends to create a warehouse.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWarehouse {
    pub name: String,
    pub location: Location,
    /// Optional caller-chosen id (`wh_<slug>`), for demo data and idempotent provisioning.
    #[serde(default)]
    pub warehouse_id: Option<String>,
}

impl NewWarehouse {
    /// Validates and turns the request into a warehouse. A warehouse needs a region and coordinates.
    pub fn into_warehouse(self, now: DateTime<Utc>) -> Result<Warehouse, DomainError> {
        let name = self.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 120 {
            return Err(DomainError::validation("name", "must be 1-120 characters"));
        }
        self.location.validate("location")?;
        if self.location.region.is_none() {
            return Err(DomainError::validation("location.region", "is required for a warehouse"));
        }
        if self.location.coordinates.is_none() {
            return Err(DomainError::validation("location.coordinates", "is required for a warehouse"));
        }
        let warehouse_id = match self.warehouse_id {
            Some(id) => {
                validate_warehouse_id(&id)?;
                id
            }
            None => crate::ids::new_id("wh"),
        };
        let mut location = self.location;
        location.coordinates = location.coordinates.map(Coordinates::rounded);
        Ok(Warehouse { warehouse_id, name, location, created_at: now })
    }
}

/// The stock of one SKU in one warehouse, with its ledger.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StockLevel {
    pub sku: String,
    pub warehouse_id: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub safety: i64,
    pub sold: i64,
    pub received: i64,
    pub adjustments: i64,
    /// Stored `on_hand - reserved` (checked by the invariant).
    pub free: i64,
    /// Stored `on_hand - reserved - safety`: the reservation gate. Negative only when damage ate into the
    /// safety stock.
    pub avail: i64,
    /// Units held for flash sales (part of `reserved`; written by the flash-sale slice).
    #[serde(default)]
    pub flash: i64,
    /// Units sold through flash sales (part of `sold`).
    #[serde(default)]
    pub flash_sold: i64,
    /// Units of committed reservations that came back to stock (cancelled or returned orders).
    #[serde(default)]
    pub returned: i64,
}

impl StockLevel {
    /// A new, empty stock level.
    pub fn empty(sku: &str, warehouse_id: &str) -> Self {
        Self { sku: sku.to_owned(), warehouse_id: warehouse_id.to_owned(), ..Self::default() }
    }

    /// Units that can be sold now: on hand minus reserved minus safety stock, never below zero.
    pub fn available(&self) -> i64 {
        self.avail.max(0)
    }
}

/// Whether a change of one stock level took its available units below `threshold`: from at least `threshold`
/// to under it. Staying low, a new item and a threshold of 0 or less are no crossing, so a seller hears once
/// per fall, not at every sale while the stock is low.
pub fn fell_below(old: Option<&StockLevel>, new: &StockLevel, threshold: i64) -> bool {
    threshold > 0 && old.is_some_and(|old| old.available() >= threshold) && new.available() < threshold
}

/// Stock of one SKU in one warehouse as the seller API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockView {
    pub warehouse_id: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub safety_stock: i64,
    pub available: i64,
    pub sold: i64,
}

impl From<&StockLevel> for StockView {
    fn from(level: &StockLevel) -> Self {
        Self {
            warehouse_id: level.warehouse_id.clone(),
            on_hand: level.on_hand,
            reserved: level.reserved,
            safety_stock: level.safety,
            available: level.available(),
            sold: level.sold,
        }
    }
}

/// All warehouses' stock of one SKU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuStock {
    pub sku: String,
    pub available: i64,
    pub warehouses: Vec<StockView>,
}

impl SkuStock {
    /// Summarises the levels of one SKU, warehouses in id order.
    pub fn new(sku: &str, levels: &[StockLevel]) -> Self {
        let mut warehouses: Vec<StockView> = levels.iter().map(StockView::from).collect();
        warehouses.sort_by(|a, b| a.warehouse_id.cmp(&b.warehouse_id));
        let available = warehouses.iter().fold(0i64, |sum, w| sum.saturating_add(w.available));
        Self { sku: sku.to_owned(), available, warehouses }
    }
}

/// `PUT /v1/seller/inventory/{sku}/{warehouse_id}`: set on hand to an absolute count (and optionally the
/// safety stock).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetStock {
    pub on_hand: i64,
    #[serde(default)]
    pub safety_stock: Option<i64>,
}

impl SetStock {
    pub fn validate(&self) -> Result<(), DomainError> {
        if !(0..=MAX_UNITS).contains(&self.on_hand) {
            return Err(DomainError::validation("on_hand", format!("must be within 0..={MAX_UNITS}")));
        }
        if let Some(safety) = self.safety_stock {
            if !(0..=MAX_UNITS).contains(&safety) {
                return Err(DomainError::validation("safety_stock", format!("must be within 0..={MAX_UNITS}")));
            }
        }
        Ok(())
    }
}

/// Why stock changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdjustmentReason {
    /// Goods received: a positive delta, booked to `received`.
    Receipt,
    /// A count correction, either sign.
    Correction,
    /// Damaged or lost units: a negative delta.
    Damage,
}

/// `POST /v1/seller/inventory/{sku}/{warehouse_id}/adjustments`: change on hand by a delta.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StockAdjustment {
    pub delta: i64,
    pub reason: AdjustmentReason,
}

impl StockAdjustment {
    /// A non-zero delta within ±`MAX_UNITS` whose sign fits the reason (422 naming `delta`).
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.delta == 0 || !(-MAX_UNITS..=MAX_UNITS).contains(&self.delta) {
            return Err(DomainError::validation("delta", format!("must be non-zero and within ±{MAX_UNITS}")));
        }
        match self.reason {
            AdjustmentReason::Receipt if self.delta < 0 => {
                Err(DomainError::validation("delta", "a receipt must be positive"))
            }
            AdjustmentReason::Damage if self.delta > 0 => {
                Err(DomainError::validation("delta", "damage must be negative"))
            }
            _ => Ok(()),
        }
    }

    /// Whether this adjustment would take `on_hand` past `MAX_UNITS` (then it is refused with
    /// [`StockAdjustment::over_limit`]). Never overflows, whatever the counts.
    pub fn exceeds_limit(&self, on_hand: i64) -> bool {
        self.delta > 0 && on_hand.checked_add(self.delta).is_none_or(|after| after > MAX_UNITS)
    }

    /// The largest on-hand count this adjustment may find and still stay within `MAX_UNITS` (the stored
    /// write's condition); `None` for a decrease, which the units reserved bound instead.
    pub fn on_hand_ceiling(&self) -> Option<i64> {
        (self.delta > 0).then(|| MAX_UNITS.saturating_sub(self.delta))
    }

    /// The refusal of an increase past `MAX_UNITS` (422 naming `delta`).
    pub fn over_limit() -> DomainError {
        DomainError::validation("delta", format!("on hand would exceed {MAX_UNITS} units"))
    }

    /// The split of the delta into the ledger's `received` and `adjustments` counters.
    pub fn ledger_split(&self) -> (i64, i64) {
        match self.reason {
            AdjustmentReason::Receipt => (self.delta, 0),
            _ => (0, self.delta),
        }
    }
}

/// How long an adjustment's Idempotency-Key is remembered.
pub const ADJUSTMENT_KEY_TTL_HOURS: i64 = 24;

/// An adjustment's `Idempotency-Key`, scoped to the caller, the SKU and the warehouse, and the fingerprint of
/// the adjustment it was first used with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdjustmentKey {
    /// A digest of caller, SKU, warehouse and key (the record's key).
    pub id: String,
    /// A hash of the adjustment (delta and reason).
    pub fingerprint: String,
}

impl AdjustmentKey {
    /// From the raw header: 400 `invalid_parameter` naming `Idempotency-Key` when missing or malformed.
    pub fn new(
        caller: &str,
        sku: &str,
        warehouse_id: &str,
        key: Option<&str>,
        adjustment: &StockAdjustment,
    ) -> Result<Self, DomainError> {
        let key = key.unwrap_or_default();
        crate::idempotency::validate_key(key)
            .map_err(|reason| DomainError::invalid_parameter("Idempotency-Key", reason))?;
        let scope = format!("{sku}#{warehouse_id}#{caller}");
        let scoped = crate::idempotency::scoped_key("adjust-stock", &scope, key);
        let body = serde_json::to_value(adjustment).map_err(DomainError::unexpected)?;
        Ok(Self {
            id: hex::encode(sha2::Sha256::digest(scoped.as_bytes())),
            fingerprint: crate::idempotency::fingerprint(&body),
        })
    }
}

/// How an adjustment under an Idempotency-Key went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdjustOutcome {
    /// Applied now; the stock level after it.
    Applied(StockLevel),
    /// The key was already used for the same adjustment: nothing changed; the first result (or, if a crash
    /// lost it, the stock as it is now).
    Replayed(StockView),
    /// The key was already used for a different adjustment (422 `idempotency_key_reused`).
    KeyReused,
}

/// Units available over `levels`. Each level is bounded by `MAX_UNITS`; the sum saturates rather than wraps.
pub fn total_available<'a>(levels: impl IntoIterator<Item = &'a StockLevel>) -> i64 {
    levels.into_iter().fold(0i64, |sum, level| sum.saturating_add(level.available()))
}

/// Whether a catalog SKU is an inventory item of its own (stock can be set for it), not a bundle of others.
pub fn is_stock_item(view: &SkuView) -> bool {
    view.components.iter().any(|c| c.sku == view.sku)
}

/// Whether every inventory item a catalog SKU consumes is a SKU of the same seller. `sellers` maps the SKUs
/// its parts name (other products' SKUs) to their sellers; a part missing from it (unknown, or its product
/// deleted) is not the seller's. A bundle failing this must not draw on stock.
pub fn draws_on_own_stock(view: &SkuView, sellers: &std::collections::HashMap<String, String>) -> bool {
    view.components.iter().all(|c| c.sku == view.sku || sellers.get(&c.sku) == Some(&view.seller_id))
}

/// Units of a SKU that can be sold given the available units per inventory item: its scarcest component.
pub fn sellable_units(view: &SkuView, available: &std::collections::HashMap<String, i64>) -> i64 {
    view.components
        .iter()
        .map(|c| available.get(&c.sku).copied().unwrap_or(0).max(0) / i64::from(c.quantity.max(1)))
        .min()
        .unwrap_or(0)
}

/// A change in whether a SKU can be bought, derived from a stock item's old and new `avail`: `Some(true)`
/// when it came into stock at that warehouse, `Some(false)` when it ran out, `None` when unchanged.
/// Stream consumers (search) call this per stock record, then sum the SKU's warehouses.
pub fn stock_status_change(old_avail: Option<i64>, new_avail: Option<i64>) -> Option<bool> {
    let was = old_avail.unwrap_or(0) > 0;
    let is = new_avail.unwrap_or(0) > 0;
    (was != is).then_some(is)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn available_never_negative() {
        let level = StockLevel { on_hand: 3, safety: 5, free: 3, avail: -2, ..StockLevel::empty("A", "wh_a") };
        assert_eq!(level.available(), 0);
    }

    #[test]
    fn a_warehouse_keeps_its_coordinates_to_a_centimetre_and_never_a_number_the_store_refuses() {
        let new = |latitude: f64, longitude: f64, name: &str| NewWarehouse {
            name: name.to_owned(),
            location: Location {
                country: "US".into(),
                region: Some("TX".into()),
                coordinates: Some(Coordinates { latitude, longitude }),
                postal_code: None,
            },
            warehouse_id: None,
        };
        let tiny = new(1e-200, -7.009940055049222e-54, "Tiny").into_warehouse(Utc::now()).unwrap();
        assert_eq!(tiny.location.coordinates, Some(Coordinates { latitude: 0.0, longitude: 0.0 }));
        assert!(tiny.location.coordinates.unwrap().longitude.is_sign_positive(), "no -0 is stored");
        let dallas = new(32.776_664_99, -96.796_987_7, "Dallas").into_warehouse(Utc::now()).unwrap();
        assert_eq!(dallas.location.coordinates, Some(Coordinates { latitude: 32.776_665, longitude: -96.796_987_7 }));
        // 120 characters, more than 120 bytes: the limit counts characters.
        assert!(new(0.0, 0.0, &"é".repeat(120)).into_warehouse(Utc::now()).is_ok());
        assert!(new(0.0, 0.0, &"é".repeat(121)).into_warehouse(Utc::now()).is_err());
    }

    #[test]
    fn adjustment_sign_follows_reason() {
        assert!(StockAdjustment { delta: -1, reason: AdjustmentReason::Receipt }.validate().is_err());
        assert!(StockAdjustment { delta: 1, reason: AdjustmentReason::Damage }.validate().is_err());
        assert!(StockAdjustment { delta: 0, reason: AdjustmentReason::Correction }.validate().is_err());
        assert_eq!(StockAdjustment { delta: 4, reason: AdjustmentReason::Receipt }.ledger_split(), (4, 0));
        assert_eq!(StockAdjustment { delta: -4, reason: AdjustmentReason::Damage }.ledger_split(), (0, -4));
    }

    #[test]
    fn sku_and_warehouse_ids_are_checked() {
        assert!(validate_sku("TSHIRT-RED-M").is_ok());
        assert!(validate_sku("a#b").is_err());
        assert!(validate_sku("lower").is_err());
        assert!(validate_sku("").is_err());
        assert!(validate_warehouse_id("wh_east").is_ok());
        assert!(validate_warehouse_id("east").is_err());
    }

    #[test]
    fn distance_is_plausible() {
        let nyc = Coordinates { latitude: 40.7128, longitude: -74.0060 };
        let la = Coordinates { latitude: 34.0522, longitude: -118.2437 };
        let d = nyc.distance_km(&la);
        assert!((3900.0..4000.0).contains(&d), "{d}");
    }

    #[test]
    fn warehouse_requires_coordinates() {
        let new = NewWarehouse {
            name: "East".into(),
            location: Location {
                country: "US".into(),
                region: Some("NJ".into()),
                coordinates: None,
                postal_code: None,
            },
            warehouse_id: None,
        };
        assert!(new.into_warehouse(Utc::now()).is_err());
    }

    fn reason() -> impl proptest::strategy::Strategy<Value = AdjustmentReason> {
        proptest::sample::select(vec![
            AdjustmentReason::Receipt,
            AdjustmentReason::Correction,
            AdjustmentReason::Damage,
        ])
    }

    proptest::proptest! {
        /// Any delta, `i64::MIN` and `i64::MAX` included, is judged without overflow: accepted exactly when it
        /// is non-zero, within ±MAX_UNITS and of the reason's sign.
        #[test]
        fn an_adjustment_is_accepted_exactly_within_its_limits(
            delta in crate::edges::i64_near(&[MAX_UNITS]),
            reason in reason(),
        ) {
            let adjustment = StockAdjustment { delta, reason };
            let within = delta != 0 && i128::from(delta).abs() <= i128::from(MAX_UNITS);
            let signed = match reason {
                AdjustmentReason::Receipt => delta > 0,
                AdjustmentReason::Damage => delta < 0,
                AdjustmentReason::Correction => true,
            };
            match adjustment.validate() {
                Ok(()) => proptest::prop_assert!(within && signed),
                Err(DomainError::Validation { field, .. }) => {
                    proptest::prop_assert!(!(within && signed));
                    proptest::prop_assert_eq!(field, "delta");
                }
                Err(other) => proptest::prop_assert!(false, "{other:?}"),
            }
        }

        /// An increase is refused exactly when on hand would pass MAX_UNITS, for any counts; the stored
        /// write's ceiling says the same for every accepted delta.
        #[test]
        fn an_increase_is_refused_exactly_past_the_on_hand_limit(
            on_hand in crate::edges::i64_near(&[MAX_UNITS, 0]),
            delta in crate::edges::i64_near(&[MAX_UNITS]),
        ) {
            let adjustment = StockAdjustment { delta, reason: AdjustmentReason::Correction };
            let past = delta > 0 && i128::from(on_hand) + i128::from(delta) > i128::from(MAX_UNITS);
            proptest::prop_assert_eq!(adjustment.exceeds_limit(on_hand), past);
            if adjustment.validate().is_ok() {
                match adjustment.on_hand_ceiling() {
                    Some(ceiling) => proptest::prop_assert_eq!(on_hand <= ceiling, !past),
                    None => proptest::prop_assert!(delta < 0),
                }
            }
        }

        /// A stock count is accepted exactly within 0..=MAX_UNITS, naming the field it breaks.
        #[test]
        fn a_stock_count_is_accepted_exactly_within_its_limits(
            on_hand in crate::edges::i64_near(&[MAX_UNITS, 0]),
            safety in proptest::option::of(crate::edges::i64_near(&[MAX_UNITS, 0])),
        ) {
            let set = SetStock { on_hand, safety_stock: safety };
            let in_range = |v: i64| (0..=MAX_UNITS).contains(&v);
            let field = match set.validate() {
                Ok(()) => None,
                Err(DomainError::Validation { field, .. }) => Some(field),
                Err(other) => return Err(proptest::test_runner::TestCaseError::fail(format!("{other:?}"))),
            };
            let expected = if !in_range(on_hand) {
                Some("on_hand")
            } else if safety.is_some_and(|s| !in_range(s)) {
                Some("safety_stock")
            } else {
                None
            };
            proptest::prop_assert_eq!(field.as_deref(), expected);
        }
    }

    #[test]
    fn status_change_only_on_crossing_zero() {
        assert_eq!(stock_status_change(Some(0), Some(3)), Some(true));
        assert_eq!(stock_status_change(Some(3), Some(0)), Some(false));
        assert_eq!(stock_status_change(Some(3), Some(2)), None);
        assert_eq!(stock_status_change(None, Some(1)), Some(true));
    }
}
