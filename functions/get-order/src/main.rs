//! `GET /v1/orders/{order_id}`: the owner (or a guest with the order's token) reads an order with its event
//! history and its payment.

mod handler;

use commerce_aws::jwt::JwtVerifier;
use commerce_aws::orders::DynamoOrders;
use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let deps = handler::Deps {
        orders: DynamoOrders::new(aws_sdk_dynamodb::Client::new(&aws), config::required("ORDERS_TABLE")?),
        verifier: JwtVerifier::from_env()?,
    };
    run(service_fn(|req| handler::handle(&deps, req))).await
}
