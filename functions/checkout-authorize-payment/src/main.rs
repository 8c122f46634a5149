//! Checkout saga step: authorize the order total with the payment provider, outside any lock.

mod handler;

use commerce::adapters::orders::DynamoOrders;
use commerce::adapters::payments::ConfiguredProvider;
use commerce::{config, telemetry};
use lambda_runtime::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let deps = handler::Deps {
        provider: ConfiguredProvider::from_env(&aws).await?,
        ledger: DynamoOrders::new(aws_sdk_dynamodb::Client::new(&aws), config::required("ORDERS_TABLE")?),
    };
    run(service_fn(|event| handler::handle(&deps, event))).await
}
