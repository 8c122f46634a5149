//! Checkout saga step: confirm the order with its authorized payment; returns the OrderPlaced notification.

mod handler;

use commerce::adapters::orders::DynamoOrders;
use commerce::{config, telemetry};
use lambda_runtime::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let deps = DynamoOrders::new(aws_sdk_dynamodb::Client::new(&aws), config::required("ORDERS_TABLE")?);
    run(service_fn(|event| handler::handle(&deps, event))).await
}
