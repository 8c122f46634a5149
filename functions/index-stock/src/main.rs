//! InventoryTable stream consumer: keeps the search index's in-stock status in step with inventory.

mod handler;

use commerce_aws::search::SearchEngine;
use commerce_aws::{catalog::DynamoCatalog, inventory::DynamoInventory};
use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_runtime::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let catalog_table = config::required("CATALOG_TABLE")?;
    let inventory_table = config::required("INVENTORY_TABLE")?;
    let aws = config::aws().await;
    let engine = SearchEngine::from_env(&aws).await?;
    let client = aws_sdk_dynamodb::Client::new(&aws);
    let catalog = DynamoCatalog::new(client.clone(), catalog_table);
    let inventory = DynamoInventory::new(client, inventory_table);
    run(service_fn(|event| handler::handle(&engine, &inventory, &catalog, event))).await
}
