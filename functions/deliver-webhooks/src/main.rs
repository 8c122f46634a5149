//! The webhook deliveries queue's consumer: each message names one delivery; the attempt is signed (Standard
//! Webhooks), sent over the SSRF-safe client, recorded, and queued again on the retry schedule.

mod handler;

use commerce_app::services::webhooks::Deliverer;
use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_runtime::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let deps = commerce_lambda::wiring::webhook_deps(&aws).await?;
    let deliverer = Deliverer {
        endpoints: deps.store.clone(),
        deliveries: deps.store.clone(),
        queue: deps.queue()?.clone(),
        sender: commerce_lambda::wiring::outbound()?,
        mail: commerce_aws::mail::SqsMailQueue::new(
            aws_sdk_sqs::Client::new(&aws),
            config::required("EMAILS_QUEUE_URL")?,
        ),
        policy: deps.policy,
    };
    run(service_fn(|event| handler::handle(&deliverer, event))).await
}
