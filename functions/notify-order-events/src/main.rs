//! The order events queue's consumer: delivers order notifications (placed, shipped, refunded, cancelled).
//! Locally they are written to the orders table (`NOTIFY#<order>`) where tests read them.

mod handler;

use commerce_aws::orders::DynamoOrders;
use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_runtime::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let sink = DynamoOrders::new(aws_sdk_dynamodb::Client::new(&aws), config::required("ORDERS_TABLE")?);
    run(service_fn(|event| handler::handle(&sink, event))).await
}
