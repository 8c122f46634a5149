//! DynamoDB stream records decoded for the search use cases: which items of the catalog and inventory tables
//! (layouts in docs/DATA_MODEL.md) they are, and what they say. The key layouts stay here, in the adapter.

use aws_lambda_events::dynamodb::EventRecord;
use commerce_app::ports::{ProductEvent, StockChange, StockTransition, StreamRecord};
use commerce_domain::catalog::Product;
use commerce_domain::error::{DomainError, Result};
use commerce_domain::inventory::StockLevel;
use commerce_domain::review::RatingCounts;
use commerce_domain::search::RatingUpdate;

/// The catalog table's records: product items (`PRODUCT#<id>` / `PRODUCT`) as product events, every other
/// item as `None`.
pub fn catalog_records(records: &[EventRecord]) -> Vec<StreamRecord<ProductEvent>> {
    records
        .iter()
        .map(|record| StreamRecord { sequence_number: sequence_number(record), item: product_event(record) })
        .collect()
}

/// The inventory table's records: stock items (`SKU#<sku>` / `WH#<warehouse>`) as stock changes, every
/// other item as `None`.
pub fn stock_records(records: &[EventRecord]) -> Vec<StreamRecord<StockChange>> {
    records
        .iter()
        .map(|record| StreamRecord { sequence_number: sequence_number(record), item: stock_change(record) })
        .collect()
}

/// The stock items a batch of inventory stream records left behind (their new images; removals and other
/// items are skipped), for the per-item ledger check.
pub fn stock_images(records: &[EventRecord]) -> Vec<StockLevel> {
    records
        .iter()
        .filter(|record| keys(record).is_ok_and(|(pk, sk)| pk.starts_with("SKU#") && sk.starts_with("WH#")))
        .filter(|record| record.event_name != "REMOVE")
        .filter_map(|record| serde_dynamo::from_item::<_, StockLevel>(record.change.new_image.clone()).ok())
        .collect()
}

/// The stock items' changes of a batch, before and after (`None` before for a new item), with each record's
/// sequence number and time; removals and other items are skipped.
pub fn stock_transitions(records: &[EventRecord]) -> Vec<StockTransition> {
    records
        .iter()
        .filter(|record| keys(record).is_ok_and(|(pk, sk)| pk.starts_with("SKU#") && sk.starts_with("WH#")))
        .filter(|record| record.event_name != "REMOVE")
        .filter_map(|record| {
            let new = serde_dynamo::from_item::<_, StockLevel>(record.change.new_image.clone()).ok()?;
            let old = serde_dynamo::from_item::<_, StockLevel>(record.change.old_image.clone()).ok();
            let at = record.change.approximate_creation_date_time;
            Some(StockTransition { sequence_number: sequence_number(record), old, new, at })
        })
        .collect()
}

/// The reviews stream's aggregate records as rating updates (other items: `None`).
pub fn rating_records(records: &[EventRecord]) -> Vec<StreamRecord<RatingUpdate>> {
    records
        .iter()
        .map(|record| StreamRecord { sequence_number: sequence_number(record), item: rating_update(record) })
        .collect()
}

fn rating_update(record: &EventRecord) -> Result<Option<RatingUpdate>> {
    let (pk, sk) = keys(record)?;
    let (Some(product_id), "RATING") = (pk.strip_prefix("RATING#"), sk.as_str()) else {
        return Ok(None);
    };
    if record.event_name == "REMOVE" {
        return Ok(None);
    }
    let image = &record.change.new_image;
    let number = |name: &str| -> u64 {
        image.get(name).and_then(|v| serde_dynamo::from_attribute_value::<_, u64>(v.clone()).ok()).unwrap_or(0)
    };
    let counts = RatingCounts {
        stars: [number("c1"), number("c2"), number("c3"), number("c4"), number("c5")],
        version: number("version"),
    };
    Ok(Some(RatingUpdate { product_id: product_id.to_owned(), stars: counts.stars, version: counts.version }))
}

fn sequence_number(record: &EventRecord) -> String {
    record.change.sequence_number.clone().unwrap_or_default()
}

/// The record's `pk` and `sk`.
fn keys(record: &EventRecord) -> Result<(String, String)> {
    let key = |name: &str| -> Option<String> {
        serde_dynamo::from_attribute_value::<_, String>(record.change.keys.get(name)?.clone()).ok()
    };
    match (key("pk"), key("sk")) {
        (Some(pk), Some(sk)) => Ok((pk, sk)),
        _ => Err(DomainError::validation("keys", "stream record without pk/sk")),
    }
}

fn product_event(record: &EventRecord) -> Result<Option<ProductEvent>> {
    let (pk, sk) = keys(record)?;
    if sk != "PRODUCT" || !pk.starts_with("PRODUCT#") {
        return Ok(None);
    }
    match record.event_name.as_str() {
        "INSERT" | "MODIFY" => {
            let product: Product = serde_dynamo::from_item(record.change.new_image.clone())
                .map_err(|e| DomainError::validation("NewImage", e))?;
            Ok(Some(ProductEvent::Current(product)))
        }
        "REMOVE" => {
            let product: Product = serde_dynamo::from_item(record.change.old_image.clone())
                .map_err(|e| DomainError::validation("OldImage", e))?;
            Ok(Some(ProductEvent::Deleted { product_id: product.product_id, version: product.version }))
        }
        other => Err(DomainError::validation("eventName", format!("unknown event {other:?}"))),
    }
}

/// A stock item's `avail` in a stream image; `None` when the image is absent (insert or remove).
fn image_avail(image: &serde_dynamo::Item) -> Option<i64> {
    serde_dynamo::from_attribute_value::<_, i64>(image.get("avail")?.clone()).ok()
}

fn stock_change(record: &EventRecord) -> Result<Option<StockChange>> {
    let (pk, sk) = keys(record)?;
    let (Some(sku), true) = (pk.strip_prefix("SKU#"), sk.starts_with("WH#")) else {
        return Ok(None);
    };
    Ok(Some(StockChange {
        sku: sku.to_owned(),
        old_avail: image_avail(&record.change.old_image),
        new_avail: image_avail(&record.change.new_image),
    }))
}
