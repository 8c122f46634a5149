//! `PATCH /v1/reviews/{review_id}`: the author edits their review (200 with it).

mod handler;

use commerce_lambda::{telemetry, wiring};
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let (store, settings) = wiring::reviews().await?;
    run(service_fn(|req| handler::handle(&store, settings, req))).await
}
