//! `POST /v1/seller/products`: A seller creates a product (201 with the product).

mod handler;

use commerce_aws::catalog::DynamoCatalog;
use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let table = config::required("CATALOG_TABLE")?;
    let aws = config::aws().await;
    let catalog = DynamoCatalog::new(aws_sdk_dynamodb::Client::new(&aws), table);
    run(service_fn(|req| handler::handle(&catalog, req))).await
}
