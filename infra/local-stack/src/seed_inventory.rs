//! The demo inventory the local stack loads after the demo catalog: warehouses `wh_east` (Edison, NJ) and
//! `wh_west` (Ontario, CA) and stock for every stock item of the demo catalog in both. The data itself is
//! `commerce_demo::inventory`; a table that already has warehouses is left alone.

use anyhow::{Context as _, Result};
use commerce_aws::inventory::DynamoInventory;
use commerce_demo::catalog as catalog_demo;
use commerce_demo::inventory as demo;

/// Seeds `inventory_table` for the demo catalog owned by `sellers` (the same list the catalog seed got).
/// Returns the number of stock items written (0 when the table was already seeded).
pub async fn seed(aws: &aws_config::SdkConfig, inventory_table: &str, sellers: &[String]) -> Result<usize> {
    let (_, products) = catalog_demo::catalog(sellers).context("building the demo catalog")?;
    let inventory = DynamoInventory::new(aws_sdk_dynamodb::Client::new(aws), inventory_table);
    demo::seed(&inventory, &products)
        .await
        .with_context(|| format!("seeding the demo inventory into {inventory_table}"))
}
