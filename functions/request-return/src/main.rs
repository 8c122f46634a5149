//! `POST /v1/orders/{order_id}/return`: the owner asks to return a delivered order.

mod handler;

use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let (orders, events) = commerce_lambda::wiring::tracking_deps(&aws).await?;
    run(service_fn(|req| handler::handle(&orders, &events, req))).await
}
