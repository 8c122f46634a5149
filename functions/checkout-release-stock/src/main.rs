//! Checkout saga compensation: release the order's reservation (no effect if never made).

mod handler;

use commerce::adapters::inventory::DynamoInventory;
use commerce::{config, telemetry};
use lambda_runtime::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let deps = DynamoInventory::new(aws_sdk_dynamodb::Client::new(&aws), config::required("INVENTORY_TABLE")?);
    run(service_fn(|event| handler::handle(&deps, event))).await
}
