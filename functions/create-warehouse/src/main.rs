//! `POST /v1/admin/warehouses`: An admin creates a warehouse.

mod handler;

use commerce_aws::inventory::DynamoInventory;
use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let table = config::required("INVENTORY_TABLE")?;
    let aws = config::aws().await;
    let inventory = DynamoInventory::new(aws_sdk_dynamodb::Client::new(&aws), table);
    run(service_fn(|req| handler::handle(&inventory, req))).await
}
