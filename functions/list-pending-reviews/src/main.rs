//! `GET /v1/admin/reviews`: the moderation queue, a page of pending reviews, oldest first.

mod handler;

use commerce_lambda::telemetry;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let (store, _settings) = commerce_lambda::wiring::reviews().await?;
    run(service_fn(|req| handler::handle(&store, req))).await
}
