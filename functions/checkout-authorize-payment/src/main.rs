//! Checkout saga step: authorize the order total with the payment provider, outside any lock.

mod handler;

use commerce_aws::orders::DynamoOrders;
use commerce_aws::payments::ConfiguredProvider;
use commerce_lambda::config;
use commerce_lambda::telemetry;
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
