//! `POST /v1/seller/reviews/{review_id}/reply`: the product's seller replies to a review (201 with it).

mod handler;

use commerce_lambda::telemetry;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let (store, _settings) = commerce_lambda::wiring::reviews().await?;
    run(service_fn(|req| handler::handle(&store, req))).await
}
