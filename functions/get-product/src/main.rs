//! `GET /v1/products/{product_id}`: anyone reads an active product's page (availability and rating included).

mod handler;

use commerce_aws::catalog::DynamoCatalog;
use commerce_aws::inventory::DynamoInventory;
use commerce_aws::reviews::DynamoReviews;
use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let client = aws_sdk_dynamodb::Client::new(&config::aws().await);
    let deps = handler::Deps {
        catalog: DynamoCatalog::new(client.clone(), config::required("CATALOG_TABLE")?),
        stock: DynamoInventory::new(client.clone(), config::required("INVENTORY_TABLE")?),
        ratings: DynamoReviews::new(client, config::required("REVIEWS_TABLE")?),
    };
    run(service_fn(|req| handler::handle(&deps, req))).await
}
