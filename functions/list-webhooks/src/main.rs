//! `GET /v1/seller/webhooks`: the seller's endpoints and their state, never a secret.

mod handler;

use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let store = commerce_lambda::wiring::webhooks_table(&aws)?;
    run(service_fn(|req| handler::handle(&store, req))).await
}
