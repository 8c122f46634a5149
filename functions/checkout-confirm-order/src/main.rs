//! Checkout saga step after the authorization: commit the reservation (an expired one fails with `Gone`),
//! confirm the order with its payment, take the ordered SKUs out of the cart; returns the OrderPlaced
//! notification.
// The use cases' tracing spans nest the saga step's future deeper than the default limit allows.
#![recursion_limit = "256"]

mod handler;

use commerce_aws::cart::DynamoCarts;
use commerce_aws::inventory::DynamoInventory;
use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_runtime::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    let deps = handler::Deps {
        inventory: DynamoInventory::new(dynamo.clone(), config::required("INVENTORY_TABLE")?),
        orders: commerce_lambda::wiring::orders(&dynamo)?,
        carts: DynamoCarts::new(dynamo, config::required("CARTS_TABLE")?),
    };
    run(service_fn(|event| handler::handle(&deps, event))).await
}
