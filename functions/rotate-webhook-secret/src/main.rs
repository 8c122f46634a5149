//! `POST /v1/seller/webhooks/{webhook_id}/rotate`: a new signing secret (shown once); the old one keeps
//! signing beside it for a day.

mod handler;

use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let store = commerce_aws::webhooks::DynamoWebhooks::new(
        aws_sdk_dynamodb::Client::new(&aws),
        config::required("WEBHOOKS_TABLE")?,
    );
    run(service_fn(|req| handler::handle(&store, req))).await
}
