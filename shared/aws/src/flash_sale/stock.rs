//! The flash sale's writes to the inventory table's stock item of one SKU in one warehouse (layout: the
//! inventory section of docs/DATA_MODEL.md). Allocation and reconciliation are actions inside the flash sale's
//! transactions, so the sale and the stock item never disagree.

use crate::dynamo::{n, names, s, sdk_error, stock_key, text, Item, Table};
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use commerce_domain::error::Result;
use futures::FutureExt;

/// Available units of a SKU per warehouse (`avail`, never below zero).
pub async fn available_by_warehouse(inventory: &Table, sku: &str) -> Result<Vec<(String, i64)>> {
    let out = inventory
        .query()
        .key_condition_expression("pk = :pk AND begins_with(sk, :wh)")
        .expression_attribute_values(":pk", s(format!("SKU#{sku}")))
        .expression_attribute_values(":wh", s("WH#"))
        .consistent_read(true)
        .send()
        .boxed()
        .await
        .map_err(sdk_error)?;
    Ok(out
        .items
        .unwrap_or_default()
        .into_iter()
        .filter_map(|item| {
            let wh = text(&item, "sk")?.strip_prefix("WH#")?.to_owned();
            let avail = item.get("avail")?.as_n().ok()?.parse::<i64>().ok()?;
            Some((wh, avail.max(0)))
        })
        .collect())
}

/// Moves `units` out of the available count into `reserved`, counted in `flash` (units allocated to flash
/// sales), if `avail >= units`.
pub fn allocate(inventory: &Table, sku: &str, warehouse_id: &str, units: i64) -> TransactWriteItem {
    stock_update(
        inventory,
        stock_key(sku, warehouse_id),
        "SET #avail = #avail - :u, #free = #free - :u, #reserved = #reserved + :u, #flash = if_not_exists(#flash, :zero) + :u",
        "#avail >= :u",
        [(":u", n(units)), (":zero", n(0))],
    )
}

/// Ends a sale's allocation of `allocated` units: `returned` go back to the available count, the rest leave
/// `on_hand` and `reserved` as sold (also counted in `flash_sold`).
pub fn reconcile(inventory: &Table, sku: &str, warehouse_id: &str, allocated: i64, returned: i64) -> TransactWriteItem {
    stock_update(
        inventory,
        stock_key(sku, warehouse_id),
        "SET #avail = #avail + :ret, #free = #free + :ret, #reserved = #reserved - :alloc, #flash = #flash - :alloc, \
         #on_hand = #on_hand - :sold, #sold = #sold + :sold, #flash_sold = if_not_exists(#flash_sold, :zero) + :sold",
        "#flash >= :alloc AND #reserved >= :alloc",
        [(":ret", n(returned)), (":alloc", n(allocated)), (":sold", n(allocated - returned)), (":zero", n(0))],
    )
}

/// A transaction's conditional update of a stock item, its `#name` placeholders declared from the expressions.
fn stock_update<const N: usize>(
    inventory: &Table,
    key: Item,
    expression: &str,
    condition: &str,
    values: [(&str, AttributeValue); N],
) -> TransactWriteItem {
    let update = inventory
        .update(key, expression)
        .condition_expression(condition)
        .set_expression_attribute_names(Some(names(&[expression, condition])))
        .set_expression_attribute_values(Some(
            values.into_iter().map(|(name, value)| (name.to_owned(), value)).collect(),
        ))
        .build()
        .expect("table, key and expression are set");
    TransactWriteItem::builder().update(update).build()
}
