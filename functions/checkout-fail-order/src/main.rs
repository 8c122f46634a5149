//! Checkout saga compensation: mark the order failed with the reason the failing step's error names; a payment
//! failure is published to the order events queue (the customer's email).
// The use cases' tracing spans nest the saga step's future deeper than the default limit allows.
#![recursion_limit = "256"]

mod handler;

use commerce_aws::orders::{DynamoOrders, SqsOrderEvents};
use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_runtime::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let deps = DynamoOrders::new(aws_sdk_dynamodb::Client::new(&aws), config::required("ORDERS_TABLE")?);
    let events = SqsOrderEvents::new(aws_sdk_sqs::Client::new(&aws), config::required("ORDER_EVENTS_QUEUE_URL")?);
    run(service_fn(|event| handler::handle(&deps, &events, event))).await
}
