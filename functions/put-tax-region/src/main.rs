//! `PUT /v1/admin/tax/regions/{region}`: An admin creates or replaces a tax region.

mod handler;

use commerce_aws::shipping_config::DynamoShippingConfig;
use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let table = config::required("CATALOG_TABLE")?;
    let aws = config::aws().await;
    let store = DynamoShippingConfig::new(aws_sdk_dynamodb::Client::new(&aws), table);
    run(service_fn(|req| handler::handle(&store, req))).await
}
