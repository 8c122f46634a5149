//! `POST /v1/products/{product_id}/reviews`: a signed-in customer reviews a product (201 with the review).

mod handler;

use commerce_aws::catalog::DynamoCatalog;
use commerce_lambda::{config, telemetry, wiring};
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let client = aws_sdk_dynamodb::Client::new(&config::aws().await);
    let (reviews, settings) = wiring::reviews_on(&client)?;
    let catalog = DynamoCatalog::new(client.clone(), config::required("CATALOG_TABLE")?);
    let orders = commerce_aws::orders::DynamoOrders::new(client, config::required("ORDERS_TABLE")?);
    let deps = commerce_app::services::reviews::Submission { catalog, orders, reviews, settings };
    run(service_fn(|req| handler::handle(&deps, req))).await
}
