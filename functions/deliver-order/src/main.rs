//! `POST /v1/seller/orders/{order_id}/deliver`: a seller marks their shipped lines delivered.

mod handler;

use commerce_aws::orders::DynamoOrders;
use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let orders = DynamoOrders::new(aws_sdk_dynamodb::Client::new(&aws), config::required("ORDERS_TABLE")?);
    run(service_fn(|req| handler::handle(&orders, req))).await
}
