//! `GET /v1/products/{product_id}/reviews`: anyone lists a product's approved reviews.

mod handler;

use commerce_lambda::{telemetry, wiring};
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let (store, _) = wiring::reviews().await?;
    run(service_fn(|req| handler::handle(&store, req))).await
}
