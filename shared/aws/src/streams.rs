//! DynamoDB stream records decoded for the search use cases: which items of the catalog and inventory tables
//! (layouts in docs/DATA_MODEL.md) they are, and what they say. The key layouts stay here, in the adapter.

use aws_lambda_events::dynamodb::EventRecord;
use commerce_app::ports::{ProductEvent, StockChange, StreamRecord};
use commerce_domain::catalog::Product;
use commerce_domain::error::{DomainError, Result};

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
