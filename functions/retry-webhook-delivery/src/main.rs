//! `POST /v1/seller/webhooks/{webhook_id}/deliveries/{delivery_id}/retry`: sends a delivery again now.

mod handler;

use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let deps = commerce_lambda::wiring::webhook_deps(&aws).await?;
    let queue = deps.queue()?;
    run(service_fn(|req| handler::handle(&deps.store, queue, req))).await
}
