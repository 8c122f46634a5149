//! Demo inventory: two warehouses (East in New Jersey, West in California) and deterministic stock for every
//! stock item of the demo catalog, with a few items sold out and a few only in one warehouse. Handler tests
//! and the local stack's seed use the same data.

use chrono::{TimeZone, Utc};
use commerce_app::ports::WarehouseReader;
use commerce_aws::inventory::DynamoInventory;
use commerce_domain::catalog::Product;
use commerce_domain::error::Result;
use commerce_domain::inventory::{is_stock_item, Coordinates, Location, StockLevel, Warehouse};

/// The East warehouse (Edison, New Jersey).
pub const EAST: &str = "wh_east";
/// The West warehouse (Ontario, California).
pub const WEST: &str = "wh_west";

/// The demo warehouses.
pub fn warehouses() -> Vec<Warehouse> {
    let created_at = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).single().unwrap_or_default();
    let at = |id: &str, name: &str, (region, postal_code): (&str, &str), latitude: f64, longitude: f64| Warehouse {
        warehouse_id: id.to_owned(),
        name: name.to_owned(),
        location: Location {
            country: "US".into(),
            region: Some(region.into()),
            coordinates: Some(Coordinates { latitude, longitude }),
            postal_code: Some(postal_code.into()),
        },
        created_at,
    };
    vec![
        at(EAST, "East (Edison, NJ)", ("NJ", "08817"), 40.5187, -74.4121),
        at(WEST, "West (Ontario, CA)", ("CA", "91761"), 34.0633, -117.6509),
    ]
}

/// The demo stock: for the `i`th stock item, East holds `(i * 7) % 40` units and West `(i * 11) % 30`; every
/// 17th item is sold out in both. Bundles have no stock of their own (they draw on their components).
pub fn stock(products: &[Product]) -> Vec<StockLevel> {
    let items = products.iter().flat_map(|p| p.sku_views()).filter(is_stock_item).map(|v| v.sku);
    let mut levels = Vec::new();
    for (i, sku) in items.enumerate() {
        let sold_out = i % 17 == 0;
        for (warehouse_id, units) in [(EAST, (i * 7) % 40), (WEST, (i * 11) % 30)] {
            let on_hand = if sold_out { 0 } else { units as i64 };
            levels.push(StockLevel {
                on_hand,
                free: on_hand,
                avail: on_hand,
                received: on_hand,
                ..StockLevel::empty(&sku, warehouse_id)
            });
        }
    }
    levels
}

/// Writes the demo warehouses and stock, unless the table already has warehouses (a restarted stack keeps
/// its state). Returns the number of stock items written.
pub async fn seed(inventory: &DynamoInventory, products: &[Product]) -> Result<usize> {
    if !inventory.list_warehouses().await?.is_empty() {
        tracing::info!("inventory already seeded");
        return Ok(0);
    }
    let levels = stock(products);
    inventory.load(&warehouses(), &levels).await?;
    tracing::info!(stock_items = levels.len(), "demo inventory seeded");
    Ok(levels.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::DEMO_SELLERS;

    #[test]
    fn demo_stock_covers_two_warehouses_with_some_sold_out() {
        let sellers: Vec<String> = DEMO_SELLERS.iter().map(|s| (*s).to_owned()).collect();
        let (_, products) = crate::catalog::catalog(&sellers).unwrap();
        let levels = stock(&products);
        assert!(levels.len() > 200);
        assert!(levels.iter().any(|l| l.warehouse_id == EAST) && levels.iter().any(|l| l.warehouse_id == WEST));
        assert!(levels.iter().any(|l| l.on_hand == 0));
        assert!(levels.iter().all(|l| !l.sku.starts_with("KIT-") || !l.sku.ends_with("-BUNDLE")));
        assert!(commerce_domain::inventory::check_invariant(&levels, &[]).is_empty());
    }
}
