//! `POST /v1/seller/webhooks`: registers a seller's endpoint for the event types it names; answers the secret once.

mod handler;

use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let deps = commerce_lambda::wiring::webhook_deps(&aws).await?;
    let guard = commerce_lambda::wiring::outbound()?;
    run(service_fn(|req| handler::handle(&deps.store, &guard, &deps.policy, req))).await
}
