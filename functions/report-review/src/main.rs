//! `POST /v1/reviews/{review_id}/reports`: a signed-in customer reports a review (204).

mod handler;

use commerce_lambda::telemetry;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let (store, settings) = commerce_lambda::wiring::reviews().await?;
    run(service_fn(|req| handler::handle(&store, settings, req))).await
}
