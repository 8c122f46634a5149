//! Scheduled every minute: releases held reservations whose expiry has passed (DynamoDB TTL does not
//! release stock, and may lag for days).

mod handler;

use commerce_aws::inventory::DynamoInventory;
use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_runtime::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let table = config::required("INVENTORY_TABLE")?;
    let batch: usize = config::parsed_or("SWEEP_BATCH_SIZE", 500)?;
    let aws = config::aws().await;
    let inventory = DynamoInventory::new(aws_sdk_dynamodb::Client::new(&aws), table);
    run(service_fn(|event| handler::handle(&inventory, batch, event))).await
}
