//! Which warehouses a reservation draws from: bundle lines expanded into the inventory items they consume,
//! warehouses ranked nearest-first to the destination, and each item's demand covered by one warehouse
//! when one can cover it, split nearest-first otherwise.

use super::{Location, ReservationLine, StockLevel, Warehouse};
use crate::error::DomainError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

pub use crate::catalog::Component;

/// Units of one inventory item held at one warehouse.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Allocation {
    pub sku: String,
    pub warehouse_id: String,
    pub quantity: u32,
}

/// Total units per inventory item for a set of lines. Lines that share an item (two bundles with a common
/// part, or a bundle and the part on its own) add up, so the item is checked once against its whole demand.
/// `components` maps each line's SKU to what it consumes; a SKU missing from it is an error naming that SKU.
pub fn expand_lines(
    lines: &[ReservationLine],
    components: &HashMap<String, Vec<Component>>,
) -> Result<BTreeMap<String, u64>, DomainError> {
    let mut demand: BTreeMap<String, u64> = BTreeMap::new();
    for line in lines {
        let parts = components.get(&line.sku).ok_or_else(|| DomainError::not_found("sku"))?;
        if parts.is_empty() {
            return Err(DomainError::validation("sku", format!("{} consumes no inventory", line.sku)));
        }
        for part in parts {
            let total = demand.entry(part.sku.clone()).or_default();
            *total = u64::from(line.quantity)
                .checked_mul(u64::from(part.quantity))
                .and_then(|units| total.checked_add(units))
                .ok_or_else(|| DomainError::validation("quantity", "the lines ask for too many units"))?;
        }
    }
    Ok(demand)
}

/// The lines that are bundles, with what each consumes (a line consuming itself once is left out): the
/// expansion a reservation keeps, so that a line's units can be told apart later.
pub fn bundle_lines(
    lines: &[ReservationLine],
    components: &HashMap<String, Vec<Component>>,
) -> BTreeMap<String, Vec<Component>> {
    lines
        .iter()
        .filter_map(|line| {
            let parts = components.get(&line.sku)?;
            let itself = matches!(parts.as_slice(), [only] if only.sku == line.sku && only.quantity == 1);
            (!itself).then(|| (line.sku.clone(), parts.clone()))
        })
        .collect()
}

/// Warehouses in the order they should ship to `ship_to`: by great-circle distance when both sides have
/// coordinates, otherwise same region first, then same country, then the rest; ties by id.
pub fn rank_warehouses<'a>(warehouses: &'a [Warehouse], ship_to: Option<&Location>) -> Vec<&'a Warehouse> {
    let key = |w: &Warehouse| -> (u8, f64) {
        let Some(dest) = ship_to else { return (0, 0.0) };
        if let (Some(a), Some(b)) = (dest.coordinates.as_ref(), w.location.coordinates.as_ref()) {
            return (0, a.distance_km(b));
        }
        let same_country = dest.country == w.location.country;
        let same_region = same_country && dest.region.is_some() && dest.region == w.location.region;
        (
            if same_region {
                0
            } else if same_country {
                1
            } else {
                2
            },
            0.0,
        )
    };
    let mut ranked: Vec<(&Warehouse, (u8, f64))> = warehouses.iter().map(|w| (w, key(w))).collect();
    ranked.sort_by(|(wa, ka), (wb, kb)| {
        ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1)).then_with(|| wa.warehouse_id.cmp(&wb.warehouse_id))
    });
    ranked.into_iter().map(|(w, _)| w).collect()
}

/// Plans allocations for every item in `demand` from `stock` (levels keyed by item SKU), visiting warehouses
/// in `order` (nearest first; warehouses not in `order` come last, by id). All or nothing: the first item that
/// cannot be covered by the sum of its warehouses fails with `OutOfStock` naming it.
pub fn allocate(
    demand: &BTreeMap<String, u64>,
    stock: &HashMap<String, Vec<StockLevel>>,
    order: &[&str],
) -> Result<Vec<Allocation>, DomainError> {
    let position = |id: &str| order.iter().position(|w| *w == id).unwrap_or(usize::MAX);
    let mut allocations = Vec::new();
    for (sku, &needed) in demand {
        let mut levels: Vec<&StockLevel> =
            stock.get(sku).map(|l| l.iter().filter(|l| l.available() > 0).collect()).unwrap_or_default();
        levels.sort_by(|a, b| {
            position(&a.warehouse_id).cmp(&position(&b.warehouse_id)).then_with(|| a.warehouse_id.cmp(&b.warehouse_id))
        });
        let total = super::total_available(levels.iter().copied());
        if needed == 0 {
            continue;
        }
        let needed_units = i64::try_from(needed).unwrap_or(i64::MAX);
        let quantity_u32 = u32::try_from(needed).map_err(|_| DomainError::OutOfStock { sku: sku.clone() })?;
        if total < needed_units {
            return Err(DomainError::OutOfStock { sku: sku.clone() });
        }
        if let Some(whole) = levels.iter().find(|l| l.available() >= needed_units) {
            allocations.push(Allocation {
                sku: sku.clone(),
                warehouse_id: whole.warehouse_id.clone(),
                quantity: quantity_u32,
            });
            continue;
        }
        let mut remaining = needed_units;
        for level in levels {
            if remaining == 0 {
                break;
            }
            let take = remaining.min(level.available());
            allocations.push(Allocation {
                sku: sku.clone(),
                warehouse_id: level.warehouse_id.clone(),
                quantity: u32::try_from(take).unwrap_or(u32::MAX),
            });
            remaining -= take;
        }
    }
    Ok(allocations)
}

#[cfg(test)]
mod tests {
    use super::super::Coordinates;
    use super::*;
    use chrono::Utc;
    use proptest::prelude::*;

    fn warehouse(id: &str, country: &str, region: &str, lat: f64, lon: f64) -> Warehouse {
        Warehouse {
            warehouse_id: id.into(),
            name: id.into(),
            location: Location {
                country: country.into(),
                region: Some(region.into()),
                coordinates: Some(Coordinates { latitude: lat, longitude: lon }),
                postal_code: None,
            },
            created_at: Utc::now(),
        }
    }

    fn level(sku: &str, wh: &str, avail: i64) -> StockLevel {
        StockLevel { on_hand: avail, free: avail, avail, ..StockLevel::empty(sku, wh) }
    }

    fn line(sku: &str, quantity: u32) -> ReservationLine {
        ReservationLine { sku: sku.into(), quantity }
    }

    #[test]
    fn demand_beyond_u64_is_refused_not_wrapped() {
        let lines: Vec<ReservationLine> =
            ["A", "B"].iter().map(|sku| ReservationLine { sku: (*sku).into(), quantity: u32::MAX }).collect();
        let parts = vec![Component { sku: "X".into(), quantity: u32::MAX }];
        let components = HashMap::from([("A".to_string(), parts.clone()), ("B".to_string(), parts)]);
        let err = expand_lines(&lines, &components).unwrap_err();
        assert!(matches!(&err, DomainError::Validation { field, .. } if field == "quantity"), "{err:?}");
    }

    #[test]
    fn nearest_warehouse_first() {
        let whs = vec![warehouse("wh_east", "US", "NJ", 40.7, -74.1), warehouse("wh_west", "US", "CA", 34.0, -118.2)];
        let sf = Location {
            country: "US".into(),
            region: Some("CA".into()),
            coordinates: Some(Coordinates { latitude: 37.7, longitude: -122.4 }),
            postal_code: None,
        };
        let ranked: Vec<&str> = rank_warehouses(&whs, Some(&sf)).iter().map(|w| w.warehouse_id.as_str()).collect();
        assert_eq!(ranked, vec!["wh_west", "wh_east"]);
        let ny_region_only =
            Location { country: "US".into(), region: Some("NJ".into()), coordinates: None, postal_code: None };
        let ranked: Vec<&str> =
            rank_warehouses(&whs, Some(&ny_region_only)).iter().map(|w| w.warehouse_id.as_str()).collect();
        assert_eq!(ranked, vec!["wh_east", "wh_west"]);
    }

    #[test]
    fn splits_only_when_no_single_warehouse_covers() {
        let stock = HashMap::from([("A".to_string(), vec![level("A", "wh_near", 3), level("A", "wh_far", 10)])]);
        let order = ["wh_near", "wh_far"];
        let one = allocate(&BTreeMap::from([("A".to_string(), 2)]), &stock, &order).unwrap();
        assert_eq!(one, vec![Allocation { sku: "A".into(), warehouse_id: "wh_near".into(), quantity: 2 }]);
        let whole_far = allocate(&BTreeMap::from([("A".to_string(), 5)]), &stock, &order).unwrap();
        assert_eq!(whole_far, vec![Allocation { sku: "A".into(), warehouse_id: "wh_far".into(), quantity: 5 }]);
        let split = allocate(&BTreeMap::from([("A".to_string(), 12)]), &stock, &order).unwrap();
        assert_eq!(split.len(), 2);
        assert_eq!(split[0].quantity + split[1].quantity, 12);
        assert_eq!(split[0].warehouse_id, "wh_near");
        let err = allocate(&BTreeMap::from([("A".to_string(), 14)]), &stock, &order).unwrap_err();
        assert!(matches!(err, DomainError::OutOfStock { sku } if sku == "A"));
    }

    #[test]
    fn bundle_lines_sharing_an_item_add_up() {
        let components = HashMap::from([
            (
                "KIT".to_string(),
                vec![Component { sku: "BASE".into(), quantity: 1 }, Component { sku: "LENS".into(), quantity: 2 }],
            ),
            ("LENS".to_string(), vec![Component { sku: "LENS".into(), quantity: 1 }]),
        ]);
        let demand = expand_lines(&[line("KIT", 2), line("LENS", 1)], &components).unwrap();
        assert_eq!(demand, BTreeMap::from([("BASE".to_string(), 2), ("LENS".to_string(), 5)]));
        assert!(expand_lines(&[line("NOPE", 1)], &components).is_err());
    }

    proptest! {
        #[test]
        fn allocation_respects_stock_and_covers_demand(
            avail in proptest::collection::vec(0i64..20, 1..5),
            needed in 1u64..60,
        ) {
            let ids: Vec<String> = (0..avail.len()).map(|i| format!("wh_{i}")).collect();
            let levels: Vec<StockLevel> = ids.iter().zip(&avail).map(|(id, a)| level("A", id, *a)).collect();
            let stock = HashMap::from([("A".to_string(), levels)]);
            let order: Vec<&str> = ids.iter().map(String::as_str).collect();
            let total: i64 = avail.iter().sum();
            match allocate(&BTreeMap::from([("A".to_string(), needed)]), &stock, &order) {
                Ok(allocs) => {
                    prop_assert!(total >= needed as i64);
                    prop_assert_eq!(allocs.iter().map(|a| u64::from(a.quantity)).sum::<u64>(), needed);
                    for a in &allocs {
                        let i = ids.iter().position(|id| *id == a.warehouse_id).unwrap();
                        prop_assert!(a.quantity > 0 && i64::from(a.quantity) <= avail[i]);
                    }
                    if avail.iter().any(|a| *a >= needed as i64) {
                        prop_assert_eq!(allocs.len(), 1);
                    }
                }
                Err(DomainError::OutOfStock { .. }) => prop_assert!(total < needed as i64),
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            }
        }
    }
}
