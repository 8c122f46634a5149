//! CatalogTable stream consumer: keeps the search index in step with the catalog.

mod handler;

use commerce_aws::catalog::DynamoCatalog;
use commerce_aws::search::SearchEngine;
use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_runtime::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let table = config::required("CATALOG_TABLE")?;
    let aws = config::aws().await;
    let engine = SearchEngine::from_env(&aws).await?;
    let catalog = DynamoCatalog::new(aws_sdk_dynamodb::Client::new(&aws), table);
    run(service_fn(|event| handler::handle(&engine, &catalog, event))).await
}
