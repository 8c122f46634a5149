//! The flash sale's writes to the inventory table's stock item of one SKU in one warehouse (layout: the
//! inventory section of docs/DATA_MODEL.md). Allocation and reconciliation are actions inside the flash sale's
//! transactions, so the sale and the stock item never disagree.

use crate::dynamo::sdk_error;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use commerce_domain::error::Result;
use std::collections::HashMap;

/// The stock item's key.
pub fn stock_key(sku: &str, warehouse_id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(format!("SKU#{sku}"))),
        ("sk".to_owned(), AttributeValue::S(format!("WH#{warehouse_id}"))),
    ])
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Every stock counter by placeholder (several are reserved words in expressions).
fn names(used: &[&str]) -> HashMap<String, String> {
    used.iter().map(|name| (format!("#{name}"), (*name).to_owned())).collect()
}

/// Available units of a SKU per warehouse (`avail`, never below zero).
pub async fn available_by_warehouse(client: &Client, table: &str, sku: &str) -> Result<Vec<(String, i64)>> {
    let out = client
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk AND begins_with(sk, :wh)")
        .expression_attribute_values(":pk", AttributeValue::S(format!("SKU#{sku}")))
        .expression_attribute_values(":wh", AttributeValue::S("WH#".into()))
        .consistent_read(true)
        .send()
        .await
        .map_err(sdk_error)?;
    Ok(out
        .items
        .unwrap_or_default()
        .into_iter()
        .filter_map(|item| {
            let wh = item.get("sk")?.as_s().ok()?.strip_prefix("WH#")?.to_owned();
            let avail = item.get("avail")?.as_n().ok()?.parse::<i64>().ok()?;
            Some((wh, avail.max(0)))
        })
        .collect())
}

/// Moves `units` out of the available count into `reserved`, counted in `flash` (units allocated to flash
/// sales), if `avail >= units`.
pub fn allocate(table: &str, sku: &str, warehouse_id: &str, units: i64) -> TransactWriteItem {
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(stock_key(sku, warehouse_id)))
        .update_expression(
            "SET #avail = #avail - :u, #free = #free - :u, #reserved = #reserved + :u, #flash = if_not_exists(#flash, :zero) + :u",
        )
        .condition_expression("#avail >= :u")
        .set_expression_attribute_names(Some(names(&["avail", "free", "reserved", "flash"])))
        .expression_attribute_values(":u", n(units))
        .expression_attribute_values(":zero", n(0))
        .build()
        .expect("table, key and expression are set");
    TransactWriteItem::builder().update(update).build()
}

/// Ends a sale's allocation of `allocated` units: `returned` go back to the available count, the rest leave
/// `on_hand` and `reserved` as sold (also counted in `flash_sold`).
pub fn reconcile(table: &str, sku: &str, warehouse_id: &str, allocated: i64, returned: i64) -> TransactWriteItem {
    let sold = allocated - returned;
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(stock_key(sku, warehouse_id)))
        .update_expression(
            "SET #avail = #avail + :ret, #free = #free + :ret, #reserved = #reserved - :alloc, #flash = #flash - :alloc, \
             #on_hand = #on_hand - :sold, #sold = #sold + :sold, #flash_sold = if_not_exists(#flash_sold, :zero) + :sold",
        )
        .condition_expression("#flash >= :alloc AND #reserved >= :alloc")
        .set_expression_attribute_names(Some(names(&[
            "avail", "free", "reserved", "flash", "on_hand", "sold", "flash_sold",
        ])))
        .expression_attribute_values(":ret", n(returned))
        .expression_attribute_values(":alloc", n(allocated))
        .expression_attribute_values(":sold", n(sold))
        .expression_attribute_values(":zero", n(0))
        .build()
        .expect("table, key and expression are set");
    TransactWriteItem::builder().update(update).build()
}
