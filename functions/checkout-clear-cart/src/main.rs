//! Checkout saga step: take the ordered SKUs out of the cart.

mod handler;

use commerce::adapters::cart::DynamoCarts;
use commerce::{config, telemetry};
use lambda_runtime::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let deps = DynamoCarts::new(aws_sdk_dynamodb::Client::new(&aws), config::required("CARTS_TABLE")?);
    run(service_fn(|event| handler::handle(&deps, event))).await
}
